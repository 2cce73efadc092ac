package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/coopcast/coopcast/internal/fmp4"
	"github.com/coopcast/coopcast/peer"
)

// The peer's exit statuses, for scripts and CI (see exitHelp).
const (
	exitPlayed      = 0
	exitFailed      = 1
	exitUsage       = 2
	exitNoChannel   = 3
	exitUnreachable = 4
	exitNotPlayed   = 5
	exitInterrupted = 130
)

const exitHelp = `Exit status:
  0    played what was asked: --duration of play (from the first chunk), or
       the stream to its end when the origin ended it
  1    any other failure (the tracker refused the peer, --out or --report
       could not be written)
  2    a mistake in the command line
  3    no such channel: the tracker answered, without it, for --wait
  4    tracker unreachable for --wait (never reached, or lost and not back)
  5    joined, but nothing played within --wait, or the stream stopped at
       the origin before --duration
  130  interrupted (SIGINT or SIGTERM) before --duration ran out
--report FILE always says how it ended: "exit" (the status) and "reason".`

func runPeer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("peer --tracker URL --channel ID [--upload-kbps N] [--out FILE|-] [--duration D] [--report FILE]",
		"Joins a channel as a native peer: receives every stripe, verifies, rebuilds\n"+
			"and plays the stream, and relays stripes to other peers with the upload\n"+
			"it offers.\n\n"+exitHelp, stderr)
	var (
		lf       logFlags
		ice      iceFlags
		trk      = fs.String("tracker", "", "tracker base `URL`, e.g. http://127.0.0.1:8080 or 127.0.0.1:8080 (required)")
		channel  = fs.String("channel", "", "channel `ID` to watch (required)")
		upload   = fs.Int64("upload-kbps", 2000, "upload offered for relaying, kbit/s (0: never relay)")
		out      = fs.String("out", "", "write the stream to `FILE` (fragmented MP4 starting at time 0), or - for standard output")
		duration = fs.Duration("duration", 0, "play this long, counted from the first chunk played, then leave (0: until interrupted)")
		report   = fs.String("report", "", "write this peer's measures, and why it ended, as JSON to `FILE` at the end")
		wait     = fs.Duration("wait", 30*time.Second, "give up after this long without the tracker or the channel (exit 3 or 4); 0: wait for ever")
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
	case *wait < 0:
		return fmt.Errorf("%w: --wait must be ≥ 0, got %v", errUsage, *wait)
	case *playout <= 0:
		return fmt.Errorf("%w: --playout must be > 0, got %v", errUsage, *playout)
	}
	var w io.Writer
	var file *os.File
	var rebase *fmp4.Rebaser
	switch *out {
	case "":
	case "-":
		rebase = fmp4.NewRebaser(stdout)
		w = rebase
	default:
		if file, err = os.Create(*out); err != nil {
			return fmt.Errorf("%w: --out: %v", errUsage, err)
		}
		defer file.Close()
		rebase = fmp4.NewRebaser(file)
		w = rebase
	}
	p, err := peer.New(peer.Config{TrackerURL: *trk, Channel: *channel, UploadKbps: *upload, Out: w,
		Playout: *playout, Wait: *wait, RTC: ice.config(*trk), Logger: log})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stop peerStop
	done := make(chan struct{})
	go func() {
		defer close(done)
		if stop = watchPeer(runCtx, p, *duration, *wait); stop != stopNone {
			cancel()
		}
	}()
	runErr := p.Run(runCtx)
	cancel()
	<-done
	if rebase != nil {
		rebase.Flush()
	}
	// What the peer says of its files goes to stdout, unless the stream
	// does.
	say := stdout
	if *out == "-" {
		say = stderr
	}
	rep := p.Report()
	code, reason := peerOutcome(ctx, runErr, stop, rep, *channel, *duration, *wait)
	if code == exitNoChannel {
		reason += channelList(*trk)
	}
	if code != exitPlayed {
		fmt.Fprintf(stderr, "coopcast peer: %s\n", reason)
	}
	fmt.Fprintln(stderr, peerSummary(rep))
	if file != nil {
		if err := file.Close(); err != nil && code == exitPlayed {
			code, reason = exitFailed, fmt.Sprintf("--out %s: %v", *out, err)
		} else if fi, err := os.Stat(*out); err == nil {
			if fi.Size() == 0 && code != exitPlayed {
				os.Remove(*out) // an empty file is not a recording
			} else {
				fmt.Fprintf(say, "wrote %s (%s, %s)\n", *out, sizeLabel(fi.Size()), fileDuration(*out))
			}
		}
	}
	if *report != "" {
		b, _ := json.MarshalIndent(peerReport{Report: rep, Exit: code, Reason: reason}, "", "  ")
		if err := os.WriteFile(*report, append(b, '\n'), 0o644); err != nil {
			return exitError{exitFailed, fmt.Errorf("--report: %v", err)}
		}
		fmt.Fprintf(say, "wrote %s (%s)\n", *report, sizeLabel(int64(len(b)+1)))
	}
	if code == exitPlayed {
		return nil
	}
	return exitError{code: code}
}

// peerReport is what --report writes: the peer's measures, the exit
// status and why it ended.
type peerReport struct {
	peer.Report
	Exit   int    `json:"exit"`
	Reason string `json:"reason"`
}

// peerStop is why watchPeer ended a peer's run.
type peerStop int

const (
	stopNone     peerStop = iota // it did not: Run ended by itself, or ctx did
	stopDuration                 // --duration of play is done
	stopNothing                  // joined, but nothing played within --wait
)

// watchPeer ends the run (by returning) once the peer played for
// duration from its first chunk, or once it joined and played nothing
// for wait. Joining itself is bounded by the peer's own Wait.
func watchPeer(ctx context.Context, p *peer.Peer, duration, wait time.Duration) peerStop {
	select {
	case <-p.Joined():
	case <-ctx.Done():
		return stopNone
	}
	var nothing <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		nothing = t.C
	}
	for waiting := true; waiting; {
		select {
		case <-p.Playing():
			waiting = false
		case <-nothing:
			if p.Member().TrackerUp() {
				return stopNothing
			}
			// The tracker is gone too: the peer's own Wait says so.
			nothing = nil
		case <-ctx.Done():
			return stopNone
		}
	}
	if duration == 0 {
		return stopNone
	}
	t := time.NewTimer(duration)
	defer t.Stop()
	select {
	case <-t.C:
		return stopDuration
	case <-ctx.Done():
		return stopNone
	}
}

// peerOutcome maps how Run ended to an exit status and a reason in words.
func peerOutcome(ctx context.Context, err error, stop peerStop, r peer.Report, channel string, duration, wait time.Duration) (int, string) {
	switch {
	case errors.Is(err, peer.ErrStreamEnded):
		return exitPlayed, "the origin ended the stream"
	case errors.Is(err, peer.ErrNoChannel):
		return exitNoChannel, fmt.Sprintf("no channel %q on the tracker after waiting %v (--wait)", channel, wait)
	case errors.Is(err, peer.ErrTrackerUnreachable):
		why := err.Error()
		var op *net.OpError
		if errors.As(err, &op) {
			why = op.Error()
		}
		return exitUnreachable, fmt.Sprintf("tracker unreachable for %v (--wait): %s", wait, why)
	case err != nil && ctx.Err() == nil:
		return exitFailed, err.Error()
	case ctx.Err() != nil:
		return exitInterrupted, "interrupted"
	case stop == stopNothing:
		return exitNotPlayed, fmt.Sprintf("joined channel %q, but nothing played within %v (--wait)", channel, wait)
	case r.StreamStopped:
		return exitNotPlayed, r.Stream + " before --duration ran out"
	}
	return exitPlayed, fmt.Sprintf("played --duration %v", duration)
}

// peerSummary is the one line a peer prints at exit.
func peerSummary(r peer.Report) string {
	return fmt.Sprintf("coopcast peer: played %d chunks, missed %d; %s from peers, %s from the origin; relayed %s to %d peers",
		r.ChunksPlayed, r.ChunksMissed, sizeLabel(int64(r.BytesFromPeers)), sizeLabel(int64(r.BytesFromOrigin)),
		sizeLabel(int64(r.RelayBytes)), r.Children)
}

// channelList says which channels the tracker has, for a "no such
// channel" message.
func channelList(base string) string {
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(base + "/api/v1/channels")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var body struct {
		Channels []struct {
			Channel string `json:"channel"`
		} `json:"channels"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body) != nil {
		return ""
	}
	if len(body.Channels) == 0 {
		return "; the tracker has no channels"
	}
	names := make([]string, len(body.Channels))
	for i, c := range body.Channels {
		names[i] = c.Channel
	}
	return "; the tracker has: " + strings.Join(names, ", ")
}

// sizeLabel writes a byte count for people.
func sizeLabel(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// fileDuration reads back the fMP4 the peer wrote and says how long it
// plays, or that it is not media (the synthetic source).
func fileDuration(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unreadable"
	}
	defer f.Close()
	d, err := fmp4.Length(f)
	if err != nil {
		return "not media"
	}
	return fmt.Sprintf("%.1f s", d)
}
