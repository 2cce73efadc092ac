package origin

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
)

// Ingest takes a live fMP4 pushed over HTTP, so an encoder on another host
// can publish:
//
//	POST /ingest/{channel}
//	Authorization: Bearer <publish token>
//	body: a streamed fragmented MP4 (ffmpeg ... -f mp4 -movflags
//	      frag_keyframe+empty_moov+default_base_moof -method POST URL)
//
// One push at a time per channel (409 otherwise). The response comes when
// the push ends: 200 once the stream was played out, 400 if the body is
// not a stream coopcast can carry.
type Ingest struct {
	channel, token string
	pushes         chan push
	busy           atomic.Bool
}

type push struct {
	src  *Media
	done chan error
}

// NewIngest accepts pushes for channel authorised by token.
func NewIngest(channel, token string) *Ingest {
	return &Ingest{channel: channel, token: token, pushes: make(chan push)}
}

// Path is where the handler is mounted.
func (in *Ingest) Path() string { return "/ingest/" + in.channel }

func (in *Ingest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		w.Header().Set("Allow", "POST, PUT")
		http.Error(w, "push the stream with POST", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Path != in.Path() {
		http.Error(w, fmt.Sprintf("this origin ingests channel %q at %s", in.channel, in.Path()), http.StatusNotFound)
		return
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(in.token)) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="coopcast ingest"`)
		http.Error(w, "a valid publish token is required (Authorization: Bearer TOKEN)", http.StatusUnauthorized)
		return
	}
	if !in.busy.CompareAndSwap(false, true) {
		http.Error(w, "a stream is already being pushed to this channel", http.StatusConflict)
		return
	}
	defer in.busy.Store(false)
	src, err := NewLive("http push from "+r.RemoteAddr, r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p := push{src: src, done: make(chan error, 1)}
	select {
	case in.pushes <- p:
	case <-r.Context().Done():
		return
	}
	// The origin reads r.Body until the push ends; the handler must not
	// return before (net/http forbids reading a body after). A client
	// that goes away ends the body, and so the stream.
	err = <-p.done
	switch {
	case err == nil || errors.Is(err, io.EOF):
		fmt.Fprintln(w, "stream ended")
	default:
		http.Error(w, err.Error(), http.StatusBadRequest)
	}
}

// RunIngest publishes each push in turn with an origin made from cfg (its
// Source is the push). setHandler is given each origin's fallback handler
// as it starts. It returns when ctx ends.
func RunIngest(ctx context.Context, cfg Config, in *Ingest, setHandler func(http.Handler)) error {
	if cfg.PrivateKey == nil {
		// One channel key for every push: peers can check them all.
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return fmt.Errorf("origin: channel key: %w", err)
		}
		cfg.PrivateKey = priv
	}
	for {
		var p push
		select {
		case <-ctx.Done():
			return nil
		case p = <-in.pushes:
		}
		cfg.Source = p.src
		o, err := New(cfg)
		if err != nil {
			p.done <- err
			return err
		}
		setHandler(o.Handler())
		err = o.Run(ctx)
		p.done <- err
		if ctx.Err() != nil {
			return nil
		}
	}
}

// SwitchHandler serves whatever handler was stored last (404 before).
type SwitchHandler struct {
	mu sync.RWMutex
	h  http.Handler
}

// Store sets the handler.
func (s *SwitchHandler) Store(h http.Handler) {
	s.mu.Lock()
	s.h = h
	s.mu.Unlock()
}

func (s *SwitchHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	h := s.h
	s.mu.RUnlock()
	if h == nil {
		http.Error(w, "no stream yet: nothing has been pushed", http.StatusNotFound)
		return
	}
	h.ServeHTTP(w, r)
}
