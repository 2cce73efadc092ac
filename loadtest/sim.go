package loadtest

import (
	"crypto/ed25519"
	"math"
	"math/bits"
	"math/rand/v2"
	"time"

	"github.com/coopcast/coopcast/internal/forest"
	"github.com/coopcast/coopcast/internal/playout"
	"github.com/coopcast/coopcast/internal/wire"
	"github.com/coopcast/coopcast/tracker"
)

// The peer's and the tracker's timing rules, as their packages set them
// (peer.Config's defaults, peer/repair.go, tracker.Config's defaults,
// internal/swarm). The simulator runs the same rules on simulated time.
const (
	simPlayout      = 2 * time.Second        // peer.Config.Playout
	simFallbackLead = 600 * time.Millisecond // peer.Config.FallbackLead
	simSilence      = 1500 * time.Millisecond
	simReplaceGrace = time.Second     // peer: replaceGrace
	simLinkTimeout  = 6 * time.Second // peer: linkTimeout
	simMaxFetches   = 4               // peer: concurrent HTTP fetches
	simMaxGap       = 8               // peer: manifests one poll fetches
	simPollEvery    = 50 * time.Millisecond
	simHeartbeat    = 2 * time.Second // tracker.Config.HeartbeatInterval
	simMisses       = 3               // tracker.Config.HeartbeatMisses
	simLinkGrace    = 5 * time.Second // swarm: linkGrace
	simLifetime     = time.Second     // rtc.Config.PacketLifetime
	simMaxSlots     = 16              // forest's and tracker's MaxSlots default
	// A child's relay queue: the link's buffer up to relay.DefaultHighWater
	// plus relay.DefaultMaxQueued; beyond, chunks are dropped.
	simMaxBacklog = 256<<10 + 1<<20
)

// Event kinds.
const (
	evCut      uint8 = iota // the origin cuts chunk c
	evStart                 // viewer p starts (opens the page / runs the peer)
	evTracker               // a message reaches the tracker: op, p, q, tree
	evMsg                   // a tracker message reaches peer p: op, tree, q, x = link open time, c = link latency µs
	evDeliver               // chunk c's manifest and shard tree reach p from q
	evHTTP                  // an HTTP fetch of chunk c for p returns: x = shard mask, op = 1 for the whole chunk
	evPoll                  // a manifest poll for p returns; c = the newest chunk the origin had
	evLinkOpen              // the link q → p (q feeds p) opens at x
	evTick                  // p's repair loop looks at its chunks and parents
	evSilence               // p checks whether its parent q in tree has gone silent
	evChurn                 // the churn timer
	evSample                // a sample for the report
)

// Tracker message ops (evTracker).
const (
	tJoin uint8 = iota
	tLeave
	tComplain
	tSweep   // the sweep finds p silent for HeartbeatMisses intervals
	tConfirm // p confirms that its parent q delivers (edge-open)
)

// Peer message ops (evMsg).
const (
	mWelcome uint8 = iota
	mParent
	mRemoveParent
	mChild
	mRemoveChild
	mFallback
)

// Peer states.
const (
	psIdle     uint8 = iota // not started yet
	psJoining               // waiting for the welcome
	psAlive                 // in the swarm
	psLeft                  // left: its connections closed
	psVanished              // gone without a word: its links stay up, silent
)

// kidEdge is a child a peer feeds in one tree, as the peer knows it.
type kidEdge struct {
	openAt int64 // when the link can carry data
	c      int32
	lat    int32 // one-way µs
	tree   uint8
}

// linkRec is the tracker's-eye view of one link: a neighbour, the trees
// in which it is our parent or child, and when the link came up. A link
// with no tree lives on for simLinkGrace (until), since repairs often pair
// the same two peers again.
type linkRec struct {
	openAt   int64
	until    int64
	peer     int32
	lat      int32
	parentOf uint16
	childOf  uint16
}

// simPeer is one peer's state; what a delivery touches comes first, in
// one cache line (64 bytes: the playout state's 48 and the next 16), and
// what it touches next in the line after.
// simTrust is the tracker's probation record of one peer (tracker/trust.go):
// the slots its upload offers and the children that confirmed it.
type simTrust struct {
	declared  int
	confirmed map[int32]bool
}

type simPeer struct {
	// play is the playout rule's state (internal/playout, as the peer
	// runs it): the playout position, the offset, played/on time/missed.
	play     playout.State
	upFree   int64 // the uplink is busy until then
	newest   int32 // newest chunk known; -1: none
	state    uint8
	inflight uint8 // HTTP fetches under way
	polling  bool
	nsPerB   float64 // uplink ns per byte
	newestAt int64   // when the newest manifest came
	ctrl     int32   // one-way µs to the tracker
	joinAt   int64
	leftAt   int64
	lastPoll int64
	startup  float32 // ms; -1 before the first chunk
	alivePos int32
}

// simTree is a peer's place in one tree, as the peer knows it.
type simTree struct {
	popen  int64 // the link to the parent opens then
	lostAt int64 // the parent replaced one that was lost, then; 0: not
	lastRx int64 // the last shard from any parent in this tree
	parent int32 // -1: none
	fb     bool  // on HTTP fallback
}

// simSlot is what a peer holds of one chunk in its window.
type simSlot struct {
	seq   int32  // -1: empty
	done  uint32 // µs from the cut to the rebuild, plus one; 0: not rebuilt
	got   uint16 // shards in hand
	fetch uint16 // shards an HTTP fetch is bringing
}

// simulator is one discrete-event run. Per-peer state lives in slices
// indexed by peer (0 is the origin), per-tree state at peer*m+tree, and
// each peer's chunk window at peer*w+seq%w: no map or object per peer,
// so a million peers fit in a few GB.
type simulator struct {
	cfg   Config
	model NetModel
	d     struct{ control, jitter, relay, stall, http, setup, hop sampler }
	rng   *rand.Rand
	mix   *rand.Rand // the upload class draw, as real mode does it
	f     *forest.Forest
	rule  playout.Rule
	win   simWindow          // the window the rule looks at, for one peer at a time
	dec   []playout.Decision // advance's, reused
	gaps  []uint32           // the poll's, reused
	q     eventQueue
	now   int64
	end   int64

	m, k                            int
	w                               int32 // window slots per peer, a power of two
	interval, playout, lead, stall  int64
	chunkLen, shardLen, manLen, msg int // bytes: a chunk, a shard, a manifest, a shard's messages
	stripeBps                       int64
	allMask                         uint16

	ps    []simPeer // per peer
	ts    []simTree // per peer and tree
	sl    []simSlot // per peer and window slot
	kids  [][]kidEdge
	links [][]linkRec
	// lastMsg is a vanished peer's last message to the tracker.
	lastMsg map[int32]int64
	// trust: each peer's probation record, as the tracker keeps it.
	trust map[int32]*simTrust
	// lose, if set (tests), says which chunks the origin cuts but never
	// sends or serves: for the peers, manifests that never come.
	lose func(c int32) bool
	// stops counts the times a peer's playout rule said the stream had
	// stopped at the origin.
	stops uint64

	alive []int32 // peers in the swarm, for churn's random pick

	cuts        int32 // chunks cut so far
	trackerFree int64 // the tracker is busy until then
	// The tracker's response times: queueing plus service.
	trackerWaitMax, trackerWaitSum int64
	trackerEvents                  uint64
	churnRNG                       *rand.Rand
	churnDebt                      float64
	arrivals                       []time.Duration

	// Measures.
	originRTC, originHTTP, relayBytes, dropped uint64
	rebuilt                                    int64
	gPlayed, gMissed, gOnTime                  uint64
	lat                                        latHist
	repairs                                    []float64
	complaints, fetches                        uint64
	series                                     []Sample
	lastOnTime, lastDue                        uint64
	lastOrigin                                 uint64
	events                                     uint64
	heapPeak                                   uint64
}

func newSimulator(cfg Config, model NetModel) (*simulator, error) {
	f, err := forest.New(forest.Config{Trees: cfg.Trees, OriginSlots: cfg.OriginSlots})
	if err != nil {
		return nil, err
	}
	s := &simulator{
		cfg: cfg, model: model, f: f, m: cfg.Trees, k: cfg.K,
		rng:      rand.New(rand.NewPCG(cfg.Seed, 0x5117)),
		mix:      rand.New(rand.NewPCG(1, 2)),
		churnRNG: rand.New(rand.NewPCG(cfg.Seed, 7)),
		end:      int64(cfg.Duration),
		interval: int64(cfg.ChunkInterval),
		playout:  int64(simPlayout),
		lead:     int64(simFallbackLead),
		lastMsg:  map[int32]int64{},
		trust:    map[int32]*simTrust{},
		lat:      newLatHist(),
	}
	s.stall = max(int64(simSilence), 2*s.interval)
	s.d.control, s.d.jitter, s.d.relay, s.d.stall = model.Control.sampler(), model.Jitter.sampler(), model.Relay.sampler(), model.Stall.sampler()
	s.d.http, s.d.setup, s.d.hop = model.HTTP.sampler(), model.LinkSetup.sampler(), model.Hop.sampler()
	s.allMask = uint16(1)<<s.m - 1
	s.stripeBps = (cfg.Bitrate + int64(cfg.K) - 1) / int64(cfg.K)
	// The synthetic source's chunk (origin.SyntheticChunk), its shards
	// (klauspost/reedsolomon splits into k equal parts) and the messages
	// that carry them (internal/wire).
	s.chunkLen = max(8, int(cfg.Bitrate*cfg.ChunkInterval.Microseconds()/8_000_000))
	s.shardLen = (s.chunkLen + s.k - 1) / s.k
	frags := wire.FragmentCount(s.shardLen)
	s.msg = s.shardLen + frags*wire.FragmentHeader
	s.manLen, err = manifestLen(s.m, s.k, s.shardLen)
	if err != nil {
		return nil, err
	}
	// The window covers the playout buffer and then some.
	need := (int64(simPlayout)+4*int64(time.Second))/s.interval + 4
	s.w = 8
	for int64(s.w) < need && s.w < 256 {
		s.w *= 2
	}
	s.rule = playout.New(playout.Config{Delay: simPlayout, Lead: simFallbackLead, Window: int(s.w)})
	s.win.s = s
	s.dec = make([]playout.Decision, 0, 64)
	s.gaps = make([]uint32, 0, simMaxGap)
	s.arrivals = cfg.arrivals()
	// Room for the crowd and the newcomers churn brings.
	s.reserve(1 + len(s.arrivals) + int(cfg.Churn/100*float64(cfg.Peers)*cfg.Duration.Minutes()) + 16)
	// The origin is peer 0: in the swarm from the start, its own uplink.
	s.addPeer()
	s.ps[0].state = psAlive
	s.ps[0].nsPerB = 8e9 / float64(model.OriginBps)
	return s, nil
}

// manifestLen is the size of a signed manifest message for this shape,
// measured by signing one.
func manifestLen(m, k, shardLen int) (int, error) {
	frags := wire.FragmentCount(shardLen)
	hashes := make([][][32]byte, m)
	for i := range hashes {
		hashes[i] = make([][32]byte, frags)
	}
	man := wire.Manifest{M: uint8(m), K: uint8(k), ShardSize: uint32(shardLen), Length: uint32(shardLen * k), Hashes: hashes}
	raw, err := wire.SignManifest(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)), "loadtest", &man)
	return len(raw), err
}

// reserve makes room for n peers, so that growing never copies.
func (s *simulator) reserve(n int) {
	s.ps, s.ts, s.sl = make([]simPeer, 0, n), make([]simTree, 0, n*s.m), make([]simSlot, 0, n*int(s.w))
	s.kids, s.links, s.alive = make([][]kidEdge, 0, n), make([][]linkRec, 0, n), make([]int32, 0, n)
}

// addPeer appends a peer's state and returns its index.
func (s *simulator) addPeer() int32 {
	p := int32(len(s.ps))
	s.ps = append(s.ps, simPeer{ctrl: int32(s.d.control.draw(s.rng) / 1000), newest: -1,
		startup: -1, lastPoll: math.MinInt64 / 2, alivePos: -1})
	s.kids = append(s.kids, nil)
	s.links = append(s.links, nil)
	for range s.m {
		s.ts = append(s.ts, simTree{parent: -1})
	}
	for range s.w {
		s.sl = append(s.sl, simSlot{seq: -1})
	}
	return p
}

func (s *simulator) push(e event) { s.q.push(e) }

// ctrlNs is p's one-way delay to the tracker.
func (s *simulator) ctrlNs(p int32) int64 { return int64(s.ps[p].ctrl) * 1000 }

func (s *simulator) cutAt(c int32) int64 { return int64(c) * s.interval }

// deadline is when p must have rebuilt chunk c to play it on time (ns),
// by the playout rule, which works in µs.
func (s *simulator) deadline(p, c int32) int64 {
	return s.rule.Deadline(&s.ps[p].play, s.cutAt(c)/1000) * 1000
}

// next is p's playout position; -1 before it started.
func (s *simulator) next(p int32) int32 {
	if n, ok := s.ps[p].play.Next(); ok {
		return int32(n)
	}
	return -1
}

// step runs one event.
func (s *simulator) step(e *event) {
	switch e.kind {
	case evCut:
		s.cut(e.c)
	case evStart:
		s.start(e.p)
	case evTracker:
		s.tracker(e)
	case evMsg:
		s.message(e)
	case evDeliver:
		s.deliver(e.p, e.q, e.c, int(e.tree))
	case evHTTP:
		s.httpDone(e)
	case evPoll:
		s.pollDone(e.p, e.c)
	case evLinkOpen:
		s.linkOpen(e.q, e.p, e.x)
	case evTick:
		s.tick(e.p)
	case evSilence:
		s.silence(e.p, e.q, int(e.tree))
	case evChurn:
		s.churn()
	case evSample:
		s.sample()
	}
}

// --- the origin -------------------------------------------------------

func (s *simulator) cut(c int32) {
	s.cuts = c + 1
	if s.lose != nil && s.lose(c) {
		s.push(event{at: s.cutAt(c + 1), kind: evCut, c: c + 1})
		return
	}
	s.ps[0].newest = c
	for i := range s.kids[0] {
		e := &s.kids[0][i]
		s.send(0, e, c, s.manLen+s.msg, true)
	}
	if t := s.cutAt(c + 1); t < s.end {
		s.push(event{at: t, kind: evCut, c: c + 1})
	}
}

// --- sending ----------------------------------------------------------

// send puts n bytes of chunk c for e's tree on from's uplink to e.c.
// Before the link opens they wait in the child's relay queue. relayed:
// the bytes are being passed on as they arrive (cut-through), and take
// the relay's processing time; a catch-up goes from memory.
func (s *simulator) send(from int32, e *kidEdge, c int32, n int, relayed bool) {
	// A child that left is not checked here (its parent learns of it from
	// the tracker within a millisecond or two); deliver drops what reaches
	// it. Looking at the child's state on every send would cost a cache
	// miss per message.
	now := s.now
	start := now
	if e.openAt > now {
		start = e.openAt
	} else if s.ps[from].upFree > now {
		start = s.ps[from].upFree
	}
	if float64(start-now) > simMaxBacklog*s.ps[from].nsPerB {
		s.dropped += uint64(n)
		return
	}
	done := start + int64(float64(n)*s.ps[from].nsPerB)
	if e.openAt <= now {
		s.ps[from].upFree = done
	}
	at := done + int64(e.lat)*1000
	at += s.d.jitter.draw(s.rng)
	if relayed {
		// Added after the uplink, not before: the uplink stays first come,
		// first served by arrival, which the simulator's one busy-until
		// time per uplink needs.
		at += s.d.relay.draw(s.rng)
	}
	if s.model.StallShare > 0 && s.rng.Float64() < s.model.StallShare {
		at += s.d.stall.draw(s.rng)
	}
	if s.model.Loss > 0 {
		for s.rng.Float64() < s.model.Loss {
			at += int64(s.model.Retransmit)
			if at-done > int64(simLifetime) {
				at = -1
				break
			}
		}
	}
	s.count(from, n)
	if at >= 0 {
		s.push(event{at: at, kind: evDeliver, p: e.c, q: from, c: c, tree: e.tree})
	}
}

// count adds n bytes sent by from: origin egress or relay bytes.
func (s *simulator) count(from int32, n int) {
	if from == 0 {
		s.originRTC += uint64(n)
	} else {
		s.relayBytes += uint64(n)
	}
}

// forward sends chunk c's shard of tree to p's children in that tree.
func (s *simulator) forward(p int32, tree int, c int32) {
	ks := s.kids[p]
	for i := range ks {
		if int(ks[i].tree) == tree {
			s.send(p, &ks[i], c, s.manLen+s.msg, true)
		}
	}
}

// --- a peer's chunks --------------------------------------------------

// slot returns p's window slot for chunk c, and whether it was just made;
// -1 if c is outside p's window or already played or skipped.
func (s *simulator) slot(p, c int32, create bool) (int, bool) {
	idx := int(p)*int(s.w) + int(c&(s.w-1))
	if s.sl[idx].seq == c {
		return idx, false
	}
	next := s.next(p)
	if !create || (next >= 0 && c < next) || (s.ps[p].newest >= 0 && c <= s.ps[p].newest-s.w) {
		return -1, false
	}
	if old := s.sl[idx].seq; old >= 0 && next >= 0 && old >= next {
		s.advance(p) // settle what is due before its slot is reused
	}
	s.sl[idx].seq, s.sl[idx].got, s.sl[idx].fetch, s.sl[idx].done = c, 0, 0, 0
	return idx, true
}

// learn is p's first news of chunk c: its manifest, which came with the
// shard of tree via (or alone: via < 0). The smallest arrival - cut seen
// is the offset every deadline adds, as the peer's. The peer sends the
// manifest on at once to its children in every tree; with the shard of
// via it goes as that shard is forwarded.
func (s *simulator) learn(p, c int32, via int) {
	now := s.now
	s.rule.Manifest(&s.ps[p].play, now/1000, uint32(c), s.cutAt(c)/1000, false)
	if s.ps[p].newest < 0 || c > s.ps[p].newest {
		s.ps[p].newest = c
		s.ps[p].newestAt = now
	}
	ks := s.kids[p]
	for i := range ks {
		if int(ks[i].tree) != via {
			s.sendManifest(p, &ks[i], c)
		}
	}
}

// treeManifest in an evDeliver's tree: a manifest alone.
const treeManifest = 0xff

// sendManifest sends chunk c's manifest alone to e.c. Its bytes are
// counted with the shard that follows it on the same edge (one manifest
// per edge and chunk either way), and it is too small to hold up the
// uplink.
func (s *simulator) sendManifest(from int32, e *kidEdge, c int32) {
	if s.ps[e.c].state == psLeft {
		return
	}
	if s.sl[int(e.c)*int(s.w)+int(c&(s.w-1))].seq == c {
		// The child has the manifest already: on arrival this one would
		// change nothing (the slot cannot go before it arrives: a slot
		// is reused only for a chunk w newer). Not sending it saves an
		// event per edge and chunk.
		return
	}
	at := max(s.now, e.openAt) + int64(e.lat)*1000
	at += s.d.jitter.draw(s.rng)
	s.push(event{at: at, kind: evDeliver, p: e.c, q: from, c: c, tree: treeManifest})
}

// deliver: chunk c's manifest and shard of tree (or the manifest alone)
// reach p from q.
func (s *simulator) deliver(p, q, c int32, tree int) {
	if s.ps[p].state != psAlive {
		return
	}
	now := s.now
	if tree == treeManifest {
		if _, fresh := s.slot(p, c, true); fresh {
			s.learn(p, c, -1)
			if s.next(p) < 0 {
				s.advance(p)
			}
			s.fetchJobs(p)
		}
		return
	}
	ti := int(p)*s.m + tree
	s.ts[ti].lastRx = now
	if s.ts[ti].lostAt != 0 && s.ts[ti].parent == q {
		s.repairs = append(s.repairs, float64((now-s.ts[ti].lostAt)/1000)/1000)
		s.ts[ti].lostAt = 0
	}
	idx, fresh := s.slot(p, c, true)
	if idx < 0 {
		return
	}
	if fresh {
		s.learn(p, c, tree)
	}
	bit := uint16(1) << tree
	if s.sl[idx].got&bit != 0 {
		return // a duplicate (or the shard was rebuilt here already)
	}
	s.sl[idx].got |= bit
	s.forward(p, tree, c)
	switch {
	case bits.OnesCount16(s.sl[idx].got) >= s.k && s.sl[idx].done == 0:
		s.rebuild(p, idx, c)
	case fresh:
		if s.next(p) < 0 {
			s.advance(p)
		}
		s.fetchJobs(p)
	}
}

// rebuild: p has k shards of chunk c.
func (s *simulator) rebuild(p int32, idx int, c int32) {
	lat := s.now - s.cutAt(c)
	s.sl[idx].done = uint32(lat/1000) + 1
	s.lat.add(lat)
	s.rebuilt++
	// Regenerate the shards of trees this peer feeds but got nothing in.
	for _, e := range s.kids[p] {
		bit := uint16(1) << e.tree
		if s.sl[idx].got&bit == 0 {
			s.sl[idx].got |= bit
			s.forward(p, int(e.tree), c)
		}
	}
	s.advance(p)
}

// advance runs p's playout rule (internal/playout, as the peer runs it)
// at now: chunks rebuilt are played (on time if rebuilt by their
// deadline), chunks past their deadline by the wall clock, manifest or
// not, are missed.
func (s *simulator) advance(p int32) {
	st := &s.ps[p].play
	played, onTime, missed := st.Played(), st.OnTime(), st.Missed()
	s.win.p = p
	s.dec = s.rule.Advance(st, s.now/1000, &s.win, s.dec[:0])
	for _, d := range s.dec {
		if d.Op == playout.Stop {
			s.stops++
		}
	}
	s.gPlayed += st.Played() - played
	s.gOnTime += st.OnTime() - onTime
	s.gMissed += st.Missed() - missed
	if played == 0 && st.Played() > 0 {
		s.ps[p].startup = float32(float64((s.now-s.ps[p].joinAt)/1000) / 1000)
	}
}

// simWindow is one peer's chunk window as the playout rule sees it.
type simWindow struct {
	s *simulator
	p int32
}

func (w *simWindow) Chunk(seq uint32) playout.Chunk {
	s, c := w.s, int32(seq)
	if c < 0 {
		return playout.Chunk{}
	}
	sl := &s.sl[int(w.p)*int(s.w)+int(c&(s.w-1))]
	if sl.seq != c {
		return playout.Chunk{}
	}
	ts := s.cutAt(c) / 1000
	if sl.done == 0 {
		return playout.Chunk{Known: true, Time: ts}
	}
	return playout.Chunk{Known: true, Time: ts, Done: true, DoneAt: ts + int64(sl.done-1)}
}

// stalled returns the trees p cannot count on now: no parent, on
// fallback, a replacement link slow to open, or silent for the stall time.
func (s *simulator) stalled(p int32) uint16 {
	now := s.now
	var out uint16
	for i := range s.m {
		ti := int(p)*s.m + i
		switch {
		case s.ts[ti].parent < 0:
		case s.ts[ti].lostAt != 0 && s.ts[ti].popen > now && now-s.ts[ti].lostAt > int64(simReplaceGrace):
		case s.ts[ti].lastRx != 0 && now-s.ts[ti].lastRx > s.stall:
		default:
			continue
		}
		out |= 1 << i
	}
	return out
}

// fetchJobs fetches over HTTP what p's trees will not bring in time, as
// the peer's repair loop does: at once the shards of trees on fallback,
// and of stalled trees when the others cannot bring k; any missing shard
// once a chunk is within FallbackLead of its deadline.
func (s *simulator) fetchJobs(p int32) {
	now := s.now
	stalled := s.stalled(p)
	var fbMask uint16
	for i := range s.m {
		if s.ts[int(p)*s.m+i].fb {
			fbMask |= 1 << i
		}
	}
	base := int(p) * int(s.w)
	next := s.next(p) // a fetch does not move playout
	for j := range int(s.w) {
		idx := base + j
		c := s.sl[idx].seq
		if c < 0 || s.sl[idx].done != 0 || (next >= 0 && c < next) {
			continue
		}
		dl := s.deadline(p, c)
		if now >= dl || (next < 0 && s.ps[p].newest-c > 2) {
			continue
		}
		if s.ps[p].inflight >= simMaxFetches {
			return
		}
		urgent := now >= dl-s.lead
		got, fetching := s.sl[idx].got, s.sl[idx].fetch
		have := bits.OnesCount16(got)
		coming := have + bits.OnesCount16(^got&(fetching|^stalled)&s.allMask)
		need := s.k - have - bits.OnesCount16(fetching)
		early := s.k - coming
		var want uint16
		for pass := 0; pass < 2; pass++ {
			for i := range s.m {
				bit := uint16(1) << i
				if got&bit != 0 || (fetching|want)&bit != 0 || need <= 0 {
					continue
				}
				switch {
				case pass == 0 && fbMask&bit != 0:
				case pass == 0 && stalled&bit != 0 && early > 0:
					early--
				case pass == 1 && urgent:
				default:
					continue
				}
				want |= bit
				need--
			}
		}
		if want != 0 {
			s.fetch(p, idx, c, want)
		}
	}
}

// fetch asks the origin for the shards in want of chunk c: one shard, or
// the whole chunk when more than one is needed.
func (s *simulator) fetch(p int32, idx int, c int32, want uint16) {
	n, whole := s.shardLen, uint8(0)
	if bits.OnesCount16(want) > 1 {
		n, whole = s.chunkLen, 1
	}
	s.sl[idx].fetch |= want
	s.ps[p].inflight++
	s.originHTTP += uint64(n)
	s.fetches++
	at := s.now + s.d.http.draw(s.rng) + int64(float64(n)*8e9/float64(s.model.HTTPBps))
	s.push(event{at: at, kind: evHTTP, p: p, c: c, x: int64(want), op: whole})
}

func (s *simulator) httpDone(e *event) {
	p, c, want := e.p, e.c, uint16(e.x)
	s.ps[p].inflight--
	if s.ps[p].state != psAlive {
		return
	}
	idx, _ := s.slot(p, c, false)
	if idx < 0 {
		return
	}
	s.sl[idx].fetch &^= want
	if e.op == 1 {
		if s.sl[idx].done != 0 {
			return
		}
		// The whole chunk: every shard is here; those of trees with
		// children go on.
		missing := s.allMask &^ s.sl[idx].got
		s.sl[idx].got = s.allMask
		for i := range s.m {
			if missing&(1<<i) != 0 {
				s.forward(p, i, c)
			}
		}
		s.rebuild(p, idx, c)
		return
	}
	if s.sl[idx].got&want != 0 {
		return
	}
	s.sl[idx].got |= want
	s.forward(p, bits.TrailingZeros16(want), c)
	if bits.OnesCount16(s.sl[idx].got) >= s.k && s.sl[idx].done == 0 {
		s.rebuild(p, idx, c)
	}
}

// maybePoll asks the origin for manifests when none came for a while,
// when every tree is stalled, or when one is missing below the newest
// whose chunk is due within the fallback lead; as the peer, for those
// gaps first.
func (s *simulator) maybePoll(p int32, stalled uint16) {
	now := s.now
	if s.ps[p].polling || now-s.ps[p].lastPoll < s.interval {
		return
	}
	quiet := s.ps[p].newest >= 0 && now-s.ps[p].newestAt > 2*s.interval+s.interval/2
	s.win.p = p
	if !(quiet || stalled == s.allMask || s.rule.GapUrgent(&s.ps[p].play, now/1000, &s.win)) {
		return
	}
	gaps := s.pollGaps(p)
	s.ps[p].polling, s.ps[p].lastPoll = true, now
	latest := s.cuts - 1
	if latest < 0 {
		s.push(event{at: now + s.d.http.draw(s.rng), kind: evPoll, p: p, c: -1})
		return
	}
	at := now + s.d.http.draw(s.rng) // GET /latest
	for range gaps {
		at += s.d.http.draw(s.rng) // GET /manifest/c
		s.originHTTP += uint64(s.manLen)
	}
	from := s.pollFrom(p, latest, len(gaps))
	for c := from; c <= latest; c++ {
		if idx, _ := s.slot(p, c, false); idx < 0 {
			at += s.d.http.draw(s.rng) // GET /manifest/c
			s.originHTTP += uint64(s.manLen)
		}
	}
	s.push(event{at: at, kind: evPoll, p: p, c: latest, q: from})
}

// pollGaps is what the playout rule says p lacks below its newest chunk
// (in s.gaps, until the next call).
func (s *simulator) pollGaps(p int32) []uint32 {
	s.win.p = p
	s.gaps = s.rule.Gaps(&s.ps[p].play, s.now/1000, &s.win, s.gaps[:0], simMaxGap)
	return s.gaps
}

// pollFrom is the first chunk above p's newest a poll asks for, when
// latest is the origin's newest and gaps manifests below are asked for.
func (s *simulator) pollFrom(p, latest int32, gaps int) int32 {
	from := latest
	if s.ps[p].newest >= 0 && latest > s.ps[p].newest {
		from = s.ps[p].newest + 1
	}
	return max(from, latest-int32(simMaxGap-gaps)+1)
}

func (s *simulator) pollDone(p, latest int32) {
	s.ps[p].polling = false
	if s.ps[p].state != psAlive || latest < 0 {
		return
	}
	gaps := s.pollGaps(p)
	from := s.pollFrom(p, latest, len(gaps))
	for _, g := range gaps {
		s.learnPolled(p, int32(g))
	}
	for c := from; c <= latest; c++ {
		s.learnPolled(p, c)
	}
	s.advance(p)
	s.fetchJobs(p)
}

// learnPolled: the origin served p chunk c's manifest, if it has it.
func (s *simulator) learnPolled(p, c int32) {
	if c >= s.cuts || (s.lose != nil && s.lose(c)) {
		return
	}
	if _, fresh := s.slot(p, c, true); fresh {
		s.learn(p, c, -1)
	}
}

// --- a peer's repair loop ---------------------------------------------

// tick is p's repair loop: fetches, silent parents, manifest polls, and
// the playout position over missed deadlines. It runs once a chunk
// interval, just after the moment a chunk becomes urgent.
func (s *simulator) tick(p int32) {
	if s.ps[p].state != psAlive {
		return
	}
	s.advance(p)
	s.fetchJobs(p)
	stalled := s.stalled(p)
	s.watchParents(p)
	s.maybePoll(p, stalled)
	s.push(event{at: s.nextTick(p), kind: evTick, p: p})
}

// nextTick is the next instant a chunk becomes urgent for p (deadline -
// FallbackLead, plus half the repair loop's period), or an interval on
// before p knows any chunk.
func (s *simulator) nextTick(p int32) int64 {
	now := s.now
	off, ok := s.ps[p].play.Offset()
	if !ok {
		return now + s.interval
	}
	phase := off*1000 + s.playout - s.lead + int64(simPollEvery)/2
	c := int64(0)
	if now >= phase {
		c = (now-phase)/s.interval + 1
	}
	return c*s.interval + phase
}

// watchParents complains about a parent that sent nothing for the stall
// time while other trees deliver, or whose link never opened.
func (s *simulator) watchParents(p int32) {
	now := s.now
	flowing := false
	for i := range s.m {
		flowing = flowing || now-s.ts[int(p)*s.m+i].lastRx < s.stall/2
	}
	for i := range s.m {
		ti := int(p)*s.m + i
		q := s.ts[ti].parent
		if q < 0 {
			continue
		}
		open := s.ts[ti].popen <= now
		silent := open && flowing && now-s.ts[ti].lastRx > s.stall && now-s.ts[ti].popen > s.stall
		stuck := !open && now-s.ts[ti].lastRx > int64(simLinkTimeout)
		if silent || stuck {
			s.ts[ti].lastRx = now
			s.complaints++
			s.push(event{at: now + s.ctrlNs(p), kind: evTracker, op: tComplain, p: p, q: q, tree: uint8(i)})
		}
	}
}

// silence is the check a child's repair loop makes soon after its parent
// q went quiet: scheduled when q vanished, so that the complaint comes
// when the peer's 50 ms loop would send it, not at the next tick.
func (s *simulator) silence(p, q int32, tree int) {
	ti := int(p)*s.m + tree
	if s.ps[p].state != psAlive || s.ts[ti].parent != q {
		return
	}
	if wait := s.ts[ti].lastRx + s.stall - s.now; wait >= 0 {
		s.push(event{at: s.now + wait + int64(simPollEvery)/2, kind: evSilence, p: p, q: q, tree: uint8(tree)})
		return
	}
	s.watchParents(p)
}

// --- control: peers and the tracker ------------------------------------

// start: viewer p opens its connection to the tracker and joins: a TCP
// and a WebSocket handshake, then the join message.
func (s *simulator) start(p int32) {
	s.ps[p].state = psJoining
	s.ps[p].joinAt = s.now
	upload := s.cfg.UploadKbps
	switch u := s.mix.Float64(); {
	case u < s.cfg.ZeroUpload:
		upload = 0
	case u < s.cfg.ZeroUpload+s.cfg.LowUpload:
		upload = (s.cfg.Bitrate/int64(s.cfg.K) + 999) / 1000
	}
	up := s.model.UplinkBps
	if up == 0 {
		up = int64(float64(upload*1000) * s.model.UplinkHeadroom)
	}
	if up <= 0 {
		up = 64_000 // acks and signaling only; it relays nothing
	}
	s.ps[p].nsPerB = 8e9 / float64(up)
	slots := forest.Slots(upload*1000, s.stripeBps, simMaxSlots)
	s.push(event{at: s.now + 5*s.ctrlNs(p), kind: evTracker, op: tJoin, p: p, c: int32(slots)})
}

// toTracker returns when the tracker gets to an event that reached it
// now: it handles one at a time.
func (s *simulator) toTracker() int64 {
	t := max(s.now, s.trackerFree) + int64(s.model.TrackerService)
	s.trackerFree = t
	wait := t - s.now
	s.trackerWaitMax = max(s.trackerWaitMax, wait)
	s.trackerWaitSum += wait
	s.trackerEvents++
	return t
}

func (s *simulator) tracker(e *event) {
	t := s.toTracker()
	p := e.p
	switch e.op {
	case tJoin:
		if s.ps[p].state != psJoining {
			return
		}
		// Probation, as the tracker does it: a new peer gets at most
		// DefaultProbationSlots, and more per child that confirms
		// (tracker.ProbationCeiling).
		s.trust[p] = &simTrust{declared: int(e.c), confirmed: map[int32]bool{}}
		ds, err := s.f.Join(forest.PeerID(p), forest.Peer{Kind: forest.Native, Slots: min(int(e.c), tracker.DefaultProbationSlots)})
		if err != nil {
			return
		}
		s.push(event{at: t + s.ctrlNs(p), kind: evMsg, op: mWelcome, p: p})
		s.apply(ds, t)
	case tLeave, tSweep:
		s.remove(p, t)
	case tConfirm:
		q := e.q
		tr := s.trust[q]
		if tr == nil || tr.confirmed[p] {
			return
		}
		feeds := false
		for i := 0; i < s.m; i++ {
			if par, ok := s.f.Parent(forest.PeerID(p), i); ok && int32(par) == q {
				feeds = true
			}
		}
		if !feeds {
			return
		}
		tr.confirmed[p] = true
		ceil := tracker.ProbationCeiling(tr.declared, tracker.DefaultProbationSlots, len(tr.confirmed))
		if v, ok := s.f.Node(forest.PeerID(q)); ok && v.Slots < ceil {
			if ds, err := s.f.SetSlots(forest.PeerID(q), ceil); err == nil {
				s.apply(ds, t)
			}
		}
	case tComplain:
		par, ok := s.f.Parent(forest.PeerID(p), int(e.tree))
		if !ok || int32(par) != e.q {
			return
		}
		q := e.q
		if last, gone := s.lastMsg[q]; gone && s.now-last > 2*int64(simHeartbeat) {
			// A parent that also stopped its heartbeats is declared failed.
			s.remove(q, t)
			return
		}
		ds, err := s.f.Complain(forest.PeerID(p), int(e.tree))
		if err == nil {
			s.apply(ds, t)
		}
	}
}

// remove takes p out of the forest and repairs around it.
func (s *simulator) remove(p int32, t int64) {
	delete(s.trust, p)
	ds, err := s.f.Leave(forest.PeerID(p))
	if err != nil {
		return
	}
	s.apply(ds, t)
	for _, l := range s.links[p] {
		s.dropLink(l.peer, p)
	}
	s.links[p] = nil
}

// apply carries out forest decisions made at tracker time t: each becomes
// a message to the peers concerned.
func (s *simulator) apply(ds []forest.Decision, t int64) {
	for _, d := range ds {
		c, par := int32(d.Peer), int32(d.Parent)
		tree := uint8(d.Tree)
		switch d.Op {
		case forest.Attach:
			openAt, lat := s.link(par, c, d.Tree, t)
			s.push(event{at: t + s.ctrlNs(c), kind: evMsg, op: mParent, p: c, q: par, tree: tree, x: openAt})
			s.push(event{at: t + s.ctrlNs(par), kind: evMsg, op: mChild, p: par, q: c, tree: tree, x: openAt, c: lat})
		case forest.Detach:
			s.unlink(par, c, d.Tree, t)
			s.push(event{at: t + s.ctrlNs(par), kind: evMsg, op: mRemoveChild, p: par, q: c, tree: tree})
			s.push(event{at: t + s.ctrlNs(c), kind: evMsg, op: mRemoveParent, p: c, q: par, tree: tree})
		case forest.Fallback:
			s.push(event{at: t + s.ctrlNs(c), kind: evMsg, op: mFallback, p: c, tree: tree})
		}
	}
}

// findLink returns a's record of its link to b, or nil.
func (s *simulator) findLink(a, b int32) *linkRec {
	ls := s.links[a]
	for i := range ls {
		if ls[i].peer == b {
			return &ls[i]
		}
	}
	return nil
}

// link records that par feeds c in tree and returns when their link is
// (or will be) open and its one-way delay. A pair shares one link for
// all its trees, and a link unused for less than simLinkGrace is reused.
func (s *simulator) link(par, c int32, tree int, t int64) (int64, int32) {
	bit := uint16(1) << tree
	a, b := s.findLink(par, c), s.findLink(c, par)
	if a != nil && b != nil && (a.parentOf|a.childOf != 0 || a.until > t) {
		a.childOf |= bit
		b.parentOf |= bit
		a.until, b.until = 0, 0
		return a.openAt, a.lat
	}
	openAt := t + max(s.ctrlNs(par), s.ctrlNs(c)) + s.d.setup.draw(s.rng)
	lat := int32(s.d.hop.draw(s.rng) / 1000)
	if a == nil {
		s.links[par] = append(s.links[par], linkRec{peer: c})
		a = &s.links[par][len(s.links[par])-1]
	}
	if b == nil {
		s.links[c] = append(s.links[c], linkRec{peer: par})
		b = &s.links[c][len(s.links[c])-1]
	}
	*a = linkRec{peer: c, openAt: openAt, lat: lat, childOf: bit}
	*b = linkRec{peer: par, openAt: openAt, lat: lat, parentOf: bit}
	s.push(event{at: openAt, kind: evLinkOpen, p: c, q: par, x: openAt})
	return openAt, lat
}

// unlink: par no longer feeds c in tree; an unused link lingers.
func (s *simulator) unlink(par, c int32, tree int, t int64) {
	bit := uint16(1) << tree
	if a := s.findLink(par, c); a != nil {
		a.childOf &^= bit
		if a.parentOf|a.childOf == 0 {
			a.until = t + int64(simLinkGrace)
		}
	}
	if b := s.findLink(c, par); b != nil {
		b.parentOf &^= bit
		if b.parentOf|b.childOf == 0 {
			b.until = t + int64(simLinkGrace)
		}
	}
}

// dropLink removes a's record of b (b left).
func (s *simulator) dropLink(a, b int32) {
	ls := s.links[a]
	for i := range ls {
		if ls[i].peer == b {
			ls[i] = ls[len(ls)-1]
			s.links[a] = ls[:len(ls)-1]
			return
		}
	}
}

// message: a tracker message reaches peer p.
func (s *simulator) message(e *event) {
	p := e.p
	if s.ps[p].state != psAlive && !(e.op == mWelcome && s.ps[p].state == psJoining) {
		return
	}
	now := s.now
	ti := int(p)*s.m + int(e.tree)
	switch e.op {
	case mWelcome:
		s.ps[p].state = psAlive
		s.ps[p].alivePos = int32(len(s.alive))
		s.alive = append(s.alive, p)
		s.push(event{at: s.nextTick(p), kind: evTick, p: p})
	case mParent:
		// A new parent with no remove-parent first: the old one was lost.
		if s.ts[ti].parent >= 0 {
			s.ts[ti].lostAt = now
		} else {
			s.ts[ti].lostAt = 0
		}
		s.ts[ti].parent, s.ts[ti].fb, s.ts[ti].popen = e.q, false, e.x
		s.ts[ti].lastRx = now // a new parent gets a full timeout to deliver
	case mRemoveParent:
		if s.ts[ti].parent == e.q {
			s.ts[ti].parent = -1
			s.ts[ti].lostAt = 0
		}
	case mFallback:
		s.ts[ti].parent, s.ts[ti].fb, s.ts[ti].lostAt = -1, true, 0
		s.fetchJobs(p)
	case mChild:
		s.kids[p] = append(s.kids[p], kidEdge{c: e.q, tree: e.tree, openAt: e.x, lat: e.c})
		if e.x <= now {
			s.childReady(p, e.q, 1<<e.tree)
		}
	case mRemoveChild:
		ks := s.kids[p]
		for i := range ks {
			if ks[i].c == e.q && ks[i].tree == e.tree {
				ks[i] = ks[len(ks)-1]
				s.kids[p] = ks[:len(ks)-1]
				break
			}
		}
	}
}

// linkOpen: the link par → c opened; par sends c what it needs to start.
func (s *simulator) linkOpen(par, c int32, openAt int64) {
	if s.ps[par].state != psAlive {
		return
	}
	var mask uint16
	for _, e := range s.kids[par] {
		if e.c == c && e.openAt == openAt {
			mask |= 1 << e.tree
		}
	}
	if mask != 0 {
		s.childReady(par, c, mask)
		if par != 0 {
			// The child confirms the new parent's first data.
			s.push(event{at: s.now + s.ctrlNs(c), kind: evTracker, op: tConfirm, p: c, q: par})
		}
	}
}

// childReady sends a child that just became reachable, in the trees of
// mask, the newest chunk's manifest and shards (origin: ChildReady; peer:
// childReady, only while that chunk is before its deadline).
func (s *simulator) childReady(par, c int32, mask uint16) {
	n := s.ps[par].newest
	if n < 0 {
		return
	}
	var have uint16 = s.allMask
	if par != 0 {
		idx, _ := s.slot(par, n, false)
		if idx < 0 || s.now >= s.deadline(par, n) {
			return
		}
		have = s.sl[idx].got
	}
	man := s.manLen
	ks := s.kids[par]
	var alone *kidEdge
	for i := range ks {
		bit := uint16(1) << ks[i].tree
		if ks[i].c != c || mask&bit == 0 {
			continue
		}
		if have&bit == 0 {
			alone = &ks[i]
			continue
		}
		s.send(par, &ks[i], n, man+s.msg, false)
		man = 0
	}
	if man != 0 && alone != nil {
		// None of the shards yet: the manifest alone.
		s.sendManifest(par, alone, n)
		s.count(par, s.manLen)
	}
}

// --- churn --------------------------------------------------------------

// churn kills peers at the configured rate, each replaced by a newcomer,
// as real mode does: every 100 ms, once the crowd has arrived.
func (s *simulator) churn() {
	const tick = 100 * time.Millisecond
	if s.now > int64(s.cfg.JoinOver+time.Second) {
		s.churnDebt += s.cfg.Churn / 100 * float64(s.cfg.Peers) / (float64(time.Minute) / float64(tick))
	}
	for ; s.churnDebt >= 1 && len(s.alive) > 0; s.churnDebt-- {
		v := s.alive[s.churnRNG.IntN(len(s.alive))]
		s.kill(v, s.churnRNG.Float64() < s.cfg.ChurnUngraceful)
		n := s.addPeer()
		s.push(event{at: s.now, kind: evStart, p: n})
	}
	if t := s.now + int64(tick); t < s.end {
		s.push(event{at: t, kind: evChurn})
	}
}

// kill takes p out: gracefully (it says goodbye: the tracker repairs at
// once, its links close) or not (it vanishes: its links stay up and
// carry nothing, children notice the silence and complain, the tracker
// drops it after HeartbeatMisses heartbeats).
func (s *simulator) kill(p int32, vanish bool) {
	s.advance(p)
	s.ps[p].leftAt = s.now
	i := s.ps[p].alivePos
	last := s.alive[len(s.alive)-1]
	s.alive[i], s.ps[last].alivePos = last, i
	s.alive = s.alive[:len(s.alive)-1]
	s.ps[p].alivePos = -1
	if !vanish {
		s.ps[p].state = psLeft
		s.push(event{at: s.now + s.ctrlNs(p), kind: evTracker, op: tLeave, p: p})
		return
	}
	s.ps[p].state = psVanished
	// Its last heartbeat or report went out up to a second ago; the
	// tracker sweeps once a second and drops it after three silent
	// heartbeat intervals.
	last2 := s.now - int64(s.rng.Float64()*float64(time.Second))
	s.lastMsg[p] = last2
	sweepEvery := int64(simHeartbeat / 2)
	at := (last2+simMisses*int64(simHeartbeat))/sweepEvery*sweepEvery + sweepEvery
	s.push(event{at: at, kind: evTracker, op: tSweep, p: p})
	for _, e := range s.kids[p] {
		s.push(event{at: s.now + s.stall, kind: evSilence, p: e.c, q: p, tree: e.tree})
	}
}

// --- sampling -----------------------------------------------------------

func (s *simulator) sample() {
	st := Sample{T: math.Round(float64(s.now)/1e8) / 10, Peers: len(s.alive)}
	due := s.gPlayed + s.gMissed
	st.Continuity = 1
	if d := due - s.lastDue; d > 0 {
		st.Continuity = round(float64(s.gOnTime-s.lastOnTime) / float64(d))
	}
	s.lastDue, s.lastOnTime = due, s.gOnTime
	origin := s.originRTC + s.originHTTP
	prevT := 0.0
	if n := len(s.series); n > 0 {
		prevT = s.series[n-1].T
	}
	if dt := st.T - prevT; dt > 0 {
		st.OriginMbps = round(float64(origin-s.lastOrigin) * 8 / dt / 1e6)
	}
	s.lastOrigin = origin
	st.originB = origin
	s.series = append(s.series, st)
	if t := s.now + int64(time.Second); t <= s.end {
		s.push(event{at: t, kind: evSample})
	}
}
