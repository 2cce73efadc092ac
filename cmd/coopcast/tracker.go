package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
	"golang.org/x/sync/errgroup"

	"github.com/coopcast/coopcast/internal/forest"
	"github.com/coopcast/coopcast/internal/httpserver"
	"github.com/coopcast/coopcast/tracker"
)

func runTracker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tracker --listen ADDR --publish-token T [flags]",
		"Runs a tracker: builds and repairs each channel's distribution trees, relays\n"+
			"WebRTC signaling between paired peers over WebSocket (/ws), and serves\n"+
			"/healthz, /metrics, /api/v1/channels and /api/v1/channels/{id}/stats and\n"+
			"/forest. Video never passes through it. Origins publish with the token.", stderr)
	var (
		lf        logFlags
		ice       iceServerFlags
		listen    = fs.String("listen", "127.0.0.1:8080", "address to serve HTTP and WebSocket on")
		token     = fs.String("publish-token", "", "token origins must present to publish (default $COOPCAST_PUBLISH_TOKEN; required)")
		trees     = fs.Int("trees", 4, "stripes and trees (M) for an origin that does not announce its own")
		k         = fs.Int("k", 3, "stripes that rebuild a chunk, for an origin that does not announce its own")
		hb        = fs.Duration("heartbeat", 2*time.Second, "heartbeat interval clients must keep")
		misses    = fs.Int("heartbeat-misses", 3, "missed heartbeats after which a client is failed")
		restore   = fs.Duration("restore-window", 0, "after a restart, how long peers' reports of their parents are taken to rebuild a channel (default 2 × --heartbeat)")
		originSl  = fs.Int("origin-slots", 2, "children the origin feeds in each tree")
		reserve   = fs.Int("origin-reserve", 0, "extra origin slots, shared by all trees, for trees that are full")
		maxSlots  = fs.Int("max-slots", 16, "most children one peer may feed")
		maxPeers  = fs.Int("max-peers", 100000, "most peers in one channel")
		maxChans  = fs.Int("max-channels", 1000, "most channels on this tracker")
		maxMsg    = fs.Int64("max-message-bytes", 64<<10, "largest WebSocket message a client may send")
		joinRate  = fs.Float64("joins-per-ip", 10, "WebSocket upgrades allowed per IP address per second")
		joinBurst = fs.Int("join-burst", 50, "burst of upgrades allowed per IP address")
		joinTO    = fs.Duration("join-timeout", 10*time.Second, "how long a new WebSocket may take to send its join or publish before it is closed")
		connsIP   = fs.Int("max-conns-per-ip", 64, "WebSockets open at once from one IP address (the TCP peer's; X-Forwarded-For is not trusted: behind a proxy, raise this); origins are exempt")
		conns     = fs.Int("max-conns", 20000, "WebSockets open at once in all; origins are exempt")
		secret    = fs.String("resume-secret", "", "secret for resume tokens, so peers can resume after a restart (default $COOPCAST_RESUME_SECRET, else the one kept in --state-dir)")
		stateDir  = fs.String("state-dir", defaultStateDir(), "directory for what the tracker keeps across restarts: the resume secret, made on first start (mode 0600); \"\" keeps nothing, so peers cannot resume after a restart")
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
	if *secret == "" {
		*secret = os.Getenv("COOPCAST_RESUME_SECRET")
	}
	servers, err := ice.servers()
	if err != nil {
		return err
	}
	cfg := tracker.Config{
		PublishToken:       *token,
		Forest:             forest.Config{Trees: *trees, OriginSlots: *originSl, OriginReserve: *reserve, MaxSlots: *maxSlots},
		K:                  *k,
		HeartbeatInterval:  *hb,
		HeartbeatMisses:    *misses,
		RestoreWindow:      *restore,
		MaxMessageBytes:    *maxMsg,
		MaxPeersPerChannel: *maxPeers,
		MaxChannels:        *maxChans,
		JoinsPerIP:         *joinRate,
		JoinBurst:          *joinBurst,
		JoinTimeout:        *joinTO,
		MaxConnsPerIP:      *connsIP,
		MaxConns:           *conns,
		ICEServers:         servers,
		ResumeSecret:       []byte(*secret),
		StateDir:           *stateDir,
		Logger:             log,
	}
	srv, err := tracker.New(cfg)
	if err != nil {
		var ce *tracker.ConfigError
		if !errors.As(err, &ce) && *stateDir != "" && *secret == "" {
			return fmt.Errorf("--state-dir %s: %w", *stateDir, err)
		}
		return configUsage(err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("%w: --listen: %v", errUsage, listenError(err))
	}
	fmt.Fprintf(stdout, "coopcast tracker on http://%s: WebSocket /ws, /healthz, /metrics, /api/v1/channels\n", ln.Addr())
	return serve(ctx, log, ln, srv.Handler(), srv)
}

// defaultStateDir is $XDG_STATE_HOME/coopcast, else
// ~/.local/state/coopcast (the XDG default), else ./coopcast-state for a
// user without a home.
func defaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "coopcast")
	}
	if h, err := os.UserHomeDir(); err == nil && h != "" {
		return filepath.Join(h, ".local", "state", "coopcast")
	}
	return "coopcast-state"
}

// trackerFlags names the flag behind each tracker.Config field.
var trackerFlags = map[string]string{
	"PublishToken":         "--publish-token (or COOPCAST_PUBLISH_TOKEN)",
	"Forest.Trees":         "--trees",
	"K":                    "--k",
	"HeartbeatInterval":    "--heartbeat",
	"HeartbeatMisses":      "--heartbeat-misses",
	"RestoreWindow":        "--restore-window",
	"Forest.OriginSlots":   "--origin-slots",
	"Forest.OriginReserve": "--origin-reserve",
	"Forest.MaxSlots":      "--max-slots",
	"MaxPeersPerChannel":   "--max-peers",
	"MaxChannels":          "--max-channels",
	"MaxMessageBytes":      "--max-message-bytes",
	"JoinsPerIP":           "--joins-per-ip",
	"JoinBurst":            "--join-burst",
	"JoinTimeout":          "--join-timeout",
	"MaxConnsPerIP":        "--max-conns-per-ip",
	"MaxConns":             "--max-conns",
}

// configUsage turns a tracker.Config error into a usage error that names
// the flag.
func configUsage(err error) error {
	var ce *tracker.ConfigError
	if errors.As(err, &ce) {
		if flag, ok := trackerFlags[ce.Field]; ok {
			return fmt.Errorf("%w: %s %s", errUsage, flag, ce.Msg)
		}
	}
	return fmt.Errorf("%w: %v", errUsage, err)
}

// listenError drops the "listen tcp ADDR:" prefix, which repeats the flag.
func listenError(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

// iceServerFlags are the STUN/TURN servers a tracker hands to peers.
type iceServerFlags struct {
	urls             []string
	user, credential string
}

func (f *iceServerFlags) register(fs *flag.FlagSet) {
	fs.Func("ice-server", "STUN or TURN server URL handed to peers (stun:, stuns:, turn: or turns:); repeat for more", func(s string) error {
		f.urls = append(f.urls, s)
		return nil
	})
	fs.StringVar(&f.user, "turn-username", "", "username for the TURN servers")
	fs.StringVar(&f.credential, "turn-credential", "", "credential for the TURN servers (default $COOPCAST_TURN_CREDENTIAL)")
}

func (f *iceServerFlags) servers() ([]webrtc.ICEServer, error) {
	if f.credential == "" {
		f.credential = os.Getenv("COOPCAST_TURN_CREDENTIAL")
	}
	var out []webrtc.ICEServer
	for _, u := range f.urls {
		scheme, _, _ := strings.Cut(u, ":")
		switch scheme {
		case "stun", "stuns":
			out = append(out, webrtc.ICEServer{URLs: []string{u}})
		case "turn", "turns":
			if f.user == "" || f.credential == "" {
				return nil, fmt.Errorf("%w: --ice-server %s: a TURN server needs --turn-username and --turn-credential", errUsage, u)
			}
			out = append(out, webrtc.ICEServer{URLs: []string{u}, Username: f.user, Credential: f.credential})
		default:
			return nil, fmt.Errorf("%w: --ice-server must be a stun:, stuns:, turn: or turns: URL, got %q", errUsage, u)
		}
	}
	return out, nil
}

// serve runs an HTTP server on ln with srv's background work until ctx
// ends, then shuts both down.
func serve(ctx context.Context, log *slog.Logger, ln net.Listener, h http.Handler, srv *tracker.Server) error {
	hs := httpserver.New(h)
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
