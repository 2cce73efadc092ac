package peer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coopcast/coopcast/internal/cadence"
	"github.com/coopcast/coopcast/internal/forest"
	"github.com/coopcast/coopcast/internal/proto"
	"github.com/coopcast/coopcast/internal/wire"
)

// repairLoop is the peer's last line of defence: it fetches over HTTP what
// the trees did not bring in time (or at all, for trees the tracker put
// it on fallback for), complains about silent parents, and reports stats
// to the tracker.
func (p *Peer) repairLoop(ctx context.Context) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, 4)
	lastReport := time.Now()
	parents := map[int]forest.PeerID{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.reportNow:
			lastReport = time.Now()
			p.member.Report(p.trackerReport())
			continue
		}
		now := time.Now()
		trees := p.member.Trees()
		base := p.member.FallbackURL()
		jobs := p.fetchJobs(now, trees)
		for _, j := range jobs {
			if base == "" {
				break
			}
			select {
			case sem <- struct{}{}:
			default:
				p.unmark(j)
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				p.fetch(ctx, base, j)
			}()
		}
		p.watchParents(now, trees, parents)
		if now.Sub(lastReport) >= 2*time.Second {
			lastReport = now
			p.member.Report(p.trackerReport())
		}
	}
}

type fetchJob struct {
	seq      uint32
	shard    int // -1: manifests or a whole chunk
	manifest bool
	// whole: fetch the chunk in one request instead of the shards listed,
	// when it needs more than one from HTTP.
	whole  bool
	shards []int
}

// replaceGrace is how long a new parent's link may take to open before
// the tree counts as stalled. Most open well within it; counting them all
// stalled at once sent a flash crowd's many moves to HTTP.
const replaceGrace = time.Second

// stallAfterLocked is how long a tree may carry nothing before the peer
// stops counting on it (cadence.Rule.StallAfter): the silence timeout,
// after which it complains too, or two chunk intervals when chunks are
// longer (a tree is quiet between chunks). Shorter, ordinary jitter on a
// loaded machine sends shards to HTTP, which loads the machine more: a
// feedback loop.
func (p *Peer) stallAfterLocked() time.Duration {
	return time.Duration(p.cad.StallAfter(p.cadenceStreamLocked())) * time.Microsecond
}

// fetchJobs picks what to fetch now: shards a chunk still needs near its
// deadline; at once, the shards of trees that are on fallback or stalled
// (parent lost, or silent for stallAfter) when the working trees cannot
// bring k; and manifests when none has come for a while, which is what a
// peer sees when every tree above it broke at once.
func (p *Peer) fetchJobs(now time.Time, trees []swarmTree) []fetchJob {
	p.mu.Lock()
	defer p.mu.Unlock()
	stalled := make([]bool, p.m)
	stallAfter := p.stallAfterLocked()
	nStalled := 0
	for i := range stalled {
		switch {
		case i >= len(trees):
			stalled[i] = true
		case trees[i].Fallback:
			stalled[i] = true
		case !trees[i].HasParent:
			stalled[i] = true
		case !trees[i].ParentLostAt.IsZero() && trees[i].ParentOpenSince.IsZero() && now.Sub(trees[i].ParentLostAt) > replaceGrace:
			stalled[i] = true // lost its parent, and the new link is slow to come up
		case i < len(p.lastRx) && !p.lastRx[i].IsZero() && now.Sub(p.lastRx[i]) > stallAfter:
			stalled[i] = true
		case i < len(p.complained) && !p.complained[i].IsZero():
			stalled[i] = true // its parent was judged silent, and nothing came since
		}
		if stalled[i] {
			nStalled++
		}
	}
	var jobs []fetchJob
	_, started := p.play.Next()
	for seq, c := range p.chunks {
		if c.man == nil || c.done || p.pastLocked(seq) {
			continue
		}
		deadline := p.deadlineLocked(c)
		if !now.Before(deadline) || (!started && int32(p.newest-seq) > 2) {
			continue // too late to matter, or history from before we joined
		}
		urgent := !now.Before(deadline.Add(-p.cfg.FallbackLead))
		// What can still come: shards in hand or on the way, and shards
		// of working trees not in yet.
		coming := c.have
		for i := range c.shards {
			if c.shards[i] == nil && (c.fetching[i] || !stalled[i]) {
				coming++
			}
		}
		need := p.k - c.have - countTrue(c.fetching)
		early := p.k - coming // shards that only HTTP can bring
		// Fetch stalled trees' shards first, then, when urgent, any.
		var want []int
		for pass := 0; pass < 2; pass++ {
			for i := range c.shards {
				if c.shards[i] != nil || c.fetching[i] || need <= 0 {
					continue
				}
				onFallback := i < len(trees) && trees[i].Fallback
				switch {
				case pass == 0 && onFallback:
				case pass == 0 && stalled[i] && early > 0:
					early--
				case pass == 1 && urgent:
				default:
					continue
				}
				c.fetching[i] = true
				want = append(want, i)
				need--
			}
		}
		switch {
		case len(want) == 1:
			jobs = append(jobs, fetchJob{seq: seq, shard: want[0]})
		case len(want) > 1:
			jobs = append(jobs, fetchJob{seq: seq, shard: -1, whole: true, shards: want})
		}
	}
	// The next manifest overdue (the origin's answer then also says
	// whether the stream stopped there), every tree on fallback, or a
	// manifest missing below the newest whose chunk is due within the
	// fallback lead (the trees are not bringing it in time): ask the
	// origin.
	interval := p.intervalLocked()
	quiet := p.rule.Overdue(&p.play, now.UnixMicro())
	pollEvery := interval
	if pollEvery <= 0 {
		pollEvery = 250 * time.Millisecond
	}
	hole := p.rule.GapUrgent(&p.play, now.UnixMicro(), (*ruleWindow)(p))
	if !p.polling && now.Sub(p.lastPoll) >= pollEvery && (quiet || hole || (nStalled == p.m && p.m > 0)) {
		p.polling, p.lastPoll = true, now
		jobs = append(jobs, fetchJob{manifest: true, shard: -1})
	}
	return jobs
}

// indices is the shards a job brings.
func (j fetchJob) indices() []int {
	if j.whole {
		return j.shards
	}
	return []int{j.shard}
}

func countTrue(b []bool) int {
	n := 0
	for _, v := range b {
		if v {
			n++
		}
	}
	return n
}

func (p *Peer) unmark(j fetchJob) {
	p.mu.Lock()
	if j.manifest {
		p.polling = false
	} else if c := p.chunks[j.seq]; c != nil && c.fetching != nil {
		for _, i := range j.indices() {
			c.fetching[i] = false
		}
	}
	p.mu.Unlock()
}

// errNotFound is a 404 from the origin.
var errNotFound = errors.New("not found")

// errStatus: the origin answered, with a status other than 200, 404 or
// 429 (a refused ticket, an error of its own).
var errStatus = errors.New("unexpected status")

// errBackingOff: the origin answered 429 and its Retry-After has not
// passed; nothing was asked.
var errBackingOff = errors.New("backing off: the origin asked to retry later")

// get fetches url from the origin: the body (at most 16 MiB) of a 200,
// an error wrapping errNotFound for a 404, one naming the status
// otherwise. getWithHeader also returns the response's headers.
func (p *Peer) get(ctx context.Context, url string) ([]byte, error) {
	b, _, err := p.getWithHeader(ctx, url)
	return b, err
}

func (p *Peer) getWithHeader(ctx context.Context, url string) ([]byte, http.Header, error) {
	if until := p.backoffUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		return nil, nil, errBackingOff
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	if t := p.member.Ticket(); t != "" {
		req.Header.Set(wire.TicketHeader, t)
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, nil, fmt.Errorf("GET %s: %w", url, errNotFound)
	case http.StatusTooManyRequests:
		// Nothing more until the origin's Retry-After (at least a second)
		// has passed, from any of the fetch goroutines.
		wait := retryAfter(resp.Header.Get("Retry-After"))
		p.backoffUntil.Store(time.Now().Add(wait).UnixNano())
		p.log.Info("the origin is limiting fallback; backing off", "retry_after", wait)
		return nil, nil, fmt.Errorf("GET %s: %s: %w", url, resp.Status, errBackingOff)
	default:
		return nil, nil, fmt.Errorf("GET %s: %s: %w", url, resp.Status, errStatus)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return b, resp.Header, err
}

// retryAfter reads a Retry-After in seconds: at least 1 s, at most a
// minute (a date, or nonsense, counts as 1 s).
func retryAfter(v string) time.Duration {
	s, err := strconv.Atoi(v)
	if err != nil || s < 1 {
		s = 1
	}
	return time.Duration(min(s, 60)) * time.Second
}

// maxGap is how many missing manifests one poll fetches.
const maxGap = 8

// fetchManifests asks the origin for its newest chunk and fetches the
// manifests this peer lacks: those missing between its playout position
// and the newest it knows that can still play (oldest first), then those
// between that newest and the origin's; maxGap in all.
func (p *Peer) fetchManifests(ctx context.Context, base string) {
	defer func() {
		p.mu.Lock()
		p.polling = false
		p.mu.Unlock()
	}()
	b, err := p.get(ctx, base+"/latest")
	var latest struct{ Seq uint32 }
	if err == nil {
		err = json.Unmarshal(b, &latest)
	}
	p.mu.Lock()
	now := time.Now()
	if trusted(ctx, err) {
		// The playout rule judges from this whether the stream stopped at
		// the origin: no answer, or nothing newer while the next manifest
		// is overdue.
		p.rule.Origin(&p.play, now.UnixMicro(), latest.Seq, err == nil)
	}
	if err != nil {
		p.mu.Unlock()
		return
	}
	if p.haveAny && int32(latest.Seq-p.newest) > 0 && p.rule.Overdue(&p.play, now.UnixMicro()) {
		p.starvedLocked(now)
	}
	want := p.rule.Gaps(&p.play, time.Now().UnixMicro(), (*ruleWindow)(p), nil, maxGap)
	from := latest.Seq
	if p.haveAny && int32(latest.Seq-p.newest) > 0 {
		from = p.newest + 1
	}
	if int32(latest.Seq-from) >= maxGap-int32(len(want)) {
		from = latest.Seq - uint32(maxGap-len(want)) + 1
	}
	for seq := from; int32(latest.Seq-seq) >= 0 && len(want) < maxGap; seq++ {
		if c := p.chunks[seq]; c == nil || c.man == nil {
			want = append(want, seq)
		}
	}
	p.mu.Unlock()
	for _, seq := range want {
		if raw, err := p.get(ctx, fmt.Sprintf("%s/manifest/%d", base, seq)); err == nil && (p.lose == nil || !p.lose(raw)) {
			p.receive(forest.Origin, raw, true)
		}
	}
}

// trusted reports whether an answer to /latest (err: how it failed) says
// what the origin has: yes for one, for a 404 (nothing) and for no answer
// at all; not for a refusal, a rate limit, a garbled body, or this peer
// shutting down.
func trusted(ctx context.Context, err error) bool {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case ctx.Err() != nil, errors.Is(err, errBackingOff), errors.Is(err, errStatus), errors.As(err, &syn), errors.As(err, &typ):
		return false
	}
	return true
}

func (p *Peer) fetch(ctx context.Context, base string, j fetchJob) {
	if j.manifest {
		p.fetchManifests(ctx, base)
		return
	}
	if j.whole {
		p.fetchChunk(ctx, base, j)
		return
	}
	b, err := p.get(ctx, fmt.Sprintf("%s/shard/%d/%d", base, j.seq, j.shard))
	p.mu.Lock()
	c := p.chunks[j.seq]
	if c == nil || c.man == nil {
		p.mu.Unlock()
		return
	}
	c.fetching[j.shard] = false
	if err != nil || c.shards[j.shard] != nil {
		p.mu.Unlock()
		return
	}
	if err := c.man.VerifyShard(j.shard, b); err != nil {
		p.st.badMessages++
		p.mu.Unlock()
		return
	}
	c.shards[j.shard] = b
	c.have++
	p.st.bytesFromOrigin += uint64(len(b))
	p.st.httpFetches++
	regen := p.rebuildLocked(c)
	trees := p.member.Trees()
	relay := j.shard < len(trees) && trees[j.shard].Children > 0
	p.mu.Unlock()
	if relay {
		wire.Fragments(j.seq, uint8(j.shard), b, func(msg []byte) { p.member.Fanout(j.shard, j.seq, msg) })
	}
	p.sendRegenerated(regen)
}

// fetchChunk fetches a whole chunk, re-encodes it and checks every shard
// against the signed manifest: the chunk is then complete here, and the
// shards of trees this peer feeds go on to its children.
func (p *Peer) fetchChunk(ctx context.Context, base string, j fetchJob) {
	b, err := p.get(ctx, fmt.Sprintf("%s/chunk/%d", base, j.seq))
	p.mu.Lock()
	c := p.chunks[j.seq]
	if c == nil || c.man == nil {
		p.mu.Unlock()
		return
	}
	for _, i := range j.shards {
		c.fetching[i] = false
	}
	if err != nil || c.done {
		p.mu.Unlock()
		return
	}
	shards, err := p.coder.Encode(b)
	if err == nil && len(b) != int(c.man.Length) {
		err = fmt.Errorf("chunk %d is %d bytes, the manifest says %d", j.seq, len(b), c.man.Length)
	}
	for i := 0; err == nil && i < len(shards); i++ {
		err = c.man.VerifyShard(i, shards[i])
	}
	if err != nil {
		p.st.badMessages++
		p.mu.Unlock()
		p.log.Warn("chunk from the origin does not match its manifest", "seq", j.seq, "err", err)
		return
	}
	p.st.bytesFromOrigin += uint64(len(b))
	p.st.httpFetches++
	trees := p.member.Trees()
	var fwd []regenerated
	for i, sh := range shards {
		if c.shards[i] != nil {
			continue
		}
		c.shards[i] = sh
		c.have++
		if i < len(trees) && trees[i].Children > 0 {
			fwd = append(fwd, regenerated{j.seq, i, sh})
		}
	}
	p.rebuildLocked(c)
	p.mu.Unlock()
	p.sendRegenerated(fwd)
}

// cadenceStreamLocked is the stream as the cadence rule sees it: with
// the origin ahead while a gap the poll found is open (see gap). p.mu
// held.
func (p *Peer) cadenceStreamLocked() cadence.Stream {
	s := cadence.Stream{Interval: p.rule.Interval(&p.play), NewsLag: p.newsLag.Microseconds()}
	if p.haveAny {
		s.NewestAt = p.newestAt.UnixMicro()
	}
	if p.gap.open {
		s.OriginAhead, s.Due = true, p.gap.due
	}
	return s
}

// gap is what a manifest poll found: asked while the next manifest was
// overdue, the origin had chunks after from (the newest known here then)
// that no tree had brought; the first was due here at due (µs). Until
// every tree brings something after from (or a few intervals pass), a
// parent that sent nothing is starved once the news is the slack (or
// twice its usual lateness) past due, judged on every tick: the poll
// itself fetches the manifests, and they must not then age by the slack
// again before the cadence can tell.
type gap struct {
	open bool
	from uint32
	due  int64
}

// openGapLocked records what a poll found at now: the origin has chunks
// after the newest known here while the next manifest is overdue. p.mu
// held.
func (p *Peer) openGapLocked() {
	c := p.chunks[p.newest]
	iv := p.rule.Interval(&p.play)
	if c == nil || c.man == nil || iv <= 0 || (p.gap.open && p.gap.from == p.newest) {
		return
	}
	off, _ := p.play.Offset()
	p.gap = gap{open: true, from: p.newest, due: c.man.Timestamp + off + iv}
}

// judgeLocked runs the cadence rule (internal/cadence) over trees at now
// and complains about every parent it finds silent. p.mu held.
func (p *Peer) judgeLocked(now time.Time, trees []swarmTree) {
	n := min(len(trees), len(p.lastRx))
	if n == 0 {
		return
	}
	if p.gap.open {
		// Closed when every tree brought something after it, or after
		// four intervals: the cadence judges by then.
		open := now.UnixMicro()-p.gap.due <= 4*p.rule.Interval(&p.play)
		if open {
			open = false
			for i := range n {
				open = open || trees[i].HasParent && int32(p.lastSeqRx[i]-p.gap.from) <= 0
			}
		}
		p.gap.open = open
	}
	ct := p.cadTrees[:0]
	for i := range n {
		t := trees[i]
		// Ahead of the news: the tree brought part of a chunk newer than
		// the poll's gap starts at (or than the newest manifest).
		from := p.newest
		if p.gap.open {
			from = p.gap.from
		}
		ct = append(ct, cadence.Tree{HasParent: t.HasParent, LastRx: micros(p.lastRx[i]), Lag: p.treeLag[i].Microseconds(),
			AheadOfNews: int32(p.lastSeqRx[i]-from) > 0})
		if !t.ParentOpenSince.IsZero() {
			ct[i].OpenSince = t.ParentOpenSince.UnixMicro()
		}
	}
	p.cadTrees = ct
	// The oldest chunk newer than each tree brought has its news waiting
	// since it came (the end of stream carries no stripes). Not since it
	// was due: a manifest poll at half an interval overdue then made every
	// tree of a peer deep in a loaded swarm "behind" at once, and the
	// moves made the swarm later still (continuity 0.35 at 150 peers).
	for seq, c := range p.chunks {
		if c.man == nil || c.man.Flags&wire.FlagEnd != 0 {
			continue
		}
		at := c.manAt.UnixMicro()
		for i := range ct {
			if int32(seq-p.lastSeqRx[i]) > 0 && (ct[i].Waiting == 0 || at < ct[i].Waiting) {
				ct[i].Waiting = at
			}
		}
	}
	p.why = p.cad.Judge(now.UnixMicro(), p.cadenceStreamLocked(), ct, p.why[:0])
	for i, why := range p.why {
		if why == cadence.None {
			continue
		}
		p.lastRx[i] = now // the next parent, or this one again, gets a full slack
		p.complained[i] = now
		p.lastSeqRx[i] = p.newest
		p.st.complaints++
		p.log.Debug("parent silent", "tree", i, "parent", trees[i].Parent, "why", why.String())
		reason := "silent"
		if why == cadence.Starved {
			reason = "starved" // the tracker pings the parent; no one moves if it answers
		}
		p.member.Complain(i, reason)
	}
}

// micros is t in µs since the epoch; 0 for the zero time.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// watchParents complains about a parent that stopped delivering, by the
// cadence rule (internal/cadence): judged by the chunk cadence, a frozen
// or cheating parent is replaced about one chunk interval after it
// stopped, well before the tracker's heartbeat expiry notices. A parent
// that sent nothing at all for the silence timeout while other trees
// deliver, or whose link never opened, is reported too.
func (p *Peer) watchParents(now time.Time, trees []swarmTree, parents map[int]forest.PeerID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, t := range trees {
		if i >= len(p.lastRx) {
			break
		}
		if !t.HasParent {
			delete(parents, i)
			continue
		}
		if old, ok := parents[i]; !ok || old != t.Parent {
			parents[i] = t.Parent
			p.lastRx[i] = now // a new parent gets a full timeout to deliver
			p.lastSeqRx[i] = p.newest
			if ok && !t.ParentLostAt.IsZero() {
				// The parent was lost: repair_ms runs until the new one
				// delivers.
				p.switchAt[i], p.switchFrom[i] = t.ParentLostAt, t.Parent
			}
		}
	}
	p.judgeLocked(now, trees)
}

// starvedLocked complains about every parent that sent nothing newer
// than the newest manifest known here, when the origin has newer chunks
// and the next manifest is half an interval overdue (cadence.Starved):
// no tree brought its news, so no tree's cadence can show which parent
// went quiet, and waiting for the manifests fetched over HTTP to age by
// the slack would cost that slack again. This is what a peer sees when
// every parent stopped at once (a mass failure of the interior peers). A
// parent that is itself starved answers the tracker's ping and keeps its
// place; only this child moves. p.mu held.
func (p *Peer) starvedLocked(now time.Time) {
	p.openGapLocked()
	p.judgeLocked(now, p.member.Trees())
}

func (p *Peer) trackerReport() proto.PeerReport {
	r := p.Report()
	return proto.PeerReport{RelayBytes: r.RelayBytes, BytesFromPeers: r.BytesFromPeers, BytesFromOrigin: r.BytesFromOrigin,
		Children: r.Children, ChunksPlayed: r.ChunksPlayed, Continuity: r.Continuity, LatencyMS: r.LatencyP50, BadShards: r.BadMessages,
		StreamStopped: r.StreamStopped}
}
