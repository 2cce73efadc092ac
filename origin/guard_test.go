package origin

import (
	"bytes"
	"crypto/ed25519"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coopcast/coopcast/internal/ticket"
	"github.com/coopcast/coopcast/internal/wire"
)

const guardBitrate = 400_000

// fallbackServer is an origin that has cut one chunk of size bytes (not
// running: nothing but its fallback is needed) behind an httptest server.
func fallbackServer(t *testing.T, size int, tweak func(*Config)) (*Origin, *httptest.Server) {
	t.Helper()
	src, _ := NewSynthetic(guardBitrate, time.Second)
	cfg := Config{TrackerURL: "http://tracker.example:8080", Channel: "t", PublishToken: "tok", Source: src, Bitrate: guardBitrate}
	if tweak != nil {
		tweak(&cfg)
	}
	o, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	data := bytes.Repeat([]byte{7}, size)
	shards, err := o.coder.Encode(data)
	if err != nil {
		t.Fatal(err)
	}
	o.store.put(stored{seq: 0, manifest: []byte("manifest"), shards: shards, chunk: data})
	hs := httptest.NewServer(o.Handler())
	t.Cleanup(hs.Close)
	return o, hs
}

func fetch(t *testing.T, c *http.Client, url string, hdr http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestFallbackTickets: every fallback path needs a valid ticket of this
// channel; anything else is 401 with a body that says why.
func TestFallbackTickets(t *testing.T) {
	o, hs := fallbackServer(t, 1000, nil)
	_, otherKey, _ := ed25519.GenerateKey(nil)
	now := time.Now()
	for _, tc := range []struct {
		name, ticket string
		code         int
		says         string
	}{
		{"no ticket", "", http.StatusUnauthorized, "no fallback ticket"},
		{"another channel's", ticket.Mint(o.ticketKey, "other", 5, now.Add(time.Minute)), http.StatusUnauthorized, "not valid for this channel"},
		{"expired", ticket.Mint(o.ticketKey, "t", 5, now.Add(-time.Second)), http.StatusUnauthorized, "expired"},
		{"forged (another key)", ticket.Mint(ticket.DeriveKey(otherKey), "t", 5, now.Add(time.Minute)), http.StatusUnauthorized, "not valid for this channel"},
		{"garbage", "let me in", http.StatusUnauthorized, "malformed"},
		{"valid", ticket.Mint(o.ticketKey, "t", 5, now.Add(time.Minute)), http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/latest", "/manifest/0", "/shard/0/1", "/chunk/0"} {
				hdr := http.Header{}
				if tc.ticket != "" {
					hdr.Set(wire.TicketHeader, tc.ticket)
				}
				resp, body := fetch(t, hs.Client(), hs.URL+"/fallback/t"+path, hdr)
				if resp.StatusCode != tc.code || !strings.Contains(body, tc.says) {
					t.Errorf("%s: %d %q, want %d saying %q", path, resp.StatusCode, body, tc.code, tc.says)
				}
			}
		})
	}
	if st := o.Stats(); st.FallbackUnauthorized != 5*4 {
		t.Errorf("FallbackUnauthorized = %d, want %d", st.FallbackUnauthorized, 5*4)
	}
}

// TestFallbackFlood sends 10,000 ticketed requests for a whole chunk from
// one address: most are refused 429 with a Retry-After, and the bytes
// served stay within the budget's burst plus its rate for the time taken.
func TestFallbackFlood(t *testing.T) {
	const size = 20_000 // bytes of the chunk
	for _, tc := range []struct {
		name  string
		tweak func(*Config)
		// bytes/s and burst the egress must stay within
		rate, burst float64
	}{
		// Defaults: the address's budget (4 × bitrate) binds first.
		{"defaults", nil, 4 * guardBitrate / 8, 10 * 4 * guardBitrate / 8},
		// No per-address limits (everyone behind one proxy): the
		// origin's cap (20 × bitrate) still holds.
		{"cap only", func(c *Config) { c.FallbackPerIP, c.FallbackRequests = -1, -1 }, 20 * guardBitrate / 8, 2 * 20 * guardBitrate / 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, hs := fallbackServer(t, size, tc.tweak)
			hdr := http.Header{wire.TicketHeader: {o.Ticket(1, time.Minute)}}
			var ok, limited, other atomic.Int64
			var wg sync.WaitGroup
			jobs := make(chan int)
			start := time.Now()
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range jobs {
						resp, _ := fetch(t, hs.Client(), hs.URL+"/fallback/t/chunk/0", hdr)
						switch resp.StatusCode {
						case http.StatusOK:
							ok.Add(1)
						case http.StatusTooManyRequests:
							if resp.Header.Get("Retry-After") == "" {
								t.Error("429 without Retry-After")
							}
							limited.Add(1)
						default:
							other.Add(1)
						}
					}
				}()
			}
			for i := range 10_000 {
				jobs <- i
			}
			close(jobs)
			wg.Wait()
			took := time.Since(start).Seconds()
			st := o.Stats()
			bound := tc.burst + tc.rate*took
			t.Logf("%.2f s: %d served, %d refused 429 (%d address, %d cap); %d bytes served, bound %.0f", took, ok.Load(), limited.Load(), st.FallbackLimited, st.FallbackCapped, st.HTTPBytes, bound)
			if limited.Load() < 5000 || other.Load() != 0 || ok.Load() == 0 {
				t.Fatalf("%d served, %d 429, %d other: want most refused 429", ok.Load(), limited.Load(), other.Load())
			}
			if float64(st.HTTPBytes) > bound {
				t.Fatalf("served %d bytes in %.2f s, over the bound %.0f", st.HTTPBytes, took, bound)
			}
			if st.FallbackLimited+st.FallbackCapped != uint64(limited.Load()) {
				t.Fatalf("stats count %d+%d refusals, the client saw %d", st.FallbackLimited, st.FallbackCapped, limited.Load())
			}
		})
	}
}

// TestFallbackBudgetFitsAPeer: a peer that takes the whole stream over
// HTTP, a chunk every 500 ms at up to twice the average size with ten
// requests for each (latest, manifests, shards), after joining with a
// 10 s backlog, is never refused by the default budgets.
func TestFallbackBudgetFitsAPeer(t *testing.T) {
	o, _ := fallbackServer(t, 10, nil)
	g := o.guard
	now := time.Unix(1_764_040_000, 0)
	chunk := guardBitrate / 8 / 2 // bytes per 500 ms
	for i := range 20 {           // the backlog, at once
		if _, _, ok := g.send("192.0.2.1", chunk, now); !ok {
			t.Fatalf("backlog chunk %d refused", i)
		}
	}
	for i := range 600 { // 5 minutes
		now = now.Add(500 * time.Millisecond)
		for range 10 {
			if _, ok := g.request("192.0.2.1", now); !ok {
				t.Fatalf("request refused at chunk %d", i)
			}
		}
		size := chunk
		if i%4 == 0 {
			size = 2 * chunk // a keyframe chunk
		}
		if _, _, ok := g.send("192.0.2.1", size, now); !ok {
			t.Fatalf("chunk %d refused", i)
		}
	}
}

// TestFallbackCORS: only the allowed page origins get CORS headers, and
// a preflight lets them send the ticket header.
func TestFallbackCORS(t *testing.T) {
	for _, tc := range []struct {
		name, allow, page string
		allowed           bool
	}{
		{"default: the tracker's page", "", "http://tracker.example:8080", true},
		{"default: another page", "", "https://evil.example", false},
		{"configured page", "https://watch.example", "https://watch.example", true},
		{"configured, another page", "https://watch.example", "http://tracker.example:8080", false},
		{"wildcard", "*", "https://anyone.example", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, hs := fallbackServer(t, 100, func(c *Config) {
				if tc.allow != "" {
					c.AllowOrigins = []string{tc.allow}
				}
			})
			hdr := http.Header{"Origin": {tc.page}, wire.TicketHeader: {o.Ticket(1, time.Minute)}}
			resp, _ := fetch(t, hs.Client(), hs.URL+"/fallback/t/latest", hdr)
			got := resp.Header.Get("Access-Control-Allow-Origin")
			if tc.allowed != (got != "") || (got != "" && got != tc.page && got != "*") {
				t.Fatalf("Access-Control-Allow-Origin %q for page %s", got, tc.page)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET: %d", resp.StatusCode)
			}
			req, _ := http.NewRequest(http.MethodOptions, hs.URL+"/fallback/t/chunk/0", nil)
			req.Header.Set("Origin", tc.page)
			req.Header.Set("Access-Control-Request-Headers", strings.ToLower(wire.TicketHeader))
			pre, err := hs.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			pre.Body.Close()
			allows := strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), wire.TicketHeader)
			if allows != tc.allowed || pre.StatusCode != http.StatusNoContent {
				t.Fatalf("preflight: %d, Allow-Headers %q", pre.StatusCode, pre.Header.Get("Access-Control-Allow-Headers"))
			}
		})
	}
}

func TestAllowOriginsValidated(t *testing.T) {
	src, _ := NewSynthetic(guardBitrate, time.Second)
	for _, bad := range []string{"watch.example", "https://watch.example/page", "ftp://x", ""} {
		_, err := New(Config{TrackerURL: "http://t", Channel: "t", PublishToken: "tok", Source: src, Bitrate: guardBitrate, AllowOrigins: []string{bad}})
		if err == nil || !strings.Contains(err.Error(), "AllowOrigins") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
