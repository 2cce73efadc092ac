package peer

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/coopcast/coopcast/internal/mediatest"
	"github.com/coopcast/coopcast/internal/proto"
	"github.com/coopcast/coopcast/internal/rtc"
	"github.com/coopcast/coopcast/internal/stack"
	"github.com/coopcast/coopcast/origin"
	"github.com/coopcast/coopcast/tracker"
)

// TestOriginRestart: an origin looping the test card with a key file is
// killed (its context cancelled: no end of stream, its connections just
// close) in the middle of a chunk (its state file has reserved a chunk
// number that never went out), and a second one started with the same
// key file, as after a crash. The tracker hands it the channel; the three
// native peers keep their places (nobody leaves), skip the lost chunk,
// learn the new epoch from the new run's manifests, and resume at its
// first keyframe chunk, numbered after the lost one. Every peer's output
// file has strictly increasing decode times across the restart, and
// ffmpeg decodes it without a word.
func TestOriginRestart(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "channel.pem")
	// A tracker alone: the test runs the origins, one after the other,
	// each serving the fallback in turn.
	var fallback origin.SwitchHandler
	ctx, cancel := context.WithCancel(context.Background())
	stk, err := stack.Start(ctx, stack.Config{PublishToken: "tok", Tracker: tracker.Config{HeartbeatInterval: time.Second}, Fallback: &fallback})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := stk.Close(); err != nil {
			t.Errorf("stack: %v", err)
		}
	})

	// start runs an origin the way `coopcast origin --key FILE` does.
	type run struct {
		o    *origin.Origin
		stop context.CancelFunc
		done chan struct{} // closed when Run returned err
		err  error
	}
	start := func() *run {
		t.Helper()
		priv, _, err := origin.LoadKey(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		src, err := origin.NewTestcard()
		if err != nil {
			t.Fatal(err)
		}
		o, err := origin.New(origin.Config{TrackerURL: stk.URL(), Channel: "t", PublishToken: "tok", Source: src, Bitrate: 400_000,
			PrivateKey: priv, StateFile: keyFile + ".state", FallbackURL: stk.URL() + "/fallback/t", RTC: rtc.Config{ICEInterfaces: []string{"lo"}},
			FallbackPerIP: -1, FallbackRequests: -1}) // every peer shares the loopback address
		if err != nil {
			t.Fatal(err)
		}
		fallback.Store(o.Handler())
		octx, stop := context.WithCancel(ctx)
		r := &run{o: o, stop: stop, done: make(chan struct{})}
		go func() { defer close(r.done); r.err = o.Run(octx) }()
		return r
	}
	first := start()
	t.Cleanup(func() { first.stop(); <-first.done })

	type viewer struct {
		p      *Peer
		path   string
		f      *os.File
		cancel context.CancelFunc
		done   chan struct{}
		mu     sync.Mutex
		seqs   []uint32 // rebuilt, in order
	}
	var vs []*viewer
	for i := 0; i < 3; i++ {
		v := &viewer{path: filepath.Join(dir, fmt.Sprintf("out%d.mp4", i)), done: make(chan struct{})}
		if v.f, err = os.Create(v.path); err != nil {
			t.Fatal(err)
		}
		v.p, err = New(Config{TrackerURL: stk.URL(), Channel: "t", UploadKbps: 2000, Out: v.f, RTC: rtc.Config{ICEInterfaces: []string{"lo"}},
			OnChunk: func(seq uint32, _ []byte) { v.mu.Lock(); v.seqs = append(v.seqs, seq); v.mu.Unlock() }})
		if err != nil {
			t.Fatal(err)
		}
		pctx, pcancel := context.WithCancel(ctx)
		v.cancel = pcancel
		go func() { defer close(v.done); v.p.Run(pctx) }()
		t.Cleanup(func() { v.cancel(); <-v.done })
		vs = append(vs, v)
	}
	waitFor(t, 30*time.Second, "every peer plays 3 chunks of the first run", func() bool {
		for _, v := range vs {
			if v.p.Report().ChunksPlayed < 3 {
				return false
			}
		}
		return true
	})
	ids := make([]uint64, len(vs))
	for i, v := range vs {
		ids[i] = uint64(v.p.ID())
	}

	// Kill the first origin: no end of stream, its links and its tracker
	// connection just close. The channel waits with its peers in place.
	first.stop()
	<-first.done
	if first.err != nil {
		t.Fatalf("first origin: %v", first.err)
	}
	lastSeq := uint32(first.o.Stats().Chunks) - 1
	reserveLostChunk(t, keyFile+".state")
	played := make([]uint64, len(vs))
	for i, v := range vs {
		played[i] = v.p.Report().ChunksPlayed
	}
	waitFor(t, 10*time.Second, "the tracker sees the origin gone", func() bool { return !channelStats(t, stk.URL()).Origin })

	second := start()
	t.Cleanup(func() { second.stop(); <-second.done })
	if second.o.Epoch() <= first.o.Epoch() {
		t.Fatalf("second run's epoch %d is not after the first's %d", second.o.Epoch(), first.o.Epoch())
	}
	waitFor(t, 30*time.Second, "every peer plays 3 chunks of the second run", func() bool {
		for i, v := range vs {
			if v.p.Report().ChunksPlayed < played[i]+3 {
				return false
			}
		}
		return true
	})
	if st := channelStats(t, stk.URL()); st.Leaves != 0 || st.Peers != len(vs) || !st.Origin {
		t.Errorf("the channel has %d peers and %d leaves (origin connected: %v); the restart should cost no peer", st.Peers, st.Leaves, st.Origin)
	}
	for i, v := range vs {
		v.cancel()
		<-v.done
		v.f.Close()
		v.p.mu.Lock()
		epoch := v.p.epoch
		v.p.mu.Unlock()
		if epoch != second.o.Epoch() {
			t.Errorf("peer %d is at epoch %d, want the second run's %d", i, epoch, second.o.Epoch())
		}
		if id := uint64(v.p.ID()); id != ids[i] {
			t.Errorf("peer %d rejoined as %d (was %d)", i, id, ids[i])
		}
		// Chunk numbers never go back: the second run goes on after the
		// last number of the first.
		v.mu.Lock()
		seqs := append([]uint32(nil), v.seqs...)
		v.mu.Unlock()
		var after []uint32
		for _, s := range seqs {
			if s == lastSeq+1 {
				t.Errorf("peer %d rebuilt chunk %d, which never went out", i, s)
			}
			if int32(s-lastSeq) > 1 {
				after = append(after, s)
			}
		}
		if len(after) < 3 || after[0] != lastSeq+2 {
			t.Errorf("peer %d rebuilt %v of the second run, want 3 or more from chunk %d on (all it rebuilt: %v)", i, after, lastSeq+2, seqs)
		}
		rep := v.p.Report()
		if rep.ChunksMissed < 1 {
			t.Errorf("peer %d missed no chunk; the lost chunk %d should count as missed: %+v", i, lastSeq+1, rep)
		}
		// 1 s chunks of 25 frames: 80 % of the frames of the chunks played.
		frames := mediatest.CheckPlayable(t, v.path, int(float64(rep.ChunksPlayed)*25*0.8))
		t.Logf("peer %d: %d chunks played, %d missed, %d frames; first run ended at chunk %d, second run's rebuilt here: %v",
			i, rep.ChunksPlayed, rep.ChunksMissed, frames, lastSeq, after)
	}
}

// reserveLostChunk makes the state file of a stopped origin look as if it
// had been killed in the middle of sending a chunk: the state is written
// before a chunk goes out, so it reserves one more chunk number (and the
// source's fragment number) than peers ever saw.
func reserveLostChunk(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	st["next_seq"] = st["next_seq"].(float64) + 1
	src := st["source"].(map[string]any)
	src["seq"] = src["seq"].(float64) + 1
	if b, err = json.Marshal(st); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// channelStats fetches the tracker's stats of channel "t".
func channelStats(t *testing.T, base string) proto.ChannelStats {
	t.Helper()
	var st proto.ChannelStats
	resp, err := http.Get(base + "/api/v1/channels/t/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// waitFor polls cond until it holds, or fails the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
