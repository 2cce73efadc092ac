package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/coopcast/coopcast/origin"
)

func runOrigin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("origin --tracker URL --channel ID --source synthetic --publish-token T [flags]",
		"Publishes a live stream: cuts it into chunks, erasure-codes each into --trees\n"+
			"stripes (any --k rebuild it), signs them, and sends each stripe down its own\n"+
			"tree of peers. Serves HTTP fallback for peers the trees cannot reach.", stderr)
	var (
		lf       logFlags
		ice      iceFlags
		trk      = fs.String("tracker", "", "tracker base URL, e.g. http://127.0.0.1:8080 (required)")
		channel  = fs.String("channel", "", "channel id to publish (required)")
		source   = fs.String("source", "synthetic", "stream source: synthetic")
		token    = fs.String("publish-token", "", "the tracker's publish token (default $COOPCAST_PUBLISH_TOKEN)")
		bitrate  = fs.String("bitrate", "500k", "bitrate of the synthetic source (e.g. 500k, 2M)")
		chunk    = fs.Duration("chunk", origin.DefaultChunkInterval, "chunk duration of the synthetic source")
		trees    = fs.Int("trees", 4, "stripes and trees (M)")
		k        = fs.Int("k", 3, "stripes that rebuild a chunk (k ≤ M; k = M: no redundancy)")
		listen   = fs.String("listen", "127.0.0.1:8081", "address to serve HTTP fallback on")
		fallback = fs.String("fallback-url", "", "public URL of the fallback server (default http://LISTEN)")
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
	if *token == "" {
		*token = os.Getenv("COOPCAST_PUBLISH_TOKEN")
	}
	switch {
	case *trk == "":
		return fmt.Errorf("%w: --tracker is required", errUsage)
	case *channel == "":
		return fmt.Errorf("%w: --channel is required", errUsage)
	case *token == "":
		return fmt.Errorf("%w: --publish-token (or COOPCAST_PUBLISH_TOKEN) is required", errUsage)
	case *source != "synthetic":
		return fmt.Errorf("%w: --source must be synthetic (media sources are not built yet), got %q", errUsage, *source)
	}
	bps, err := parseBitrate(*bitrate)
	if err != nil {
		return fmt.Errorf("%w: --bitrate: %v", errUsage, err)
	}
	src, err := origin.NewSynthetic(bps, *chunk)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("%w: --listen %s: %v", errUsage, *listen, err)
	}
	defer ln.Close()
	base := *fallback
	if base == "" {
		base = "http://" + ln.Addr().String()
	}
	o, err := origin.New(origin.Config{TrackerURL: *trk, Channel: *channel, PublishToken: *token, Source: src,
		Trees: *trees, K: *k, Bitrate: bps, FallbackURL: strings.TrimSuffix(base, "/") + "/fallback/" + *channel,
		RTC: ice.config(*trk), Logger: log})
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	hs := &http.Server{Handler: o.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	fmt.Fprintf(stdout, "coopcast origin: channel %q at %s, fallback on %s\n", *channel, *trk, base)
	err = o.Run(ctx)
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// parseBitrate reads "500k", "2M", "2.5M" or plain bits per second.
func parseBitrate(s string) (int64, error) {
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "k"), strings.HasSuffix(s, "K"):
		mult, s = 1e3, s[:len(s)-1]
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		mult, s = 1e6, s[:len(s)-1]
	}
	var v float64
	if _, err := fmt.Sscanf(s, "%g", &v); err != nil || v <= 0 {
		return 0, fmt.Errorf("want a positive bitrate such as 500k or 2M, got %q", s)
	}
	return int64(v * mult), nil
}
