package tracker

import (
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coopcast/coopcast/internal/proto"
)

// raiseFDLimit lifts the soft open-file limit to the hard one: 1,000
// clients and their server ends need about 2,000 descriptors.
func raiseFDLimit(t *testing.T, need uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= need {
		return
	}
	lim.Cur = min(lim.Max, need)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < need {
		t.Fatalf("need %d open files, limit %d (hard %d): %v", need, lim.Cur, lim.Max, err)
	}
}

// TestThousandClients: 1,000 WebSocket clients on loopback join in waves,
// a third of them leave (half gracefully, half by dropping the TCP
// connection), those that dropped rejoin with their resume token (and keep
// their peer id), new ones join, more leave; then the forest's invariants
// hold and every client's own view — built only from the messages it got —
// equals the tracker's forest.
func TestThousandClients(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 200
	}
	raiseFDLimit(t, uint64(4*n+256))
	// No restore window: a rejoin keeps its id and is placed afresh.
	srv, base := startServer(t, Config{RestoreWindow: time.Nanosecond})
	origin := publish(t, base, "big")
	rng := rand.New(rand.NewPCG(42, 42))

	var mu sync.Mutex
	var clients []*tclient
	joinWave := func(count int) {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 32)
		for i := 0; i < count; i++ {
			upload := int64(0)
			if r := rng.IntN(4); r > 0 {
				upload = int64(r) * 600 // 0, 600, 1200, 1800 kbps: 0, 3, 6, 9 slots
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				c := join(t, base, "big", upload)
				mu.Lock()
				clients = append(clients, c)
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	// leave takes count clients away, half gracefully, half by dropping
	// the connection, and returns how the dropped ones would resume.
	leave := func(count int) []proto.Resume {
		mu.Lock()
		rng.Shuffle(len(clients), func(a, b int) { clients[a], clients[b] = clients[b], clients[a] })
		gone := clients[:count]
		clients = append([]*tclient(nil), clients[count:]...)
		mu.Unlock()
		var dropped []proto.Resume
		for k, c := range gone {
			if k%2 == 0 {
				c.send(proto.Message{Type: proto.TypeLeave})
				checkFor(t, 10*time.Second, "graceful close", func() error {
					if !c.isClosed() {
						return errStillOpen
					}
					return nil
				})
			} else {
				dropped = append(dropped, c.resume(4))
				c.drop()
			}
		}
		return dropped
	}
	rejoin := func(rs []proto.Resume) {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 32)
		for _, r := range rs {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				c := joinMsg(t, base, proto.Message{Type: proto.TypeJoin, Channel: "big", Kind: "native", UploadKbps: 600, Resume: &r})
				if c.peerID() != r.PeerID {
					t.Errorf("peer %d rejoined as %d", r.PeerID, c.peerID())
				}
				mu.Lock()
				clients = append(clients, c)
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	start := time.Now()
	for w := 0; w < 4; w++ {
		joinWave(n / 4)
	}
	checkFor(t, 30*time.Second, "views agree after joins", func() error { return agree(srv, "big", origin, clients) })
	dropped := leave(n / 3)
	rejoin(dropped)
	joinWave(n/3 - len(dropped))
	leave(n / 10)
	checkFor(t, 30*time.Second, "views agree after churn", func() error { return agree(srv, "big", origin, clients) })
	st := srv.channel("big").stats()
	t.Logf("%d clients, %d joins, %d leaves, %d repairs, depth %v, fallback %d, in %v",
		st.Peers, st.Joins, st.Leaves, st.Repairs, st.MaxDepth, st.FallbackPeers, time.Since(start).Round(time.Millisecond))
	if st.Peers != len(clients) || st.Leaves < uint64(n/3+n/10-len(dropped)) || st.Repairs == 0 {
		t.Fatalf("stats %+v with %d clients", st, len(clients))
	}
}

type stillOpen struct{}

func (stillOpen) Error() string { return "still open" }

var errStillOpen error = stillOpen{}
