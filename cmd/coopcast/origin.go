package main

import (
	"context"
	"crypto/ed25519"
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
	fs := newFlags("origin --tracker URL --channel ID --publish-token T [--source testcard|synthetic|FILE|-] [flags]",
		"Publishes a live stream: cuts it into chunks (one per fMP4 fragment),\n"+
			"erasure-codes each into --trees stripes (any --k rebuild it), signs them, and\n"+
			"sends each stripe down its own tree of peers. Serves the signed init segment\n"+
			"and HTTP fallback for peers the trees cannot reach.\n\n"+
			"Sources: testcard (built in, looped), FILE (a fragmented MP4 played at real\n"+
			"time; --loop to repeat), - (a live fMP4 on standard input, e.g.\n"+
			"  ffmpeg -re -i in.mp4 -c copy -f mp4 -movflags frag_keyframe+empty_moov+default_base_moof -\n"+
			"piped in), http (wait for an encoder to push a live fMP4 to\n"+
			"POST /ingest/CHANNEL with the publish token as bearer token, e.g.\n"+
			"  ffmpeg -re -i in.mp4 -c copy -f mp4 -movflags frag_keyframe+empty_moov+default_base_moof \\\n"+
			"    -headers 'Authorization: Bearer T' -method POST http://ORIGIN/ingest/CHANNEL\n"+
			"), synthetic (checkable pseudo-random bytes at --bitrate).\n\n"+
			"Give --key FILE to run a channel that outlives the process: peers and the\n"+
			"tracker know a channel by its key, so an origin restarted without the same\n"+
			"key is refused and the channel is dead. With --key, a restarted origin takes\n"+
			"the channel back, and viewers see a gap, not the end.", stderr)
	var (
		lf       logFlags
		ice      iceFlags
		fb       fallbackFlags
		trk      = fs.String("tracker", "", "tracker base URL, e.g. http://127.0.0.1:8080 (required)")
		channel  = fs.String("channel", "", "channel id to publish (required)")
		source   = fs.String("source", "testcard", "stream source: testcard, synthetic, a fragmented MP4 file, - for stdin, or http for pushes to /ingest/CHANNEL")
		loop     = fs.Bool("loop", false, "loop a file source forever")
		token    = fs.String("publish-token", "", "the tracker's publish token (default $COOPCAST_PUBLISH_TOKEN)")
		bitrate  = fs.String("bitrate", "", "stream bitrate (e.g. 500k, 2M); default: the file's, 500k synthetic, 2M stdin")
		chunk    = fs.Duration("chunk", origin.DefaultChunkInterval, "chunk duration of the synthetic source")
		trees    = fs.Int("trees", 4, "stripes and trees (M)")
		k        = fs.Int("k", 3, "stripes that rebuild a chunk (k ≤ M; k = M: no redundancy)")
		listen   = fs.String("listen", "127.0.0.1:8081", "address to serve HTTP fallback on")
		fallback = fs.String("fallback-url", "", "public URL of the fallback server (default http://LISTEN)")
		keyFile  = fs.String("key", "", keyUsage)
	)
	lf.register(fs)
	ice.register(fs)
	fb.register(fs)
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
	case *token == "":
		return fmt.Errorf("%w: --publish-token (or COOPCAST_PUBLISH_TOKEN) is required", errUsage)
	}
	var bps int64
	if *bitrate != "" {
		if bps, err = parseBitrate(*bitrate); err != nil {
			return fmt.Errorf("%w: --bitrate: %v", errUsage, err)
		}
	}
	priv, stateFile, err := loadChannelKey(*keyFile, stdout)
	if err != nil {
		return err
	}
	var src origin.Source
	if *source != "http" {
		if src, bps, err = origin.Open(*source, *loop, bps, *chunk, os.Stdin); err != nil {
			return fmt.Errorf("%w: --source: %v", errUsage, err)
		}
	} else if bps == 0 {
		bps = 2_000_000
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
	ocfg := origin.Config{TrackerURL: *trk, Channel: *channel, PublishToken: *token, Source: src,
		Trees: *trees, K: *k, Bitrate: bps, FallbackURL: strings.TrimSuffix(base, "/") + "/fallback/" + *channel,
		PrivateKey: priv, StateFile: stateFile, RTC: ice.config(*trk), Logger: log}
	if err := fb.apply(&ocfg); err != nil {
		return err
	}
	if *source == "http" {
		in := origin.NewIngest(*channel, *token)
		var fb origin.SwitchHandler
		mux := http.NewServeMux()
		mux.Handle(in.Path(), in)
		mux.Handle("/fallback/", &fb)
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go hs.Serve(ln)
		defer hs.Close()
		fmt.Fprintf(stdout, "coopcast origin: channel %q at %s; push a live fMP4 to %s%s\n", *channel, *trk, base, in.Path())
		return origin.RunIngest(ctx, ocfg, in, fb.Store)
	}
	o, err := origin.New(ocfg)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	hs := &http.Server{Handler: o.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	fmt.Fprintf(stdout, "coopcast origin: channel %q at %s, fallback on %s\n", *channel, *trk, base)
	err = o.Run(ctx)
	if errors.Is(err, io.EOF) {
		fmt.Fprintln(stdout, "coopcast origin: the source ended; stream over")
		return nil
	}
	return err
}

const keyUsage = "`FILE` holding the channel's Ed25519 key (PEM), created on first run with mode 0600; " +
	"where the stream stands is kept beside it in FILE.state. A restarted origin with the same key " +
	"continues the channel. Without it each run makes a fresh key, and a restarted origin is refused"

// loadChannelKey loads (or creates) the --key file: the key, and the
// state file beside it. No file: a fresh key, no state.
func loadChannelKey(path string, stdout io.Writer) (ed25519.PrivateKey, string, error) {
	if path == "" {
		return nil, "", nil
	}
	priv, created, err := origin.LoadKey(path)
	if err != nil {
		return nil, "", fmt.Errorf("%w: --key %s: %v", errUsage, path, err)
	}
	if created {
		fmt.Fprintf(stdout, "coopcast: created the channel key %s; keep it to restart the channel's origin\n", path)
	}
	return priv, path + ".state", nil
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
