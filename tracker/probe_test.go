package tracker

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/coopcast/coopcast/internal/proto"
)

// frozenJoin joins channel and reads its welcome, then reads nothing
// more, as a process that has been stopped: its socket stays open, the
// kernel keeps acknowledging, but it answers no ping. It returns its
// peer id.
func frozenJoin(t *testing.T, base, channel string, uploadKbps int64) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	b, _ := json.Marshal(proto.Message{Type: proto.TypeJoin, Channel: channel, Kind: "native", UploadKbps: uploadKbps})
	if err := conn.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m proto.Message
		if json.Unmarshal(b, &m) == nil && m.Type == proto.TypeWelcome {
			return m.PeerID
		}
	}
}

// mutedJoin is frozenJoin for a live peer on a loaded host: it reads
// nothing (so no pong comes back), but sends a heartbeat every 100 ms.
func mutedJoin(t *testing.T, base, channel string, uploadKbps int64) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(proto.Message{Type: proto.TypeJoin, Channel: channel, Kind: "native", UploadKbps: uploadKbps})
	if err := conn.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
	var id uint64
	for id == 0 {
		_, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m proto.Message
		if json.Unmarshal(b, &m) == nil && m.Type == proto.TypeWelcome {
			id = m.PeerID
		}
	}
	hctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		hb, _ := json.Marshal(proto.Message{Type: proto.TypeHeartbeat})
		for t := time.NewTicker(100 * time.Millisecond); ; {
			select {
			case <-hctx.Done():
				t.Stop()
				return
			case <-t.C:
				if conn.Write(hctx, websocket.MessageText, hb) != nil {
					t.Stop()
					return
				}
			}
		}
	}()
	t.Cleanup(func() { stop(); <-done; conn.CloseNow() })
	return id
}

// TestSilentParentProbed: a parent a child reports silent is pinged over
// its WebSocket. One that answers stays where it is; one that does not (a
// stopped process, a host gone quiet) is declared failed within
// ProbeTimeout and its children placed elsewhere, long before its
// heartbeats would expire (30 s here). One whose pong is late but that
// sent a message while the ping was out is alive, and stays.
func TestSilentParentProbed(t *testing.T) {
	srv, base := startServer(t, Config{HeartbeatInterval: 10 * time.Second, ProbeTimeout: 300 * time.Millisecond, ProbationSlots: -1})
	publish(t, base, "s")
	live := join(t, base, "s", 10_000)
	frozen := frozenJoin(t, base, "s", 10_000)
	muted := mutedJoin(t, base, "s", 10_000)
	var leaves []*tclient
	for range 12 {
		leaves = append(leaves, join(t, base, "s", 0))
	}
	// childUnder finds a leaf under parent in some tree.
	childUnder := func(parent uint64) (*tclient, int) {
		t.Helper()
		var kid *tclient
		tree := -1
		checkFor(t, 5*time.Second, fmt.Sprintf("a child under %d", parent), func() error {
			for _, l := range leaves {
				l.mu.Lock()
				for i, p := range l.parents {
					if p == parent {
						kid, tree = l, i
					}
				}
				l.mu.Unlock()
				if kid != nil {
					return nil
				}
			}
			return fmt.Errorf("none yet")
		})
		return kid, tree
	}
	inForest := func(id uint64) bool {
		for _, n := range srv.channel("s").snapshot().Nodes {
			if n.ID == id {
				return true
			}
		}
		return false
	}

	kid, tree := childUnder(live.peerID())
	kid.send(proto.Message{Type: proto.TypeComplaint, Tree: intp(tree), Parent: live.peerID(), Reason: "silent"})
	time.Sleep(600 * time.Millisecond) // twice the probe timeout: what must not happen, has had time to
	if !inForest(live.peerID()) || live.isClosed() {
		t.Fatal("a parent that answers pings was declared failed on one complaint")
	}

	// A "starved" complaint (nothing from any parent while the origin is
	// ahead) about a parent that answers moves no one.
	kid, tree = childUnder(live.peerID())
	kid.send(proto.Message{Type: proto.TypeComplaint, Tree: intp(tree), Parent: live.peerID(), Reason: "starved"})
	time.Sleep(600 * time.Millisecond) // twice the probe timeout
	kid.mu.Lock()
	still := kid.parents[tree] == live.peerID()
	kid.mu.Unlock()
	if !still || !inForest(live.peerID()) {
		t.Fatal("a starved complaint about a parent that answers its ping moved the child or failed the parent")
	}

	// No pong in time, but heartbeats meanwhile: alive, kept.
	kid, tree = childUnder(muted)
	kid.send(proto.Message{Type: proto.TypeComplaint, Tree: intp(tree), Parent: muted, Reason: "silent"})
	time.Sleep(600 * time.Millisecond) // twice the probe timeout
	if !inForest(muted) {
		t.Fatal("a parent that sent heartbeats while its pong was late was declared failed")
	}

	kid, tree = childUnder(frozen)
	at := time.Now()
	kid.send(proto.Message{Type: proto.TypeComplaint, Tree: intp(tree), Parent: frozen, Reason: "silent"})
	checkFor(t, 3*time.Second, "the frozen parent declared failed", func() error {
		if inForest(frozen) {
			return fmt.Errorf("still in the forest")
		}
		return nil
	})
	if d := time.Since(at); d > 2*time.Second {
		t.Errorf("declared failed after %v, want about the probe timeout", d)
	}
	checkFor(t, 3*time.Second, "no one under the frozen parent", func() error {
		for _, n := range srv.channel("s").snapshot().Nodes {
			for i, e := range n.Trees {
				if e.Parent == frozen {
					return fmt.Errorf("peer %d under it in tree %d", n.ID, i)
				}
			}
		}
		return nil
	})
}
