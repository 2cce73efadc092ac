package swarm

import (
	"context"
	"testing"

	"github.com/coopcast/coopcast/internal/forest"
	"github.com/coopcast/coopcast/internal/proto"
	"github.com/coopcast/coopcast/internal/rtc"
)

// offline is a Member that never dials: its id is above every neighbour's,
// so it waits for offers that never come. Its tracker messages stay in
// m.out for the test to read.
func offline(t *testing.T) *Member {
	t.Helper()
	m, err := New(Config{TrackerURL: "http://127.0.0.1:1", Channel: "c", Handler: &relayer{}, RTC: rtc.Config{ICEInterfaces: []string{"lo"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := m.handle(context.Background(), proto.Message{Type: proto.TypeWelcome, PeerID: 1 << 50, Trees: 4, K: 3}); err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *Member) sent() []proto.Message {
	var out []proto.Message
	for {
		select {
		case msg := <-m.out:
			out = append(out, msg)
		default:
			return out
		}
	}
}

func assignParent(tree int, parent uint64, keep *uint64) proto.Message {
	return proto.Message{Type: proto.TypeAssignParent, Tree: &tree, Parent: parent, Keep: keep, PeerKind: "native"}
}

// TestMakeBeforeBreak: a move with keep takes the tree from both parents
// until the new one delivers, then confirms it with edge-open once; a
// move without keep keeps nothing; every new edge is confirmed once.
func TestMakeBeforeBreak(t *testing.T) {
	m := offline(t)
	k := func(id uint64) *uint64 { return &id }
	m.assign(assignParent(2, 0, nil))
	if !m.Accepts(2, 0) || m.Accepts(2, 700) || m.Accepts(1, 0) {
		t.Fatal("only the origin may send tree 2")
	}
	m.Delivered(2, 0)
	m.Delivered(2, 0)
	if s := m.sent(); len(s) != 1 || s[0].Type != proto.TypeEdgeOpen || *s[0].Tree != 2 || s[0].Parent != 0 {
		t.Fatalf("first data on a new edge: sent %+v, want one edge-open", s)
	}
	m.assign(assignParent(2, 700, k(0)))
	if !m.Accepts(2, 0) || !m.Accepts(2, 700) || !m.AcceptsAny(0) {
		t.Fatal("during the move both the old and the new parent feed tree 2")
	}
	if ts := m.Trees(); ts[2].Parent != 700 || !ts[2].ParentLostAt.IsZero() {
		t.Fatalf("tree 2 after the move: %+v", ts[2])
	}
	m.Delivered(2, 0) // the old parent's data ends nothing
	if s := m.sent(); len(s) != 0 {
		t.Fatalf("the old parent's data sent %+v", s)
	}
	m.Delivered(2, 700)
	if s := m.sent(); len(s) != 1 || s[0].Type != proto.TypeEdgeOpen || s[0].Parent != 700 {
		t.Fatalf("the new parent's first data: sent %+v, want edge-open", s)
	}
	if m.Accepts(2, 0) || !m.Accepts(2, 700) {
		t.Fatal("the old parent is released once the new one delivers")
	}
	// Moved twice before the new edge delivered: the first drain stays.
	m.assign(assignParent(2, 800, k(700)))
	m.assign(assignParent(2, 900, k(700)))
	if !m.Accepts(2, 700) || m.Accepts(2, 800) || !m.Accepts(2, 900) {
		t.Fatal("a second move keeps the same drain and drops the parent in between")
	}
	// remove-parent of the drain drops it.
	tree := 2
	m.assign(proto.Message{Type: proto.TypeRemoveParent, Tree: &tree, Parent: 700})
	if m.Accepts(2, 700) || !m.Accepts(2, 900) {
		t.Fatal("remove-parent of the drain")
	}
	// Without keep the old parent is gone: a repair, nothing kept.
	m.assign(assignParent(2, 950, nil))
	if m.Accepts(2, 900) || !m.Accepts(2, 950) || m.Trees()[2].ParentLostAt.IsZero() {
		t.Fatal("a repair keeps nothing and records the loss")
	}
	if m.AcceptsAny(forest.PeerID(12345)) {
		t.Fatal("a stranger feeds nothing")
	}
}
