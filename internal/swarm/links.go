package swarm

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/coopcast/coopcast/internal/forest"
	"github.com/coopcast/coopcast/internal/proto"
	"github.com/coopcast/coopcast/internal/relay"
	"github.com/coopcast/coopcast/internal/rtc"
)

// linkGrace keeps a link to a former neighbour open a little, since a
// repair often pairs the same two peers again at once.
const linkGrace = 5 * time.Second

var errNoLink = errors.New("swarm: no link yet")

// nbr is the mutable part of a neighbour reached from the data path.
type nbr struct {
	link   atomic.Pointer[rtc.Link]
	opened atomic.Int64 // unix ns when the current link's channel opened; 0: not open
}

// Send and Buffered make a neighbour the relay.Sender of its queue.
func (n *neighbour) Send(b []byte) error {
	l := n.d.link.Load()
	if l == nil {
		return errNoLink
	}
	return l.Send(b)
}

// Buffered is the link's unsent bytes.
func (n *neighbour) Buffered() uint64 {
	if l := n.d.link.Load(); l != nil {
		return l.Buffered()
	}
	return 0
}

// neighbourLocked returns the neighbour for id, creating it. m.mu held.
func (m *Member) neighbourLocked(id forest.PeerID, kind string) *neighbour {
	n := m.nbrs[id]
	if n == nil {
		n = &neighbour{id: id, kind: kind, d: &nbr{}}
		n.queue = relay.NewQueue(n, m.cfg.Relay)
		m.nbrs[id] = n
	}
	if kind != "" {
		n.kind = kind
	}
	return n
}

// assign applies one tracker assignment.
func (m *Member) assign(msg proto.Message) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	tree := *msg.Tree
	bit := uint64(1) << tree
	switch msg.Type {
	case proto.TypeAssignParent:
		p := forest.PeerID(msg.Parent)
		keep := msg.Keep != nil && m.hasParent[tree] && m.parents[tree] != p
		switch {
		case keep && m.parents[tree] == forest.PeerID(*msg.Keep):
			// Make-before-break: the parent we have becomes the drain.
			old := m.parents[tree]
			m.dropDrainLocked(tree)
			if n := m.nbrs[old]; n != nil {
				n.parentOf &^= bit
			}
			m.hasParent[tree] = false
			m.startDrainLocked(tree, old)
			m.lostAt[tree] = time.Time{}
		case msg.Keep != nil && m.hasDrain[tree] && m.drain[tree] == forest.PeerID(*msg.Keep):
			// Moved again before the new edge delivered: keep the drain.
			m.dropParentLocked(tree)
			m.lostAt[tree] = time.Time{}
		case msg.Keep != nil:
			m.dropDrainLocked(tree)
			m.dropParentLocked(tree)
			m.lostAt[tree] = time.Time{}
		default:
			// A new parent with no remove-parent first and nothing to
			// keep means the old one is gone (it failed or left): a
			// repair. Moves say keep (or remove-parent).
			if m.hasParent[tree] && m.parents[tree] != p {
				m.lostAt[tree] = time.Now()
			} else if !m.hasParent[tree] {
				m.lostAt[tree] = time.Time{}
			}
			m.dropDrainLocked(tree)
			m.dropParentLocked(tree)
		}
		m.unconfirmed.Or(1 << tree) // confirm the edge's first data (again, for a confirmation)
		m.parents[tree], m.hasParent[tree], m.fallback[tree] = p, true, false
		n := m.neighbourLocked(p, msg.PeerKind)
		n.parentOf |= bit
		m.ensureLinkLocked(n)
		m.publishSendersLocked()
	case proto.TypeRemoveParent:
		switch {
		case m.hasParent[tree] && m.parents[tree] == forest.PeerID(msg.Parent):
			m.dropParentLocked(tree)
		case m.hasDrain[tree] && m.drain[tree] == forest.PeerID(msg.Parent):
			m.dropDrainLocked(tree)
		}
		m.publishSendersLocked()
	case proto.TypeFallback:
		m.dropDrainLocked(tree)
		m.dropParentLocked(tree)
		m.fallback[tree] = true
		if msg.URL != "" {
			m.fbURL = msg.URL
		}
		m.publishSendersLocked()
	case proto.TypeAssignChild:
		n := m.neighbourLocked(forest.PeerID(msg.Child), msg.PeerKind)
		n.childOf |= bit
		m.ensureLinkLocked(n)
		m.rebuildChildrenLocked(tree)
		if n.d.opened.Load() != 0 {
			m.readyLocked(n.id, bit)
		}
	case proto.TypeRemoveChild:
		if n := m.nbrs[forest.PeerID(msg.Child)]; n != nil {
			n.childOf &^= bit
			m.rebuildChildrenLocked(tree)
			m.releaseLocked(n)
		}
	}
}

// startDrainLocked makes old the tree's drain: it keeps feeding us until
// the new parent delivers (Delivered), or drainTimeout passes.
func (m *Member) startDrainLocked(tree int, old forest.PeerID) {
	n := m.nbrs[old]
	if n == nil {
		return
	}
	n.drainOf |= 1 << tree
	m.drain[tree], m.hasDrain[tree] = old, true
	m.drainGen++
	gen := m.drainGen
	time.AfterFunc(drainTimeout, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if !m.closed && m.drainGen == gen && m.hasDrain[tree] && m.drain[tree] == old {
			m.dropDrainLocked(tree)
			m.publishSendersLocked()
		}
	})
}

// dropDrainLocked stops taking the tree from its former parent.
func (m *Member) dropDrainLocked(tree int) {
	if !m.hasDrain[tree] {
		return
	}
	m.hasDrain[tree] = false
	if n := m.nbrs[m.drain[tree]]; n != nil {
		n.drainOf &^= 1 << tree
		m.releaseLocked(n)
	}
	m.drain[tree] = 0
}

// drainTimeout bounds a drain on our side; the tracker releases the old
// parent on its side after the same time (tracker's handoffTimeout).
const drainTimeout = 6 * time.Second

// treeSenders is who may send us one tree's data.
type treeSenders struct {
	parent, drain       forest.PeerID
	hasParent, hasDrain bool
}

// publishSendersLocked refreshes the lock-free copy of who may send what.
func (m *Member) publishSendersLocked() {
	v := make([]treeSenders, m.trees)
	for i := range v {
		v[i] = treeSenders{parent: m.parents[i], hasParent: m.hasParent[i], drain: m.drain[i], hasDrain: m.hasDrain[i]}
	}
	m.senders.Store(&v)
}

func (m *Member) dropParentLocked(tree int) {
	if !m.hasParent[tree] {
		return
	}
	m.hasParent[tree] = false
	if n := m.nbrs[m.parents[tree]]; n != nil {
		n.parentOf &^= 1 << tree
		m.releaseLocked(n)
	}
	m.parents[tree] = 0
}

func (m *Member) rebuildChildrenLocked(tree int) {
	var kids []*neighbour
	bit := uint64(1) << tree
	for _, n := range m.nbrs {
		if n.childOf&bit != 0 {
			kids = append(kids, n)
		}
	}
	all := make([][]*neighbour, m.trees)
	if old := m.kids.Load(); old != nil {
		copy(all, *old)
	}
	all[tree] = kids
	m.kids.Store(&all)
}

// releaseLocked closes the link to a peer we no longer share a tree with,
// after linkGrace, unless it is paired with us again by then.
func (m *Member) releaseLocked(n *neighbour) {
	if n.parentOf|n.childOf|n.drainOf != 0 {
		return
	}
	time.AfterFunc(linkGrace, func() {
		m.mu.Lock()
		if m.nbrs[n.id] != n || n.parentOf|n.childOf|n.drainOf != 0 {
			m.mu.Unlock()
			return
		}
		delete(m.nbrs, n.id)
		m.retire(n)
		m.mu.Unlock()
		if l := n.d.link.Swap(nil); l != nil {
			l.Close()
		}
	})
}

// retire keeps a departing neighbour's relay counters in the totals.
func (m *Member) retire(n *neighbour) {
	st := n.queue.Stats()
	m.retiredRelay.Add(st.SentBytes)
	m.retiredDropped.Add(st.DroppedBytes)
}

// ensureLinkLocked starts a link to n if there is none. The peer with the
// lower id offers (the origin, id 0, always does); the other waits.
func (m *Member) ensureLinkLocked(n *neighbour) {
	if m.closed || n.d.link.Load() != nil || n.dialing || m.id >= n.id {
		return
	}
	n.dialing = true
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.dial(n)
	}()
}

func (m *Member) dial(n *neighbour) {
	defer func() {
		m.mu.Lock()
		n.dialing = false
		m.mu.Unlock()
	}()
	if m.ctx.Err() != nil {
		return
	}
	m.mu.Lock()
	m.attempts++
	gen := m.attempts
	n.gen, n.dialLink, n.answer = gen, nil, nil
	m.mu.Unlock()
	link, err := m.ep.Dial(func(s rtc.Signal) error {
		m.send(proto.Message{Type: proto.TypeSignal, To: uint64(n.id), SDP: s.SDP, Candidate: s.Candidate, Link: gen})
		return nil
	})
	if err != nil {
		m.log.Warn("dial neighbour", "peer", n.id, "err", err)
		return
	}
	m.mu.Lock()
	if m.closed || n.gen != gen || m.nbrs[n.id] != n {
		m.mu.Unlock()
		link.Close()
		return
	}
	// From here an answer for gen goes straight to link; one that came
	// while Dial was gathering waits in n.answer.
	n.dialLink = link
	ans := n.answer
	n.answer = nil
	m.mu.Unlock()
	m.install(n, link)
	if ans != nil {
		if err := link.HandleSignal(*ans); err != nil {
			m.log.Warn("answer from neighbour", "peer", n.id, "err", err)
		}
	}
}

// install makes link n's link and wires its callbacks.
func (m *Member) install(n *neighbour, link *rtc.Link) {
	if old := n.d.link.Swap(link); old != nil && old != link {
		old.Close()
	}
	link.OnMessage(func(b []byte) { m.h.Data(n.id, b) })
	link.OnBufferedLow(relay.DefaultLowWater, n.queue.Pump)
	n.d.opened.Store(0)
	link.OnOpen(func() {
		n.d.opened.Store(time.Now().UnixNano())
		n.queue.Pump()
		m.mu.Lock()
		if n.childOf != 0 {
			m.readyLocked(n.id, n.childOf)
		}
		m.mu.Unlock()
	})
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		link.Close()
		return
	}
	m.wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		select {
		case <-m.ctx.Done():
			link.Close()
			return
		case <-link.Done():
		}
		link.Close()
		m.mu.Lock()
		defer m.mu.Unlock()
		if !n.d.link.CompareAndSwap(link, nil) || m.closed {
			return
		}
		n.d.opened.Store(0)
		m.log.Info("link to neighbour lost", "peer", n.id)
		if m.nbrs[n.id] == n && n.parentOf|n.childOf|n.drainOf != 0 {
			// Still paired: try again (the lower id re-offers).
			time.AfterFunc(time.Second, func() {
				m.mu.Lock()
				defer m.mu.Unlock()
				if !m.closed && m.nbrs[n.id] == n {
					m.ensureLinkLocked(n)
				}
			})
		}
	}()
}

// onSignal takes a signal the tracker relayed from a neighbour. attempt
// is the link attempt it belongs to (see proto.Message.Link).
func (m *Member) onSignal(from forest.PeerID, s rtc.Signal, attempt uint64) {
	m.mu.Lock()
	n := m.nbrs[from]
	if m.closed || n == nil || n.parentOf|n.childOf|n.drainOf == 0 {
		// The tracker pairs two peers before either signals, and tells
		// this side first: a signal from anyone else is stale.
		m.mu.Unlock()
		m.log.Debug("signal from a peer we are not paired with", "peer", from)
		return
	}
	switch {
	case s.SDP != nil && s.SDP.Type.String() == "offer":
		if attempt != 0 && attempt < n.accepted {
			m.mu.Unlock()
			return // an older attempt than one already answered
		}
		n.accepted = attempt
		m.wg.Add(1) // under mu, with closed checked: Close's Wait sees it
		m.mu.Unlock()
		go func() {
			defer m.wg.Done()
			link, err := m.ep.Accept(s, func(a rtc.Signal) error {
				m.send(proto.Message{Type: proto.TypeSignal, To: uint64(from), SDP: a.SDP, Link: attempt})
				return nil
			})
			if err != nil {
				m.log.Warn("accept neighbour", "peer", from, "err", err)
				return
			}
			m.mu.Lock()
			stale := m.closed || n.accepted != attempt || m.nbrs[from] != n
			m.mu.Unlock()
			if stale {
				link.Close()
				return
			}
			m.install(n, link)
		}()
	case s.SDP != nil:
		// An answer: it belongs to the dial under way, or to none.
		if attempt != n.gen {
			m.mu.Unlock()
			m.log.Debug("answer for an old link attempt", "peer", from, "attempt", attempt, "current", n.gen)
			return
		}
		l := n.dialLink
		if l == nil {
			n.answer = &s
			m.mu.Unlock()
			return
		}
		m.mu.Unlock()
		if err := l.HandleSignal(s); err != nil {
			m.log.Warn("answer from neighbour", "peer", from, "err", err)
		}
	default:
		l := n.d.link.Load()
		m.mu.Unlock()
		if l == nil {
			return
		}
		if err := l.HandleSignal(s); err != nil {
			m.log.Warn("signal from neighbour", "peer", from, "err", err)
		}
	}
}

// readyLocked tells the handler, off the lock, that a child is ready.
func (m *Member) readyLocked(id forest.PeerID, trees uint64) {
	if m.closed {
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.h.ChildReady(id, trees)
	}()
}

// SendTo sends msg, part of chunk seq, to one neighbour through its queue.
func (m *Member) SendTo(id forest.PeerID, seq uint32, msg []byte) {
	m.mu.Lock()
	n := m.nbrs[id]
	m.mu.Unlock()
	if n != nil {
		n.queue.Push(seq, msg)
	}
}

// Fanout sends msg, part of chunk seq, to every child in tree, through
// each child's bounded queue. It never blocks.
func (m *Member) Fanout(tree int, seq uint32, msg []byte) {
	all := m.kids.Load()
	if all == nil || tree < 0 || tree >= len(*all) {
		return
	}
	for _, n := range (*all)[tree] {
		n.queue.Push(seq, msg)
	}
}
