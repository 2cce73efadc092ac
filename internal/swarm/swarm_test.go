package swarm

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/coopcast/coopcast/internal/forest"
	"github.com/coopcast/coopcast/internal/rtc"
	"github.com/coopcast/coopcast/tracker"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// relayer is a Handler that forwards every message down the tree it
// belongs to (its first byte) and records what it got.
type relayer struct {
	m    *Member
	mu   sync.Mutex
	got  map[[2]uint32]bool // (tree, seq)
	from map[forest.PeerID]int
}

func (r *relayer) Welcome(tracker.Message)          {}
func (r *relayer) Topology()                        {}
func (r *relayer) ChildReady(forest.PeerID, uint64) {}
func (r *relayer) Data(from forest.PeerID, b []byte) {
	if len(b) < 5 {
		return
	}
	tree, seq := int(b[0]), binary.BigEndian.Uint32(b[1:])
	r.mu.Lock()
	dup := r.got[[2]uint32{uint32(tree), seq}]
	r.got[[2]uint32{uint32(tree), seq}] = true
	r.from[from]++
	r.mu.Unlock()
	if !dup {
		r.m.Fanout(tree, seq, append([]byte(nil), b...))
	}
}

func (r *relayer) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.got) }

// TestSwarmRelaysOverRealLinks: a tracker, an origin Member and 8 peer
// Members on loopback; the origin sends 20 messages down each of 4 trees
// and every peer gets all 80, relayed by other peers over pion links.
func TestSwarmRelaysOverRealLinks(t *testing.T) {
	srv, err := tracker.New(tracker.Config{PublishToken: "tok", HeartbeatInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); srv.Run(ctx) }()
	defer func() { cancel(); wg.Wait(); srv.Close(); hs.Close() }()

	rc := rtc.Config{ICEInterfaces: []string{"lo"}}
	start := func(h *relayer, cfg Config) *Member {
		cfg.TrackerURL, cfg.Channel, cfg.RTC, cfg.Handler = hs.URL, "t", rc, h
		m, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		h.m = m
		wg.Add(1)
		go func() { defer wg.Done(); m.Run(ctx) }()
		t.Cleanup(func() { m.Close(); m.Close() })
		return m
	}
	oh := &relayer{got: map[[2]uint32]bool{}, from: map[forest.PeerID]int{}}
	origin := start(oh, Config{Publish: &Publish{Token: "tok", Trees: 4, K: 3, Bitrate: 300_000, PublicKey: base64.StdEncoding.EncodeToString(make([]byte, 32))}})
	time.Sleep(200 * time.Millisecond) // let the origin publish first
	var peers []*relayer
	for i := 0; i < 8; i++ {
		h := &relayer{got: map[[2]uint32]bool{}, from: map[forest.PeerID]int{}}
		start(h, Config{UploadKbps: 400})
		peers = append(peers, h)
	}
	// Wait until every peer has a parent in every tree.
	deadline := time.Now().Add(20 * time.Second)
	for {
		ready := 0
		for _, p := range peers {
			ok := true
			for _, ts := range p.m.Trees() {
				ok = ok && ts.HasParent
			}
			if ok && len(p.m.Trees()) == 4 {
				ready++
			}
		}
		if ready == len(peers) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d peers placed in every tree", ready, len(peers))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Send until every peer has every message (links come up meanwhile;
	// messages before a link opens wait in the queue).
	for seq := uint32(0); seq < 20; seq++ {
		for tree := 0; tree < 4; tree++ {
			msg := make([]byte, 1000)
			msg[0] = byte(tree)
			binary.BigEndian.PutUint32(msg[1:], seq)
			origin.Fanout(tree, seq, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		missing := ""
		for i, p := range peers {
			if n := p.count(); n != 80 {
				missing += fmt.Sprintf(" peer%d:%d", i, n)
			}
		}
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("messages missing:%s", missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
	relayed := 0
	for _, p := range peers {
		sent, _, _ := p.m.RelayStats()
		if sent > 0 {
			relayed++
		}
	}
	if relayed == 0 {
		t.Fatal("no peer relayed anything: the origin fed everyone")
	}
	t.Logf("%d of %d peers relayed", relayed, len(peers))
}
