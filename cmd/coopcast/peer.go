package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/coopcast/coopcast/peer"
)

func runPeer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("peer --tracker URL --channel ID [--upload-kbps N] [--out FILE|-] [--duration D] [--report FILE]",
		"Joins a channel as a native peer: receives every stripe, verifies, rebuilds\n"+
			"and plays the stream, and relays stripes to other peers with the upload\n"+
			"it offers.", stderr)
	var (
		lf       logFlags
		ice      iceFlags
		trk      = fs.String("tracker", "", "tracker base URL, e.g. http://127.0.0.1:8080 (required)")
		channel  = fs.String("channel", "", "channel id to watch (required)")
		upload   = fs.Int64("upload-kbps", 2000, "upload offered for relaying, kbit/s (0: never relay)")
		out      = fs.String("out", "", "write the stream to FILE, or - for standard output")
		duration = fs.Duration("duration", 0, "leave after this long (0: until interrupted)")
		report   = fs.String("report", "", "write this peer's measures as JSON to FILE at the end")
		playout  = fs.Duration("playout", 2*time.Second, "playout buffer")
	)
	lf.register(fs)
	ice.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	if *trk, err = trackerURL(*trk); err != nil {
		return err
	}
	if err := checkChannel(*channel); err != nil {
		return err
	}
	if err := ice.check(); err != nil {
		return err
	}
	switch {
	case *upload < 0:
		return fmt.Errorf("%w: --upload-kbps must be ≥ 0, got %d", errUsage, *upload)
	case *duration < 0:
		return fmt.Errorf("%w: --duration must be ≥ 0, got %v", errUsage, *duration)
	case *playout <= 0:
		return fmt.Errorf("%w: --playout must be > 0, got %v", errUsage, *playout)
	}
	var w io.Writer
	switch *out {
	case "":
	case "-":
		w = stdout
	default:
		f, err := os.Create(*out)
		if err != nil {
			return fmt.Errorf("%w: --out: %v", errUsage, err)
		}
		defer f.Close()
		w = f
	}
	p, err := peer.New(peer.Config{TrackerURL: *trk, Channel: *channel, UploadKbps: *upload, Out: w,
		Playout: *playout, RTC: ice.config(*trk), Logger: log})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	err = p.Run(ctx)
	if *report != "" {
		b, _ := json.MarshalIndent(p.Report(), "", "  ")
		if werr := os.WriteFile(*report, append(b, '\n'), 0o644); werr != nil {
			return fmt.Errorf("--report: %v", werr)
		}
	}
	if errors.Is(err, peer.ErrStreamEnded) {
		fmt.Fprintln(stderr, "coopcast peer: the origin ended the stream")
		return nil
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}
