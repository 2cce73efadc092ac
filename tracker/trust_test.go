package tracker

import (
	"fmt"
	"testing"
	"time"

	"github.com/coopcast/coopcast/internal/forest"
	"github.com/coopcast/coopcast/internal/proto"
)

// childrenOf returns, per tree, the clients the forest puts under parent.
func childrenOf(srv *Server, channel string, parent uint64, clients []*tclient) map[int][]*tclient {
	byID := map[uint64]*tclient{}
	for _, c := range clients {
		byID[c.peerID()] = c
	}
	out := map[int][]*tclient{}
	for _, n := range srv.channel(channel).snapshot().Nodes {
		for i, e := range n.Trees {
			if !e.Fallback && !e.Pending && e.Parent == parent && byID[n.ID] != nil {
				out[i] = append(out[i], byID[n.ID])
			}
		}
	}
	return out
}

func slotsOf(srv *Server, channel string, id uint64) int {
	for _, n := range srv.channel(channel).snapshot().Nodes {
		if n.ID == id {
			return n.Slots
		}
	}
	return -1
}

// TestSilentParentSlotsCut: a parent that declared plenty of upload and
// that two distinct children report silent keeps only the slots its
// confirmed children show it can carry; a parent that is itself starved
// (it complained about its own parent just before) keeps its slots; and a
// child's complaints have a budget.
func TestSilentParentSlotsCut(t *testing.T) {
	for _, victim := range []bool{false, true} {
		t.Run(fmt.Sprintf("victim=%v", victim), func(t *testing.T) {
			srv, base := startServer(t, Config{ProbationSlots: -1}) // slots to cut at once
			origin := publish(t, base, "s")
			p := join(t, base, "s", 10_000) // first: under the origin, slots to spare
			var leaves []*tclient
			for i := 0; i < 10; i++ {
				leaves = append(leaves, join(t, base, "s", 0))
			}
			checkFor(t, 5*time.Second, "views agree", func() error { return agree(srv, "s", origin, append(leaves, p)) })
			before := slotsOf(srv, "s", p.peerID())
			var tree int
			var kids []*tclient
			for i, ks := range childrenOf(srv, "s", p.peerID(), leaves) {
				if len(ks) > len(kids) {
					tree, kids = i, ks
				}
			}
			if len(kids) < 3 {
				t.Fatalf("the parent has %d children in its busiest tree, want ≥ 3", len(kids))
			}
			// One child confirms delivery; two others report silence.
			kids[0].send(proto.Message{Type: proto.TypeEdgeOpen, Tree: intp(tree), Parent: p.peerID()})
			if victim {
				p.send(proto.Message{Type: proto.TypeComplaint, Tree: intp(tree), Parent: 0, Reason: "silent"})
			}
			checkFor(t, 2*time.Second, "edge-open and the parent's own complaint handled", func() error {
				ch := srv.channel("s")
				ch.mu.Lock()
				defer ch.mu.Unlock()
				tr := ch.trust[forestID(p.peerID())]
				if tr == nil || !tr.confirmed[forestID(kids[0].peerID())] {
					return fmt.Errorf("no confirmation recorded")
				}
				if victim && tr.complaint[tree].IsZero() {
					return fmt.Errorf("the parent's complaint not recorded")
				}
				return nil
			})
			for _, k := range kids[1:3] {
				k.send(proto.Message{Type: proto.TypeComplaint, Tree: intp(tree), Parent: p.peerID(), Reason: "silent"})
			}
			if victim {
				checkFor(t, 2*time.Second, "complainers moved", func() error {
					for _, k := range kids[1:3] {
						k.mu.Lock()
						under := k.parents[tree] == p.peerID()
						k.mu.Unlock()
						if under {
							return fmt.Errorf("peer %d still under the parent", k.peerID())
						}
					}
					return nil
				})
				if got := slotsOf(srv, "s", p.peerID()); got != before {
					t.Fatalf("a starved parent's slots went %d → %d", before, got)
				}
				return
			}
			checkFor(t, 2*time.Second, "slots cut to the confirmed children", func() error {
				if got := slotsOf(srv, "s", p.peerID()); got != 1 {
					return fmt.Errorf("slots %d (were %d), want 1", got, before)
				}
				return agree(srv, "s", origin, append(leaves, p))
			})
			if st := srv.channel("s").stats(); st.Demotions != 1 {
				t.Fatalf("demotions %d, want 1", st.Demotions)
			}
		})
	}
}

// TestComplaintBudget: a child that keeps complaining is refused once its
// budget is spent.
func TestComplaintBudget(t *testing.T) {
	boundHeap(t)
	_, base := startServer(t, Config{})
	publish(t, base, "b")
	c := join(t, base, "b", 0)
	for i := 0; i < 3*complaintBurst; i++ {
		c.send(proto.Message{Type: proto.TypeComplaint, Tree: intp(0), Parent: 0, Reason: "silent"})
	}
	checkFor(t, 2*time.Second, "refused past the budget", func() error {
		if !c.hasError(proto.CodeRateLimited) {
			return fmt.Errorf("errors %v", c.errors())
		}
		return nil
	})
}

func forestID(id uint64) forest.PeerID { return forest.PeerID(id) }

// TestCeiling: what a peer's record lets it have.
func TestCeiling(t *testing.T) {
	now := time.Now()
	kids := map[forest.PeerID]bool{1: true, 2: true, 3: true}
	for _, tc := range []struct {
		name string
		t    trust
		want int
	}{
		{"probation", trust{declared: 16, probation: 2}, 2},
		{"probation, 3 confirmed", trust{declared: 16, probation: 2, confirmed: kids}, 2 + 3*probationEarn},
		{"probation, small upload", trust{declared: 1, probation: 2, confirmed: kids}, 1},
		{"no probation", trust{declared: 16, probation: -1}, 16},
		{"restored", trust{declared: 16, probation: 2, vouched: true}, 16},
		{"cut just now", trust{declared: 16, probation: 2, cut: true, cutTo: 0, cutAt: now}, 0},
		{"cut 25 s ago", trust{declared: 16, probation: 2, cut: true, cutTo: 1, cutAt: now.Add(-25 * time.Second)}, 3},
		{"cut long ago, small upload", trust{declared: 2, probation: 2, cut: true, cutAt: now.Add(-time.Hour)}, 2},
		{"demoted", trust{declared: 16, probation: 2, confirmed: kids, demoted: reasonCorruptShard}, 0},
	} {
		if got := tc.t.ceiling(); got != tc.want {
			t.Errorf("%s: ceiling %d, want %d", tc.name, got, tc.want)
		}
	}
}
