package peer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"time"

	"github.com/coopcast/coopcast/internal/forest"
	"github.com/coopcast/coopcast/internal/wire"
)

// chunk is what the peer holds of one chunk while it is in the window.
type chunk struct {
	seq      uint32
	man      *wire.Manifest
	rawMan   []byte
	manAt    time.Time     // when its manifest was verified here
	pending  []pendingFrag // fragments that came before the manifest
	reasm    []*wire.Reassembler
	got      [][]bool // per shard, per fragment: seen
	shards   [][]byte // verified, complete shards
	have     int
	done     bool
	data     []byte
	doneAt   time.Time
	fetching []bool // per shard: an HTTP fetch is under way
}

// pendingFrag is a fragment that came before its chunk's manifest, with
// its sender: once the manifest comes, a bad one is blamed on who sent it.
type pendingFrag struct {
	from forest.PeerID
	raw  []byte
}

// Limits on what an unverified sender can make the peer hold.
const (
	window         = 64 // chunks kept around the newest
	maxPendingFrag = 64 // fragments held per chunk before its manifest
	// maxUnknown bounds the chunks held before the first manifest, when
	// there is no live edge yet to measure a window from.
	maxUnknown = 8
)

// chunkLocked returns the state for seq, creating it if seq is plausible:
// within the window around the newest chunk. Before the first manifest
// only a few chunks are held for fragments; a verified manifest always
// gets its chunk. p.mu held.
func (p *Peer) chunkLocked(seq uint32, verified bool) *chunk {
	if c := p.chunks[seq]; c != nil {
		return c
	}
	if p.haveAny && (int32(seq-p.newest) > window || int32(p.newest-seq) > window) {
		return nil
	}
	if p.pastLocked(seq) {
		return nil // already played or skipped
	}
	if !p.haveAny && !verified && len(p.chunks) >= maxUnknown {
		return nil
	}
	c := &chunk{seq: seq}
	p.chunks[seq] = c
	return c
}

// receive takes one data-channel message (or an HTTP-fetched manifest).
func (p *Peer) receive(from forest.PeerID, b []byte, viaHTTP bool) {
	if len(b) < 2 {
		p.bad(from, "short message")
		return
	}
	switch b[1] {
	case wire.TypeManifest:
		if !viaHTTP && !p.member.AcceptsAny(from) {
			p.unasked(from, -1)
			return
		}
		p.onManifest(from, b, viaHTTP)
	case wire.TypeFragment:
		p.onFragment(from, b)
	default:
		p.bad(from, "unknown message type")
	}
}

// unasked drops data from a neighbour that does not feed us what it sent:
// only a tree's parent (or the former parent of a move under way) may
// send that tree's data, so a neighbour cannot make us hold, verify or
// relay what we never asked it for, nor make us blame an honest parent.
// A neighbour that keeps at it (floodLimit messages a second, floodSeconds
// seconds in a row) is reported to the tracker, at most once per
// blameEvery.
func (p *Peer) unasked(from forest.PeerID, tree int) {
	now := time.Now()
	p.mu.Lock()
	p.st.unasked++
	f := p.floods[from]
	if now.Sub(f.since) > time.Second {
		// A new second: the last one counts towards a flood if it was
		// one, and followed the one before.
		if f.n >= floodLimit && now.Sub(f.since) < 2*time.Second {
			f.hot++
		} else {
			f.hot = 0
		}
		f.since, f.n = now, 0
	}
	f.n++
	report := f.n == floodLimit && f.hot >= floodSeconds-1 && now.Sub(p.floodAt[from]) >= blameEvery && from != forest.Origin
	if report {
		p.floodAt[from] = now
		p.st.floodReports++
	}
	p.floods[from] = f
	if len(p.floods) > maxBlamed {
		clear(p.floods) // only neighbours can send; this bounds a churning swarm
	}
	p.mu.Unlock()
	p.log.Debug("dropped data from a neighbour that does not feed us", "from", from)
	if report {
		p.log.Info("a neighbour floods us with data it does not feed us; reporting it", "from", from)
		p.member.ReportFlood(max(tree, 0), from)
	}
}

// Flood and blame limits.
const (
	// floodLimit: unasked messages from one neighbour in one second that
	// make a flood. A parent released a moment ago may still send a few
	// fragments in flight (at 8 Mbit/s, about 20 a second per tree); a
	// flood is far more.
	floodLimit = 64
	// floodSeconds: a flood is sustained. A parent released a moment ago
	// may empty a queue that built up on a loaded link in one burst; a
	// report of an honest peer would cost it its slots.
	floodSeconds = 3
	// blameEvery: a neighbour is reported (flood) or shown with evidence
	// (bad data) at most this often: one report is all the tracker counts
	// from one child, and each spends the child's complaint budget.
	blameEvery = 10 * time.Second
	// maxBlamed bounds the per-neighbour records.
	maxBlamed = 256
)

// floodCount is unasked messages from one neighbour in the second since,
// and how many seconds before it in a row were floods.
type floodCount struct {
	since time.Time
	n     int
	hot   int
}

// bad counts a message that failed checks. Garbage (what does not even
// parse) proves nothing anyone else can check, so it is not complained
// of: a parent that sends only garbage is silent, which the cadence rule
// catches.
func (p *Peer) bad(from forest.PeerID, why string) {
	p.mu.Lock()
	p.st.badMessages++
	p.mu.Unlock()
	p.log.Debug("dropped bad message", "from", from, "why", why)
}

// proven drops data from a neighbour that fails against the channel's
// key, and shows the tracker the bytes (a manifest whose signature fails,
// or the verified manifest and a fragment that does not match it), at
// most once per neighbour per blameEvery. tree is the fragment's, or -1
// for a manifest (then any tree the sender feeds us).
func (p *Peer) proven(from forest.PeerID, tree int, manifest, fragment []byte, why string) {
	p.bad(from, why)
	if from == forest.Origin {
		return
	}
	now := time.Now()
	p.mu.Lock()
	if now.Sub(p.blamed[from]) < blameEvery {
		p.mu.Unlock()
		return
	}
	if len(p.blamed) > maxBlamed {
		clear(p.blamed)
	}
	p.blamed[from] = now
	p.st.evidence++
	p.mu.Unlock()
	if tree < 0 {
		tree = 0
		for i, ts := range p.member.Trees() {
			if ts.HasParent && ts.Parent == from {
				tree = i
				break
			}
		}
	}
	p.log.Info("a neighbour sent data that fails the channel's signature; showing the tracker", "from", from, "tree", tree, "why", why)
	p.member.ShowEvidence(tree, from, manifest, fragment)
}

func (p *Peer) onManifest(from forest.PeerID, raw []byte, viaHTTP bool) {
	p.mu.Lock()
	if p.key == nil {
		p.mu.Unlock()
		return
	}
	// Each parent sends every manifest: a copy of one already verified
	// costs a compare, not a signature check. One that differs is checked
	// (it may be forged: then it is evidence).
	if len(raw) >= 6 {
		if c := p.chunks[binary.BigEndian.Uint32(raw[2:])]; c != nil && c.man != nil && bytes.Equal(c.rawMan, raw) {
			p.mu.Unlock()
			return
		}
	}
	m, err := wire.ParseManifest(raw)
	if err != nil {
		p.mu.Unlock()
		p.bad(from, "manifest: "+err.Error())
		return
	}
	if err := m.Verify(p.key, p.cfg.Channel); err != nil {
		p.mu.Unlock()
		if !viaHTTP {
			p.proven(from, -1, raw, nil, "manifest: "+err.Error())
		}
		return
	}
	if int(m.M) != p.m || int(m.K) != p.k {
		p.mu.Unlock()
		p.bad(from, "manifest: "+errShape.Error())
		return
	}
	// A manifest of an earlier epoch is a replay from a previous run of the
	// origin, or a straggler from before it restarted: dropped, but not
	// blamed on the sender. A later epoch is the origin restarted.
	if err := m.VerifyEpoch(p.epoch); err != nil {
		p.mu.Unlock()
		p.log.Debug("dropped manifest", "from", from, "seq", m.Seq, "err", err)
		return
	}
	if m.Epoch > p.epoch {
		p.log.Info("the origin restarted: new stream epoch", "epoch", m.Epoch, "was", p.epoch, "seq", m.Seq)
		p.epoch = m.Epoch
	}
	c := p.chunkLocked(m.Seq, true)
	if c == nil || c.man != nil {
		p.mu.Unlock()
		return
	}
	c.man = &m
	c.manAt = time.Now()
	c.rawMan = append([]byte(nil), raw...)
	if m.Flags&wire.FlagEnd != 0 {
		c.done, c.doneAt = true, time.Now() // nothing to rebuild
	}
	c.reasm = make([]*wire.Reassembler, p.m)
	c.got = make([][]bool, p.m)
	c.shards = make([][]byte, p.m)
	c.fetching = make([]bool, p.m)
	now := time.Now()
	p.rule.Manifest(&p.play, now.UnixMicro(), m.Seq, m.Timestamp, m.Flags&wire.FlagEnd != 0)
	if off, _ := p.play.Offset(); !viaHTTP && (!p.haveAny || int32(m.Seq-p.newest) > 0) {
		// How late the news comes here, past the fastest ever: a
		// decaying maximum (cadence.Stream.NewsLag).
		late := time.Duration(max(0, now.UnixMicro()-m.Timestamp-off)) * time.Microsecond
		p.newsLag = max(late, p.newsLag*15/16)
	}
	if !p.haveAny || int32(m.Seq-p.newest) > 0 {
		p.newest, p.haveAny, p.newestAt = m.Seq, true, now
	}
	p.countRx(from, len(raw), viaHTTP)
	pend := c.pending
	c.pending = nil
	p.evictLocked()
	p.mu.Unlock()

	for i := 0; i < int(m.M); i++ {
		p.member.Fanout(i, m.Seq, c.rawMan)
	}
	for _, f := range pend {
		p.onFragment(f.from, f.raw)
	}
}

func (p *Peer) onFragment(from forest.PeerID, raw []byte) {
	f, err := wire.ParseFragment(raw)
	if err != nil {
		p.bad(from, "fragment: "+err.Error())
		return
	}
	if !p.member.Accepts(int(f.Shard), from) {
		p.unasked(from, int(f.Shard))
		return
	}
	p.mu.Lock()
	c := p.chunkLocked(f.Seq, false)
	if c == nil {
		p.mu.Unlock()
		return
	}
	if c.man == nil {
		if len(c.pending) < maxPendingFrag {
			c.pending = append(c.pending, pendingFrag{from, append([]byte(nil), raw...)})
		}
		p.mu.Unlock()
		return
	}
	if err := c.man.VerifyFragment(f); err != nil {
		man := c.rawMan
		p.mu.Unlock()
		if errors.Is(err, wire.ErrHash) {
			p.proven(from, int(f.Shard), man, raw, "fragment: "+err.Error())
		} else {
			p.bad(from, "fragment: "+err.Error())
		}
		return
	}
	tree := int(f.Shard)
	p.member.Delivered(tree, from)
	idx := int(f.Offset) / wire.MaxPayload
	if c.got[tree] == nil {
		c.got[tree] = make([]bool, (int(c.man.ShardSize)+wire.MaxPayload-1)/wire.MaxPayload)
	}
	// The parent delivers, even a copy of what is held already (a shard
	// regenerated for children or fetched before its copy came): parent
	// silence is judged by this, and a peer that regenerates a stripe
	// must not call its working parent silent.
	if len(p.lastRx) > tree {
		now := time.Now()
		p.lastRx[tree] = now
		p.complained[tree] = time.Time{}
		if int32(f.Seq-p.lastSeqRx[tree]) > 0 {
			p.lastSeqRx[tree] = f.Seq
			// How far this tree runs behind the first news of a chunk:
			// a decaying maximum, so a deep or loaded tree is not
			// mistaken for a silent one.
			p.treeLag[tree] = max(now.Sub(c.manAt), p.treeLag[tree]*15/16)
		}
		if !p.switchAt[tree].IsZero() && from == p.switchFrom[tree] {
			p.st.repairs = append(p.st.repairs, ms(now.Sub(p.switchAt[tree])))
			p.switchAt[tree] = time.Time{}
		}
	}
	if c.shards[tree] != nil || c.got[tree][idx] {
		p.mu.Unlock()
		return // duplicate
	}
	c.got[tree][idx] = true
	p.countRx(from, len(raw), false)
	if c.reasm[tree] == nil {
		c.reasm[tree], _ = wire.NewReassembler(int(c.man.ShardSize))
	}
	complete, err := c.reasm[tree].Add(f)
	fwd := append([]byte(nil), raw...)
	var regen []regenerated
	if err == nil && complete {
		c.shards[tree] = c.reasm[tree].Bytes()
		c.reasm[tree] = nil
		c.have++
		regen = p.rebuildLocked(c)
	}
	p.mu.Unlock()
	// Cut-through: forward at once, verified, to this tree's children.
	p.member.Fanout(tree, f.Seq, fwd)
	p.sendRegenerated(regen)
}

func (p *Peer) countRx(from forest.PeerID, n int, viaHTTP bool) {
	if from == forest.Origin || viaHTTP {
		p.st.bytesFromOrigin += uint64(n)
	} else {
		p.st.bytesFromPeers += uint64(n)
	}
}

type regenerated struct {
	seq   uint32
	tree  int
	shard []byte
}

// rebuildLocked rebuilds c once k shards are in, and returns the shards
// to regenerate for trees in which this peer feeds children but got
// nothing itself, so one broken link does not starve a subtree.
func (p *Peer) rebuildLocked(c *chunk) []regenerated {
	if c.done || c.have < p.k {
		return nil
	}
	shards := make([][]byte, len(c.shards))
	copy(shards, c.shards)
	data, err := p.coder.Reconstruct(shards, int(c.man.Length))
	if err != nil {
		p.log.Error("rebuild chunk", "seq", c.seq, "err", err)
		return nil
	}
	c.done, c.data, c.doneAt = true, data, time.Now()
	p.st.rebuilt++
	p.st.latency = append(p.st.latency, float64(c.doneAt.Sub(time.UnixMicro(c.man.Timestamp)).Microseconds())/1000)
	if p.cfg.OnChunk != nil {
		p.cfg.OnChunk(c.seq, data)
	}
	select {
	case p.wakeup <- struct{}{}:
	default:
	}
	var out []regenerated
	trees := p.member.Trees()
	for i := range c.shards {
		if c.shards[i] != nil || i >= len(trees) || trees[i].Children == 0 {
			continue
		}
		if out == nil {
			// Regenerate fills every missing shard in shards.
			if err := p.coder.Regenerate(shards); err != nil {
				p.log.Error("regenerate shard", "seq", c.seq, "err", err)
				return nil
			}
		}
		if c.man.VerifyShard(i, shards[i]) != nil {
			continue
		}
		c.shards[i] = shards[i]
		p.st.regenerated++
		out = append(out, regenerated{c.seq, i, shards[i]})
	}
	return out
}

func (p *Peer) sendRegenerated(rs []regenerated) {
	for _, r := range rs {
		wire.Fragments(r.seq, uint8(r.tree), r.shard, func(msg []byte) { p.member.Fanout(r.tree, r.seq, msg) })
	}
}

// evictLocked forgets chunks that fell out of the window.
func (p *Peer) evictLocked() {
	if len(p.chunks) <= 2*window {
		return
	}
	for seq := range p.chunks {
		if next, ok := p.play.Next(); int32(p.newest-seq) > window || (ok && int32(next-seq) > 8) {
			delete(p.chunks, seq)
		}
	}
}

// catchUp is a batch of messages for one new child.
type catchUp struct {
	seq  uint32
	msgs [][]byte
}

// childReady sends a child that just became ready, in each tree of the
// mask, the newest chunk's manifest and shard: a new or repaired child
// starts with the chunk in flight instead of waiting for the next one.
// Older chunks are left to the child's own HTTP fallback near their
// deadline, so backfill never floods a link that has just opened.
func (p *Peer) childReady(child forest.PeerID, trees uint64) {
	now := time.Now()
	p.mu.Lock()
	var out []catchUp
	for seq, c := range p.chunks {
		if c.man == nil || seq != p.newest || !now.Before(p.deadlineLocked(c)) {
			continue
		}
		cu := catchUp{seq: seq, msgs: [][]byte{c.rawMan}}
		for i, sh := range c.shards {
			if trees&(1<<i) != 0 && sh != nil {
				wire.Fragments(seq, uint8(i), sh, func(msg []byte) { cu.msgs = append(cu.msgs, msg) })
			}
		}
		out = append(out, cu)
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b catchUp) int { return int(int32(a.seq - b.seq)) })
	for _, cu := range out {
		for _, m := range cu.msgs {
			p.member.SendTo(child, cu.seq, m)
		}
	}
}
