package peer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/coopcast/coopcast/internal/forest"
	"github.com/coopcast/coopcast/internal/wire"
	"github.com/coopcast/coopcast/tracker"
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
	shard    int // -1: the manifest
	manifest bool
}

// fetchJobs picks what to fetch now: missing shards of chunks close to
// their deadline, every shard of a tree the peer is on fallback for, and
// manifests when no tree brings any.
func (p *Peer) fetchJobs(now time.Time, trees []swarmTree) []fetchJob {
	p.mu.Lock()
	defer p.mu.Unlock()
	var jobs []fetchJob
	for seq, c := range p.chunks {
		if c.man == nil || c.done || (p.started && int32(seq-p.next) < 0) {
			continue
		}
		deadline := p.deadlineLocked(c)
		if !now.Before(deadline) || (!p.started && p.st.played == 0 && int32(p.newest-seq) > 2) {
			continue // too late to matter, or history from before we joined
		}
		urgent := !now.Before(deadline.Add(-p.cfg.FallbackLead))
		need := p.k - c.have - countTrue(c.fetching)
		for i := range c.shards {
			if c.shards[i] != nil || c.fetching[i] {
				continue
			}
			onFallback := i < len(trees) && trees[i].Fallback
			if onFallback || (urgent && need > 0) {
				c.fetching[i] = true
				jobs = append(jobs, fetchJob{seq: seq, shard: i})
				if !onFallback {
					need--
				}
			}
		}
	}
	// With every tree on fallback no manifest arrives by any tree: poll.
	allFallback := len(trees) > 0
	for _, t := range trees {
		allFallback = allFallback && t.Fallback
	}
	if allFallback {
		jobs = append(jobs, fetchJob{manifest: true, shard: -1})
	}
	return jobs
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
	if j.manifest {
		return
	}
	p.mu.Lock()
	if c := p.chunks[j.seq]; c != nil && c.fetching != nil {
		c.fetching[j.shard] = false
	}
	p.mu.Unlock()
}

func (p *Peer) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 16<<20))
}

func (p *Peer) fetch(ctx context.Context, base string, j fetchJob) {
	if j.manifest {
		b, err := p.get(ctx, base+"/latest")
		var latest struct{ Seq uint32 }
		if err != nil || json.Unmarshal(b, &latest) != nil {
			return
		}
		p.mu.Lock()
		_, known := p.chunks[latest.Seq]
		p.mu.Unlock()
		if known {
			return
		}
		if raw, err := p.get(ctx, fmt.Sprintf("%s/manifest/%d", base, latest.Seq)); err == nil {
			p.receive(forest.Origin, raw, true)
		}
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

// linkTimeout is how long a link to a new parent may take to open before
// the peer asks for another parent. Link setup is slow on a loaded machine
// (DTLS handshakes), so it is well above the silence timeout.
const linkTimeout = 6 * time.Second

// watchParents complains about a parent that has sent nothing for the
// silence timeout while chunks keep arriving by other trees.
func (p *Peer) watchParents(now time.Time, trees []swarmTree, parents map[int]forest.PeerID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	flowing := false
	for _, t := range p.lastRx {
		flowing = flowing || now.Sub(t) < p.cfg.SilenceTimeout/2
	}
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
			if ok && !t.ParentLostAt.IsZero() {
				// The parent was lost: repair_ms runs until the new one
				// delivers.
				p.switchAt[i], p.switchFrom[i] = t.ParentLostAt, t.Parent
			}
			continue
		}
		// Silent: the link is open and has carried nothing of this tree
		// for the timeout while other trees deliver; or the link has not
		// opened at all within linkTimeout.
		open := !t.ParentOpenSince.IsZero()
		silent := open && flowing && now.Sub(p.lastRx[i]) > p.cfg.SilenceTimeout && now.Sub(t.ParentOpenSince) > p.cfg.SilenceTimeout
		stuck := !open && now.Sub(p.lastRx[i]) > linkTimeout
		if silent || stuck {
			p.lastRx[i] = now
			p.st.complaints++
			p.member.Complain(i, "silent")
		}
	}
}

func (p *Peer) trackerReport() tracker.PeerReport {
	r := p.Report()
	return tracker.PeerReport{RelayBytes: r.RelayBytes, BytesFromPeers: r.BytesFromPeers, BytesFromOrigin: r.BytesFromOrigin,
		Children: r.Children, ChunksPlayed: r.ChunksPlayed, Continuity: r.Continuity, LatencyMS: r.LatencyP50, BadShards: r.BadMessages}
}
