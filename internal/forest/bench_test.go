package forest

import (
	"math/rand/v2"
	"runtime"
	"testing"
)

// churnPeer draws a peer from a realistic mix: a quarter of viewers with
// no spare upload, the rest with 3–10 slots (1–3.5 Mbps at a 350 kbps
// stripe); a fifth native. That is ~4.9 slots a peer for the 4 each needs.
func churnPeer(rng *rand.Rand) Peer {
	p := Peer{Kind: Browser}
	if rng.IntN(5) == 0 {
		p.Kind = Native
	}
	if rng.IntN(4) != 0 {
		p.Slots = 3 + rng.IntN(8)
	}
	return p
}

// grow joins n peers with ids 1..n.
func grow(tb testing.TB, f *Forest, rng *rand.Rand, n int) {
	tb.Helper()
	for id := 1; id <= n; id++ {
		if _, err := f.Join(PeerID(id), churnPeer(rng)); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkForestChurn: 100,000 peers joined; one op is a join or the
// leave of a random peer, alternating, so the forest stays at 100,000.
// Reports B/peer: live heap of the built forest divided by its peers.
func BenchmarkForestChurn(b *testing.B) {
	const peers = 100_000
	rng := rand.New(rand.NewPCG(1, 2))
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f, _ := New(Config{})
	grow(b, f, rng, peers)
	runtime.GC()
	runtime.ReadMemStats(&after)
	perPeer := float64(after.HeapAlloc-before.HeapAlloc) / peers

	live := make([]PeerID, 0, peers+1)
	for id := 1; id <= peers; id++ {
		live = append(live, PeerID(id))
	}
	next := PeerID(peers + 1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			if _, err := f.Join(next, churnPeer(rng)); err != nil {
				b.Fatal(err)
			}
			live = append(live, next)
			next++
		} else {
			k := rng.IntN(len(live))
			id := live[k]
			live[k] = live[len(live)-1]
			live = live[:len(live)-1]
			if _, err := f.Leave(id); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(perPeer, "B/peer")
	st := f.Stats()
	b.ReportMetric(float64(slicesMax(st.MaxDepth)), "max-depth")
	runtime.KeepAlive(f)
}

func slicesMax(s []int) int {
	m := 0
	for _, v := range s {
		m = max(m, v)
	}
	return m
}

// TestLargeChurn builds a 20,000-peer forest, churns it, and checks every
// invariant and the depth bound at the end.
func TestLargeChurn(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	f, _ := New(Config{})
	n := 20_000
	if testing.Short() {
		n = 2_000
	}
	grow(t, f, rng, n)
	for i := 0; i < n; i++ {
		id := PeerID(1 + rng.IntN(n))
		if _, ok := f.Node(id); ok {
			if _, err := f.Leave(id); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := f.Join(PeerID(n+1+i), churnPeer(rng)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Check(); err != nil {
		t.Fatal(err)
	}
	st := f.Stats()
	t.Logf("peers %d, max depth %v, fallback %d, borrowed %d", st.Peers, st.MaxDepth, st.FallbackPeers, st.Borrowed)
	if st.FallbackPeers != 0 {
		t.Errorf("%d peers on fallback with ample capacity", st.FallbackPeers)
	}
	if err := depthBound(f); err != nil {
		t.Error(err)
	}
}
