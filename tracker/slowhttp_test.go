package tracker

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coopcast/coopcast/internal/httpserver"
)

// TestSlowHTTPClientsBounded: against the tracker binary (its HTTP server
// is internal/httpserver's, as the origin's and the demo's are):
//
//   - 500 slowloris connections, each trickling a header line a second
//     and never finishing its request, are cut by the server after
//     ReadHeaderTimeout (10 s), not before;
//   - requests with 1 MB of headers are answered 431;
//   - 256 MB bodies POSTed at the WebSocket, API and page paths are
//     answered 404 or 405 without being read (the client gets to send at
//     most a few MB before the server closes);
//
// and the tracker process's RSS (VmRSS) stays within 20 MB of where it
// started while the slow connections are all open.
func TestSlowHTTPClientsBounded(t *testing.T) {
	t.Parallel() // a tracker process of its own, mostly waiting
	const n = 500
	raiseFDLimit(t, n+256)
	trk := startTrackerProc(t)
	rss0 := trk.rss(t)

	// Slowloris.
	type slow struct {
		c      net.Conn
		opened time.Time
		closed atomic.Int64 // unix nanoseconds; 0 while open
	}
	slows := make([]*slow, n)
	var readers sync.WaitGroup
	t.Cleanup(func() {
		for _, s := range slows {
			if s != nil {
				s.c.Close()
			}
		}
		readers.Wait()
	})
	for i := range slows {
		opened := time.Now()
		c, err := net.DialTimeout("tcp", trk.host, 5*time.Second)
		if err != nil {
			t.Fatalf("slow connection %d: %v", i+1, err)
		}
		s := &slow{c: c, opened: opened}
		slows[i] = s
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil {
			t.Fatal(err)
		}
		readers.Add(1)
		go func() {
			defer readers.Done()
			io.Copy(io.Discard, c) // until the server closes it
			s.closed.Store(time.Now().UnixNano())
		}()
	}
	stop := make(chan struct{})
	var trickle sync.WaitGroup
	trickle.Add(1)
	go func() {
		defer trickle.Done()
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
			}
			for _, s := range slows {
				if s.closed.Load() == 0 {
					s.c.SetWriteDeadline(time.Now().Add(time.Second))
					io.WriteString(s.c, "X-Slow: 1\r\n")
				}
			}
		}
	}()
	defer func() { close(stop); trickle.Wait() }()

	// Huge headers.
	for i := 0; i < 20; i++ {
		c, err := net.DialTimeout("tcp", trk.host, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		go io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 1<<20)+"\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("1 MB of headers: %v", err)
		}
		resp.Body.Close()
		c.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("1 MB of headers: %s, want 431", resp.Status)
		}
	}

	// Huge bodies, nowhere that reads one.
	for _, path := range []string{"/ws", "/api/v1/channels", "/api/v1/channels/c/forest", "/", "/healthz"} {
		sent := &countingZeros{left: 256 << 20}
		req, _ := http.NewRequest(http.MethodPost, trk.base+path, sent)
		req.ContentLength = 256 << 20
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
				t.Errorf("POST 256 MB to %s: %s, want 404 or 405", path, resp.Status)
			}
		}
		// An error is the server closing on a body it did not read; the
		// body must not have been taken whole either way.
		if got := sent.sent.Load(); got > 16<<20 {
			t.Errorf("POST to %s: the server took %d MB of the body", path, got>>20)
		}
	}

	checkFor(t, 5*time.Second, "slow connections still open", func() error {
		open := 0
		for _, s := range slows {
			if s.closed.Load() == 0 {
				open++
			}
		}
		if open != n {
			return fmt.Errorf("%d of %d open", open, n)
		}
		return nil
	})
	rss1 := trk.rss(t)
	t.Logf("%d slowloris connections open, 20 × 1 MB headers and 5 × 256 MB bodies refused: tracker RSS %.1f → %.1f MB", n, mb(rss0), mb(rss1))
	if d := int64(rss1) - int64(rss0); d > 20<<20 {
		t.Errorf("tracker RSS grew %.1f MB, want < 20 MB", mb(uint64(d)))
	}

	checkFor(t, httpserver.ReadHeaderTimeout+10*time.Second, "slow connections cut", func() error {
		open := 0
		for _, s := range slows {
			if s.closed.Load() == 0 {
				open++
			}
		}
		if open > 0 {
			return fmt.Errorf("%d of %d still open", open, n)
		}
		return nil
	})
	var first, last time.Duration
	for i, s := range slows {
		d := time.Unix(0, s.closed.Load()).Sub(s.opened)
		if d < httpserver.ReadHeaderTimeout-time.Second {
			t.Fatalf("slow connection %d cut after %v, before the %v header timeout", i+1, d, httpserver.ReadHeaderTimeout)
		}
		if i == 0 || d < first {
			first = d
		}
		last = max(last, d)
	}
	rss2 := trk.rss(t)
	t.Logf("all cut %.1f–%.1f s after they opened; tracker RSS %.1f MB", first.Seconds(), last.Seconds(), mb(rss2))
}

// countingZeros is a body of left zero bytes that counts what was read.
type countingZeros struct {
	left int64
	sent atomic.Int64
}

func (z *countingZeros) Read(p []byte) (int, error) {
	if z.left <= 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), z.left))
	clear(p[:n])
	z.left -= int64(n)
	z.sent.Add(int64(n))
	return n, nil
}
