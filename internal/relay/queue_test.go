package relay

import (
	"errors"
	"sync"
	"testing"
)

// fakeLink is a Sender whose buffer drains only when told to.
type fakeLink struct {
	mu       sync.Mutex
	buffered uint64
	open     bool
	got      [][]byte
}

func (f *fakeLink) Send(b []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.open {
		return errors.New("not open")
	}
	f.buffered += uint64(len(b))
	f.got = append(f.got, b)
	return nil
}

func (f *fakeLink) Buffered() uint64 { f.mu.Lock(); defer f.mu.Unlock(); return f.buffered }

func (f *fakeLink) drain() { f.mu.Lock(); f.buffered = 0; f.mu.Unlock() }

func msg(seq uint32, n int) []byte {
	b := make([]byte, n)
	b[0] = byte(seq)
	return b
}

func TestQueue(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"fast link: everything goes straight through", func(t *testing.T) {
			l := &fakeLink{open: true}
			q := NewQueue(l, Config{HighWater: 1 << 30})
			for s := uint32(0); s < 100; s++ {
				q.Push(s, msg(s, 1000))
			}
			st := q.Stats()
			if len(l.got) != 100 || st.SentMsgs != 100 || st.SentBytes != 100_000 || st.Queued != 0 || st.DroppedMsgs != 0 {
				t.Fatalf("got %d msgs, stats %+v", len(l.got), st)
			}
		}},
		{"stalled link: oldest chunks dropped, memory bounded", func(t *testing.T) {
			l := &fakeLink{open: true}
			q := NewQueue(l, Config{HighWater: 4000, MaxQueued: 10_000})
			for s := uint32(0); s < 50; s++ {
				for f := 0; f < 3; f++ {
					q.Push(s, msg(s, 1000))
				}
			}
			st := q.Stats()
			if st.Queued > 10_000 {
				t.Fatalf("queued %d bytes > limit", st.Queued)
			}
			if st.DroppedChunks == 0 || st.DroppedMsgs == 0 {
				t.Fatalf("nothing dropped: %+v", st)
			}
			if st.SentMsgs+st.DroppedMsgs+uint64(st.Queued/1000) != 150 {
				t.Fatalf("messages lost track of: %+v", st)
			}
			// What is left is the newest chunks, in order.
			l.drain()
			before := len(l.got)
			q.Pump()
			l.drain()
			q.Pump()
			var seqs []byte
			for _, m := range l.got[before:] {
				seqs = append(seqs, m[0])
			}
			for i := 1; i < len(seqs); i++ {
				if seqs[i] < seqs[i-1] {
					t.Fatalf("out of order after drops: %v", seqs)
				}
			}
			if len(seqs) == 0 || seqs[len(seqs)-1] != 49 {
				t.Fatalf("newest chunk not kept: %v", seqs)
			}
		}},
		{"late message of an old chunk is the one dropped", func(t *testing.T) {
			l := &fakeLink{open: true}
			q := NewQueue(l, Config{HighWater: 1, MaxQueued: 2000})
			q.Push(10, msg(10, 1000)) // sent: link was empty
			q.Push(11, msg(11, 1000))
			q.Push(12, msg(12, 1000))
			q.Push(5, msg(5, 1000)) // older than all queued: dropped itself
			st := q.Stats()
			if st.DroppedMsgs != 1 || st.Queued != 2000 {
				t.Fatalf("stats %+v", st)
			}
		}},
		{"not open yet: queued, then sent on Pump", func(t *testing.T) {
			l := &fakeLink{}
			q := NewQueue(l, Config{})
			q.Push(1, msg(1, 10))
			q.Push(1, msg(1, 10))
			if len(l.got) != 0 || q.Stats().Queued != 20 {
				t.Fatalf("sent before open")
			}
			l.mu.Lock()
			l.open = true
			l.mu.Unlock()
			q.Pump()
			if len(l.got) != 2 || q.Stats().Queued != 0 {
				t.Fatalf("got %d after open", len(l.got))
			}
		}},
		{"seq wrap-around", func(t *testing.T) {
			if !seqLess(0xffffffff, 0) || seqLess(0, 0xffffffff) {
				t.Fatal("wrap-around comparison wrong")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.run)
	}
}

// BenchmarkQueuePush measures the cost of fan-out per message to a child
// whose link keeps up.
func BenchmarkQueuePush(b *testing.B) {
	l := &fakeLink{open: true}
	q := NewQueue(l, Config{HighWater: 1 << 62})
	m := msg(1, 16384)
	b.SetBytes(int64(len(m)))
	for i := 0; i < b.N; i++ {
		q.Push(uint32(i), m)
		if len(l.got) > 1024 {
			l.got = l.got[:0]
		}
	}
}
