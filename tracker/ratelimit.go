package tracker

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ipLimits is a token bucket per client address for WebSocket upgrades.
type ipLimits struct {
	limit rate.Limit
	burst int

	mu sync.Mutex // guards m
	m  map[string]*ipLimit
}

type ipLimit struct {
	l    *rate.Limiter
	seen time.Time
}

// maxTrackedIPs bounds the map: past it, new addresses share one bucket,
// so a flood of spoofed sources cannot exhaust memory.
const maxTrackedIPs = 100_000

func newIPLimits(limit rate.Limit, burst int) *ipLimits {
	return &ipLimits{limit: limit, burst: burst, m: make(map[string]*ipLimit)}
}

func (l *ipLimits) allow(ip string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.m[ip]
	if e == nil {
		if len(l.m) >= maxTrackedIPs {
			ip = "overflow"
			e = l.m[ip]
		}
		if e == nil {
			e = &ipLimit{l: rate.NewLimiter(l.limit, l.burst)}
			l.m[ip] = e
		}
	}
	e.seen = now
	return e.l.AllowN(now, 1)
}

// prune forgets addresses idle long enough for their bucket to be full.
func (l *ipLimits) prune(now time.Time) {
	idle := time.Minute
	l.mu.Lock()
	defer l.mu.Unlock()
	for ip, e := range l.m {
		if now.Sub(e.seen) > idle {
			delete(l.m, ip)
		}
	}
}
