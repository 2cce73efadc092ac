package tracker

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"
)

// bogusChannelPaths are request targets with channel ids and file names
// built to hurt: unknown, 10 KB long, unicode, NUL, path traversal plain
// and encoded.
func bogusChannelPaths(prefix, suffix string) []string {
	var out []string
	for _, id := range []string{"nope", strings.Repeat("a", 10<<10), "%E2%98%83", "☃", "%00", "..", "..%2F..%2F..%2Fetc%2Fpasswd",
		"../../../../etc/passwd", "%2e%2e/%2e%2e/%2e%2e/etc/passwd", "c%0d%0aX-Injected:%20yes", "-1", "%ff%fe"} {
		out = append(out, prefix+id+suffix)
	}
	return out
}

// rawGet sends a GET for target exactly as given (no client cleaning it)
// and returns the status and body.
func rawGet(t *testing.T, host, target string) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, host); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %.80s: %v", target, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.Header.Get("X-Injected") != "" {
		t.Errorf("GET %.80s: a header was injected", target)
	}
	return resp.StatusCode, string(b)
}

// heapInuse is HeapInuse after a full GC, in this process.
func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestBogusChannelPaths: the tracker's per-channel API and its static
// files, asked for bogus channel ids and files (unknown, 10 KB, unicode,
// NUL, traversal), answer 4xx (404, 400, or a redirect to a cleaned path),
// never 5xx and never a file from outside the build; the heap in use stays
// bounded across 500 such requests (boundHeap).
func TestBogusChannelPaths(t *testing.T) {
	boundHeap(t)
	_, base := startServer(t, Config{})
	u, _ := url.Parse(base)
	var paths []string
	paths = append(paths, bogusChannelPaths("/api/v1/channels/", "/stats")...)
	paths = append(paths, bogusChannelPaths("/api/v1/channels/", "/forest")...)
	paths = append(paths, bogusChannelPaths("/static/", "")...)
	paths = append(paths, bogusChannelPaths("/static/js/", "")...)
	paths = append(paths, "/static/js/../../../../go.mod", "/static/js/%2e%2e/%2e%2e/webclient.go", "/dashboard/../../etc/passwd")
	if code, body := rawGet(t, u.Host, "/api/v1/channels"); code != http.StatusOK {
		t.Fatalf("a good path: %d %q", code, body) // the client itself works
	}
	for round := 0; round < 500/len(paths)+1; round++ {
		for _, p := range paths {
			code, body := rawGet(t, u.Host, p)
			if code < 300 || code >= 500 {
				t.Fatalf("GET %.80s: %d %.200q, want a 3xx or 4xx", p, code, body)
			}
			if strings.Contains(body, "root:") || strings.Contains(body, "module github.com") || strings.Contains(body, "package webclient") {
				t.Fatalf("GET %.80s: served a file from outside the build: %.200q", p, body)
			}
		}
	}
}

// boundHeap fails t if, once t and its cleanups are done (its tracker
// closed), the heap in use (after GC, in this process) is more than 4 MB
// above where it was when boundHeap was called: what a test of bad input
// leaves behind. Tests that use it do not run in parallel.
func boundHeap(t *testing.T) {
	t.Helper()
	h0 := heapInuse()
	t.Cleanup(func() {
		if d := int64(heapInuse()) - int64(h0); d > 4<<20 {
			t.Errorf("heap in use %.1f MB above the start after the test", float64(d)/(1<<20))
		}
	})
}
