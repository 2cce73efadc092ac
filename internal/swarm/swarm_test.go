package swarm

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/coopcast/coopcast/internal/forest"
	"github.com/coopcast/coopcast/internal/proto"
	"github.com/coopcast/coopcast/internal/rtc"
	"github.com/coopcast/coopcast/tracker"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// relayer is a Handler that forwards every message down the tree it
// belongs to (its first byte) and records what it got.
type relayer struct {
	m        *Member
	welcomed atomic.Bool
	mu       sync.Mutex
	got      map[[2]uint32]bool // (tree, seq)
	from     map[forest.PeerID]int
}

func (r *relayer) Welcome(proto.Message)            { r.welcomed.Store(true) }
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

// checkFor polls cond every 20 ms until it returns nil, and fails the test
// with cond's last error if it has not within d (nats-server's checkFor).
func checkFor(t testing.TB, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSwarmRelaysOverRealLinks: a tracker, an origin Member and 8 peer
// Members on loopback; the origin sends 20 messages down each of 4 trees
// and every peer gets all 80, relayed by other peers over pion links.
//
// What the swarm guarantees is that a message handed to Fanout reaches
// every child the link delivers to; how much a link delivers is the
// link's configuration. In production the data channels are partially
// reliable (rtc.Config.PacketLifetime, 1 s by default) and erasure coding
// plus the HTTP fallback make up for what they abandon; this Handler has
// neither, so over 1 s links a relay starved of CPU under -race (as CI's
// two shared cores are) abandons a message and all its descendants miss
// it: the test would measure the machine. So the links here retransmit
// for the longest lifetime rtc allows, and the test asserts every message
// at every peer once the forest is built and every link is open.
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

	rc := rtc.Config{ICEInterfaces: []string{"lo"}, PacketLifetime: time.Minute}
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
	// The origin publishes first, or peers are answered no-channel.
	checkFor(t, 10*time.Second, func() error {
		if !oh.welcomed.Load() {
			return errors.New("channel not published")
		}
		return nil
	})
	var peers []*relayer
	for i := 0; i < 8; i++ {
		h := &relayer{got: map[[2]uint32]bool{}, from: map[forest.PeerID]int{}}
		start(h, Config{UploadKbps: 400})
		peers = append(peers, h)
	}
	// Wait until the forest is built and every edge is live at both ends:
	// every peer has a parent in every tree over an open link, and the
	// parents know those children (a parent that has not yet heard of a
	// child would not relay to it).
	checkFor(t, 30*time.Second, func() error {
		for i, p := range peers {
			ts := p.m.Trees()
			if len(ts) != 4 {
				return fmt.Errorf("peer%d in %d trees", i, len(ts))
			}
			for tree, x := range ts {
				if !x.HasParent || x.ParentOpenSince.IsZero() {
					return fmt.Errorf("peer%d: no open link to a parent in tree %d", i, tree)
				}
			}
		}
		for tree := 0; tree < 4; tree++ {
			kids := 0
			for _, p := range append(peers, oh) {
				if ts := p.m.Trees(); tree < len(ts) {
					kids += ts[tree].Children
				}
			}
			if kids != len(peers) {
				return fmt.Errorf("tree %d: parents know %d of %d children", tree, kids, len(peers))
			}
		}
		return nil
	})
	for seq := uint32(0); seq < 20; seq++ {
		for tree := 0; tree < 4; tree++ {
			msg := make([]byte, 1000)
			msg[0] = byte(tree)
			binary.BigEndian.PutUint32(msg[1:], seq)
			origin.Fanout(tree, seq, msg)
		}
		time.Sleep(20 * time.Millisecond) // pacing, as a live stream would
	}
	checkFor(t, 30*time.Second, func() error {
		missing := ""
		for i, p := range peers {
			if n := p.count(); n != 80 {
				missing += fmt.Sprintf(" peer%d:%d", i, n)
			}
		}
		if missing != "" {
			return fmt.Errorf("messages missing (peer:got of 80):%s", missing)
		}
		return nil
	})
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
