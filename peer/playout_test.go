package peer

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coopcast/coopcast/internal/playout"
	"github.com/coopcast/coopcast/internal/wire"
)

// TestPlayoutMedia: a video peer starts at a keyframe chunk, after a
// missed chunk skips to the next keyframe, and stops at the end of stream,
// even when the end is all it ever saw.
func TestPlayoutMedia(t *testing.T) {
	now := time.Now()
	mk := func(p *Peer, seq uint32, flags uint8, done bool) {
		p.chunks[seq] = &chunk{seq: seq, man: &wire.Manifest{Seq: seq, Flags: flags, Timestamp: now.UnixMicro()},
			done: done, doneAt: now, data: []byte{byte(seq)}}
		p.rule.Manifest(&p.play, now.UnixMicro(), seq, now.UnixMicro(), flags&wire.FlagEnd != 0)
	}
	newPeer := func() *Peer {
		cfg := Config{Playout: 2 * time.Second, FallbackLead: 600 * time.Millisecond}
		p := &Peer{cfg: cfg, rule: newRule(cfg), chunks: map[uint32]*chunk{}, ended: make(chan struct{}), log: slog.New(slog.DiscardHandler)}
		p.play.SetMedia(true)
		return p
	}
	p := newPeer()
	mk(p, 1, 0, true)                 // not a keyframe: not a start
	mk(p, 2, wire.FlagKeyframe, true) // start here
	mk(p, 3, 0, false)                // will miss its deadline
	mk(p, 4, 0, true)                 // after the gap, not a keyframe: skipped
	mk(p, 5, wire.FlagKeyframe, true) // resumes
	mk(p, 6, wire.FlagEnd, true)
	out := p.due(now.Add(3 * time.Second)) // past chunk 3's deadline
	if len(out) != 2 || out[0][0] != 2 || out[1][0] != 5 {
		t.Fatalf("played %v, want chunks 2 and 5", out)
	}
	select {
	case <-p.ended:
	default:
		t.Fatal("end of stream not reached")
	}
	if p.play.Missed() != 2 {
		t.Errorf("missed %d, want 2 (the late chunk and the one skipped to the keyframe)", p.play.Missed())
	}

	late := newPeer()
	mk(late, 9, wire.FlagEnd, true)
	if out := late.due(now); len(out) != 0 {
		t.Fatalf("played %v", out)
	}
	select {
	case <-late.ended:
	default:
		t.Fatal("a peer that joined after the end never stops")
	}
}

// checkFor polls cond every 20 ms until it holds, and fails t if it does
// not within limit.
func checkFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
	}
}

// TestSwarmSkipsLostManifests: the manifests of two consecutive chunks
// never reach a peer, neither from its parents nor over HTTP. By the wall
// clock it skips both at their deadlines and plays on: exactly two chunks
// missed, every other one played on time (the one after the gap too, so
// the skip came within its deadline), and the stream never taken for
// stopped.
func TestSwarmSkipsLostManifests(t *testing.T) {
	e := startSwarm(t)
	var lost atomic.Uint32 // the first of the two lost chunks; 0: none yet
	p := e.joinWith(t, 0, func(p *Peer) {
		p.lose = func(b []byte) bool {
			if len(b) < 6 || b[1] != wire.TypeManifest {
				return false
			}
			first, seq := lost.Load(), binary.BigEndian.Uint32(b[2:])
			return first != 0 && (seq == first || seq == first+1)
		}
	})
	checkFor(t, 30*time.Second, "8 chunks played", func() bool { return p.Report().ChunksPlayed >= 8 })
	p.mu.Lock()
	first := p.newest + 4 // a second ahead: not cut yet
	played0, onTime0, missed0 := p.play.Played(), p.play.OnTime(), p.play.Missed()
	p.mu.Unlock()
	lost.Store(first)
	stopped := false
	checkFor(t, 20*time.Second, "playout past the gap and 8 chunks on", func() bool {
		stopped = stopped || p.Report().StreamStopped
		p.mu.Lock()
		defer p.mu.Unlock()
		next, _ := p.play.Next()
		return int32(next-(first+10)) >= 0
	})
	p.mu.Lock()
	played, onTime, missed := p.play.Played()-played0, p.play.OnTime()-onTime0, p.play.Missed()-missed0
	p.mu.Unlock()
	if missed != 2 {
		t.Errorf("missed %d chunks, want the 2 whose manifests were lost", missed)
	}
	if onTime != played || played < 10 {
		t.Errorf("%d of %d chunks played on time since the loss, want all (at least 10)", onTime, played)
	}
	if stopped {
		t.Error("two lost manifests were taken for a stream stopped at the origin")
	}
	if p.corrupt.Load() != 0 {
		t.Errorf("%d corrupt chunks", p.corrupt.Load())
	}
}

// syncBuffer is a log sink safe for the peer's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestSwarmSeesDeadStream: the origin is killed for good under three
// peers (it leaves the tracker; its HTTP fallback drops every
// connection). Within two chunk intervals of the cut of the last chunk a
// peer got, its report says the stream has stopped at the origin (the
// next manifest half an interval overdue, and the origin, asked, does not
// answer), its log says so once in words, and /forest says so too; and
// continuity counts the chunks that never come. The time rule alone (no
// answer to go by) would take three and a half intervals.
func TestSwarmSeesDeadStream(t *testing.T) {
	e := startSwarmEvery(t, 500*time.Millisecond)
	var peers []*checked
	var logs []*syncBuffer
	for range 3 {
		lb := &syncBuffer{}
		logs = append(logs, lb)
		peers = append(peers, e.joinWith(t, 1200, func(p *Peer) { p.log = slog.New(slog.NewTextHandler(lb, nil)) }))
	}
	checkFor(t, 30*time.Second, "8 chunks played by every peer", func() bool {
		for _, p := range peers {
			if p.Report().ChunksPlayed < 8 {
				return false
			}
		}
		return true
	})
	missed := make([]uint64, len(peers))
	for i, p := range peers {
		missed[i] = p.Report().ChunksMissed
	}
	e.killOrigin()
	// Polled every 5 ms: the time to the stop is what the test measures.
	seen := make([]time.Time, len(peers))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		now, left := time.Now(), 0
		for i, p := range peers {
			if seen[i].IsZero() {
				if p.Report().StreamStopped {
					seen[i] = now
				} else {
					left++
				}
			}
		}
		if left == 0 {
			break
		}
		if now.After(deadline) {
			t.Fatalf("%d of %d peers do not say the stream stopped 10 s after the origin was killed", left, len(peers))
		}
	}
	iv := e.interval
	for i, p := range peers {
		p.mu.Lock()
		c := p.chunks[p.newest]
		var cut time.Time
		if c != nil && c.man != nil {
			cut = time.UnixMicro(c.man.Timestamp)
		}
		arrived := p.newestAt
		p.mu.Unlock()
		if cut.IsZero() {
			t.Fatalf("peer %d: no newest chunk", i)
		}
		late := seen[i].Sub(cut)
		t.Logf("peer %d: stop seen %v after its last chunk's cut (%v after it arrived); interval %v", i, late.Round(time.Millisecond), seen[i].Sub(arrived).Round(time.Millisecond), iv)
		if late > 2*iv {
			t.Errorf("peer %d: stop seen %v after the last chunk's cut, want within 2 intervals (%v)", i, late.Round(time.Millisecond), 2*iv)
		}
		if r := p.Report(); r.Stream != playout.StoppedReason {
			t.Errorf("peer %d: report's stream: %q", i, r.Stream)
		}
	}
	// Everyone sees it: each peer's report to the tracker says so at once.
	checkFor(t, 5*time.Second, "/forest shows the stream stopped at every peer", func() bool {
		stopped := 0
		for _, n := range forestOf(t, e.url).Nodes {
			if n.Report != nil && n.Report.StreamStopped {
				stopped++
			}
		}
		return stopped == len(peers)
	})
	t.Logf("/forest shows it at every peer %v after the last peer saw it", time.Since(slices.MaxFunc(seen, func(a, b time.Time) int { return a.Compare(b) })).Round(time.Millisecond))
	checkFor(t, 10*time.Second, "the chunks that never come counted missed", func() bool {
		for i, p := range peers {
			if p.Report().ChunksMissed < missed[i]+4 {
				return false
			}
		}
		return true
	})
	for i, p := range peers {
		if r := p.Report(); !r.StreamStopped || r.Continuity >= 1 {
			t.Errorf("peer %d: stopped %v, continuity %.3f after %d missed", i, r.StreamStopped, r.Continuity, r.ChunksMissed)
		}
		if n := strings.Count(logs[i].String(), playout.StoppedReason); n != 1 {
			t.Errorf("peer %d: the stop logged %d times, want once:\n%s", i, n, logs[i].String())
		}
	}
}
