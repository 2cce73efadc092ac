package main

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/coopcast/coopcast/internal/stack"
	"github.com/coopcast/coopcast/origin"
)

// demoToken is the demo's publish token: its origin runs in the same
// process, and the demo listens on loopback by default.
const demoToken = "demo-token"

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("[demo] [--listen ADDR] [--channel ID] [--source testcard|synthetic|FILE]",
		"Runs the all-in-one demo on one address: a tracker, an origin publishing\n"+
			"--channel (the built-in test card by default) with HTTP fallback, the watch\n"+
			"page at / and the dashboard at /dashboard. It prints where to point a browser\n"+
			"and the 'coopcast peer' command that adds a native peer.", stderr)
	var (
		lf      logFlags
		ice     iceFlags
		fb      fallbackFlags
		listen  = fs.String("listen", "127.0.0.1:8080", "address to serve on")
		channel = fs.String("channel", "demo", "channel `ID` to publish")
		trees   = fs.Int("trees", 4, "stripes and trees (M)")
		k       = fs.Int("k", 3, "stripes that rebuild a chunk (k ≤ M; k = M: no redundancy)")
		source  = fs.String("source", "testcard", "stream source: testcard, synthetic, an MP4 file (looped)")
		bitrate = fs.String("bitrate", "", "bitrate of a synthetic demo stream (default 500k)")
		keyFile = fs.String("key", "", keyUsage)
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
	if err := ice.check(); err != nil {
		return err
	}
	if err := checkChannel(*channel); err != nil {
		return err
	}
	if *trees < 1 || *trees > 64 || *k < 1 || *k > *trees {
		return fmt.Errorf("%w: want 1 ≤ --k ≤ --trees ≤ 64, got --trees %d --k %d", errUsage, *trees, *k)
	}
	var bps int64
	if *bitrate != "" {
		if bps, err = parseBitrate(*bitrate); err != nil {
			return fmt.Errorf("%w: --bitrate: %v", errUsage, err)
		}
	}
	if *source == "-" {
		return fmt.Errorf("%w: --source: the demo loops a file; stream stdin with 'coopcast origin --source -'", errUsage)
	}
	priv, stateFile, err := loadChannelKey(*keyFile, stdout)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("%w: --listen %s: %v", errUsage, *listen, err)
	}
	base := "http://" + ln.Addr().String()
	src, bps, err := origin.Open(*source, true, bps, 0, nil)
	if err != nil {
		return fmt.Errorf("%w: --source: %v", errUsage, err)
	}
	ocfg := origin.Config{Channel: *channel, Source: src, Trees: *trees, K: *k, Bitrate: bps, PrivateKey: priv, StateFile: stateFile, RTC: ice.config(base)}
	if err := fb.apply(&ocfg); err != nil {
		return err
	}
	if isLoopbackURL(base) && fb.perIP == "" {
		// Every viewer of a demo on loopback is on this machine, at one
		// address: a per-address budget would be everyone's. The cap stays.
		ocfg.FallbackPerIP, ocfg.FallbackRequests = -1, -1
	}
	st, err := stack.Start(ctx, stack.Config{Listener: ln, PublishToken: demoToken, Logger: log, Origin: ocfg})
	if err != nil {
		return err
	}
	defer st.Close()
	demoBanner(stdout, base, *channel, ice)
	return st.Wait()
}

// demoBanner says where to look first (the watch page and the
// dashboard), how to add a native peer with the network flags the demo
// was given, and which addresses WebRTC peers will be offered.
func demoBanner(w io.Writer, base, channel string, ice iceFlags) {
	fmt.Fprintf(w, "coopcast demo: channel %q on %s (tracker, origin and web page)\n\n", channel, base)
	fmt.Fprintf(w, "  Watch:      %s/    (open it in several tabs: each tab is a peer)\n", base)
	fmt.Fprintf(w, "  Dashboard:  %s/dashboard\n\n", base)
	net := ""
	if ice.interfaces != "" {
		net = " --ice-interface " + ice.interfaces
	}
	fmt.Fprintf(w, "  Add a native peer (from this repository's directory):\n")
	fmt.Fprintf(w, "    go run ./cmd/coopcast peer --tracker %s --channel %s%s --duration 20s --out peer.mp4 --report peer.json\n", base, channel, net)
	fmt.Fprintf(w, "  or watch with ffplay:\n")
	fmt.Fprintf(w, "    go run ./cmd/coopcast peer --tracker %s --channel %s%s --out - | ffplay -\n\n", base, channel, net)
	fmt.Fprintf(w, "  WebRTC: %s\n", iceNote(ice.config(base)))
}
