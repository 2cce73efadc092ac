package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/coopcast/coopcast/internal/forest"
	"github.com/coopcast/coopcast/tracker"
)

func runTracker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tracker --listen ADDR [flags]",
		"Runs a tracker: builds and repairs each channel's distribution trees, relays\n"+
			"WebRTC signaling between paired peers, and serves /healthz, /metrics,\n"+
			"/api/v1/channels/{id}/stats and /forest. Video never passes through it.", stderr)
	var (
		lf        logFlags
		listen    = fs.String("listen", "127.0.0.1:8080", "address to serve HTTP and WebSocket on")
		token     = fs.String("publish-token", "", "token origins must present to publish (default $COOPCAST_PUBLISH_TOKEN)")
		hb        = fs.Duration("heartbeat", 2*time.Second, "heartbeat interval clients must keep")
		misses    = fs.Int("heartbeat-misses", 3, "missed heartbeats after which a client is failed")
		originSl  = fs.Int("origin-slots", 2, "children the origin feeds in each tree")
		reserve   = fs.Int("origin-reserve", 0, "extra origin slots, shared by all trees, for trees that are full")
		maxSlots  = fs.Int("max-slots", 16, "most children one peer may feed")
		maxPeers  = fs.Int("max-peers", 100000, "most peers in one channel")
		joinRate  = fs.Float64("joins-per-ip", 10, "WebSocket upgrades allowed per IP address per second")
		joinBurst = fs.Int("join-burst", 50, "burst of upgrades allowed per IP address")
		secret    = fs.String("resume-secret", "", "secret for resume tokens, so peers can resume after a restart (default $COOPCAST_RESUME_SECRET; empty: random)")
	)
	lf.register(fs)
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
	if *token == "" {
		return fmt.Errorf("%w: --publish-token (or COOPCAST_PUBLISH_TOKEN) is required: origins prove themselves with it", errUsage)
	}
	if *secret == "" {
		*secret = os.Getenv("COOPCAST_RESUME_SECRET")
	}
	cfg := tracker.Config{
		PublishToken:       *token,
		HeartbeatInterval:  *hb,
		HeartbeatMisses:    *misses,
		MaxPeersPerChannel: *maxPeers,
		JoinsPerIP:         *joinRate,
		JoinBurst:          *joinBurst,
		ResumeSecret:       []byte(*secret),
		Forest:             forest.Config{OriginSlots: *originSl, OriginReserve: *reserve, MaxSlots: *maxSlots},
		Logger:             log,
	}
	srv, err := tracker.New(cfg)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("%w: --listen %s: %v", errUsage, *listen, err)
	}
	fmt.Fprintf(stdout, "coopcast tracker on http://%s  (/healthz /metrics /api/v1/channels)\n", ln.Addr())
	return serve(ctx, log, ln, srv.Handler(), srv)
}

// serve runs an HTTP server on ln with srv's background work until ctx
// ends, then shuts both down.
func serve(ctx context.Context, log *slog.Logger, ln net.Listener, h http.Handler, srv *tracker.Server) error {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		err := srv.Run(ctx)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	})
	g.Go(func() error {
		<-ctx.Done()
		log.Info("shutting down")
		srv.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return hs.Shutdown(sctx)
	})
	return g.Wait()
}
