package origin

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/coopcast/coopcast/internal/ticket"
	"github.com/coopcast/coopcast/internal/wire"
)

// Defaults of the fallback limits (Config documents them).
const (
	defaultPerIPFactor  = 4  // × Bitrate per address
	defaultCapFactor    = 20 // × Bitrate in all
	defaultRequests     = 50 // per second per address
	defaultRequestBurst = 200
	// perIPBurst and capBurst are how many seconds of their rate the byte
	// buckets hold: a peer that just joined fetches the init segment and
	// a few chunks at once.
	perIPBurst = 10
	capBurst   = 2
	// maxGuardedIPs bounds the per-address map: past it, new addresses
	// share one bucket, so a flood of sources cannot exhaust memory.
	maxGuardedIPs = 100_000
	ipIdle        = time.Minute
)

// guard is what stands between HTTP fallback and the world: it answers
// CORS for the allowed page origins, and refuses requests without a valid
// ticket (401), beyond an address's request or byte budget, or beyond the
// origin's total egress cap (429 with Retry-After).
type guard struct {
	o        *Origin
	key      []byte
	origins  map[string]bool // allowed page origins; "*" any
	reqRate  rate.Limit      // per address; rate.Inf: none
	reqBurst int
	ipBytes  rate.Limit // bytes/s per address; rate.Inf: none
	ipBurst  int
	total    *rate.Limiter // bytes/s in all; nil: no cap
	capBurst int

	mu     sync.Mutex // guards ips and pruned
	ips    map[string]*ipBudget
	pruned time.Time

	// tmu serialises the buckets' use, and last keeps the times they see
	// in order: rate.Limiter given a time before its last one moves its
	// clock back, and the next call is credited the same interval again
	// (concurrent requests read the clock in one order and reach the
	// buckets in another: thousands a second overshot the cap by up to
	// half a chunk).
	tmu  sync.Mutex
	last time.Time
}

// monotonic returns now, or the latest time the buckets saw if now is
// before it. Call with tmu held.
func (g *guard) monotonic(now time.Time) time.Time {
	if now.Before(g.last) {
		return g.last
	}
	g.last = now
	return now
}

type ipBudget struct {
	req, bytes *rate.Limiter
	seen       time.Time
}

func newGuard(o *Origin, cfg Config) *guard {
	g := &guard{o: o, key: o.ticketKey, origins: map[string]bool{}, ips: map[string]*ipBudget{}, pruned: time.Now()}
	for _, a := range cfg.AllowOrigins {
		g.origins[normOrigin(a)] = true
	}
	if len(cfg.AllowOrigins) == 0 {
		if a := pageOrigin(cfg.TrackerURL); a != "" {
			g.origins[a] = true
		}
	}
	g.reqRate, g.reqBurst = rate.Limit(cfg.FallbackRequests), cfg.FallbackBurst
	if cfg.FallbackRequests < 0 {
		g.reqRate = rate.Inf
	}
	g.ipBytes, g.ipBurst = rate.Inf, 0
	if cfg.FallbackPerIP > 0 {
		bps := float64(cfg.FallbackPerIP) / 8
		g.ipBytes, g.ipBurst = rate.Limit(bps), int(min(bps*perIPBurst, math.MaxInt32))
	}
	if cfg.FallbackCap > 0 {
		bps := float64(cfg.FallbackCap) / 8
		g.capBurst = int(min(bps*capBurst, math.MaxInt32))
		g.total = rate.NewLimiter(rate.Limit(bps), g.capBurst)
	}
	return g
}

// pageOrigin is the web origin of the tracker's URL, where the watch page
// comes from: scheme://host[:port].
func pageOrigin(tracker string) string {
	u, err := url.Parse(tracker)
	if err != nil || u.Host == "" {
		return ""
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	}
	return normOrigin(u.Scheme + "://" + u.Host)
}

func normOrigin(s string) string { return strings.ToLower(strings.TrimSuffix(s, "/")) }

// ValidPageOrigin reports whether s can be an AllowOrigins entry: "*" or
// scheme://host[:port] of http or https.
func ValidPageOrigin(s string) bool {
	if s == "*" {
		return true
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && (u.Path == "" || u.Path == "/") && u.RawQuery == "" && u.User == nil
}

// wrap guards next, the fallback routes.
func (g *guard) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		g.cors(w, r)
		if wait, ok := g.request(clientIP(r), now); !ok {
			g.o.limitedIP.Add(1)
			tooMany(w, wait, "too many fallback requests from your address")
			return
		}
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent) // a CORS preflight: no ticket is sent on it
			return
		}
		if _, err := ticket.Verify(g.key, g.o.cfg.Channel, r.Header.Get(wire.TicketHeader), now); err != nil {
			g.o.unauthorized.Add(1)
			g.o.log.Debug("fallback refused", "ip", clientIP(r), "path", r.URL.Path, "err", err)
			http.Error(w, fmt.Sprintf("%v: HTTP fallback serves only peers of this channel; send the ticket from the tracker's welcome (or its newest ticket message) in the %s header", err, wire.TicketHeader), http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// cors allows the configured page origins to read fallback answers and to
// send the ticket header.
func (g *guard) cors(w http.ResponseWriter, r *http.Request) {
	o := r.Header.Get("Origin")
	if o == "" {
		return
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	switch {
	case g.origins["*"]:
		h.Set("Access-Control-Allow-Origin", "*")
	case g.origins[normOrigin(o)]:
		h.Set("Access-Control-Allow-Origin", o)
	default:
		return
	}
	h.Set("Access-Control-Expose-Headers", strings.Join([]string{wire.InitSignatureHeader, wire.InitEpochHeader, "Retry-After"}, ", "))
	if r.Method == http.MethodOptions {
		h.Set("Access-Control-Allow-Methods", "GET")
		h.Set("Access-Control-Allow-Headers", wire.TicketHeader)
		h.Set("Access-Control-Max-Age", "600")
	}
}

// budget returns ip's buckets, making them if new.
func (g *guard) budget(ip string, now time.Time) *ipBudget {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Sub(g.pruned) > ipIdle/2 {
		g.pruned = now
		for a, b := range g.ips {
			if now.Sub(b.seen) > ipIdle {
				delete(g.ips, a)
			}
		}
	}
	b := g.ips[ip]
	if b == nil {
		if len(g.ips) >= maxGuardedIPs {
			ip = "overflow"
			b = g.ips[ip]
		}
		if b == nil {
			b = &ipBudget{req: rate.NewLimiter(g.reqRate, g.reqBurst), bytes: rate.NewLimiter(g.ipBytes, g.ipBurst)}
			g.ips[ip] = b
		}
	}
	b.seen = now
	return b
}

// request takes one request from ip's budget, or says how long to wait.
func (g *guard) request(ip string, now time.Time) (time.Duration, bool) {
	if g.reqRate == rate.Inf {
		return 0, true
	}
	g.tmu.Lock()
	defer g.tmu.Unlock()
	now = g.monotonic(now)
	return take(g.budget(ip, now).req, 1, g.reqBurst, now)
}

// send takes n bytes from ip's budget and the origin's cap. ok false:
// over one of them (capped: the origin's); wait is when to retry.
func (g *guard) send(ip string, n int, now time.Time) (wait time.Duration, capped, ok bool) {
	g.tmu.Lock()
	defer g.tmu.Unlock()
	now = g.monotonic(now)
	var b *ipBudget
	if g.ipBytes != rate.Inf {
		b = g.budget(ip, now)
		r := b.bytes.ReserveN(now, min(n, g.ipBurst))
		if d := r.DelayFrom(now); !r.OK() || d > 0 {
			r.CancelAt(now)
			return d, false, false
		}
		defer func() {
			if !ok {
				r.CancelAt(now) // refused by the cap: the address keeps its bytes
			}
		}()
	}
	if g.total != nil {
		if d, ok := take(g.total, n, g.capBurst, now); !ok {
			return d, true, false
		}
	}
	return 0, false, true
}

// take takes n tokens from l (at most its burst) now, or says how long
// until they would be there.
func take(l *rate.Limiter, n, burst int, now time.Time) (time.Duration, bool) {
	r := l.ReserveN(now, min(n, burst))
	if d := r.DelayFrom(now); !r.OK() || d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}

// tooMany answers 429 with a Retry-After of wait (whole seconds, at least 1).
func tooMany(w http.ResponseWriter, wait time.Duration, why string) {
	s := max(1, int(math.Ceil(wait.Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(s))
	http.Error(w, fmt.Sprintf("%s: retry in %d s", why, s), http.StatusTooManyRequests)
}

// clientIP is the TCP peer's address: X-Forwarded-For is not trusted.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
