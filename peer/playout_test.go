package peer

import (
	"testing"
	"time"

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
	}
	newPeer := func() *Peer {
		return &Peer{cfg: Config{Playout: 2 * time.Second, FallbackLead: 600 * time.Millisecond}, chunks: map[uint32]*chunk{},
			ended: make(chan struct{}), media: true}
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
	if p.st.missed != 2 {
		t.Errorf("missed %d, want 2 (the late chunk and the one skipped to the keyframe)", p.st.missed)
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
