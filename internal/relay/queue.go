package relay

import "sync"

// Sender is a link to one child; *rtc.Link is one.
type Sender interface {
	// Send queues b on the link without blocking.
	Send(b []byte) error
	// Buffered is the bytes the link holds that are not yet on the wire.
	Buffered() uint64
}

// Defaults for Config.
const (
	DefaultHighWater = 256 << 10
	DefaultLowWater  = 64 << 10
	DefaultMaxQueued = 1 << 20
)

// Config bounds a Queue. Zero values are the defaults.
type Config struct {
	// HighWater: while the link buffers less than this, messages go
	// straight to it. Default 256 KiB.
	HighWater uint64
	// MaxQueued: bytes the Queue keeps beyond the link's buffer before it
	// drops the oldest chunk. Default 1 MiB.
	MaxQueued int
}

// Stats counts what a Queue did.
type Stats struct {
	SentBytes, SentMsgs       uint64
	DroppedBytes, DroppedMsgs uint64
	DroppedChunks             uint64
	Queued                    int // bytes waiting now
}

type item struct {
	seq uint32
	msg []byte
}

// Queue is the bounded send queue for one child.
type Queue struct {
	s   Sender
	cfg Config

	mu    sync.Mutex // guards items, bytes, stats
	items []item     // FIFO; items[0] is the oldest
	bytes int
	stats Stats
}

// NewQueue returns a Queue in front of s.
func NewQueue(s Sender, cfg Config) *Queue {
	if cfg.HighWater == 0 {
		cfg.HighWater = DefaultHighWater
	}
	if cfg.MaxQueued == 0 {
		cfg.MaxQueued = DefaultMaxQueued
	}
	return &Queue{s: s, cfg: cfg}
}

// Push sends msg, part of chunk seq, or queues it. msg must not be changed
// afterwards: the same bytes are usually pushed to several children.
func (q *Queue) Push(seq uint32, msg []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 && q.s.Buffered() < q.cfg.HighWater && q.s.Send(msg) == nil {
		q.stats.SentBytes += uint64(len(msg))
		q.stats.SentMsgs++
		return
	}
	for len(q.items) > 0 && q.bytes+len(msg) > q.cfg.MaxQueued {
		if q.dropOldestChunk(seq) {
			q.drop(1, len(msg)) // msg itself belongs to the oldest chunk
			return
		}
	}
	if len(msg) > q.cfg.MaxQueued {
		q.drop(1, len(msg))
		return
	}
	q.items = append(q.items, item{seq, msg})
	q.bytes += len(msg)
	q.pumpLocked()
}

// dropOldestChunk drops every queued message of the oldest chunk. If the
// incoming message's chunk is that old or older, it is the one dropped
// and the call reports true.
func (q *Queue) dropOldestChunk(incoming uint32) bool {
	oldest := q.items[0].seq
	for _, it := range q.items {
		if seqLess(it.seq, oldest) {
			oldest = it.seq
		}
	}
	if !seqLess(oldest, incoming) {
		return true
	}
	kept := q.items[:0]
	n, b := 0, 0
	for _, it := range q.items {
		if it.seq == oldest {
			n++
			b += len(it.msg)
			continue
		}
		kept = append(kept, it)
	}
	clear(q.items[len(kept):])
	q.items = kept
	q.bytes -= b
	q.drop(n, b)
	return false
}

func (q *Queue) drop(msgs, bytes int) {
	q.stats.DroppedMsgs += uint64(msgs)
	q.stats.DroppedBytes += uint64(bytes)
	q.stats.DroppedChunks++
}

// seqLess compares chunk numbers with wrap-around.
func seqLess(a, b uint32) bool { return int32(a-b) < 0 }

// Pump sends queued messages while the link has room. Call it when the
// link's buffer drains (rtc.Link.OnBufferedLow) and when it opens.
func (q *Queue) Pump() {
	q.mu.Lock()
	q.pumpLocked()
	q.mu.Unlock()
}

func (q *Queue) pumpLocked() {
	sent := 0
	for sent < len(q.items) && q.s.Buffered() < q.cfg.HighWater {
		it := q.items[sent]
		if q.s.Send(it.msg) != nil {
			break
		}
		q.stats.SentBytes += uint64(len(it.msg))
		q.stats.SentMsgs++
		q.bytes -= len(it.msg)
		sent++
	}
	if sent > 0 {
		n := copy(q.items, q.items[sent:])
		clear(q.items[n:])
		q.items = q.items[:n]
	}
}

// Stats returns the Queue's counters.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.stats
	s.Queued = q.bytes
	return s
}
