package peer

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/coopcast/coopcast/internal/rtc"
	"github.com/coopcast/coopcast/internal/stack"
	"github.com/coopcast/coopcast/origin"
	"github.com/coopcast/coopcast/tracker"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testBitrate  = 150_000
	testInterval = 250 * time.Millisecond
)

// swarmEnv is a tracker and an origin on one loopback HTTP server.
type swarmEnv struct {
	url    string
	origin *origin.Origin
	ctx    context.Context // ends when the test's cleanup stops the stack
	// interval is the chunk interval of the origin's synthetic stream.
	interval time.Duration
	// killOrigin stops the origin for good: it cuts nothing more (a chunk
	// being cut is never published) and leaves the tracker; its HTTP
	// fallback has nothing newer to offer.
	killOrigin func()
}

func startSwarm(t *testing.T) *swarmEnv { return startSwarmEvery(t, testInterval) }

// startSwarmEvery starts a swarm whose origin cuts a chunk every interval.
func startSwarmEvery(t *testing.T, interval time.Duration) *swarmEnv {
	t.Helper()
	src, _ := origin.NewSynthetic(testBitrate, interval)
	e := startSwarmWith(t, src, testBitrate)
	e.interval = interval
	return e
}

// startSwarmWith starts a tracker and an origin streaming src.
func startSwarmWith(t *testing.T, src origin.Source, bitrate int64) *swarmEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ks := &killable{Source: src, dead: make(chan struct{})}
	st, err := stack.Start(ctx, stack.Config{
		Tracker: tracker.Config{HeartbeatInterval: time.Second},
		Origin: origin.Config{Channel: "t", Source: ks, Bitrate: bitrate, RTC: rtc.Config{ICEInterfaces: []string{"lo"}},
			FallbackPerIP: -1, FallbackRequests: -1}}) // every peer shares the loopback address
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	o := st.Origin
	e := &swarmEnv{url: st.URL(), origin: o, ctx: ctx, killOrigin: func() { ks.kill(); o.Close() }}
	t.Cleanup(func() {
		cancel()
		if err := st.Close(); err != nil {
			t.Errorf("stack: %v", err)
		}
		// Every peer's fallback fetches carried a valid ticket.
		st := o.Stats()
		t.Logf("origin fallback: %d bytes served, %d refused 401, %d refused 429 at the cap", st.HTTPBytes, st.FallbackUnauthorized, st.FallbackCapped)
		if st.FallbackUnauthorized != 0 {
			t.Errorf("the origin refused %d fallback requests for want of a valid ticket (%d bytes served, %d capped)", st.FallbackUnauthorized, st.HTTPBytes, st.FallbackCapped)
		}
	})
	return e
}

// killable is a source that can be stopped for good: Next then blocks
// until its context ends, and a chunk cut at that moment is dropped.
type killable struct {
	origin.Source
	dead chan struct{}
	once sync.Once
}

func (k *killable) kill() { k.once.Do(func() { close(k.dead) }) }

func (k *killable) Next(ctx context.Context) (origin.Chunk, error) {
	c, err := k.Source.Next(ctx)
	select {
	case <-k.dead:
		<-ctx.Done()
		return origin.Chunk{}, ctx.Err()
	default:
	}
	return c, err
}

// checked is a peer whose every rebuilt chunk is compared with the
// origin's bytes.
type checked struct {
	*Peer
	cancel  context.CancelFunc
	done    chan struct{}
	good    atomic.Int64
	corrupt atomic.Int64
}

func (e *swarmEnv) join(t *testing.T, upload int64) *checked {
	t.Helper()
	return e.joinWith(t, upload, nil)
}

// joinWith is join with setup run on the peer before it starts.
func (e *swarmEnv) joinWith(t *testing.T, upload int64, setup func(*Peer)) *checked {
	t.Helper()
	c := &checked{done: make(chan struct{})}
	p, err := New(Config{TrackerURL: e.url, Channel: "t", UploadKbps: upload, RTC: rtc.Config{ICEInterfaces: []string{"lo"}},
		OnChunk: func(seq uint32, data []byte) {
			if bytes.Equal(data, origin.SyntheticChunk(seq, testBitrate, e.interval)) {
				c.good.Add(1)
			} else {
				c.corrupt.Add(1)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	c.Peer = p
	if setup != nil {
		setup(p)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	c.cancel = cancel
	go func() { defer close(c.done); p.Run(ctx) }()
	t.Cleanup(c.stop)
	return c
}

func (c *checked) stop() {
	c.cancel()
	<-c.done
}

func TestSwarmDeliversByteIdenticalChunks(t *testing.T) {
	e := startSwarm(t)
	var peers []*checked
	for i := 0; i < 12; i++ {
		up := int64(1200)
		if i%3 == 0 {
			up = 0
		}
		peers = append(peers, e.join(t, up))
	}
	// Wait on the state the checks need (every peer rebuilt 10 chunks),
	// not a fixed time that a loaded machine may not give them.
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		done := 0
		for _, p := range peers {
			if p.good.Load() >= 10 {
				done++
			}
		}
		if done == len(peers) {
			break
		}
	}
	for i, p := range peers {
		r := p.Report()
		if p.corrupt.Load() != 0 {
			t.Errorf("peer %d rebuilt %d corrupt chunks", i, p.corrupt.Load())
		}
		if p.good.Load() < 10 {
			t.Errorf("peer %d rebuilt only %d chunks: %+v", i, p.good.Load(), r)
		}
		if r.Continuity < 0.99 {
			t.Errorf("peer %d continuity %.3f: %+v", i, r.Continuity, r)
		}
	}
	st := e.origin.Stats()
	var fromPeers uint64
	for _, p := range peers {
		fromPeers += p.Report().BytesFromPeers
	}
	if fromPeers == 0 {
		t.Fatal("nothing came from peers")
	}
	t.Logf("origin sent %d chunks, %d B rtc, %d B http; peers received %d B from peers", st.Chunks, st.RTCBytes, st.HTTPBytes, fromPeers)
	if st.RTCBytes == 0 {
		t.Fatal("origin sent nothing")
	}
}
