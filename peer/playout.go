package peer

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/coopcast/coopcast/internal/backoff"
	"github.com/coopcast/coopcast/internal/playout"
	"github.com/coopcast/coopcast/internal/wire"
)

var errShape = errors.New("manifest's M or k differ from the channel's")

// newRule is the playout rule (internal/playout) with the peer's settings.
func newRule(cfg Config) playout.Rule {
	return playout.New(playout.Config{Delay: cfg.Playout, Lead: cfg.FallbackLead, Window: window})
}

// deadlineLocked is when chunk c must be rebuilt to play on time.
func (p *Peer) deadlineLocked(c *chunk) time.Time {
	return time.UnixMicro(p.rule.Deadline(&p.play, c.man.Timestamp))
}

// intervalLocked is the chunk interval the manifests show; 0 before two.
func (p *Peer) intervalLocked() time.Duration {
	return time.Duration(p.rule.Interval(&p.play)) * time.Microsecond
}

// pastLocked reports whether chunk seq was played or skipped already.
func (p *Peer) pastLocked(seq uint32) bool {
	next, ok := p.play.Next()
	return ok && int32(seq-next) < 0
}

// playout writes chunks in order as they are rebuilt, and skips a chunk
// whose deadline passed, so the stream keeps its timing and never stalls
// for good.
func (p *Peer) playout(ctx context.Context) {
	if err := p.loadInit(ctx); err != nil {
		return
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.wakeup:
		}
		for _, b := range p.due(time.Now()) {
			if _, err := p.cfg.Out.Write(b); err != nil {
				p.log.Error("write stream", "err", err)
				return
			}
		}
		select {
		case <-p.ended:
			return
		default:
		}
	}
}

// ruleWindow is the peer's chunks as the playout rule sees them; p.mu held.
type ruleWindow Peer

func (w *ruleWindow) Chunk(seq uint32) playout.Chunk {
	c := w.chunks[seq]
	if c == nil || c.man == nil {
		return playout.Chunk{}
	}
	return playout.Chunk{Known: true, Time: c.man.Timestamp, Keyframe: c.man.Flags&wire.FlagKeyframe != 0,
		End: c.man.Flags&wire.FlagEnd != 0, Done: c.done, DoneAt: c.doneAt.UnixMicro()}
}

// due runs the playout rule at now and returns what to write: the chunks
// it plays, in order. A chunk is due by the wall clock, its manifest
// come or not, so playout moves on over any run of missing chunks; and a
// stream that stops at the origin is said so, once, in the log.
func (p *Peer) due(now time.Time) [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	played := p.play.Played()
	p.decisions = p.rule.Advance(&p.play, now.UnixMicro(), (*ruleWindow)(p), p.decisions[:0])
	var out [][]byte
	for _, d := range p.decisions {
		switch d.Op {
		case playout.Play:
			c := p.chunks[d.Seq]
			out = append(out, c.data)
			c.data = nil
		case playout.Drop:
			p.chunks[d.Seq].data = nil
		case playout.End:
			p.endOnce.Do(func() { close(p.ended) })
		case playout.Stop:
			p.log.Warn(playout.StoppedReason, "newest", d.Seq, "missed", p.play.Missed())
			p.reportSoon()
		case playout.Resume:
			p.log.Info("the stream resumed at the origin", "seq", d.Seq)
			p.reportSoon()
		}
	}
	if played == 0 && p.play.Played() > 0 {
		p.st.startup = now.Sub(p.start)
		if p.playing != nil { // nil in tests that build a Peer by hand
			p.playOnce.Do(func() { close(p.playing) })
		}
	}
	return out
}

// reportSoon has the repair loop send the tracker a report now rather
// than at its next 2 s tick: /forest and every dashboard then show a stop
// or resume within the repair loop's 50 ms.
func (p *Peer) reportSoon() {
	select {
	case p.reportNow <- struct{}{}:
	default: // one is pending already
	}
}

// loadInit fetches the init segment from the origin, checks the channel
// key's signature and writes it out first. A stream without one (the
// synthetic source) answers 404. It retries until ctx ends: every 250 ms
// until the tracker has named the origin, then with jittered backoff
// while the origin fails (it may be restarting), logging the loss once
// and a summary every 30 s.
func (p *Peer) loadInit(ctx context.Context) error {
	var bo backoff.Backoff
	var out backoff.Outage
	wait := time.Duration(0)
	for {
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		base := p.member.FallbackURL()
		if base == "" {
			wait = 250 * time.Millisecond
			continue
		}
		init, err := p.fetchInit(ctx, base)
		if errors.Is(err, errNoInit) {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			wait = bo.Next()
			switch now := time.Now(); out.Failed(now) {
			case backoff.Lost:
				p.log.Warn("init segment: origin unreachable; retrying with backoff", "err", err)
			case backoff.StillDown:
				p.log.Warn("init segment: origin still unreachable", "down", out.Down(now).Round(time.Second), "attempts", out.Failures(), "err", err)
			}
			continue
		}
		if now := time.Now(); out.Up(now) == backoff.Back {
			p.log.Info("init segment fetched", "after", out.Down(now).Round(time.Millisecond), "attempts", out.Failures())
		}
		p.mu.Lock()
		p.play.SetMedia(true)
		p.st.bytesFromOrigin += uint64(len(init))
		p.mu.Unlock()
		if _, err := p.cfg.Out.Write(init); err != nil {
			p.log.Error("write stream", "err", err)
			return err
		}
		return nil
	}
}

var errNoInit = errors.New("the stream has no init segment")

func (p *Peer) fetchInit(ctx context.Context, base string) ([]byte, error) {
	b, hdr, err := p.getWithHeader(ctx, base+"/init")
	if errors.Is(err, errNotFound) {
		return nil, errNoInit
	}
	if err != nil {
		return nil, err
	}
	sig, err := base64.StdEncoding.DecodeString(hdr.Get(wire.InitSignatureHeader))
	if err != nil {
		return nil, fmt.Errorf("init segment signature: %w", err)
	}
	epoch, err := strconv.ParseUint(hdr.Get(wire.InitEpochHeader), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("init segment epoch: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := wire.VerifyInit(p.key, p.cfg.Channel, epoch, b, sig); err != nil {
		return nil, fmt.Errorf("init segment: %w", err)
	}
	if epoch < p.epoch {
		return nil, fmt.Errorf("init segment of epoch %d, the stream is at %d: %w", epoch, p.epoch, wire.ErrOldEpoch)
	}
	p.epoch = epoch
	return b, nil
}
