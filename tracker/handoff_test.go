package tracker

import (
	"fmt"
	"github.com/coopcast/coopcast/internal/forest"
	"github.com/coopcast/coopcast/internal/proto"
	"testing"
	"time"
)

// TestMoveMakesBeforeBreak: a peer with upload joins a full tree and takes
// a leaf's place, moving the leaf under itself. The leaf is told to keep
// its old parent (the origin) until the new edge delivers, and the origin
// keeps it as a child until the leaf says edge-open; then it is released.
// A handoff whose edge never opens is released after handoffTimeout.
func TestMoveMakesBeforeBreak(t *testing.T) {
	srv, base := startServer(t, Config{HeartbeatInterval: 200 * time.Millisecond})
	origin := publish(t, base, "m")
	origin.heartbeat(100 * time.Millisecond)
	// Two leaves fill the origin's two slots in every tree.
	a := joinWith(t, base, "m", 0, true)
	b := joinWith(t, base, "m", 0, true)
	a.heartbeat(100 * time.Millisecond)
	b.heartbeat(100 * time.Millisecond)
	// A peer with slots displaces one of them in its home tree.
	c := join(t, base, "m", 10_000)
	c.heartbeat(100 * time.Millisecond)

	var moved *tclient
	var tree int
	checkFor(t, 5*time.Second, "a leaf moved with keep", func() error {
		for _, l := range []*tclient{a, b} {
			l.mu.Lock()
			for _, m := range l.all {
				if m.Type == proto.TypeAssignParent && m.Keep != nil {
					if *m.Keep != 0 || m.Parent != c.peerID() {
						l.mu.Unlock()
						return fmt.Errorf("move keeps %d for new parent %d, want the origin for %d", *m.Keep, m.Parent, c.peerID())
					}
					moved, tree = l, *m.Tree
				}
				if m.Type == proto.TypeRemoveParent {
					l.mu.Unlock()
					return fmt.Errorf("leaf %d told remove-parent: a break before make", l.id)
				}
			}
			l.mu.Unlock()
		}
		if moved == nil {
			return fmt.Errorf("no assign-parent with keep yet")
		}
		return nil
	})
	id := moved.peerID()
	originFeeds := func() bool {
		origin.mu.Lock()
		defer origin.mu.Unlock()
		return origin.children[tree][id]
	}
	// The origin keeps feeding the moved leaf while its new edge is not
	// open (well within the timeout).
	time.Sleep(300 * time.Millisecond)
	if !originFeeds() {
		t.Fatal("origin told remove-child before the moved leaf's new edge delivered")
	}
	if err := moved.send(proto.Message{Type: proto.TypeEdgeOpen, Tree: intp(tree), Parent: c.peerID()}); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 2*time.Second, "old parent released after edge-open", func() error {
		if originFeeds() {
			return fmt.Errorf("origin still feeds %d in tree %d", id, tree)
		}
		return nil
	})
	checkFor(t, 2*time.Second, "views agree", func() error { return agree(srv, "m", origin, []*tclient{a, b, c}) })
	st := srv.channel("m").stats()
	if st.Handoffs < 1 || st.HandoffsDone < 1 {
		t.Fatalf("stats: %d handoffs, %d done", st.Handoffs, st.HandoffsDone)
	}

	// A second mover whose edge never opens: released after the timeout.
	d := join(t, base, "m", 10_000)
	d.heartbeat(100 * time.Millisecond)
	before := st.HandoffsExpired
	checkFor(t, 5*time.Second, "a leaf moved under the second mover with keep", func() error {
		for _, l := range []*tclient{a, b} {
			l.mu.Lock()
			for _, m := range l.all {
				if m.Type == proto.TypeAssignParent && m.Keep != nil && m.Parent == d.peerID() {
					l.mu.Unlock()
					return nil
				}
			}
			l.mu.Unlock()
		}
		return fmt.Errorf("no leaf was moved under %d", d.peerID())
	})
	checkFor(t, handoffTimeout+3*time.Second, "stuck handoff expired", func() error {
		if srv.channel("m").stats().HandoffsExpired <= before {
			return fmt.Errorf("not expired")
		}
		return agree(srv, "m", origin, []*tclient{a, b, c, d})
	})
}

// TestMovesIn: only a detach followed by an attach of the same peer in the
// same tree to another parent is a move.
func TestMovesIn(t *testing.T) {
	for _, tc := range []struct {
		name string
		ds   []forestDecision
		want int
	}{
		{"displacement", []forestDecision{{detach, 0, 5, 0}, {attach, 0, 7, 0}, {attach, 0, 5, 7}}, 1},
		{"leave repair", []forestDecision{{attach, 1, 5, 9}}, 0},
		{"to fallback", []forestDecision{{detach, 0, 5, 3}, {fallback, 0, 5, 0}}, 0},
		{"same parent again", []forestDecision{{detach, 0, 5, 3}, {attach, 0, 5, 3}}, 0},
		{"other tree", []forestDecision{{detach, 0, 5, 3}, {attach, 1, 5, 4}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := len(movesIn(decisions(tc.ds))); got != tc.want {
				t.Fatalf("%d moves, want %d", got, tc.want)
			}
		})
	}
}

type forestDecision struct {
	op           int
	tree         int
	peer, parent uint64
}

const (
	attach = iota
	detach
	fallback
)

func decisions(in []forestDecision) []forest.Decision {
	ops := map[int]forest.Op{attach: forest.Attach, detach: forest.Detach, fallback: forest.Fallback}
	out := make([]forest.Decision, len(in))
	for i, d := range in {
		out[i] = forest.Decision{Op: ops[d.op], Tree: d.tree, Peer: forest.PeerID(d.peer), Parent: forest.PeerID(d.parent)}
	}
	return out
}
