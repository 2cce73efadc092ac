package tracker

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/coopcast/coopcast/internal/forest"
	"github.com/coopcast/coopcast/internal/proto"
	"github.com/coopcast/coopcast/internal/ticket"
)

// channel is one live stream: its forest and the clients in it.
type channel struct {
	srv         *Server
	id          string
	trees, k    int
	bitrate     int64
	stripeRate  int64
	publicKey   string
	fallbackURL string
	media       *proto.Media // what the origin said the stream is
	ticketKey   []byte       // signs fallback tickets; nil: the origin sent none (guarded by mu)
	epoch       uint64       // the stream epoch of the origin's newest run (guarded by mu)
	created     time.Time

	// mu is the channel's critical section: every forest event, and the
	// turning of its decisions into queued messages, happens under it, so
	// each client sees its assignments in the forest's order. It guards
	// every field below, and each member client's kids. Lock order:
	// Server.mu, then channel.mu, then client.closeMu.
	mu       sync.Mutex
	retired  bool // removed from the server: refuses new clients
	f        *forest.Forest
	origin   *client
	peers    map[forest.PeerID]*client
	reports  map[forest.PeerID]proto.PeerReport
	recent   map[pair]time.Time  // recently linked pairs, for signaling
	handoffs map[edgeKey]handoff // make-before-break moves under way
	trust    map[forest.PeerID]*trust
	strikes  map[forest.PeerID]strike // peers demoted or evicted, remembered after they leave
	// held: silence complaints about a parent whose probe is under way,
	// by parent; acted on when it answers, dropped when it is declared
	// failed (its removal moves every child at once).
	held         map[forest.PeerID][]heldComplaint
	restoreUntil time.Time
	settled      bool
	joins        uint64
	leaves       uint64
	repairs      uint64
	demotions    uint64 // peers whose slots were cut (any reason)
	evictions    uint64 // peers evicted for cheating
	originGone   time.Time
	// handoffsStarted, handoffsDone (the new edge delivered) and
	// handoffsExpired (it did not in handoffTimeout) count the moves.
	handoffsStarted, handoffsDone, handoffsExpired uint64
	// forestVer counts changes to the forest, reportVer changes to the
	// reports: the /forest cache is rebuilt when they move.
	forestVer uint64
	reportVer uint64

	snap snapCache // /forest as JSON; has its own lock, taken before mu
}

type pair struct{ a, b forest.PeerID }

func mkpair(a, b forest.PeerID) pair {
	if a > b {
		a, b = b, a
	}
	return pair{a, b}
}

// signalGrace is how long a pair may still signal after being unlinked, so
// a connection being set up when a repair moved a peer can finish cleanly.
const signalGrace = 10 * time.Second

func newChannel(s *Server, id string, trees, k int, bitrate int64, key, fallback string) (*channel, error) {
	fc := s.cfg.Forest
	fc.Trees = trees
	f, err := forest.New(fc)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	return &channel{
		srv: s, id: id, trees: trees, k: k, bitrate: bitrate,
		stripeRate: (bitrate + int64(k) - 1) / int64(k),
		publicKey:  key, fallbackURL: fallback, created: now,
		f: f, peers: make(map[forest.PeerID]*client), reports: make(map[forest.PeerID]proto.PeerReport),
		recent: make(map[pair]time.Time), handoffs: make(map[edgeKey]handoff), trust: make(map[forest.PeerID]*trust), strikes: make(map[forest.PeerID]strike), held: make(map[forest.PeerID][]heldComplaint),
		restoreUntil: now.Add(s.cfg.RestoreWindow),
	}, nil
}

// attachOrigin makes c the channel's origin, or refuses if the stream's
// shape or key differ from the channel's. An origin that reconnects, or
// restarts with the channel's key, takes the channel over, replacing the
// old connection if the tracker has not noticed it dead yet (it holds the
// publish token and the channel's key); the peers keep their places. One
// of an older run than the channel's (a smaller epoch) is refused, so two
// origin processes cannot take turns. ok is false if the channel has been
// retired: look it up again.
func (ch *channel) attachOrigin(c *client, m proto.Message) (fatal string, ok bool) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.retired {
		return "", false
	}
	if m.PublicKey != ch.publicKey || (m.Trees != 0 && m.Trees != ch.trees) || (m.K != 0 && m.K != ch.k) {
		return c.fatalError(proto.CodeOriginLive, fmt.Sprintf("channel %q is live with another key or shape; use another channel id or wait until it empties", ch.id)), true
	}
	if m.Epoch < ch.epoch {
		return c.fatalError(proto.CodeOriginLive, fmt.Sprintf("channel %q is live with a newer run of its origin (epoch %d, yours %d); stop this one", ch.id, ch.epoch, m.Epoch)), true
	}
	ch.epoch = m.Epoch
	if old := ch.origin; old != nil {
		ch.srv.log.Warn("origin replaced by a newer connection", "channel", ch.id, "old_ip", old.ip, "ip", c.ip)
		old.kill(websocket.StatusPolicyViolation, "replaced by a newer connection of the origin")
		ch.origin = nil
	}
	if m.Bitrate != ch.bitrate {
		ch.bitrate = m.Bitrate
		ch.stripeRate = (m.Bitrate + int64(ch.k) - 1) / int64(ch.k)
	}
	if m.FallbackURL != "" {
		ch.fallbackURL = m.FallbackURL
	}
	ch.media = m.Media
	key, _ := base64.StdEncoding.DecodeString(m.TicketKey) // checked by proto.Decode
	if !bytes.Equal(key, ch.ticketKey) {
		// A new key (a new origin run that does not derive it from the
		// channel key): every peer's ticket is void, so send fresh ones now.
		ch.ticketKey = key
		for _, p := range ch.peers {
			ch.sendTicketLocked(p, time.Now())
		}
	}
	c.ch, c.id, c.isOrigin, c.kind = ch, forest.Origin, true, forest.Native
	ch.origin = c
	ch.originGone = time.Time{}
	c.send(proto.Message{Type: proto.TypePublished, Channel: ch.id, Trees: ch.trees, K: ch.k, Bitrate: ch.bitrate, Epoch: ch.epoch,
		StripeRate: ch.stripeRate, HeartbeatMS: ch.srv.cfg.HeartbeatInterval.Milliseconds(), ICEServers: ch.srv.cfg.ICEServers})
	// A reconnecting origin learns its children again. (The forest has no
	// per-node children accessor, so this walks it; origins reconnect
	// rarely.)
	ch.f.Each(func(v forest.NodeView) bool {
		for i, t := range v.Trees {
			if !t.Fallback && !t.Pending && t.Parent == forest.Origin {
				ch.tell(c, proto.Message{Type: proto.TypeAssignChild, Tree: intp(i), Child: uint64(v.ID), PeerKind: v.Kind.String()})
			}
		}
		return true
	})
	ch.srv.log.Info("origin published", "channel", ch.id, "trees", ch.trees, "k", ch.k, "bitrate", ch.bitrate, "epoch", ch.epoch, "ip", c.ip)
	return "", true
}

// join places a new peer, restores one after a tracker restart, or hands
// a reconnecting peer's place to its new connection. ok is false if the
// channel has been retired: look it up again.
func (ch *channel) join(c *client, m proto.Message) (fatal string, ok bool) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.retired {
		return "", false
	}
	kind := forest.Browser
	if m.Kind == "native" {
		kind = forest.Native
	}
	p := forest.Peer{Kind: kind, Slots: forest.Slots(m.UploadKbps*1000, ch.stripeRate, maxSlots(ch.srv.cfg.Forest))}

	var id forest.PeerID
	var ds []forest.Decision
	var err error
	restored := false
	if r := m.Resume; r != nil {
		rid := forest.PeerID(r.PeerID)
		if st, ok := ch.strikes[rid]; ok && st.evicted && time.Now().Before(st.until) {
			return c.fatalError(proto.CodeEvicted, fmt.Sprintf("peer %d was evicted from channel %q for cheating (%s); its resume token is refused until %s",
				rid, ch.id, st.reason, st.until.UTC().Format(time.RFC3339))), true
		}
		switch {
		case rid == forest.Origin || !ch.srv.validToken(ch.id, rid, r.Token):
			c.sendError(proto.CodeResumeRefused, "resume token not valid on this tracker (it restarted with another resume secret, or the token is for another channel); you join as a new peer")
		case ch.peers[rid] != nil:
			return ch.takeOver(c, ch.peers[rid], p), true
		case len(ch.peers) >= ch.srv.cfg.MaxPeersPerChannel:
			// refused below
		case len(r.Parents) == ch.trees && time.Now().Before(ch.restoreUntil) && !ch.settled:
			parents := make([]forest.PeerID, ch.trees)
			for i, q := range r.Parents {
				parents[i] = forest.PeerID(q)
			}
			id = rid
			ds, err = ch.f.Restore(id, p, r.Home, parents)
			restored = err == nil
			if err != nil {
				ch.srv.log.Info("restore refused; placing afresh", "channel", ch.id, "peer", id, "err", err)
			}
		default:
			id = rid // a reconnect: keep the id, place afresh
		}
	}
	if len(ch.peers) >= ch.srv.cfg.MaxPeersPerChannel {
		return c.fatalError(proto.CodeChannelFull, fmt.Sprintf("channel %q is full (%d peers); try again later", ch.id, ch.srv.cfg.MaxPeersPerChannel)), true
	}
	// Trust is earned: a new peer starts on probation, whatever upload it
	// declares (trust.go). One restored after a tracker restart earned its
	// slots before; one demoted lately comes back a leaf.
	tr := &trust{declared: p.Slots, vouched: restored, probation: ch.srv.cfg.ProbationSlots}
	if st, ok := ch.strikes[id]; ok && id != 0 && time.Now().Before(st.until) {
		tr.demoted = st.reason
	}
	if !restored {
		p.Slots = tr.ceiling()
		if id == 0 {
			for id = newPeerID(); ; id = newPeerID() {
				if _, ok := ch.f.Node(id); !ok {
					break
				}
			}
		}
		ds, err = ch.f.Join(id, p)
	}
	if err != nil {
		ch.srv.log.Error("forest join", "channel", ch.id, "peer", id, "err", err)
		return c.fatalError(proto.CodeBadJoin, fmt.Sprintf("join: %v", err)), true
	}
	c.ch, c.id, c.kind = ch, id, kind
	ch.peers[id] = c
	t := ch.trustLocked(id)
	t.declared, t.vouched, t.demoted = tr.declared, tr.vouched, tr.demoted
	ch.joins++
	ch.srv.metrics.joins.Inc()
	ch.welcome(c)
	ch.apply(ds, false)
	ch.gauges()
	ch.srv.log.Debug("peer joined", "channel", ch.id, "peer", id, "kind", kind, "slots", p.Slots, "restored", restored)
	return "", true
}

func (ch *channel) welcome(c *client) {
	v, _ := ch.f.Node(c.id)
	now := time.Now()
	c.ticketAt = now
	c.send(proto.Message{
		Type: proto.TypeWelcome, Channel: ch.id, PeerID: uint64(c.id), ResumeToken: ch.srv.token(ch.id, c.id), Ticket: ch.ticketLocked(c.id, now),
		Trees: ch.trees, K: ch.k, Bitrate: ch.bitrate, StripeRate: ch.stripeRate, PublicKey: ch.publicKey, Epoch: ch.epoch,
		FallbackURL: ch.fallbackURL, ICEServers: ch.srv.cfg.ICEServers,
		HeartbeatMS: ch.srv.cfg.HeartbeatInterval.Milliseconds(), Home: intp(v.Home),
	})
}

// ticketLocked mints peer's fallback ticket ("" if the origin gave no
// ticket key).
func (ch *channel) ticketLocked(peer forest.PeerID, now time.Time) string {
	if ch.ticketKey == nil {
		return ""
	}
	return ticket.Mint(ch.ticketKey, ch.id, uint64(peer), now.Add(ch.srv.cfg.TicketTTL))
}

// sendTicketLocked sends c a fresh fallback ticket.
func (ch *channel) sendTicketLocked(c *client, now time.Time) {
	if t := ch.ticketLocked(c.id, now); t != "" {
		c.ticketAt = now
		c.send(proto.Message{Type: proto.TypeTicket, Ticket: t})
	}
}

// takeOver gives old's place in the forest to c, a newer connection of
// the same peer (it proved it with its resume token) that arrived before
// the tracker noticed old was gone. The forest does not change, so the
// peer's data links and its neighbours are untouched; c is sent the
// peer's whole place, since what was sent to old may have been lost.
func (ch *channel) takeOver(c, old *client, p forest.Peer) string {
	ch.srv.log.Info("peer reconnected; replacing its old connection", "channel", ch.id, "peer", old.id, "ip", c.ip)
	old.kill(websocket.StatusPolicyViolation, "replaced by a newer connection of the same peer")
	c.ch, c.id, c.kind = ch, old.id, old.kind
	c.kids, old.kids = old.kids, nil
	ch.peers[c.id] = c
	ch.joins++
	ch.srv.metrics.joins.Inc()
	ch.welcome(c)
	v, _ := ch.f.Node(c.id)
	for i, t := range v.Trees {
		switch {
		case t.Pending:
		case t.Fallback:
			c.send(proto.Message{Type: proto.TypeFallback, Tree: intp(i), URL: ch.fallbackURL})
		default:
			c.send(proto.Message{Type: proto.TypeAssignParent, Tree: intp(i), Parent: uint64(t.Parent), PeerKind: ch.kindOf(t.Parent)})
		}
	}
	for _, e := range c.kids {
		c.send(proto.Message{Type: proto.TypeAssignChild, Tree: intp(e.tree), Child: uint64(e.child), PeerKind: ch.kindOf(e.child)})
	}
	// A new connection may offer other upload (relaying switched off or
	// on), but it cannot undo a cut its children's complaints caused.
	slots := ch.trustLocked(c.id).offer(p.Slots)
	if slots != v.Slots {
		if ds, err := ch.f.SetSlots(c.id, slots); err == nil {
			ch.apply(ds, true)
		}
	}
	ch.gauges()
	return ""
}

// kindOf names the kind of a member ("native" for the origin or one that
// is not connected).
func (ch *channel) kindOf(id forest.PeerID) string {
	if c := ch.client(id); c != nil {
		return c.kind.String()
	}
	return forest.Native.String()
}

// tell sends m to c and records the children c is told it feeds.
func (ch *channel) tell(c *client, m proto.Message) {
	c.told(m)
	c.send(m)
}

func maxSlots(c forest.Config) int {
	if c.MaxSlots == 0 {
		return 16
	}
	return c.MaxSlots
}

// remove takes c out of the channel (it left, failed or was dropped) and
// repairs the trees it fed.
func (ch *channel) remove(c *client) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.removeLocked(c)
}

func (ch *channel) removeLocked(c *client) {
	if c.isOrigin {
		if ch.origin == c {
			ch.origin = nil
			ch.originGone = time.Now()
			ch.srv.log.Warn("origin gone", "channel", ch.id)
		}
		return
	}
	if ch.peers[c.id] != c {
		return
	}
	delete(ch.peers, c.id)
	delete(ch.reports, c.id)
	delete(ch.held, c.id)
	ch.dropHandoffsLocked(c.id)
	ch.forgetTrustLocked(c.id)
	ds, err := ch.f.Leave(c.id)
	if err != nil {
		ch.srv.log.Error("forest leave", "channel", ch.id, "peer", c.id, "err", err)
		return
	}
	ch.leaves++
	ch.srv.metrics.leaves.Inc()
	ch.apply(ds, true)
	ch.gauges()
}

// apply turns forest decisions into messages. repair marks decisions that
// repair damage (a departure, a complaint), counted as repairs. Moves of
// a peer whose old parent is still connected are made before they break
// (see handoff.go).
func (ch *channel) apply(ds []forest.Decision, repair bool) {
	ch.applyWith(ds, repair, true)
}

// applyWith is apply; makeBeforeBreak false cuts every old edge at once
// (the old parent sent corrupt data: nothing more is taken from it).
func (ch *channel) applyWith(ds []forest.Decision, repair, makeBeforeBreak bool) {
	now := time.Now()
	var moves map[edgeKey]int
	if makeBeforeBreak {
		moves = movesIn(ds)
	}
	var keep map[edgeKey]forest.PeerID // moves under way in this batch: the old parent
	for i, d := range ds {
		tree := intp(d.Tree)
		k := edgeKey{d.Peer, d.Tree}
		if h, ok := ch.handoffs[k]; ok {
			ch.releaseOldLocked(k, h) // a newer change to the edge ends an older handoff
		}
		switch d.Op {
		case forest.Attach:
			ch.recent[mkpair(d.Peer, d.Parent)] = now.Add(signalGrace)
			child, parent := ch.client(d.Peer), ch.client(d.Parent)
			msg := proto.Message{Type: proto.TypeAssignParent, Tree: tree, Parent: uint64(d.Parent), PeerKind: ch.kindOf(d.Parent)}
			if old, ok := keep[k]; ok {
				o := uint64(old)
				msg.Keep = &o
				ch.handoffs[k] = handoff{old: old, new: d.Parent, until: now.Add(handoffTimeout)}
				ch.handoffsStarted++
			}
			if child != nil {
				child.send(msg)
			}
			if parent != nil && child != nil {
				ch.tell(parent, proto.Message{Type: proto.TypeAssignChild, Tree: tree, Child: uint64(d.Peer), PeerKind: child.kind.String()})
			}
			if repair {
				ch.repairs++
				ch.srv.metrics.repairs.Inc()
			}
		case forest.Detach:
			ch.recent[mkpair(d.Peer, d.Parent)] = now.Add(signalGrace)
			if j, ok := moves[k]; ok && j == i && ch.client(d.Parent) != nil && ch.client(d.Peer) != nil {
				// A move: the old parent keeps feeding until the new edge
				// delivers; both hear of it then.
				if keep == nil {
					keep = map[edgeKey]forest.PeerID{}
				}
				keep[k] = d.Parent
				continue
			}
			if parent := ch.client(d.Parent); parent != nil {
				ch.tell(parent, proto.Message{Type: proto.TypeRemoveChild, Tree: tree, Child: uint64(d.Peer)})
			}
			if child := ch.client(d.Peer); child != nil {
				child.send(proto.Message{Type: proto.TypeRemoveParent, Tree: tree, Parent: uint64(d.Parent)})
			}
		case forest.Fallback:
			if child := ch.client(d.Peer); child != nil {
				child.send(proto.Message{Type: proto.TypeFallback, Tree: tree, URL: ch.fallbackURL})
			}
		}
	}
}

// client returns the connected client for id; the origin for 0.
func (ch *channel) client(id forest.PeerID) *client {
	if id == forest.Origin {
		return ch.origin
	}
	return ch.peers[id]
}

// gauges updates the channel's metrics after a change to the forest;
// every path that changes the forest ends here, so it also counts the
// change for the /forest cache.
func (ch *channel) gauges() {
	ch.forestVer++
	st := ch.f.Stats()
	m := ch.srv.metrics
	m.peers.WithLabelValues(ch.id).Set(float64(st.Peers))
	m.fallback.WithLabelValues(ch.id).Set(float64(st.FallbackPeers))
	for i, d := range st.MaxDepth {
		m.depth.WithLabelValues(ch.id, treeLabel(i)).Set(float64(d))
	}
}

func (ch *channel) signal(c *client, m proto.Message) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	to := forest.PeerID(m.To)
	if !ch.f.Linked(c.id, to) && time.Now().After(ch.recent[mkpair(c.id, to)]) {
		ch.srv.bad.drop(c.ip, uint64(c.id), fmt.Errorf("signal to unpaired peer %d", to))
		c.sendError(proto.CodeNotPaired, fmt.Sprintf("peer %d is not your parent or child: signal only the peers the tracker assigned", to))
		return
	}
	target := ch.client(to)
	if target == nil {
		c.sendError(proto.CodeNotPaired, fmt.Sprintf("peer %d is not connected", to))
		return
	}
	from := uint64(c.id)
	target.send(proto.Message{Type: proto.TypeSignal, From: &from, SDP: m.SDP, Candidate: m.Candidate, Link: m.Link})
	ch.srv.metrics.relayed.Inc()
}

// treeOf returns the tree a message names, or tells the client it is out
// of range.
func (ch *channel) treeOf(c *client, m proto.Message) (int, bool) {
	tree := *m.Tree
	if tree < 0 || tree >= ch.trees {
		c.sendError(proto.CodeBadMessage, fmt.Sprintf("tree must be in [0, %d), got %d", ch.trees, tree))
		return 0, false
	}
	return tree, true
}

// complain handles "my parent in tree i sends nothing", "a neighbour
// sent me bad data, here are the bytes" (evidence.go) and "a neighbour
// floods me". For silence: a parent that has itself gone quiet is
// declared failed; otherwise the child moves, and a parent that distinct
// children report silent has its slots cut (trust.go).
func (ch *channel) complain(c *client, m proto.Message) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	tree, ok := ch.treeOf(c, m)
	if !ok {
		return
	}
	if c.isOrigin {
		c.sendError(proto.CodeState, "the origin has no parent to complain about")
		return
	}
	now := time.Now()
	if !ch.complaintAllowedLocked(c, now) {
		return
	}
	switch m.Reason {
	case proto.ReasonCorrupt:
		ch.corruptLocked(c, m, tree, now)
		return
	case proto.ReasonFlood:
		ch.floodLocked(c, m, now)
		return
	}
	parent, ok := ch.f.Parent(c.id, tree)
	if !ok || uint64(parent) != m.Parent {
		c.sendError(proto.CodeState, fmt.Sprintf("peer %d is not your parent in tree %d", m.Parent, tree))
		return
	}
	pc := ch.client(parent)
	ch.srv.log.Debug("complaint", "channel", ch.id, "parent", parent, "child", c.id, "tree", tree, "reason", m.Reason)
	if m.Reason == proto.ReasonStarved {
		// The child hears nothing from any parent while the origin is
		// ahead: as likely a hiccup upstream as parents that stopped.
		// Only the ping decides; if the parent answers, no one moves.
		if pc != nil && !pc.isOrigin && pc.idle(now) > 2*ch.srv.cfg.HeartbeatInterval {
			ch.srv.log.Info("complaint confirmed: parent silent", "channel", ch.id, "parent", parent, "child", c.id, "tree", tree)
			ch.removeLocked(pc)
			pc.kill(websocket.StatusPolicyViolation, "declared failed: a child reported you silent and you missed a heartbeat")
		} else if pc != nil && !pc.isOrigin {
			ch.probeLocked(pc)
		}
		return
	}
	if pc != nil && !pc.isOrigin && pc.idle(now) > 2*ch.srv.cfg.HeartbeatInterval {
		ch.srv.log.Info("complaint confirmed: parent silent", "channel", ch.id, "parent", parent, "child", c.id, "tree", tree)
		ch.removeLocked(pc)
		pc.kill(websocket.StatusPolicyViolation, "declared failed: a child reported you silent and you missed a heartbeat")
		return
	}
	if pc != nil && !pc.isOrigin && ch.probeLocked(pc) {
		// Held until the parent answers its ping (then acted on) or is
		// declared failed (then its removal moves all its children in
		// one go). When many children lose one parent, or many parents
		// stop at once, moving each complainer on its own would be work
		// under the lock for nothing, and could move it under another
		// parent that has stopped too.
		ch.held[parent] = append(ch.held[parent], heldComplaint{child: c, tree: tree})
		// The complainer is starved in this tree from now on, whatever
		// the probe says: its own children's complaints meanwhile must
		// not cut its slots (silentLocked records the same).
		ct := ch.trustLocked(c.id)
		if ct.complaint == nil {
			ct.complaint = map[int]time.Time{}
		}
		ct.complaint[tree] = now
		return
	}
	ch.moveComplainerLocked(c, parent, tree, now)
}

// heldComplaint is a silence complaint waiting for its parent's probe.
type heldComplaint struct {
	child *client
	tree  int
}

// releaseHeldLocked acts on the complaints held for parent, which
// answered its probe: each child still under it in that tree moves, as
// if it had just complained. ch.mu held.
func (ch *channel) releaseHeldLocked(parent forest.PeerID) {
	held := ch.held[parent]
	delete(ch.held, parent)
	now := time.Now()
	for _, h := range held {
		if ch.peers[h.child.id] != h.child {
			continue // gone since
		}
		if t := ch.trust[h.child.id]; t != nil && t.demoted != "" {
			continue // caught cheating since: its accusation is dropped
		}
		if p, ok := ch.f.Parent(h.child.id, h.tree); !ok || p != parent {
			continue // moved since
		}
		ch.moveComplainerLocked(h.child, parent, h.tree, now)
	}
}

// moveComplainerLocked moves child c away from parent in tree after its
// silence complaint, cutting the parent's slots when distinct children
// report it silent (trust.go). ch.mu held.
func (ch *channel) moveComplainerLocked(c *client, parent forest.PeerID, tree int, now time.Time) {
	if ch.silentLocked(parent, c.id, tree, now) {
		if p, ok := ch.f.Parent(c.id, tree); !ok || p != parent {
			ch.gauges()
			return // the cut moved this child too
		}
	}
	ds, err := ch.f.Complain(c.id, tree)
	if err != nil {
		ch.srv.log.Error("forest complain", "err", err)
		return
	}
	// Silence alone does not demote: a parent can be silent because its
	// own parent is (a starved subtree during a flash crowd); the child
	// has moved, which is the cure for silence.
	ch.apply(ds, true)
	ch.gauges()
}

// probeLocked pings c, a peer a child reports silent, over its WebSocket,
// unless a ping is already under way; if no pong comes within
// ProbeTimeout, c is declared failed. A stopped or frozen process, or a
// host gone quiet with its socket open, is thus replaced about a second
// after it stops (the child's cadence rule plus the probe) rather than at
// heartbeat expiry, 4–6 s later; and until then, repairs may move orphans
// onto it, since the forest still counts its free slots. A live parent
// answers within a round trip, even one starved by its own parent, so
// complaints alone (honest or not) never fail it; nor does a late pong
// from a peer that sent any message while the ping was out. It reports
// whether a probe of c is under way (started now or before): the
// complaint can then wait for its answer. ch.mu held.
func (ch *channel) probeLocked(c *client) bool {
	if c.conn == nil || ch.srv.cfg.ProbeTimeout == 0 {
		return false
	}
	if !c.probing.CompareAndSwap(false, true) {
		return true
	}
	s := ch.srv
	s.wg.Add(1) // the complaining client's session holds s.wg too: never 0 here
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(c.ctx, s.cfg.ProbeTimeout)
		sent := time.Now()
		err := c.conn.Ping(ctx)
		cancel()
		ch.mu.Lock()
		defer ch.mu.Unlock()
		// The flag drops under the lock, with the held complaints: one
		// held after it would wait for a probe that never comes.
		defer c.probing.Store(false)
		switch {
		case c.ctx.Err() != nil || ch.peers[c.id] != c:
			delete(ch.held, c.id) // gone anyway: its removal moved its children
			return
		case err == nil:
			s.log.Debug("probe answered", "channel", ch.id, "peer", c.id, "rtt", time.Since(sent))
			ch.releaseHeldLocked(c.id)
			ch.gauges()
			return
		case c.lastSeen.Load() > sent.UnixNano():
			// No pong in time, but a message came meanwhile: a live peer on
			// a loaded host (its pong, or our reading of it, is late). A
			// stopped one sends nothing.
			s.log.Info("probe unanswered, but the peer spoke meanwhile: kept", "channel", ch.id, "peer", c.id, "timeout", s.cfg.ProbeTimeout)
			ch.releaseHeldLocked(c.id)
			ch.gauges()
			return
		}
		s.log.Info("complaint confirmed: parent silent and not answering a ping", "channel", ch.id, "peer", c.id, "timeout", s.cfg.ProbeTimeout)
		ch.removeLocked(c)
		c.kill(websocket.StatusPolicyViolation, "declared failed: a child reported you silent and you did not answer a ping")
	}()
	return true
}

// report keeps a peer's latest report. Its figures are the peer's own
// claims; the fractional ones are clamped so that no report can make the
// channel's sums unencodable (a sum of huge floats is +Inf, which JSON
// cannot carry).
func (ch *channel) report(c *client, r proto.PeerReport) {
	r.Continuity = math.Min(math.Max(r.Continuity, 0), 1)
	r.LatencyMS = math.Min(math.Max(r.LatencyMS, 0), maxLatencyMS)
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if !c.isOrigin && ch.peers[c.id] == c {
		ch.reports[c.id] = r
		ch.reportVer++
	}
}

// maxLatencyMS caps a reported latency: an hour.
const maxLatencyMS = 3_600_000

// sweep drops clients that missed their heartbeats, settles the restore
// window and prunes old state. It reports whether the channel may be
// empty.
func (ch *channel) sweep(now time.Time) bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	limit := ch.srv.cfg.HeartbeatInterval * time.Duration(ch.srv.cfg.HeartbeatMisses)
	var dead []*client
	for _, c := range ch.peers {
		if c.idle(now) > limit {
			dead = append(dead, c)
		}
	}
	if ch.origin != nil && ch.origin.idle(now) > limit {
		ch.srv.log.Warn("origin missed heartbeats", "channel", ch.id, "idle", ch.origin.idle(now).Round(time.Millisecond))
		ch.origin.kill(websocket.StatusPolicyViolation, "missed heartbeats")
	}
	for _, c := range dead {
		ch.srv.log.Info("peer missed heartbeats", "channel", ch.id, "peer", c.id, "idle", c.idle(now).Round(time.Millisecond))
		ch.removeLocked(c)
		c.kill(websocket.StatusPolicyViolation, "missed heartbeats")
	}
	for _, c := range ch.peers {
		if now.Sub(c.ticketAt) >= ch.srv.cfg.TicketTTL/2 {
			ch.sendTicketLocked(c, now)
		}
	}
	ch.expireHandoffsLocked(now)
	ch.regrowLocked()
	if !ch.settled && now.After(ch.restoreUntil) {
		ch.settled = true
		ch.apply(ch.f.Settle(), true)
		ch.gauges()
	}
	for p, t := range ch.recent {
		if now.After(t) {
			delete(ch.recent, p)
		}
	}
	for id, st := range ch.strikes {
		if now.After(st.until) {
			delete(ch.strikes, id)
		}
	}
	return ch.origin == nil && len(ch.peers) == 0 && now.Sub(ch.originGone) > time.Minute
}

// retire marks an empty channel as gone, so that a client racing with its
// removal from the server looks it up again. It reports whether it did.
func (ch *channel) retire() bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.origin != nil || len(ch.peers) > 0 {
		return false
	}
	ch.retired = true
	return true
}

func (ch *channel) stats() proto.ChannelStats {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	st := ch.f.Stats()
	s := proto.ChannelStats{
		Channel: ch.id, Origin: ch.origin != nil, Trees: ch.trees, K: ch.k, Bitrate: ch.bitrate, StripeRate: ch.stripeRate, Media: ch.media,
		Peers: st.Peers, Joins: ch.joins, Leaves: ch.leaves, Repairs: ch.repairs,
		Handoffs: ch.handoffsStarted, HandoffsDone: ch.handoffsDone, HandoffsExpired: ch.handoffsExpired, Demotions: ch.demotions, Evictions: ch.evictions,
		MaxDepth: st.MaxDepth, FallbackPeers: st.FallbackPeers, Fallbacks: st.Fallbacks, Borrowed: st.Borrowed,
		OriginChildren: st.OriginChildren, UptimeSeconds: time.Since(ch.created).Seconds(),
	}
	var cont float64
	for _, r := range ch.reports {
		s.RelayBytes += r.RelayBytes
		s.BytesFromPeers += r.BytesFromPeers
		s.BytesFromOrig += r.BytesFromOrigin
		cont += r.Continuity
	}
	if len(ch.reports) > 0 {
		s.Continuity = math.Round(cont/float64(len(ch.reports))*1e4) / 1e4
	}
	return s
}

// snapshot returns the forest as /forest shows it, sorted by peer id.
func (ch *channel) snapshot() proto.ForestSnapshot {
	snap, _, _ := ch.copyForest()
	return snap
}

// copyForest copies what /forest shows, with the versions it reflects.
// It is the only part of a snapshot done under the channel's lock: one
// allocation for the nodes and one for all their edges; sorting and
// encoding happen after.
func (ch *channel) copyForest() (snap proto.ForestSnapshot, forestVer, reportVer uint64) {
	ch.mu.Lock()
	n := ch.f.Len()
	snap = proto.ForestSnapshot{Channel: ch.id, Trees: ch.trees, K: ch.k, Nodes: make([]proto.ForestNode, 0, n)}
	edges := make([]proto.ForestEdge, n*ch.trees)
	ch.f.Each(func(v forest.NodeView) bool {
		es := edges[:len(v.Trees):len(v.Trees)]
		edges = edges[len(v.Trees):]
		n := proto.ForestNode{ID: uint64(v.ID), Kind: v.Kind.String(), Slots: v.Slots, Home: v.Home, Children: v.Children, Trees: es}
		for i, t := range v.Trees {
			es[i] = proto.ForestEdge{Parent: uint64(t.Parent), Depth: t.Depth, Fallback: t.Fallback, Pending: t.Pending}
		}
		if r, ok := ch.reports[v.ID]; ok {
			n.Report = &r
		}
		if t := ch.trust[v.ID]; t != nil {
			n.Cut, n.Demoted = t.cut, t.demoted
		}
		snap.Nodes = append(snap.Nodes, n)
		return true
	})
	forestVer, reportVer = ch.forestVer, ch.reportVer
	ch.mu.Unlock()
	sort.Slice(snap.Nodes, func(a, b int) bool { return snap.Nodes[a].ID < snap.Nodes[b].ID })
	return snap, forestVer, reportVer
}

func intp(i int) *int { return &i }
