package tracker

import (
	"time"

	"golang.org/x/time/rate"

	"github.com/coopcast/coopcast/internal/forest"
)

// Trust earned, not claimed. A peer's declared upload buys it slots, but a
// parent keeps them only while its children confirm that it delivers:
//
//   - Every child confirms its parent's first verified data on a new edge
//     (edge-open); the tracker keeps, per parent, the children that did.
//   - When ComplaintLimit distinct children report the same parent silent
//     within ComplaintWindow, and the parent is not itself a victim (it did
//     not report its own parent in that tree silent lately), its slots are
//     cut to the number of distinct children that ever confirmed its
//     delivery: a peer that claims upload and relays nothing becomes a leaf
//     at once; one that served its children keeps what it showed it can
//     carry, and earns a slot back with each new child that confirms it, up
//     to what its upload offers. A reconnect cannot undo a cut.
//   - Corrupt data from distinct children demotes the parent to a leaf
//     (complain in channel.go); as a leaf it feeds nobody, and since peers
//     take a tree's data only from that tree's parent, it can hurt nobody.
//   - Each child's complaints have a budget (complaintRate, complaintBurst):
//     a child cannot churn the forest by complaining.

// Complaint budget per client: a burst, then one every two seconds.
const (
	complaintRate  = rate.Limit(0.5)
	complaintBurst = 8
)

// victimWindow: a parent that reported its own parent in a tree silent
// this recently is starved there, not silent by choice; its children's
// complaints in that tree do not cut its slots. (A cheat could keep itself
// "starved" by complaining every other second within its budget; each
// complaint moves it, which its own children see as nothing.)
const victimWindow = 5 * time.Second

// trust is what the tracker has seen of one peer as a parent and as a
// complainer.
type trust struct {
	declared  int                         // slots its offered upload buys
	cut       bool                        // its slots were cut: no more than it showed
	confirmed map[forest.PeerID]bool      // children that ever confirmed its delivery
	silentBy  map[forest.PeerID]time.Time // children that reported it silent, when
	budget    *rate.Limiter               // its own complaints
	complaint map[int]time.Time           // per tree, when it last reported its own parent silent
}

// trustLocked returns id's record, creating it. ch.mu held.
func (ch *channel) trustLocked(id forest.PeerID) *trust {
	t := ch.trust[id]
	if t == nil {
		t = &trust{budget: rate.NewLimiter(complaintRate, complaintBurst)}
		ch.trust[id] = t
	}
	return t
}

// offer is the slots a peer whose record is t gets when it offers
// declared slots anew (a reconnect) while it has current: what it offers,
// but after a cut no more than it has earned since.
func (t *trust) offer(declared, current int) int {
	t.declared = declared
	if t.cut {
		return min(declared, current)
	}
	return declared
}

// confirmLocked records that child got data from parent on a new edge.
// A parent whose slots were cut earns them back one at a time: each new
// child that confirms its delivery buys it room for one more, up to what
// its upload offers. ch.mu held.
func (ch *channel) confirmLocked(parent, child forest.PeerID) {
	if parent == forest.Origin {
		return
	}
	t := ch.trustLocked(parent)
	if t.confirmed == nil {
		t.confirmed = map[forest.PeerID]bool{}
	}
	if t.confirmed[child] {
		return
	}
	t.confirmed[child] = true
	delete(t.silentBy, child)
	v, ok := ch.f.Node(parent)
	if !t.cut || !ok || v.Slots >= t.declared || len(t.confirmed) < v.Slots {
		return
	}
	if ds, err := ch.f.SetSlots(parent, min(t.declared, len(t.confirmed)+1)); err == nil {
		ch.apply(ds, false)
		ch.gauges()
	}
}

// silentLocked records child's silence complaint about parent in tree and
// cuts the parent's slots when distinct children agree, unless the parent
// is starved in that tree itself. It reports whether it cut them (the
// decisions are applied already). ch.mu held.
func (ch *channel) silentLocked(parent, child forest.PeerID, tree int, now time.Time) bool {
	ct := ch.trustLocked(child)
	if ct.complaint == nil {
		ct.complaint = map[int]time.Time{}
	}
	ct.complaint[tree] = now
	if parent == forest.Origin {
		return false
	}
	t := ch.trustLocked(parent)
	if t.silentBy == nil {
		t.silentBy = map[forest.PeerID]time.Time{}
	}
	t.silentBy[child] = now
	n := 0
	for c, at := range t.silentBy {
		if now.Sub(at) > ch.srv.cfg.ComplaintWindow {
			delete(t.silentBy, c)
			continue
		}
		n++
	}
	if n < ch.srv.cfg.ComplaintLimit || now.Sub(t.complaint[tree]) < victimWindow {
		return false
	}
	v, ok := ch.f.Node(parent)
	if !ok || len(t.confirmed) >= v.Slots {
		return false
	}
	ds, err := ch.f.SetSlots(parent, len(t.confirmed))
	if err != nil {
		return false
	}
	t.cut = true
	ch.srv.log.Warn("cutting the slots of a parent its children report silent", "channel", ch.id, "peer", parent,
		"slots", v.Slots, "now", len(t.confirmed), "complaints", n)
	ch.srv.metrics.demotions.WithLabelValues("silent").Inc()
	ch.demotions++
	t.silentBy = nil
	ch.applyWith(ds, true, false)
	return true
}

// complaintAllowedLocked spends one of child's complaints; false when its
// budget is spent. ch.mu held.
func (ch *channel) complaintAllowedLocked(child forest.PeerID, now time.Time) bool {
	return ch.trustLocked(child).budget.AllowN(now, 1)
}

// forgetTrustLocked drops what was known of a peer that left, and its
// place in other peers' records. ch.mu held.
func (ch *channel) forgetTrustLocked(id forest.PeerID) {
	delete(ch.trust, id)
	for _, t := range ch.trust {
		delete(t.confirmed, id)
		delete(t.silentBy, id)
	}
}
