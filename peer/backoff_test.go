package peer

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestBackOffOn429: after a 429 the peer asks the origin nothing until
// its Retry-After has passed, however often its fetch loops try; then it
// asks again.
func TestBackOffOn429(t *testing.T) {
	var hits atomic.Int64
	var limit atomic.Bool
	limit.Store(true)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if limit.Load() {
			w.Header().Set("Retry-After", "3")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		w.Write([]byte(`{"seq":1}`))
	}))
	defer hs.Close()
	p, err := New(Config{TrackerURL: hs.URL, Channel: "t", HTTP: hs.Client()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.member.Close()
	ctx := context.Background()
	start := time.Now()
	if _, err := p.get(ctx, hs.URL+"/latest"); !errors.Is(err, errBackingOff) {
		t.Fatalf("first get: %v, want a 429 backing off", err)
	}
	for range 1000 {
		if _, err := p.get(ctx, hs.URL+"/latest"); !errors.Is(err, errBackingOff) {
			t.Fatalf("get while backing off: %v", err)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Fatalf("the origin was asked %d times, want once", n)
	}
	until := time.Unix(0, p.backoffUntil.Load())
	if d := until.Sub(start); d < 3*time.Second || d > 4*time.Second {
		t.Fatalf("backing off for %v, want the Retry-After's 3 s", d)
	}
	// Once it has passed (moved here rather than waited for), the peer asks again.
	limit.Store(false)
	p.backoffUntil.Store(time.Now().Add(-time.Millisecond).UnixNano())
	if _, err := p.get(ctx, hs.URL+"/latest"); err != nil || hits.Load() != 2 {
		t.Fatalf("after the Retry-After: %v, %d requests", err, hits.Load())
	}
}

func TestRetryAfter(t *testing.T) {
	for in, want := range map[string]time.Duration{"": time.Second, "0": time.Second, "2": 2 * time.Second, "3600": time.Minute,
		"Wed, 21 Oct 2015 07:28:00 GMT": time.Second, "-5": time.Second} {
		if got := retryAfter(in); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}
