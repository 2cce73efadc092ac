package tracker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/coopcast/coopcast/internal/proto"
)

// TestJoinTimeout: a WebSocket that has not joined or published within
// JoinTimeout is closed with a reason that says so, even if it sends
// heartbeats; one that joined in time stays.
func TestJoinTimeout(t *testing.T) {
	_, base := startServer(t, Config{JoinTimeout: 300 * time.Millisecond})
	origin := publish(t, base, "c")
	peer := join(t, base, "c", 0)
	peer.heartbeat(50 * time.Millisecond)
	idle, _, err := dial(t, base, nil)
	if err != nil {
		t.Fatal(err)
	}
	beating, _, err := dial(t, base, nil)
	if err != nil {
		t.Fatal(err)
	}
	beating.heartbeat(50 * time.Millisecond)
	start := time.Now()
	for _, c := range []*tclient{idle, beating} {
		checkFor(t, 5*time.Second, "closed after the join timeout", func() error {
			closed, code, reason := c.closedWith()
			if !closed || code != websocket.StatusPolicyViolation || !strings.Contains(reason, "no join or publish within 300ms") {
				return fmt.Errorf("closed %v code %v reason %q", closed, code, reason)
			}
			return nil
		})
	}
	if d := time.Since(start); d < 300*time.Millisecond-50*time.Millisecond {
		t.Errorf("closed after %v, before the timeout", d)
	}
	if peer.isClosed() || origin.isClosed() {
		t.Fatalf("joined clients closed: peer %v origin %v", peer.isClosed(), origin.isClosed())
	}
	if v := metric(t, base, `coopcast_rejected_total{reason="join-timeout"}`); v != 2 {
		t.Errorf("join-timeout rejections %v, want 2", v)
	}
}

// TestConnectionCaps: the 65th WebSocket from one address is refused
// 429 with a message, also when it claims another in X-Forwarded-For; a
// closed one gives its place back, an origin (with the publish token) is
// exempt, and the global cap answers 503 with Retry-After.
func TestConnectionCaps(t *testing.T) {
	srv, base := startServer(t, Config{MaxConnsPerIP: Config{}.withDefaults().MaxConnsPerIP})
	var open []*tclient
	for i := 0; i < 64; i++ {
		c, _, err := dial(t, base, nil)
		if err != nil {
			t.Fatalf("socket %d: %v", i+1, err)
		}
		open = append(open, c)
	}
	_, resp, err := dial(t, base, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("65th socket: %v %v, want 429", resp, err)
	}
	if body := readBody(resp); !strings.Contains(body, "too many open connections from your address (at most 64 at once)") {
		t.Errorf("65th socket refused with %q", body)
	}
	// X-Forwarded-For is not trusted: it does not make another address.
	if _, resp, err := dial(t, base, http.Header{"X-Forwarded-For": {"203.0.113.9"}}); err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("65th socket claiming another address: %v %v, want 429", resp, err)
	}
	publish(t, base, "c") // the origin is exempt
	open[0].close()
	checkFor(t, 5*time.Second, "place given back", func() error {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		if n := srv.perIP["127.0.0.1"]; n != 63 {
			return fmt.Errorf("%d counted", n)
		}
		return nil
	})
	if _, _, err := dial(t, base, nil); err != nil {
		t.Fatalf("socket after one closed: %v", err)
	}
	if v := metric(t, base, `coopcast_rejected_total{reason="conns-per-ip"}`); v != 2 {
		t.Errorf("conns-per-ip rejections %v, want 2", v)
	}

	_, base2 := startServer(t, Config{MaxConns: 3})
	for i := 0; i < 3; i++ {
		if _, _, err := dial(t, base2, nil); err != nil {
			t.Fatal(err)
		}
	}
	_, resp, err = dial(t, base2, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("4th socket over MaxConns=3: %v %v, want 503 with Retry-After", resp, err)
	}
	if body := readBody(resp); !strings.Contains(body, "limit of 3 connections") {
		t.Errorf("refused with %q", body)
	}
}

func readBody(resp *http.Response) string {
	if resp.Body == nil {
		return ""
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return string(b)
}

// TestIdleSocketsBounded: 2,000 WebSockets from one address that never
// join are each closed with the join-timeout reason after the default
// JoinTimeout (10 s) and not before, and while they are all open the
// process's heap (tracker plus the test's raw sockets, after a GC) stays
// within 20 MB of where it started. RSS is logged beside it.
func TestIdleSocketsBounded(t *testing.T) {
	n := 2000
	if v := os.Getenv("IDLE_N"); v != "" {
		fmt.Sscan(v, &n)
	}
	raiseFDLimit(t, uint64(2*n+256))
	srv, base := startServer(t, Config{MaxConnsPerIP: n})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("IDLE_PROF") != "" {
		runtime.MemProfileRate = 1
	}
	heap0, rss0, _ := memNow()

	socks := make([]net.Conn, 0, n)
	opened := make([]time.Time, 0, n)
	t.Cleanup(func() {
		for _, s := range socks {
			s.Close()
		}
	})
	for i := 0; i < n; i++ {
		// Taken before the dial: the tracker's clock for this socket
		// starts later, so it may not close it before this plus 10 s.
		opened = append(opened, time.Now())
		s, err := rawUpgrade(u.Host)
		if err != nil {
			t.Fatalf("socket %d: %v", i+1, err)
		}
		socks = append(socks, s)
	}
	checkFor(t, 10*time.Second, "all open at the tracker", func() error {
		if got := srv.connections(); got != n {
			return fmt.Errorf("%d open", got)
		}
		return nil
	})
	heap1, rss1, stacks := memNow()
	if p := os.Getenv("IDLE_PROF"); p != "" {
		f, _ := os.Create(p)
		pprof.WriteHeapProfile(f)
		f.Close()
	}
	t.Logf("%d idle sockets open (%.1f s to open): heap %.1f → %.1f MB (%+.1f KB a socket), RSS %.1f → %.1f MB (goroutine stacks %.1f MB)",
		n, time.Since(opened[0]).Seconds(), mb(heap0), mb(heap1), (float64(heap1)-float64(heap0))/float64(n)/1024, mb(rss0), mb(rss1), mb(stacks))
	if d := int64(heap1) - int64(heap0); d > 20<<20 {
		t.Errorf("heap grew %.1f MB with %d idle sockets, want < 20 MB", mb(uint64(d)), n)
	}

	for i, s := range socks {
		s.SetReadDeadline(opened[i].Add(10*time.Second + 20*time.Second))
		code, reason, err := readClose(s)
		if err != nil {
			t.Fatalf("socket %d: %v", i+1, err)
		}
		if code != websocket.StatusPolicyViolation || reason != "no join or publish within 10s: send join first" {
			t.Fatalf("socket %d closed with %v %q", i+1, code, reason)
		}
		if since := time.Since(opened[i]); since < 10*time.Second {
			t.Fatalf("socket %d closed after %v, before the 10 s timeout", i+1, since)
		}
		s.Close()
	}
	checkFor(t, 10*time.Second, "all gone at the tracker", func() error {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		if len(srv.conns) != 0 || srv.open != 0 || len(srv.perIP) != 0 {
			return fmt.Errorf("%d conns, %d counted, %d addresses", len(srv.conns), srv.open, len(srv.perIP))
		}
		return nil
	})
	heap2, rss2, _ := memNow()
	t.Logf("after all were closed: heap %.1f MB, RSS %.1f MB", mb(heap2), mb(rss2))
	if d := int64(heap2) - int64(heap0); d > 20<<20 {
		t.Errorf("heap %.1f MB above the start after the sockets closed", mb(uint64(d)))
	}
}

// connections is how many WebSockets the server holds.
func (s *Server) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

func mb(b uint64) float64 { return float64(b) / (1 << 20) }

// memNow returns the heap in use after a full GC, the process's RSS
// after returning freed memory to the OS, and the goroutine stacks.
func memNow() (heap, rss, stacks uint64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &rss)
			rss <<= 10
		}
	}
	return ms.HeapAlloc, rss, ms.StackInuse
}

// rawUpgrade opens a WebSocket by hand on a bare TCP connection, so that
// each idle socket costs the test itself almost nothing.
func rawUpgrade(host string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET /ws HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, err
	}
	// Read the response byte by byte: nothing after it may be consumed.
	var resp []byte
	b := make([]byte, 1)
	for !bytes.HasSuffix(resp, []byte("\r\n\r\n")) {
		if _, err := c.Read(b); err != nil {
			c.Close()
			return nil, fmt.Errorf("upgrade response: %w", err)
		}
		resp = append(resp, b[0])
	}
	if !bytes.HasPrefix(resp, []byte("HTTP/1.1 101 ")) {
		c.Close()
		return nil, fmt.Errorf("upgrade refused: %q", resp)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// readClose reads frames until a close frame and returns its code and
// reason (a server's frames are not masked).
func readClose(c net.Conn) (websocket.StatusCode, string, error) {
	for {
		var h [2]byte
		if _, err := io.ReadFull(c, h[:]); err != nil {
			return 0, "", err
		}
		size := int(h[1] & 0x7f)
		switch size {
		case 126:
			var l [2]byte
			if _, err := io.ReadFull(c, l[:]); err != nil {
				return 0, "", err
			}
			size = int(binary.BigEndian.Uint16(l[:]))
		case 127:
			return 0, "", errors.New("frame too large for this test")
		}
		p := make([]byte, size)
		if _, err := io.ReadFull(c, p); err != nil {
			return 0, "", err
		}
		if h[0]&0x0f == 0x8 {
			if len(p) < 2 {
				return websocket.StatusNoStatusRcvd, "", nil
			}
			return websocket.StatusCode(binary.BigEndian.Uint16(p)), string(p[2:]), nil
		}
	}
}

// TestMessageBeforeUpgradeAnswer: a client that sends its first message
// in the same packet as the upgrade request, before the 101 came back, is
// still read (the bytes net/http had buffered are not lost).
func TestMessageBeforeUpgradeAnswer(t *testing.T) {
	_, base := startServer(t, Config{})
	u, _ := url.Parse(base)
	c, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := []byte(`{"type":"teleport"}`)
	frame := []byte{0x81, 0x80 | byte(len(msg)), 1, 2, 3, 4}
	for i, b := range msg {
		frame = append(frame, b^frame[2+i%4])
	}
	req := "GET /ws HTTP/1.1\r\nHost: " + u.Host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write(append([]byte(req), frame...)); err != nil {
		t.Fatal(err)
	}
	var resp []byte
	b := make([]byte, 1)
	for !bytes.HasSuffix(resp, []byte("\r\n\r\n")) {
		if _, err := c.Read(b); err != nil {
			t.Fatalf("upgrade response: %v", err)
		}
		resp = append(resp, b[0])
	}
	var h [2]byte
	if _, err := io.ReadFull(c, h[:]); err != nil || h[0] != 0x81 || h[1] >= 126 {
		t.Fatalf("first frame header %x: %v", h, err)
	}
	p := make([]byte, h[1])
	if _, err := io.ReadFull(c, p); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(p, []byte(proto.CodeUnknownType)) {
		t.Fatalf("answer %s, want an %s error", p, proto.CodeUnknownType)
	}
}
