package tracker

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/coopcast/coopcast/internal/forest"
	"github.com/coopcast/coopcast/internal/proto"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHTTPEndpoints(t *testing.T) {
	srv, base := startServer(t, Config{})
	origin := publish(t, base, "live")
	peers := []*tclient{join(t, base, "live", 2000), join(t, base, "live", 0), join(t, base, "live", 800)}
	checkFor(t, 5*time.Second, "views agree", func() error { return agree(srv, "live", origin, peers) })

	if code, body := get(t, base+"/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	_, metrics := get(t, base+"/metrics")
	for _, want := range []string{
		`coopcast_peers{channel="live"} 3`,
		`coopcast_joins_total 3`,
		`coopcast_tree_depth{channel="live",tree="3"}`,
		`coopcast_fallback_peers{channel="live"} 0`,
		`coopcast_leaves_total 0`,
		`coopcast_repairs_total`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	code, body := get(t, base+"/api/v1/channels/live/forest")
	var snap proto.ForestSnapshot
	if code != 200 || json.Unmarshal([]byte(body), &snap) != nil {
		t.Fatalf("/forest: %d %s", code, body)
	}
	if len(snap.Nodes) != 3 || snap.Trees != 4 || len(snap.Nodes[0].Trees) != 4 {
		t.Fatalf("/forest: %+v", snap)
	}
	slots := map[int]bool{}
	for _, n := range snap.Nodes {
		slots[n.Slots] = true
		if n.Kind != "native" {
			t.Errorf("node kind %q", n.Kind)
		}
	}
	// 600 kbps over k=3: 200 kbps stripes. 2000 kbps → 10 slots, 0 → 0, 800 → 4.
	if !slots[10] || !slots[0] || !slots[4] {
		t.Errorf("slots from upload wrong: %v", slots)
	}
	code, body = get(t, base+"/api/v1/channels/live/stats")
	var st proto.ChannelStats
	if code != 200 || json.Unmarshal([]byte(body), &st) != nil || st.Peers != 3 || !st.Origin || st.StripeRate != 200_000 {
		t.Fatalf("/stats: %d %s", code, body)
	}
	if code, _ := get(t, base+"/api/v1/channels/nope/stats"); code != 404 {
		t.Fatalf("unknown channel: %d", code)
	}
	if code, body := get(t, base+"/api/v1/channels"); code != 200 || !strings.Contains(body, `"channel":"live"`) {
		t.Fatalf("/channels: %d %s", code, body)
	}
}

func TestPublishAuth(t *testing.T) {
	_, base := startServer(t, Config{})
	for _, tc := range []struct {
		name   string
		header http.Header
		query  string
	}{
		{"wrong token", http.Header{"Authorization": {"Bearer nope"}}, ""},
		{"not bearer", http.Header{"Authorization": {"Basic " + testToken}}, ""},
		{"origin role without token", nil, "?role=origin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, resp, err := dialURL(t, base+"/ws"+tc.query, tc.header)
			if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("want 401, got %v %v", resp, err)
			}
		})
	}
	t.Run("publish without token", func(t *testing.T) {
		c, _, err := dial(t, base, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.send(proto.Message{Type: proto.TypePublish, Channel: "x", PublicKey: testKey, Bitrate: 1000})
		checkFor(t, 5*time.Second, "refused", func() error {
			if !c.hasError(proto.CodeUnauthorized) || !c.isClosed() {
				return fmt.Errorf("errors %v closed %v", c.errors(), c.isClosed())
			}
			return nil
		})
	})
}

func dialURL(t *testing.T, url string, h http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	c, resp, err := websocket.Dial(t.Context(), strings.Replace(url, "http", "ws", 1), &websocket.DialOptions{HTTPHeader: h})
	if err == nil {
		t.Cleanup(func() { c.CloseNow() })
	}
	return c, resp, err
}

func TestJoinFloodRateLimited(t *testing.T) {
	_, base := startServer(t, Config{JoinsPerIP: 1, JoinBurst: 3})
	var codes []int
	for i := 0; i < 5; i++ {
		_, resp, err := dial(t, base, nil)
		if err != nil {
			if resp == nil {
				t.Fatal(err)
			}
			codes = append(codes, resp.StatusCode)
			continue
		}
		codes = append(codes, 101)
	}
	if fmt.Sprint(codes) != "[101 101 101 429 429]" {
		t.Fatalf("upgrade statuses %v, want three accepted then 429", codes)
	}
}

func TestBadInput(t *testing.T) {
	srv, base := startServer(t, Config{MaxMessageBytes: 4096})
	origin := publish(t, base, "c")
	good := join(t, base, "c", 1000)

	tests := []struct {
		name     string
		send     func(c *tclient)
		wantCode proto.Code
		closes   bool
	}{
		{"malformed JSON", func(c *tclient) { c.sendRaw([]byte(`{"type": "join",`)) }, proto.CodeBadMessage, false},
		{"not an object", func(c *tclient) { c.sendRaw([]byte(`[1,2]`)) }, proto.CodeBadMessage, false},
		{"no type", func(c *tclient) { c.sendRaw([]byte(`{}`)) }, proto.CodeBadMessage, false},
		{"unknown type", func(c *tclient) { c.send(map[string]any{"type": "teleport"}) }, proto.CodeUnknownType, false},
		{"binary frame", func(c *tclient) { c.conn.Write(c.ctx, websocket.MessageBinary, []byte{1, 2}) }, proto.CodeBadMessage, false},
		{"signal before join", func(c *tclient) {
			c.send(map[string]any{"type": "signal", "to": 1, "candidate": map[string]any{"candidate": "x"}})
		}, proto.CodeState, false},
		{"negative upload", func(c *tclient) {
			c.send(proto.Message{Type: proto.TypeJoin, Channel: "c", Kind: "native", UploadKbps: -5})
		}, proto.CodeBadMessage, false},
		{"absurd upload", func(c *tclient) {
			c.send(proto.Message{Type: proto.TypeJoin, Channel: "c", Kind: "native", UploadKbps: 1 << 40})
		}, proto.CodeBadMessage, false},
		{"bad kind", func(c *tclient) { c.send(proto.Message{Type: proto.TypeJoin, Channel: "c", Kind: "toaster"}) }, proto.CodeBadMessage, false},
		{"bad channel id", func(c *tclient) { c.send(proto.Message{Type: proto.TypeJoin, Channel: "../c", Kind: "browser"}) }, proto.CodeBadMessage, false},
		{"complaint about a tree that does not exist", func(c *tclient) {
			c.send(proto.Message{Type: proto.TypeJoin, Channel: "c", Kind: "browser"})
			c.send(proto.Message{Type: proto.TypeComplaint, Tree: intp(99), Parent: 0})
		}, proto.CodeBadMessage, false},
		{"unknown channel", func(c *tclient) { c.send(proto.Message{Type: proto.TypeJoin, Channel: "nope", Kind: "browser"}) }, proto.CodeNoChannel, true},
		{"oversized", func(c *tclient) {
			c.sendRaw([]byte(`{"type":"heartbeat","pad":"` + strings.Repeat("x", 8000) + `"}`))
		}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := dial(t, base, nil)
			if err != nil {
				t.Fatal(err)
			}
			tc.send(c)
			checkFor(t, 5*time.Second, "answered", func() error {
				if tc.wantCode != "" && !c.hasError(tc.wantCode) {
					return fmt.Errorf("no %q error; got %v", tc.wantCode, c.errors())
				}
				if tc.closes != c.isClosed() {
					return fmt.Errorf("closed = %v, want %v", c.isClosed(), tc.closes)
				}
				return nil
			})
			if !tc.closes {
				// The connection still works: it can join.
				c.send(proto.Message{Type: proto.TypeJoin, Channel: "c", Kind: "browser", UploadKbps: 0})
				checkFor(t, 5*time.Second, "join after bad input", func() error {
					if c.peerID() == 0 {
						return fmt.Errorf("no welcome after bad input")
					}
					return nil
				})
				c.close()
			}
		})
	}
	// The well-behaved peer was never disturbed.
	checkFor(t, 5*time.Second, "views agree", func() error { return agree(srv, "c", origin, []*tclient{good}) })
	if good.isClosed() || len(good.errors()) > 0 {
		t.Fatalf("good peer affected: closed %v errors %v", good.isClosed(), good.errors())
	}
}

func TestSignalOnlyBetweenPaired(t *testing.T) {
	srv, base := startServer(t, Config{})
	origin := publish(t, base, "c")
	a := join(t, base, "c", 0)
	b := join(t, base, "c", 0)
	checkFor(t, 5*time.Second, "views agree", func() error { return agree(srv, "c", origin, []*tclient{a, b}) })

	// Two leaves are never linked: refused.
	a.send(map[string]any{"type": "signal", "to": b.peerID(), "sdp": map[string]any{"type": "offer", "sdp": "v=0"}})
	checkFor(t, 5*time.Second, "refused", func() error {
		if !a.hasError(proto.CodeNotPaired) {
			return fmt.Errorf("errors %v", a.errors())
		}
		return nil
	})
	// a and the origin are linked: relayed, with "from" set by the tracker.
	a.send(map[string]any{"type": "signal", "to": 0, "sdp": map[string]any{"type": "offer", "sdp": "v=0"}})
	checkFor(t, 5*time.Second, "relayed", func() error {
		origin.mu.Lock()
		defer origin.mu.Unlock()
		for _, s := range origin.signals {
			if s.From != nil && *s.From == a.peerID() && s.SDP != nil && s.SDP.SDP == "v=0" {
				return nil
			}
		}
		return fmt.Errorf("origin got %v", origin.signals)
	})
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.signals) != 0 {
		t.Fatalf("unpaired peer received signals: %v", b.signals)
	}
}

func TestHeartbeatTimeoutRepairs(t *testing.T) {
	srv, base := startServer(t, Config{HeartbeatInterval: 50 * time.Millisecond, HeartbeatMisses: 3})
	origin := publish(t, base, "c")
	origin.heartbeat(20 * time.Millisecond)
	var peers []*tclient
	for i := 0; i < 12; i++ {
		p := join(t, base, "c", 1000)
		p.heartbeat(20 * time.Millisecond)
		peers = append(peers, p)
	}
	// A quiet peer: it joins, then never sends a heartbeat.
	quiet := join(t, base, "c", 2000)
	checkFor(t, 5*time.Second, "quiet peer failed", func() error {
		if !quiet.isClosed() {
			return fmt.Errorf("still connected")
		}
		return nil
	})
	checkFor(t, 5*time.Second, "views agree after repair", func() error { return agree(srv, "c", origin, peers) })
	_, metrics := get(t, base+"/metrics")
	if !strings.Contains(metrics, "coopcast_leaves_total 1") {
		t.Fatalf("leave not counted")
	}
}

func TestComplaints(t *testing.T) {
	srv, base := startServer(t, Config{})
	origin := publish(t, base, "c")
	var peers []*tclient
	for i := 0; i < 30; i++ {
		peers = append(peers, join(t, base, "c", 1000))
	}
	checkFor(t, 5*time.Second, "views agree", func() error { return agree(srv, "c", origin, peers) })

	// Find a peer with three children in some tree; each child complains.
	snap := srv.channel("c").snapshot()
	byID := map[uint64]*tclient{}
	for _, p := range peers {
		byID[p.peerID()] = p
	}
	var parent uint64
	var tree int
	var kids []uint64
	for _, n := range snap.Nodes {
		for i, e := range n.Trees {
			if e.Parent == 0 || e.Fallback {
				continue
			}
			count := 0
			var ks []uint64
			for _, m := range snap.Nodes {
				if m.Trees[i].Parent == e.Parent && !m.Trees[i].Fallback {
					count++
					ks = append(ks, m.ID)
				}
			}
			if count >= 3 {
				parent, tree, kids = e.Parent, i, ks[:3]
			}
		}
	}
	if parent == 0 {
		t.Fatal("no peer with three children")
	}
	for n, k := range kids {
		reason := "silent"
		if n > 0 {
			reason = "corrupt" // one silent complaint moves the child; two corrupt ones demote
		}
		byID[k].send(proto.Message{Type: proto.TypeComplaint, Tree: intp(tree), Parent: parent, Reason: reason})
		checkFor(t, 5*time.Second, "child moved", func() error {
			byID[k].mu.Lock()
			defer byID[k].mu.Unlock()
			if byID[k].parents[tree] == parent {
				return fmt.Errorf("still under %d", parent)
			}
			return nil
		})
		if n == 1 {
			// One corrupt complaint (plus a silent one) is not enough.
			for _, nd := range srv.channel("c").snapshot().Nodes {
				if nd.ID == parent && nd.Slots == 0 {
					t.Fatal("demoted before two corrupt complaints")
				}
			}
		}
	}
	checkFor(t, 5*time.Second, "demoted", func() error {
		for _, n := range srv.channel("c").snapshot().Nodes {
			if n.ID == parent && (n.Slots != 0 || n.Children != 0) {
				return fmt.Errorf("parent still has %d slots, %d children", n.Slots, n.Children)
			}
		}
		return agree(srv, "c", origin, peers)
	})
	// A complaint about someone who is not your parent is refused.
	kid := byID[kids[0]]
	kid.send(proto.Message{Type: proto.TypeComplaint, Tree: intp(tree), Parent: parent})
	checkFor(t, 5*time.Second, "refused", func() error {
		if !kid.hasError(proto.CodeState) {
			return fmt.Errorf("errors %v", kid.errors())
		}
		return nil
	})
}

func TestRestartResumesWithoutChurn(t *testing.T) {
	secret := []byte("same on both runs")
	srvA, baseA := startServer(t, Config{ResumeSecret: secret})
	origin := publish(t, baseA, "c")
	var peers []*tclient
	upload := func(i int) int64 { // enough upload that nobody is on fallback
		if i%4 == 0 {
			return 0
		}
		return 1500
	}
	for i := 0; i < 40; i++ {
		peers = append(peers, join(t, baseA, "c", upload(i)))
	}
	checkFor(t, 5*time.Second, "views agree", func() error { return agree(srvA, "c", origin, peers) })

	var before []proto.Resume
	for _, p := range peers {
		p.mu.Lock()
		r := proto.Resume{PeerID: p.id, Token: p.welcome.ResumeToken, Home: *p.welcome.Home, Parents: make([]uint64, 4)}
		for i := range r.Parents {
			r.Parents[i] = p.parents[i]
		}
		p.mu.Unlock()
		before = append(before, r)
	}
	// The tracker dies; a new one starts with the same secret.
	srvA.Close()
	srvB, baseB := startServer(t, Config{ResumeSecret: secret, RestoreWindow: 2 * time.Second})
	origin2 := publish(t, baseB, "c")
	var again []*tclient
	// Report in reverse order, so children often come before parents.
	for i := len(before) - 1; i >= 0; i-- {
		c, _, err := dial(t, baseB, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := before[i]
		c.send(proto.Message{Type: proto.TypeJoin, Channel: "c", Kind: "native", UploadKbps: upload(i), Resume: &r})
		again = append(again, c)
	}
	checkFor(t, 10*time.Second, "views agree after restore", func() error { return agree(srvB, "c", origin2, again) })
	// No churn: nobody was moved, not even for a moment. Every
	// assign-parent repeats the parent the peer reported, and nobody was
	// told to drop a parent or a child or to fall back.
	for k, c := range again {
		r := before[len(before)-1-k]
		if c.peerID() != r.PeerID {
			t.Errorf("peer %d resumed as %d", r.PeerID, c.peerID())
		}
		for _, m := range c.received() {
			switch m.Type {
			case proto.TypeAssignParent:
				if m.Parent != r.Parents[*m.Tree] {
					t.Errorf("peer %d tree %d: moved to %d, reported %d", r.PeerID, *m.Tree, m.Parent, r.Parents[*m.Tree])
				}
			case proto.TypeRemoveParent, proto.TypeRemoveChild, proto.TypeFallback, proto.TypeError:
				t.Errorf("peer %d got %+v across a clean restart", r.PeerID, m)
			}
		}
	}
	ch := srvB.channel("c")
	ch.mu.Lock()
	ch.f.Each(func(v forest.NodeView) bool {
		for i, tv := range v.Trees {
			if tv.Pending || tv.Fallback {
				t.Errorf("peer %d tree %d: pending %v fallback %v after every peer restored", v.ID, i, tv.Pending, tv.Fallback)
			}
		}
		return true
	})
	ch.mu.Unlock()
	if got := metric(t, baseB, "coopcast_repairs_total"); got != 0 {
		t.Errorf("%v repairs across a clean restart", got)
	}
}
