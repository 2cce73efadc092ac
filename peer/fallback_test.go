package peer

import (
	"testing"
	"time"
)

// TestWholeStreamOverFallback: a peer that no tree can feed (three leaves
// that relay nothing, two origin slots per tree) takes every stripe over
// HTTP with its ticket, under the origin's default egress cap, and plays
// every chunk: the budgets are sized for a peer that needs the whole
// stream from the origin.
func TestWholeStreamOverFallback(t *testing.T) {
	e := startSwarm(t)
	peers := []*checked{e.join(t, 0), e.join(t, 0), e.join(t, 0)}
	var p *checked // the one the forest left on fallback everywhere
	checkFor(t, 15*time.Second, "a peer on fallback in every tree", func() bool {
		for _, c := range peers {
			trees, n := c.Member().Trees(), 0
			for _, tr := range trees {
				if tr.Fallback {
					n++
				}
			}
			if n > 0 && n == len(trees) {
				p = c
				return true
			}
		}
		return false
	})
	start := p.good.Load()
	checkFor(t, 15*time.Second, "20 chunks over HTTP", func() bool { return p.good.Load() >= start+20 })
	st := e.origin.Stats()
	r := p.Report()
	t.Logf("from origin %d B, continuity %.3f; origin served %d B over HTTP, refused %d 401, %d 429 (cap)", r.BytesFromOrigin, r.Continuity, st.HTTPBytes, st.FallbackUnauthorized, st.FallbackCapped)
	if p.corrupt.Load() != 0 || r.Continuity < 0.99 || st.HTTPBytes == 0 || st.FallbackUnauthorized != 0 || st.FallbackCapped != 0 {
		t.Fatalf("corrupt %d, continuity %.3f, HTTP %d B, 401s %d, 429s %d", p.corrupt.Load(), r.Continuity, st.HTTPBytes, st.FallbackUnauthorized, st.FallbackCapped)
	}
}
