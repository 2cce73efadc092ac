package peer

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coopcast/coopcast/internal/forest"
	"github.com/coopcast/coopcast/internal/proto"
	"github.com/coopcast/coopcast/internal/rtc"
	"github.com/coopcast/coopcast/internal/swarm"
	"github.com/coopcast/coopcast/internal/wire"
)

// wait lets the stream run, checking ctx-free wall time.
func wait(d time.Duration) { time.Sleep(d) }

// settle waits until the stream has settled: for two seconds in a row
// every peer played chunks and missed none. Joining 30 peers under -race
// keeps both cores busy with DTLS handshakes for several seconds, and a
// test about what follows must not count that start-up.
func settle(t *testing.T, ps []*checked, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	prev := make([]Report, len(ps))
	calm := 0
	for calm < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("the stream did not settle within %v", limit)
		}
		wait(500 * time.Millisecond)
		ok := true
		for i, p := range ps {
			r := p.Report()
			ok = ok && r.ChunksPlayed > prev[i].ChunksPlayed && r.ChunksMissed == prev[i].ChunksMissed
			prev[i] = r
		}
		if ok {
			calm++
		} else {
			calm = 0
		}
	}
}

func continuityOf(ps []*checked) (worst float64, who int) {
	worst = 1
	for i, p := range ps {
		if c := p.Report().Continuity; c < worst {
			worst, who = c, i
		}
	}
	return
}

// TestKillFifthOfPeers: 30 peers; after the stream settles a fifth of
// them, the first to join and so the nearest the root in every tree, are
// killed without goodbye. Every survivor keeps rebuilding byte-identical
// chunks, on time. The stream cuts a chunk every 500 ms: at 250 ms, 30
// pion peers under -race keep two cores saturated, and what fails then is
// the machine, not the repair.
func TestKillFifthOfPeers(t *testing.T) {
	const every = 500 * time.Millisecond
	e := startSwarmEvery(t, every)
	var peers []*checked
	for i := 0; i < 30; i++ {
		peers = append(peers, e.join(t, 1200))
		time.Sleep(30 * time.Millisecond)
	}
	settle(t, peers, 30*time.Second)
	before := make([]int64, len(peers))
	reps := make([]Report, len(peers))
	for i, p := range peers {
		before[i] = p.good.Load()
		reps[i] = p.Report()
	}
	for _, p := range peers[:6] {
		p.stop()
	}
	survivors := peers[6:]
	const after = 10 * time.Second
	wait(after)
	due := int64(after / every)
	for i, p := range survivors {
		if p.corrupt.Load() != 0 {
			t.Errorf("survivor %d rebuilt %d corrupt chunks", i, p.corrupt.Load())
		}
		if got := p.good.Load() - before[i+6]; got < due-2 {
			t.Errorf("survivor %d rebuilt only %d of about %d chunks after the kill: %+v", i, got, due, p.Report())
		}
	}
	// Continuity after the kill: at most one chunk late per survivor.
	for i, p := range survivors {
		r, b := p.Report(), reps[i+6]
		n := float64(r.ChunksPlayed + r.ChunksMissed - b.ChunksPlayed - b.ChunksMissed)
		onTime := r.Continuity*float64(r.ChunksPlayed+r.ChunksMissed) - b.Continuity*float64(b.ChunksPlayed+b.ChunksMissed)
		if n < float64(due-2) || n-onTime > 1.5 {
			t.Errorf("survivor %d: %.0f of %.0f chunks on time after the kill", i, onTime, n)
		}
	}
}

// malicious is a swarm member that corrupts every fragment it relays and
// forges the manifests it forwards.
type malicious struct {
	m    *swarm.Member
	key  ed25519.PrivateKey
	mu   sync.Mutex
	sent int
}

func (h *malicious) Welcome(proto.Message)            {}
func (h *malicious) Topology()                        {}
func (h *malicious) ChildReady(forest.PeerID, uint64) {}
func (h *malicious) Data(from forest.PeerID, b []byte) {
	if len(b) < 2 {
		return
	}
	switch b[1] {
	case wire.TypeFragment:
		f, err := wire.ParseFragment(b)
		if err != nil {
			return
		}
		bad := append([]byte(nil), b...)
		bad[len(bad)-1] ^= 0xff
		h.m.Fanout(int(f.Shard), f.Seq, bad)
		// And a flood of garbage, oversized and truncated messages.
		h.m.Fanout(int(f.Shard), f.Seq, make([]byte, 3))
		h.m.Fanout(int(f.Shard), f.Seq, make([]byte, wire.MaxMessage+100))
	case wire.TypeManifest:
		m, err := wire.ParseManifest(b)
		if err != nil {
			return
		}
		forged, err := wire.SignManifest(h.key, "t", &m)
		if err != nil {
			return
		}
		for i := 0; i < int(m.M); i++ {
			h.m.Fanout(i, m.Seq, forged)
		}
	}
	h.mu.Lock()
	h.sent++
	h.mu.Unlock()
}

// TestMaliciousPeer: a peer with plenty of upload joins first (so it
// feeds others) and corrupts everything it relays. Honest peers drop and
// report the bad data, never play it, and keep playing; the tracker
// demotes the attacker to a leaf.
func TestMaliciousPeer(t *testing.T) {
	e := startSwarm(t)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	h := &malicious{key: priv}
	// The attacker is in every tree before anyone else arrives, so it is
	// near the root with slots to fill.
	m := e.member(t, h, func(m *swarm.Member) { h.m = m })

	var honest []*checked
	for i := 0; i < 15; i++ {
		honest = append(honest, e.join(t, 1200))
		time.Sleep(30 * time.Millisecond)
	}
	// Whatever the attack does at start-up, the honest swarm settles
	// (on a loaded machine start-up alone can miss chunks), then plays.
	settle(t, honest, 30*time.Second)
	reps := make([]Report, len(honest))
	for i, p := range honest {
		reps[i] = p.Report()
	}
	wait(6 * time.Second)

	var bad uint64
	for i, p := range honest {
		r := p.Report()
		bad += r.BadMessages
		if p.corrupt.Load() != 0 {
			t.Errorf("honest peer %d played %d corrupt chunks", i, p.corrupt.Load())
		}
		if p.good.Load() < 25 {
			t.Errorf("honest peer %d rebuilt only %d chunks: %+v", i, p.good.Load(), r)
		}
		if missed := r.ChunksMissed - reps[i].ChunksMissed; missed > 1 {
			t.Errorf("honest peer %d missed %d chunks in 6 s once settled: %+v", i, missed, r)
		}
	}
	sent, dropped, kids := m.RelayStats()
	h.mu.Lock()
	t.Logf("attacker: handled %d messages, relayed %d B (dropped %d) to %d children, trees %+v", h.sent, sent, dropped, kids, m.Trees())
	h.mu.Unlock()
	if bad == 0 {
		t.Fatal("no honest peer ever saw bad data: the attacker fed nobody, the test proves nothing")
	}
	// The tracker demoted the attacker.
	resp, err := http.Get(e.url + "/api/v1/channels/t/forest")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var snap proto.ForestSnapshot
	json.NewDecoder(resp.Body).Decode(&snap)
	for _, n := range snap.Nodes {
		if forest.PeerID(n.ID) == m.ID() && (n.Slots != 0 || n.Children != 0) {
			t.Errorf("attacker still has %d slots and %d children", n.Slots, n.Children)
		}
	}
	t.Logf("honest peers dropped %d bad messages", bad)
}

// stalled is a member whose receive path blocks: the data channel stops
// reading, its parent's send buffer to it fills.
type stalled struct {
	release chan struct{}
}

func (s *stalled) Welcome(proto.Message)            {}
func (s *stalled) Topology()                        {}
func (s *stalled) ChildReady(forest.PeerID, uint64) {}
func (s *stalled) Data(forest.PeerID, []byte) {
	<-s.release
}

// TestStalledChildDoesNotSlowSiblings: a child that stops reading sits
// among honest children; every honest peer keeps playing on time.
func TestStalledChildDoesNotSlowSiblings(t *testing.T) {
	e := startSwarm(t)
	var honest []*checked
	for i := 0; i < 4; i++ {
		honest = append(honest, e.join(t, 2000))
		time.Sleep(30 * time.Millisecond)
	}
	s := &stalled{release: make(chan struct{})}
	m, err := swarm.New(swarm.Config{TrackerURL: e.url, Channel: "t", UploadKbps: 0, RTC: rtc.Config{ICEInterfaces: []string{"lo"}}, Handler: s})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); m.Run(e.ctx) }()
	t.Cleanup(func() { close(s.release); m.Close(); <-done })
	for i := 0; i < 8; i++ {
		honest = append(honest, e.join(t, 0))
		time.Sleep(30 * time.Millisecond)
	}
	wait(10 * time.Second)
	if worst, who := continuityOf(honest); worst < 0.98 {
		t.Errorf("honest peer %d continuity %.3f beside a stalled child: %+v", who, worst, honest[who].Report())
	}
	var dropped uint64
	for _, p := range honest {
		dropped += p.Report().RelayDropped
		if p.corrupt.Load() != 0 {
			t.Errorf("corrupt chunk")
		}
	}
	dropped += e.origin.Stats().Dropped
	t.Logf("stalled child's parents: %+v; bytes dropped for slow children: %d", m.Trees(), dropped)
}

// dropper is a swarm member that claims plenty of upload and relays
// nothing but manifests: its children see the stream flow by the other
// trees and nothing of its tree.
type dropper struct{ m *swarm.Member }

func (h *dropper) Welcome(proto.Message)            {}
func (h *dropper) Topology()                        {}
func (h *dropper) ChildReady(forest.PeerID, uint64) {}
func (h *dropper) Data(from forest.PeerID, b []byte) {
	if len(b) >= 6 && b[1] == wire.TypeManifest {
		for i := range h.m.Trees() {
			h.m.Fanout(i, 0, b)
		}
	}
}

// TestSilentParentReplacedByCadence: a parent that keeps its heartbeat
// but relays nothing (it claims 5 Mbit/s of upload) is noticed by its
// children from the chunk cadence (the newest chunk came by the other
// trees, nothing of it by this one) and replaced within about two chunk
// intervals of its link opening, long before the tracker's heartbeat
// expiry would; no child confirmed its delivery, so the tracker makes it
// a leaf; honest peers keep playing meanwhile.
func TestSilentParentReplacedByCadence(t *testing.T) {
	e := startSwarm(t)
	h := &dropper{}
	m := e.member(t, h, func(m *swarm.Member) { h.m = m })

	var honest []*checked
	for i := 0; i < 10; i++ {
		honest = append(honest, e.join(t, 1200))
	}
	// Watch the forest: how long does any edge below the dropper last?
	type edge struct {
		child uint64
		tree  int
	}
	first := map[edge]time.Time{}
	var lasted []time.Duration
	start := time.Now()
	var demotedAfter time.Duration
	end := start.Add(12 * time.Second)
	for time.Now().Before(end) {
		now := time.Now()
		seen := map[edge]bool{}
		for _, n := range forestOf(t, e.url).Nodes {
			if n.ID == uint64(m.ID()) && n.Slots == 0 && demotedAfter == 0 {
				demotedAfter = now.Sub(start)
			}
			for i, tr := range n.Trees {
				if !tr.Fallback && !tr.Pending && tr.Parent == uint64(m.ID()) {
					k := edge{n.ID, i}
					seen[k] = true
					if _, ok := first[k]; !ok {
						first[k] = now
					}
				}
			}
		}
		for k, at := range first {
			if !seen[k] {
				lasted = append(lasted, now.Sub(at))
				delete(first, k)
			}
		}
		wait(100 * time.Millisecond)
	}
	// An edge placed in the last 2 s may be one the parent's regrown slot
	// (one back every 10 s) took: it has not yet had the 2 s a silent
	// parent is given before it is replaced.
	for k, at := range first {
		if d := time.Since(at); d > 2*time.Second {
			t.Errorf("peer %d still under the silent parent in tree %d after %v", k.child, k.tree, d.Round(time.Millisecond))
		}
	}
	if len(lasted) == 0 {
		t.Fatal("nobody was ever placed under the silent parent: the test proves nothing")
	}
	slices.Sort(lasted)
	t.Logf("%d edges under the silent parent; they lasted %v (median) to %v (longest); it was made a leaf %v after the honest peers began to join",
		len(lasted), lasted[len(lasted)/2].Round(time.Millisecond), lasted[len(lasted)-1].Round(time.Millisecond), demotedAfter.Round(time.Millisecond))
	// It claimed 5 Mbit/s and delivered nothing: no child confirmed it, so
	// once two children report it silent its slots go to zero.
	if demotedAfter == 0 || demotedAfter > 10*time.Second {
		t.Errorf("the silent parent was not made a leaf within 10 s (after %v)", demotedAfter)
	}
	// An edge lasts link setup (up to a few hundred ms under -race) plus
	// about two chunk intervals (0.5 s here). Timing silence out instead
	// (1.5 s of nothing) took 1.83 s in the same test. An edge placed in
	// the middle of the join storm may wait longer for its link.
	if median := lasted[len(lasted)/2]; median > 1500*time.Millisecond {
		t.Errorf("edges below the silent parent lasted %v (median), want < 1.5 s", median)
	}
	if longest := lasted[len(lasted)-1]; longest > 4*time.Second {
		t.Errorf("an edge below the silent parent lasted %v, want < 4 s", longest)
	}
	settle(t, honest, 20*time.Second)
}

// member joins a bare swarm member with handler h and 5 Mbit/s of upload
// (a cheat in the tests that use it), hands it to bind before it runs,
// and waits until it is placed in every tree.
func (e *swarmEnv) member(t *testing.T, h swarm.Handler, bind func(*swarm.Member)) *swarm.Member {
	t.Helper()
	return e.memberUp(t, 5000, h, bind)
}

// memberUp is member with upload kbit/s of declared upload.
func (e *swarmEnv) memberUp(t *testing.T, upload int64, h swarm.Handler, bind func(*swarm.Member)) *swarm.Member {
	t.Helper()
	m, err := swarm.New(swarm.Config{TrackerURL: e.url, Channel: "t", UploadKbps: upload, RTC: rtc.Config{ICEInterfaces: []string{"lo"}}, Handler: h})
	if err != nil {
		t.Fatal(err)
	}
	bind(m)
	done := make(chan struct{})
	go func() { defer close(done); m.Run(e.ctx) }()
	t.Cleanup(func() { m.Close(); <-done })
	checkPlaced(t, m)
	return m
}

// checkPlaced waits until m has a parent in every tree.
func checkPlaced(t *testing.T, m *swarm.Member) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ts := m.Trees()
		placed := len(ts) > 0
		for _, x := range ts {
			placed = placed && x.HasParent
		}
		if placed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("member not placed within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// forestOf fetches the tracker's forest of channel "t".
func forestOf(t *testing.T, base string) proto.ForestSnapshot {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/channels/t/forest")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var snap proto.ForestSnapshot
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		t.Fatal(err)
	}
	return snap
}

// TestCalmSwarmComplainsOfNobody: peers join and nobody leaves, so no
// parent is ever silent: no peer may complain, however its stripes race.
// A peer that feeds children in a tree regenerates that tree's shard as
// soon as the other trees bring k, often before its own parent's copy
// comes; that copy still shows the parent delivers.
func TestCalmSwarmComplainsOfNobody(t *testing.T) {
	e := startSwarm(t)
	var peers []*checked
	for i := 0; i < 12; i++ {
		peers = append(peers, e.join(t, 1200))
	}
	settle(t, peers, 20*time.Second)
	base := make([]uint64, len(peers))
	for i, p := range peers {
		base[i] = p.Report().Complaints
	}
	// The observation window: 24 chunk intervals.
	wait(6 * time.Second)
	for i, p := range peers {
		r := p.Report()
		if n := r.Complaints - base[i]; n != 0 {
			t.Errorf("peer %d complained %d times in a calm swarm (regenerated %d shards): %+v", i, n, r.Regenerated, r)
		}
	}
}
