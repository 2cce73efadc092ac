package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/gin-gonic/gin"
	"golang.org/x/sync/errgroup"

	"github.com/coopcast/coopcast/origin"
	"github.com/coopcast/coopcast/tracker"
)

// demoToken is the demo's publish token: its origin runs in the same
// process, and the demo listens on loopback by default.
const demoToken = "demo-token"

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("[demo] [--listen ADDR]",
		"Runs the all-in-one demo on one address: a tracker and an origin publishing\n"+
			"channel \"demo\" (the built-in test card by default), with HTTP fallback.\n"+
			"Join it with the 'coopcast peer' command it prints.", stderr)
	var (
		lf      logFlags
		ice     iceFlags
		fb      fallbackFlags
		listen  = fs.String("listen", "127.0.0.1:8080", "address to serve on")
		source  = fs.String("source", "testcard", "stream source: testcard, synthetic, a fragmented MP4 file (looped)")
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
	srv, err := tracker.New(tracker.Config{PublishToken: demoToken, Logger: log})
	if err != nil {
		return err
	}
	src, bps, err := origin.Open(*source, true, bps, 0, nil)
	if err != nil {
		return fmt.Errorf("%w: --source: %v", errUsage, err)
	}
	ocfg := origin.Config{TrackerURL: base, Channel: "demo", PublishToken: demoToken, Source: src,
		Bitrate: bps, FallbackURL: base + "/fallback/demo", PrivateKey: priv, StateFile: stateFile, RTC: ice.config(base), Logger: log}
	if err := fb.apply(&ocfg); err != nil {
		return err
	}
	if isLoopbackURL(base) && fb.perIP == "" {
		// Every viewer of a demo on loopback is on this machine, at one
		// address: a per-address budget would be everyone's. The cap stays.
		ocfg.FallbackPerIP, ocfg.FallbackRequests = -1, -1
	}
	o, err := origin.New(ocfg)
	if err != nil {
		return err
	}
	srv.Router().GET("/fallback/demo/*rest", gin.WrapH(o.Handler()))
	fmt.Fprintf(stdout, "coopcast demo: tracker and origin on %s, channel \"demo\"\n", base)
	fmt.Fprintf(stdout, "  swarm:  %s/api/v1/channels/demo/forest\n", base)
	fmt.Fprintf(stdout, "  join:   coopcast peer --tracker %s --channel demo --duration 20s --out out.mp4 --report peer.json\n", base)
	fmt.Fprintf(stdout, "  watch:  coopcast peer --tracker %s --channel demo --out - | ffplay -\n", base)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serve(gctx, log, ln, srv.Handler(), srv) })
	g.Go(func() error {
		err := o.Run(gctx)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	})
	return g.Wait()
}
