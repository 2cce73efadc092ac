package stack

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coopcast/coopcast/origin"
	"github.com/coopcast/coopcast/tracker"
)

// Config says what a stack runs. Its zero fields are defaults; only
// Origin.Channel and Origin.Source (or Fallback, for a stack without an
// origin) need saying.
type Config struct {
	// Listener is what the stack serves on; the stack owns it from then
	// on and closes it. Nil: it listens on Addr.
	Listener net.Listener
	// Addr is the TCP address to listen on when Listener is nil. Empty:
	// "127.0.0.1:0", a free loopback port.
	Addr string
	// PublishToken is the tracker's publish token, which the origin
	// presents. Empty: Tracker.PublishToken or Origin.PublishToken if one
	// is set, else a random one nobody else knows.
	PublishToken string
	// Logger receives the tracker's and the origin's logs where their
	// own Logger is nil. Nil: discard.
	Logger *slog.Logger
	// Tracker configures the tracker; PublishToken and Logger are filled
	// in from the fields above when empty.
	Tracker tracker.Config
	// Origin configures the origin. TrackerURL defaults to URL(),
	// FallbackURL to URL()/fallback/<channel> (the stack serves the
	// origin's Handler there), PublishToken and Logger to the fields
	// above. A nil Source means no origin: the stack is a tracker on an
	// HTTP server, for a caller that runs origins of its own.
	Origin origin.Config
	// Fallback is served under /fallback/ when there is no origin (an
	// origin.SwitchHandler that a caller's origins take turns in). Nil:
	// 404 there.
	Fallback http.Handler
	// ShutdownGrace is how long Close lets HTTP requests in flight end
	// before it cuts them. Default 5 s.
	ShutdownGrace time.Duration
}

// Stack is a running tracker, origin and HTTP server on one listener.
type Stack struct {
	// Tracker is the stack's tracker.
	Tracker *tracker.Server
	// Origin is the stack's origin; nil when Config.Origin.Source was.
	Origin *origin.Origin

	url    string
	log    *slog.Logger
	hs     *http.Server
	grace  time.Duration
	cancel context.CancelFunc
	done   chan struct{} // closed when every part has stopped
	err    error         // why the stack stopped; set before done closes
	once   sync.Once
}

// Start creates the tracker and the origin, starts serving, and returns
// the running stack. It stops when ctx ends or Close is called. On error
// nothing is left running and the listener is closed.
func Start(ctx context.Context, cfg Config) (*Stack, error) {
	ln := cfg.Listener
	if ln == nil {
		addr := cfg.Addr
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			return nil, fmt.Errorf("stack: listen on %s: %w", addr, err)
		}
	}
	st, err := build(cfg, ln)
	if err != nil {
		ln.Close()
		return nil, err
	}
	st.run(ctx, ln)
	return st, nil
}

func build(cfg Config, ln net.Listener) (*Stack, error) {
	url := "http://" + ln.Addr().String()
	token := cfg.PublishToken
	for _, t := range []string{cfg.Tracker.PublishToken, cfg.Origin.PublishToken} {
		if token == "" {
			token = t
		}
	}
	if token == "" {
		b := make([]byte, 18)
		rand.Read(b)
		token = base64.RawURLEncoding.EncodeToString(b)
	}
	tcfg := cfg.Tracker
	if tcfg.PublishToken == "" {
		tcfg.PublishToken = token
	}
	if tcfg.Logger == nil {
		tcfg.Logger = cfg.Logger
	}
	srv, err := tracker.New(tcfg)
	if err != nil {
		return nil, err
	}
	st := &Stack{Tracker: srv, url: url, log: cfg.Logger, grace: cfg.ShutdownGrace, done: make(chan struct{})}
	if st.log == nil {
		st.log = slog.New(slog.DiscardHandler)
	}
	if st.grace <= 0 {
		st.grace = 5 * time.Second
	}
	fallback := cfg.Fallback
	if cfg.Origin.Source != nil {
		ocfg := cfg.Origin
		if ocfg.TrackerURL == "" {
			ocfg.TrackerURL = url
		}
		if ocfg.FallbackURL == "" {
			ocfg.FallbackURL = url + "/fallback/" + ocfg.Channel
		}
		if ocfg.PublishToken == "" {
			ocfg.PublishToken = token
		}
		if ocfg.Logger == nil {
			ocfg.Logger = cfg.Logger
		}
		if st.Origin, err = origin.New(ocfg); err != nil {
			srv.Close()
			return nil, err
		}
		fallback = st.Origin.Handler()
	}
	mux := http.NewServeMux()
	if fallback != nil {
		mux.Handle("/fallback/", fallback)
	}
	mux.Handle("/", srv.Handler())
	st.hs = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return st, nil
}

// run starts every part, and a goroutine that stops them all, in order,
// once ctx ends, Close is called or the origin fails.
func (st *Stack) run(ctx context.Context, ln net.Listener) {
	ctx, st.cancel = context.WithCancel(ctx)
	var (
		mu    sync.Mutex
		first error
	)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
		st.cancel()
	}
	var wg sync.WaitGroup
	served := make(chan struct{})
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(served)
		if err := st.hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			fail(fmt.Errorf("stack: serve HTTP: %w", err))
		}
	}()
	go func() {
		defer wg.Done()
		if err := st.Tracker.Run(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, tracker.ErrClosed) {
			fail(fmt.Errorf("stack: tracker: %w", err))
		}
	}()
	originDone := make(chan struct{})
	if st.Origin != nil {
		go func() {
			defer close(originDone)
			if err := st.Origin.Run(ctx); err != nil && ctx.Err() == nil {
				fail(fmt.Errorf("stack: origin: %w", err))
			}
		}()
	} else {
		close(originDone)
	}
	go func() {
		<-ctx.Done()
		st.log.Info("shutting down")
		// The origin leaves while the tracker still listens; the tracker
		// closes its WebSockets with "going away" while HTTP still carries
		// them; only then does the listener close.
		if st.Origin != nil {
			st.Origin.Close()
		}
		<-originDone
		st.Tracker.Close()
		sctx, cancel := context.WithTimeout(context.Background(), st.grace)
		if err := st.hs.Shutdown(sctx); err != nil {
			st.hs.Close() // what did not end within the grace period
		}
		cancel()
		<-served
		wg.Wait()
		mu.Lock()
		st.err = first
		mu.Unlock()
		close(st.done)
	}()
}

// URL is the stack's base URL, "http://host:port", where peers find the
// tracker (and the origin's fallback under /fallback/<channel>).
func (st *Stack) URL() string { return st.url }

// Done is closed when the stack has stopped.
func (st *Stack) Done() <-chan struct{} { return st.done }

// Wait blocks until the stack has stopped (its context ended, Close was
// called, or a part failed) and returns why, if a part failed: nil after
// an orderly shutdown.
func (st *Stack) Wait() error {
	<-st.done
	return st.err
}

// Close stops the origin, then the tracker, then the HTTP server, waits
// for them, and returns what Wait does. It is safe to call more than
// once, and concurrently.
func (st *Stack) Close() error {
	st.once.Do(st.cancel)
	return st.Wait()
}
