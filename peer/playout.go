package peer

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/coopcast/coopcast/internal/wire"
)

var errShape = errors.New("manifest's M or k differ from the channel's")

// deadlineLocked is when chunk c must be rebuilt to play on time.
func (p *Peer) deadlineLocked(c *chunk) time.Time {
	return time.UnixMicro(c.man.Timestamp).Add(p.offset + p.cfg.Playout)
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

// due advances the playout position and returns what to write.
func (p *Peer) due(now time.Time) [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started {
		// Start at the oldest chunk that is rebuilt, or whose deadline is
		// far enough away for HTTP fallback to complete it.
		first, ok := uint32(0), false
		for seq, c := range p.chunks {
			if c.man == nil || (!c.done && now.After(p.deadlineLocked(c).Add(-p.cfg.FallbackLead))) {
				continue
			}
			if p.media && c.man.Flags&(wire.FlagKeyframe|wire.FlagEnd) == 0 {
				continue // a decoder starts at a keyframe (or the stream is over)
			}
			if !ok || int32(seq-first) < 0 {
				first, ok = seq, true
			}
		}
		if !ok {
			return nil
		}
		p.next, p.started = first, true
	}
	var out [][]byte
	for {
		c := p.chunks[p.next]
		switch {
		case c != nil && c.done && c.man.Flags&wire.FlagEnd != 0:
			p.endOnce.Do(func() { close(p.ended) })
			return out
		case c != nil && c.done && p.needKey && c.man.Flags&wire.FlagKeyframe == 0:
			// After a gap, video resumes at the next keyframe.
			p.st.missed++
			c.data = nil
		case c != nil && c.done:
			p.needKey = false
			if !c.doneAt.After(p.deadlineLocked(c)) {
				p.st.onTime++
			}
			p.st.played++
			if p.st.played == 1 {
				p.st.startup = now.Sub(p.start)
			}
			out = append(out, c.data)
			c.data = nil
		case c != nil && c.man != nil && now.After(p.deadlineLocked(c)):
			p.st.missed++
			p.needKey = p.media
		case c == nil || c.man == nil:
			// Never heard of it: skip once a later chunk is due.
			later := p.chunks[p.next+1]
			if later == nil || later.man == nil || !now.After(p.deadlineLocked(later)) {
				return out
			}
			p.st.missed++
			p.needKey = p.media
		default:
			return out
		}
		p.next++
	}
}

// loadInit fetches the init segment from the origin, checks the channel
// key's signature and writes it out first. A stream without one (the
// synthetic source) answers 404. It retries until ctx ends.
func (p *Peer) loadInit(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(250 * time.Millisecond):
			}
		}
		base := p.member.FallbackURL()
		if base == "" {
			continue
		}
		init, err := p.fetchInit(ctx, base)
		if errors.Is(err, errNoInit) {
			return nil
		}
		if err != nil {
			if ctx.Err() == nil && attempt%20 == 0 {
				p.log.Warn("init segment", "err", err)
			}
			continue
		}
		p.mu.Lock()
		p.media = true
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
