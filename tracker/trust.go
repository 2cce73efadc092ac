package tracker

import (
	"github.com/coopcast/coopcast/internal/proto"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/coopcast/coopcast/internal/forest"
)

// Trust earned, not claimed (ADR 0008, ADR 0010). A peer's declared
// upload only bounds the slots it can earn; it keeps them only while its
// children confirm that it delivers:
//
//   - Probation: a new peer gets at most Config.ProbationSlots, and one
//     more for each distinct child that confirms its delivery (edge-open,
//     on a new parent's first verified data), up to what its upload
//     offers. A peer restored after a tracker restart keeps its slots.
//   - When ComplaintLimit distinct children report the same parent silent
//     within ComplaintWindow, and the parent is not itself a victim (it did
//     not report its own parent in that tree silent lately), its slots are
//     cut to the number of distinct children that ever confirmed its
//     delivery: a peer that claims upload and relays nothing becomes a leaf
//     at once; one that served its children keeps what it showed it can
//     carry, and earns a slot back with each new child that confirms it, up
//     to what its upload offers. A reconnect cannot undo a cut.
//   - Bad data, shown with evidence the tracker checks (evidence.go),
//     demotes the sender to a leaf for good; caught again, it is evicted.
//     As a leaf it feeds nobody, and since peers take a tree's data only
//     from that tree's parent, it can hurt nobody.
//   - Each peer's complaints have a budget (complaintRate, complaintBurst):
//     a child cannot churn the forest by complaining, and one that
//     complains faster than any honest peer can is demoted, then evicted
//     (complaintsPerTree).

// Complaint budget per client: a burst, then one every two seconds.
const (
	complaintRate  = rate.Limit(0.5)
	complaintBurst = 8
)

// DefaultProbationSlots (Config.ProbationSlots) is what a new peer's
// declared upload buys it at first: two slots, whatever it claims. Two, not one, so that a tree of new
// peers still fans out (one slot each would make a chain, as deep as the
// crowd is large) and a new peer with real upload fills both at once;
// not more, so that a peer that claims 10 Gbit/s and relays nothing
// starves at most two children, each of whom notices within about a
// chunk interval and moves. Every child that confirms the peer's
// delivery (edge-open) buys it probationEarn more slots, up to what its upload
// offers: a peer with real upload earns its 16 slots within a few
// generations of children.
const DefaultProbationSlots = 2

// probationEarn is what each confirming child buys: two slots, so that a
// peer's capacity doubles with each generation of children that confirm
// it (one each held the forest back in a flash crowd: the simulator's
// 3,000 peers joining over 7.5 s had offload 0.986 and 31 origin copies
// of the stream over HTTP). A peer that relays to one child and then
// drops everything gains two slots, and is cut when their children
// complain.
const probationEarn = 2

// cutCooldown: a parent whose slots were cut gets one back this long
// after the cut, and one more each cooldown after that (trust.ceiling).
const cutCooldown = 10 * time.Second

// regrowLocked gives each parent whose slots were cut the slots its
// cooldown has given back. Run by the sweep. ch.mu held.
func (ch *channel) regrowLocked() {
	changed := false
	for id, t := range ch.trust {
		if !t.cut || t.demoted != "" {
			continue
		}
		v, ok := ch.f.Node(id)
		if !ok || t.ceiling() <= v.Slots {
			continue
		}
		if ds, err := ch.f.SetSlots(id, t.ceiling()); err == nil {
			ch.apply(ds, false)
			changed = true
		}
	}
	if changed {
		ch.gauges()
	}
}

// victimWindow: a parent that reported its own parent in a tree silent
// this recently is starved there, not silent by choice; its children's
// complaints in that tree do not cut its slots. (A cheat could keep itself
// "starved" by complaining every other second within its budget; each
// complaint moves it, which its own children see as nothing.)
const victimWindow = 5 * time.Second

// accuseWindow: a child whose evidence alone demoted a parent must, for
// this long, find a second child with evidence against the next parent it
// accuses. Evidence proves that data was bad, not who sent it (links are
// not signed per message), so a liar who fabricates it can cost at most
// one honest parent its slots per window, and moves itself each time.
const accuseWindow = 60 * time.Second

// strikeMemory is how long the tracker remembers a demoted or evicted
// peer after it left: an evicted peer's resume token is refused that
// long, and a demoted one that comes back within it comes back a leaf.
const strikeMemory = 5 * time.Minute

// strike is what the tracker remembers of a peer it demoted or evicted.
type strike struct {
	evicted bool
	reason  string
	until   time.Time
}

// trust is what the tracker has seen of one peer as a parent and as a
// complainer.
type trust struct {
	declared  int                         // slots its offered upload buys
	probation int                         // slots before any confirmation; -1: none
	vouched   bool                        // restored after a tracker restart: its slots were earned before
	cut       bool                        // its slots were cut: no more than it showed
	cutTo     int                         // after a cut: what it has earned back
	cutAt     time.Time                   // when it was cut
	demoted   string                      // why it was made a leaf for good ("": it was not)
	confirmed map[forest.PeerID]bool      // children that ever confirmed its delivery
	silentBy  map[forest.PeerID]time.Time // children that reported it silent, when
	provenBy  map[forest.PeerID]time.Time // children whose evidence of bad data from it checked, when
	floodBy   map[forest.PeerID]time.Time // neighbours that reported it flooding them, when
	budget    *rate.Limiter               // its own complaints
	secondAt  time.Time                   // when the second its complaints are counted in began
	inSecond  int                         // its complaints in that second
	churned   int                         // seconds in which it complained too fast, lately
	churnAt   time.Time                   // when the last such second was
	accusedAt time.Time                   // when its evidence alone last demoted a parent
	countedAt time.Time                   // when its silence complaint last counted towards a cut
	complaint map[int]time.Time           // per tree, when it last reported its own parent silent
}

// trustLocked returns id's record, creating it. ch.mu held.
func (ch *channel) trustLocked(id forest.PeerID) *trust {
	t := ch.trust[id]
	if t == nil {
		t = &trust{budget: rate.NewLimiter(complaintRate, complaintBurst), probation: ch.srv.cfg.ProbationSlots}
		ch.trust[id] = t
	}
	return t
}

// ceiling is the slots a peer has earned: none once demoted; after a
// cut, what its confirmed children showed it can carry; otherwise its
// probation slots plus one per child that confirmed its delivery. Never
// more than its upload offers.
func (t *trust) ceiling() int {
	switch {
	case t.demoted != "":
		return 0
	case t.cut:
		// A cut is not for good: one more slot per cutCooldown since,
		// so a parent that only looked silent (its links slow to open
		// on a starved machine, before any child could confirm it)
		// gets children again and can show that it delivers. A peer
		// that relays nothing starves one or two children per
		// cooldown, and is cut again.
		return min(t.declared, t.cutTo+int(time.Since(t.cutAt)/cutCooldown))
	case t.vouched || t.probation < 0:
		return t.declared
	default:
		return ProbationCeiling(t.declared, t.probation, len(t.confirmed))
	}
}

// ProbationCeiling is the slots a peer on probation may have: its
// probation slots and probationEarn more per child that confirmed its
// delivery, up to what it declared. The simulator runs the same rule.
func ProbationCeiling(declared, probation, confirmed int) int {
	return min(declared, probation+probationEarn*confirmed)
}

// offer is the slots a peer whose record is t gets when it offers
// declared slots anew (a reconnect that takes over its place): what it
// offers, but no more than it has earned.
func (t *trust) offer(declared int) int {
	t.declared = declared
	return t.ceiling()
}

// confirmLocked records that child got data from parent on a new edge.
// Each new child that confirms a parent's delivery buys it room for one
// more, up to what its upload offers: probation ends by delivering, and a
// parent whose slots were cut earns them back the same way. ch.mu held.
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
	if t.cut {
		t.cutTo = len(t.confirmed) + 1
	}
	v, ok := ch.f.Node(parent)
	if !ok || t.ceiling() <= v.Slots {
		return
	}
	if ds, err := ch.f.SetSlots(parent, t.ceiling()); err == nil {
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
	// One complaint per complainer per window counts towards cutting
	// anyone: an honest child reports a parent silent and moves, and its
	// next parent is rarely silent too; a framer that reports parent
	// after parent counts once, so it and one honest false alarm cannot
	// cut a parent each time it moves.
	if !ct.countedAt.IsZero() && now.Sub(ct.countedAt) < ch.srv.cfg.ComplaintWindow {
		return false
	}
	ct.countedAt = now
	t := ch.trustLocked(parent)
	if t.silentBy == nil {
		t.silentBy = map[forest.PeerID]time.Time{}
	}
	t.silentBy[child] = now
	n := ch.distinctLocked(t.silentBy, now)
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
	t.cut, t.cutTo, t.cutAt = true, len(t.confirmed), now
	ch.srv.log.Warn("cutting the slots of a parent its children report silent", "channel", ch.id, "peer", parent,
		"slots", v.Slots, "now", len(t.confirmed), "complaints", n)
	ch.srv.metrics.demotions.WithLabelValues(proto.ReasonSilent).Inc()
	ch.demotions++
	t.silentBy = nil
	ch.applyWith(ds, true, false)
	return true
}

// distinctLocked counts the complainers in by within the complaint
// window, forgetting older ones. A complainer demoted since does not
// count: a framer's complaint held while its target's probe was out must
// not count once the framer is caught. ch.mu held.
func (ch *channel) distinctLocked(by map[forest.PeerID]time.Time, now time.Time) int {
	n := 0
	for c, at := range by {
		if now.Sub(at) > ch.srv.cfg.ComplaintWindow {
			delete(by, c)
			continue
		}
		if t := ch.trust[c]; t != nil && t.demoted != "" {
			continue
		}
		n++
	}
	return n
}

// A complainer past its budget is refused. Refusals alone do not make a
// cheat: in a storm on a starved machine an honest peer may complain of
// parent after parent. What no honest peer does is complain more than
// once per tree in a second (after a complaint it waits for its new
// parent's link), so a peer that sends more than complaintsPerTree times
// the trees' complaints within one second is churning the forest on
// purpose: the first such second makes it a leaf, a second one within
// the complaint window evicts it.
const complaintsPerTree = 4

// complaintAllowedLocked counts one of c's complaints against the rate
// above (demoting, then evicting, c past it: check ch.peers[c.id] before
// going on) and spends one of its budget; when the budget is spent it
// says so to c and returns false. ch.mu held.
func (ch *channel) complaintAllowedLocked(c *client, now time.Time) bool {
	t := ch.trustLocked(c.id)
	if now.Sub(t.secondAt) >= time.Second {
		t.secondAt, t.inSecond = now, 0
	}
	t.inSecond++
	if t.inSecond == complaintsPerTree*ch.trees+1 {
		if now.Sub(t.churnAt) > ch.srv.cfg.ComplaintWindow {
			t.churned = 0
		}
		t.churned++
		t.churnAt = now
		if t.churned >= 2 {
			ch.evictLocked(c, reasonComplaints, "you kept complaining faster than any peer can lose parents")
			return false
		}
		ch.demoteLocked(c.id, reasonComplaints, false)
	}
	if t.budget.AllowN(now, 1) {
		return true
	}
	ch.srv.metrics.rejected.WithLabelValues("complaint-budget").Inc()
	c.sendError(proto.CodeRateLimited, "too many complaints: the tracker ignores this one")
	return false
}

// demoteLocked makes id a leaf for good (it earns no slots back) and
// counts it under reason. atOnce: its children are cut from it at once,
// since what it sends them is bad; otherwise they move make-before-break.
// ch.mu held.
func (ch *channel) demoteLocked(id forest.PeerID, reason string, atOnce bool) {
	t := ch.trustLocked(id)
	if t.demoted != "" {
		return
	}
	t.demoted = reason
	ch.strikes[id] = strike{reason: reason, until: time.Now().Add(strikeMemory)}
	// A cheat's accusations count for nothing any more.
	for _, o := range ch.trust {
		delete(o.silentBy, id)
		delete(o.floodBy, id)
	}
	ch.srv.log.Warn("demoting a peer to a leaf", "channel", ch.id, "peer", id, "reason", reason)
	ch.srv.metrics.demotions.WithLabelValues(reason).Inc()
	ch.demotions++
	if v, ok := ch.f.Node(id); ok && v.Slots > 0 {
		if ds, err := ch.f.SetSlots(id, 0); err == nil {
			ch.applyWith(ds, true, !atOnce)
		}
	}
	ch.gauges()
}

// evictLocked disconnects c for cheating and refuses its resume token for
// strikeMemory. ch.mu held.
func (ch *channel) evictLocked(c *client, reason, why string) {
	ch.srv.log.Warn("evicting a peer", "channel", ch.id, "peer", c.id, "reason", reason, "ip", c.ip)
	ch.strikes[c.id] = strike{evicted: true, reason: reason, until: time.Now().Add(strikeMemory)}
	ch.srv.metrics.evictions.WithLabelValues(reason).Inc()
	ch.evictions++
	ch.removeLocked(c)
	c.kill(websocket.StatusPolicyViolation, "evicted: "+why)
}

// forgetTrustLocked drops what was known of a peer that left, and its
// place in other peers' records. (Demotions and evictions are remembered
// apart, in ch.strikes.) ch.mu held.
func (ch *channel) forgetTrustLocked(id forest.PeerID) {
	delete(ch.trust, id)
	for _, t := range ch.trust {
		delete(t.confirmed, id)
		delete(t.silentBy, id)
		delete(t.provenBy, id)
		delete(t.floodBy, id)
	}
}
