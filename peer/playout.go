package peer

import (
	"context"
	"errors"
	"time"
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
		case c != nil && c.done:
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
		case c == nil || c.man == nil:
			// Never heard of it: skip once a later chunk is due.
			later := p.chunks[p.next+1]
			if later == nil || later.man == nil || !now.After(p.deadlineLocked(later)) {
				return out
			}
			p.st.missed++
		default:
			return out
		}
		p.next++
	}
}
