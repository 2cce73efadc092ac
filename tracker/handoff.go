package tracker

import (
	"time"

	"github.com/coopcast/coopcast/internal/forest"
	"github.com/coopcast/coopcast/internal/proto"
)

// Make-before-break. When the forest moves a peer in a tree whose parent
// is still there (a join, a displacement, a rebalance), the tracker does
// not cut the old edge at once: the child is told its new parent and to
// keep taking the tree from the old one (assign-parent with keep), and the
// old parent is not told remove-child until the child says the new edge
// delivers (edge-open) or handoffTimeout passes. A repair nobody asked
// for then costs no chunk: the stripe flows from the old parent while the
// new link is set up.

// handoffTimeout bounds how long an old parent keeps feeding a moved
// child whose new edge has not delivered: long enough for a link to open
// on a loaded machine, short enough that a stuck handoff frees the slot.
const handoffTimeout = 6 * time.Second

// handoff is one make-before-break move in progress.
type handoff struct {
	old, new forest.PeerID
	until    time.Time
}

// edgeKey names a child's edge in one tree.
type edgeKey struct {
	peer forest.PeerID
	tree int
}

// movesIn finds, in one batch of decisions, the detaches that a later
// attach of the same peer in the same tree follows: moves, which can be
// made before they break. It maps each such edge to the detach's index.
func movesIn(ds []forest.Decision) map[edgeKey]int {
	var moves map[edgeKey]int
	detached := map[edgeKey]int{}
	for i, d := range ds {
		k := edgeKey{d.Peer, d.Tree}
		switch d.Op {
		case forest.Detach:
			detached[k] = i
		case forest.Attach:
			if j, ok := detached[k]; ok && ds[j].Parent != d.Parent {
				if moves == nil {
					moves = map[edgeKey]int{}
				}
				moves[k] = j
			}
			delete(detached, k)
		case forest.Fallback:
			delete(detached, k)
		}
	}
	return moves
}

// releaseOldLocked ends a handoff: the old parent stops feeding the child,
// unless the forest has made it the child's parent again. ch.mu held.
func (ch *channel) releaseOldLocked(k edgeKey, h handoff) {
	delete(ch.handoffs, k)
	if p, ok := ch.f.Parent(k.peer, k.tree); ok && p == h.old {
		return
	}
	if old := ch.client(h.old); old != nil {
		ch.tell(old, proto.Message{Type: proto.TypeRemoveChild, Tree: intp(k.tree), Child: uint64(k.peer)})
	}
}

// edgeOpen: the child's new parent in a tree delivers: it confirms the
// parent (trust.go), and ends a move's handoff by releasing the old one.
func (ch *channel) edgeOpen(c *client, m proto.Message) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	tree, ok := ch.treeOf(c, m)
	if !ok {
		return
	}
	if p, ok := ch.f.Parent(c.id, tree); ok && uint64(p) == m.Parent {
		ch.confirmLocked(p, c.id)
	}
	k := edgeKey{c.id, tree}
	h, ok := ch.handoffs[k]
	if !ok || uint64(h.new) != m.Parent {
		return // no move, or finished already (timeout, or a later move)
	}
	ch.releaseOldLocked(k, h)
	ch.handoffsDone++
}

// expireHandoffsLocked releases the old parents of handoffs whose new edge
// did not deliver in time. ch.mu held.
func (ch *channel) expireHandoffsLocked(now time.Time) {
	for k, h := range ch.handoffs {
		if now.After(h.until) {
			ch.srv.log.Debug("handoff timed out; releasing the old parent", "channel", ch.id, "peer", k.peer, "tree", k.tree, "old", h.old, "new", h.new)
			ch.releaseOldLocked(k, h)
			ch.handoffsExpired++
		}
	}
}

// dropHandoffsLocked ends the handoffs that involve a peer who left: as
// the child (its old parent stops feeding it), as the new parent (the
// forest repairs the child; its old parent stops), or as the old parent
// (nothing to tell). ch.mu held.
func (ch *channel) dropHandoffsLocked(id forest.PeerID) {
	for k, h := range ch.handoffs {
		switch {
		case h.old == id:
			delete(ch.handoffs, k)
		case k.peer == id || h.new == id:
			ch.releaseOldLocked(k, h)
		}
	}
}
