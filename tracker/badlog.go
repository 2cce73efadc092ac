package tracker

import (
	"log/slog"
	"sync"
	"time"
)

// badLog keeps the log readable under a flood of bad client messages:
// each is logged at debug, and every summaryEvery the tracker says at
// info how many it dropped and from how many addresses, naming the
// busiest.
type badLog struct {
	log   *slog.Logger
	every time.Duration

	mu    sync.Mutex // guards the fields below
	last  time.Time  // last summary (or the start)
	n     int
	byIP  map[string]int
	extra int // messages from addresses past maxBadIPs
}

// summaryEvery is how often dropped messages are summarized; maxBadIPs
// bounds the addresses remembered between summaries.
const (
	summaryEvery = 10 * time.Second
	maxBadIPs    = 1000
)

func newBadLog(log *slog.Logger, now time.Time) *badLog {
	return &badLog{log: log, every: summaryEvery, last: now, byIP: make(map[string]int)}
}

// drop records one bad message from ip and logs it at debug.
func (b *badLog) drop(ip string, peer uint64, err error) {
	b.log.Debug("bad message dropped", "ip", ip, "peer", peer, "err", err)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n++
	if _, ok := b.byIP[ip]; ok || len(b.byIP) < maxBadIPs {
		b.byIP[ip]++
	} else {
		b.extra++
	}
}

// flush logs the summary at info if one is due and there is anything to
// say, and starts counting again. The tracker calls it from Run.
func (b *badLog) flush(now time.Time) {
	b.mu.Lock()
	if now.Sub(b.last) < b.every {
		b.mu.Unlock()
		return
	}
	n, byIP, extra, since := b.n, b.byIP, b.extra, now.Sub(b.last)
	b.n, b.extra, b.last = 0, 0, now
	if n > 0 {
		b.byIP = make(map[string]int)
	}
	b.mu.Unlock()
	if n == 0 {
		return
	}
	top, topN := "", 0
	for ip, k := range byIP {
		if k > topN || (k == topN && ip < top) {
			top, topN = ip, k
		}
	}
	addrs := len(byIP)
	if extra > 0 {
		addrs++ // at least one more
	}
	b.log.Info("dropped bad client messages", "messages", n, "addresses", addrs, "busiest", top, "busiest_messages", topN,
		"period", since.Round(time.Second))
}
