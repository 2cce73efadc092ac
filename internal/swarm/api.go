package swarm

import (
	"encoding/base64"
	"time"

	"github.com/coopcast/coopcast/internal/forest"
	"github.com/coopcast/coopcast/internal/proto"
)

// TreeState is the node's place in one tree, as the tracker assigned it.
type TreeState struct {
	Parent     forest.PeerID
	HasParent  bool
	ParentKind string
	Fallback   bool
	Children   int
	// ParentOpenSince is when the link to the parent opened; zero while it
	// is not open.
	ParentOpenSince time.Time
	// ParentLostAt is when the previous parent was lost (failed or left)
	// if the current parent replaced it; zero after a join or a move.
	ParentLostAt time.Time
}

// Trees returns the node's state in every tree.
func (m *Member) Trees() []TreeState {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]TreeState, m.trees)
	for i := range out {
		out[i] = TreeState{Parent: m.parents[i], HasParent: m.hasParent[i], Fallback: m.fallback[i], ParentLostAt: m.lostAt[i]}
		if n := m.nbrs[m.parents[i]]; n != nil && m.hasParent[i] {
			out[i].ParentKind = n.kind
			if t := n.d.opened.Load(); t != 0 {
				out[i].ParentOpenSince = time.Unix(0, t)
			}
		}
		if all := m.kids.Load(); all != nil && i < len(*all) {
			out[i].Children = len((*all)[i])
		}
	}
	return out
}

// Accepts reports whether data of tree may come from the neighbour from:
// its parent in that tree, or the former parent a make-before-break move
// keeps feeding us. Anyone else's data is unasked for and dropped, so a
// neighbour cannot push a tree it does not carry for us. Lock-free: it
// runs for every message.
func (m *Member) Accepts(tree int, from forest.PeerID) bool {
	v := m.senders.Load()
	if v == nil || tree < 0 || tree >= len(*v) {
		return false
	}
	s := (*v)[tree]
	return (s.hasParent && s.parent == from) || (s.hasDrain && s.drain == from)
}

// AcceptsAny reports whether from feeds us in some tree: manifests (sent
// down every tree) may come from any of our parents.
func (m *Member) AcceptsAny(from forest.PeerID) bool {
	v := m.senders.Load()
	if v == nil {
		return false
	}
	for _, s := range *v {
		if (s.hasParent && s.parent == from) || (s.hasDrain && s.drain == from) {
			return true
		}
	}
	return false
}

// Delivered tells the Member that verified data of tree came from from.
// The first from a new parent is confirmed to the tracker (edge-open): it
// counts for the parent's trust, and when the edge is the new one of a
// make-before-break move, the former parent is released. Cheap otherwise:
// it runs for every message.
func (m *Member) Delivered(tree int, from forest.PeerID) {
	if tree < 0 || tree >= 64 || m.unconfirmed.Load()&(1<<tree) == 0 {
		return
	}
	m.mu.Lock()
	if m.closed || tree >= m.trees || !m.hasParent[tree] || m.parents[tree] != from {
		m.mu.Unlock()
		return
	}
	m.unconfirmed.And(^uint64(1 << tree))
	if m.hasDrain[tree] {
		m.dropDrainLocked(tree)
		m.publishSendersLocked()
	}
	m.mu.Unlock()
	m.send(proto.Message{Type: proto.TypeEdgeOpen, Tree: &tree, Parent: uint64(from)})
}

// FallbackURL is the origin's HTTP fallback base URL.
func (m *Member) FallbackURL() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fbURL
}

// Ticket is the newest fallback ticket the tracker handed this node, to
// send in the X-Coopcast-Ticket header of every fallback request; "" if
// none.
func (m *Member) Ticket() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ticket
}

// Complain tells the tracker that the parent in tree is silent (reason
// "silent"), that nothing comes from it while the origin is ahead
// ("starved": the tracker only pings it). Bad data is shown with
// ShowEvidence: a corrupt-data complaint without evidence counts for
// nothing.
func (m *Member) Complain(tree int, reason string) {
	m.mu.Lock()
	if tree < 0 || tree >= m.trees || !m.hasParent[tree] {
		m.mu.Unlock()
		return
	}
	p := m.parents[tree]
	m.mu.Unlock()
	m.send(proto.Message{Type: proto.TypeComplaint, Tree: &tree, Parent: uint64(p), Reason: reason})
}

// ShowEvidence tells the tracker that from, a neighbour that feeds the
// node (now or a moment ago), sent data that fails the channel's
// signature, and shows the bytes (proto.Message's Manifest and
// Fragment): a manifest whose signature fails (fragment nil), or the
// verified manifest and a fragment of tree that does not match it. The
// tracker checks them itself; if they check, from is demoted, and if it
// was proven bad before, evicted.
func (m *Member) ShowEvidence(tree int, from forest.PeerID, manifest, fragment []byte) {
	msg := proto.Message{Type: proto.TypeComplaint, Tree: &tree, Parent: uint64(from), Reason: proto.ReasonCorrupt,
		Manifest: base64.StdEncoding.EncodeToString(manifest)}
	if fragment != nil {
		msg.Fragment = base64.StdEncoding.EncodeToString(fragment)
	}
	m.send(msg)
}

// ReportFlood tells the tracker that from, a neighbour, keeps sending the
// node data it does not feed it (of tree). Distinct neighbours' reports
// demote it; no single report does.
func (m *Member) ReportFlood(tree int, from forest.PeerID) {
	m.send(proto.Message{Type: proto.TypeComplaint, Tree: &tree, Reason: proto.ReasonFlood, Sender: uint64(from)})
}

// Report sends the node's stats to the tracker, for everyone to see.
func (m *Member) Report(r proto.PeerReport) {
	m.send(proto.Message{Type: proto.TypeReport, Stats: &r})
}

// RelayStats sums what the node sent to its children: bytes and distinct
// children now, and bytes dropped for slow children.
func (m *Member) RelayStats() (sent, dropped uint64, children int) {
	sent, dropped = m.retiredRelay.Load(), m.retiredDropped.Load()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range m.nbrs {
		st := n.queue.Stats()
		sent += st.SentBytes
		dropped += st.DroppedBytes
		if n.childOf != 0 {
			children++
		}
	}
	return sent, dropped, children
}

// Close leaves the swarm: it closes every link and the tracker session
// (the tracker sees the connection close and repairs at once) and stops
// every goroutine. Safe to call twice.
func (m *Member) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	links := make([]*neighbour, 0, len(m.nbrs))
	for _, n := range m.nbrs {
		links = append(links, n)
	}
	m.mu.Unlock()
	m.cancel()
	for _, n := range links {
		if l := n.d.link.Swap(nil); l != nil {
			l.Close()
		}
	}
	m.wg.Wait()
	return nil
}
