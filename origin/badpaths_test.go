package origin

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

	"github.com/coopcast/coopcast/internal/ticket"
	"github.com/coopcast/coopcast/internal/wire"
)

// TestFallbackBogusPaths: with a valid ticket, fallback requests for
// another or a bogus channel (unknown, 10 KB, unicode, NUL, traversal)
// and for bogus chunk and shard numbers (negative, past 2^32, huge, not
// numbers) answer 4xx (or a redirect to a cleaned path), never 5xx and
// never a file; the heap in use (after GC, in process) stays within 4 MB
// across them. Without a ticket every one is 401 or 404 before anything
// is looked up.
func TestFallbackBogusPaths(t *testing.T) {
	o, hs := fallbackServer(t, 1000, func(c *Config) { c.FallbackPerIP, c.FallbackRequests, c.FallbackCap = -1, -1, -1 })
	u, _ := url.Parse(hs.URL)
	tk := ticket.Mint(o.ticketKey, "t", 5, time.Now().Add(time.Minute))
	var paths []string
	for _, id := range []string{"other", strings.Repeat("a", 10<<10), "%E2%98%83", "☃", "%00", "..", "..%2F..%2Fetc%2Fpasswd", "../../../etc/passwd", "%2e%2e/%2e%2e/etc/passwd"} {
		for _, rest := range []string{"/init", "/latest", "/chunk/0", "/shard/0/1"} {
			paths = append(paths, "/fallback/"+id+rest)
		}
	}
	for _, n := range []string{"-1", "4294967296", "99999999999999999999999", "abc", "0x10", "%00", "1e3", "..", "0/../../../etc/passwd"} {
		paths = append(paths, "/fallback/t/chunk/"+n, "/fallback/t/manifest/"+n, "/fallback/t/shard/"+n+"/0", "/fallback/t/shard/0/"+n)
	}
	paths = append(paths, "/fallback/t/shard/0/999999999999", "/fallback/t/../../etc/passwd", "/fallback/t/init/../../../etc/passwd")
	get := func(target string, withTicket bool) (int, string) {
		c, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		hdr := ""
		if withTicket {
			hdr = wire.TicketHeader + ": " + tk + "\r\n"
		}
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n%sConnection: close\r\n\r\n", target, u.Host, hdr)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("GET %.80s: %v", target, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, string(b)
	}
	if code, body := get("/fallback/t/chunk/0", true); code != http.StatusOK {
		t.Fatalf("a good path: %d %q", code, body) // the client itself works
	}
	h0 := heapInuse()
	for _, p := range paths {
		for _, withTicket := range []bool{true, false} {
			code, body := get(p, withTicket)
			if code < 300 || code >= 500 || (!withTicket && code != http.StatusUnauthorized && code != http.StatusNotFound && code/100 != 3) {
				t.Fatalf("GET %.80s (ticket %v): %d %.200q, want a 3xx or 4xx (401 or 404 without a ticket)", p, withTicket, code, body)
			}
			if strings.Contains(body, "root:") {
				t.Fatalf("GET %.80s: served a file: %.200q", p, body)
			}
		}
	}
	if d := int64(heapInuse()) - int64(h0); d > 4<<20 {
		t.Errorf("heap in use grew %.1f MB", float64(d)/(1<<20))
	}
}

// heapInuse is HeapInuse after a full GC, in this process.
func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
