package swarm

import (
	"time"

	"github.com/coopcast/coopcast/internal/forest"
	"github.com/coopcast/coopcast/tracker"
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

// FallbackURL is the origin's HTTP fallback base URL.
func (m *Member) FallbackURL() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fbURL
}

// Complain tells the tracker that the parent in tree is silent (reason
// "silent") or sent data that failed verification ("corrupt").
func (m *Member) Complain(tree int, reason string) {
	m.mu.Lock()
	if tree < 0 || tree >= m.trees || !m.hasParent[tree] {
		m.mu.Unlock()
		return
	}
	p := m.parents[tree]
	m.mu.Unlock()
	m.send(tracker.Message{Type: tracker.TypeComplaint, Tree: &tree, Parent: uint64(p), Reason: reason})
}

// Report sends the node's stats to the tracker, for everyone to see.
func (m *Member) Report(r tracker.PeerReport) {
	m.send(tracker.Message{Type: tracker.TypeReport, Stats: &r})
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
