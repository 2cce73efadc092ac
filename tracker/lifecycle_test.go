package tracker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/coopcast/coopcast/internal/forest"
	"github.com/coopcast/coopcast/internal/proto"
)

// TestCloseReasons: every way the tracker ends a connection tells the
// client why, in the close frame.
func TestCloseReasons(t *testing.T) {
	srv, base := startServer(t, Config{HeartbeatInterval: 50 * time.Millisecond, MaxMessageBytes: 4096})
	origin := publish(t, base, "c")
	origin.heartbeat(20 * time.Millisecond)

	for _, tc := range []struct {
		name   string
		act    func(t *testing.T) *tclient
		code   websocket.StatusCode
		reason string
	}{
		{"missed heartbeats", func(t *testing.T) *tclient {
			return join(t, base, "c", 0) // and never a heartbeat
		}, websocket.StatusPolicyViolation, "missed heartbeats"},
		{"unknown channel", func(t *testing.T) *tclient {
			c, _, err := dial(t, base, nil)
			if err != nil {
				t.Fatal(err)
			}
			c.send(proto.Message{Type: proto.TypeJoin, Channel: "nope", Kind: "browser"})
			return c
		}, websocket.StatusPolicyViolation, `no channel "nope"`},
		{"oversized", func(t *testing.T) *tclient {
			c := join(t, base, "c", 0)
			c.heartbeat(20 * time.Millisecond)
			c.sendRaw([]byte(`{"type":"heartbeat","pad":"` + strings.Repeat("x", 5000) + `"}`))
			return c
		}, websocket.StatusMessageTooBig, "read limited at 4097 bytes"},
		{"leave", func(t *testing.T) *tclient {
			c := join(t, base, "c", 0)
			c.send(proto.Message{Type: proto.TypeLeave})
			return c
		}, websocket.StatusNormalClosure, "bye"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.act(t)
			checkFor(t, 5*time.Second, "closed", func() error {
				closed, code, reason := c.closedWith()
				if !closed || code != tc.code || !strings.Contains(reason, tc.reason) {
					return fmt.Errorf("closed %v code %v reason %q; want %v %q", closed, code, reason, tc.code, tc.reason)
				}
				return nil
			})
		})
	}
	checkFor(t, 5*time.Second, "forest empty", func() error {
		if n := srv.channel("c").stats().Peers; n != 0 {
			return fmt.Errorf("%d peers left", n)
		}
		return nil
	})

	t.Run("shutdown", func(t *testing.T) {
		srv, base := startServer(t, Config{})
		origin := publish(t, base, "c")
		peer := join(t, base, "c", 1000)
		srv.Close()
		for _, c := range []*tclient{origin, peer} {
			checkFor(t, 5*time.Second, "closed", func() error {
				closed, code, reason := c.closedWith()
				if !closed || code != websocket.StatusGoingAway || reason != "tracker shutting down" {
					return fmt.Errorf("closed %v code %v reason %q", closed, code, reason)
				}
				return nil
			})
		}
		if _, resp, err := dial(t, base, nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("dial after Close: %v %v, want 503", resp, err)
		}
	})
}

// TestCloseIdempotent: Close may be called concurrently and repeatedly,
// and makes Run return.
func TestCloseIdempotent(t *testing.T) {
	srv, err := New(Config{PublishToken: "x"})
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- srv.Run(context.Background()) }()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); srv.Close() }()
	}
	wg.Wait()
	if err := <-runErr; !errors.Is(err, ErrClosed) {
		t.Fatalf("Run returned %v, want ErrClosed", err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
}

// slowDial opens a WebSocket that never reads, with a tiny receive
// buffer, so the tracker's writes to it back up quickly.
func slowDial(t *testing.T, base string) *websocket.Conn {
	t.Helper()
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/ws", &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	return conn
}

// TestSlowClientDropped: a client that stops reading is disconnected once
// its outbound queue is full, and the forest repairs around it; nobody
// else waits or notices beyond the repair.
func TestSlowClientDropped(t *testing.T) {
	srv, base := startServer(t, Config{OutboundQueue: 16})
	origin := publish(t, base, "c")
	good := join(t, base, "c", 1000)

	slow := slowDial(t, base)
	b, _ := json.Marshal(proto.Message{Type: proto.TypeJoin, Channel: "c", Kind: "native", UploadKbps: 1000})
	if err := slow.Write(t.Context(), websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
	var slowID uint64
	checkFor(t, 5*time.Second, "slow peer joined", func() error {
		for _, n := range srv.channel("c").snapshot().Nodes {
			if n.ID != good.peerID() {
				slowID = n.ID
				return nil
			}
		}
		return errors.New("not in the forest")
	})
	// The origin is linked to both peers; it signals the slow one with
	// large offers until the tracker gives up on it.
	sdp := strings.Repeat("a", 50_000)
	checkFor(t, 20*time.Second, "slow peer dropped", func() error {
		for i := 0; i < 8; i++ {
			origin.send(proto.Message{Type: proto.TypeSignal, To: slowID, SDP: &webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}})
		}
		for _, n := range srv.channel("c").snapshot().Nodes {
			if n.ID == slowID {
				return errors.New("still in the forest")
			}
		}
		return nil
	})
	if v := metric(t, base, `coopcast_rejected_total{reason="too-slow"}`); v != 1 {
		t.Errorf("too-slow rejections: %v, want 1", v)
	}
	checkFor(t, 5*time.Second, "views agree", func() error { return agree(srv, "c", origin, []*tclient{good}) })
	if good.isClosed() || len(good.errors()) > 0 || origin.isClosed() {
		t.Fatalf("others affected: good closed %v errors %v; origin closed %v", good.isClosed(), good.errors(), origin.isClosed())
	}
	for _, e := range origin.errors() {
		// Offers still in flight when the slow peer was dropped.
		if e.Code != proto.CodeNotPaired || !strings.Contains(e.Error, fmt.Sprint(slowID)) {
			t.Errorf("origin got %s: %s", e.Code, e.Error)
		}
	}
}

// TestReconnectTakesOver: a peer that reconnects (valid resume token)
// before the tracker noticed its old connection die keeps its id and its
// place: the forest does not change, its neighbours hear nothing, and the
// new connection is told the peer's whole place again.
func TestReconnectTakesOver(t *testing.T) {
	srv, base := startServer(t, Config{RestoreWindow: time.Nanosecond})
	origin := publish(t, base, "c")
	var peers []*tclient
	for i := 0; i < 12; i++ {
		peers = append(peers, join(t, base, "c", 1000))
	}
	checkFor(t, 5*time.Second, "views agree", func() error { return agree(srv, "c", origin, peers) })
	// The peer with the most children.
	k, most := 0, -1
	for i, p := range peers {
		p.mu.Lock()
		n := 0
		for _, kids := range p.children {
			n += len(kids)
		}
		p.mu.Unlock()
		if n > most {
			k, most = i, n
		}
	}
	if most < 1 {
		t.Fatal("no peer has children")
	}
	old := peers[k]
	old.mu.Lock()
	wantParents := map[int]uint64{}
	for i, p := range old.parents {
		wantParents[i] = p
	}
	wantKids := 0
	for _, kids := range old.children {
		wantKids += len(kids)
	}
	old.mu.Unlock()
	seen := map[*tclient]int{origin: len(origin.received())}
	for _, p := range peers {
		seen[p] = len(p.received())
	}
	before := srv.channel("c").snapshot()

	r := old.resume(4)
	fresh := joinMsg(t, base, proto.Message{Type: proto.TypeJoin, Channel: "c", Kind: "native", UploadKbps: 1000, Resume: &r})
	if fresh.peerID() != r.PeerID {
		t.Fatalf("resumed as %d, want %d", fresh.peerID(), r.PeerID)
	}
	checkFor(t, 5*time.Second, "old connection replaced", func() error {
		closed, _, reason := old.closedWith()
		if !closed || !strings.Contains(reason, "replaced by a newer connection") {
			return fmt.Errorf("closed %v reason %q", closed, reason)
		}
		return nil
	})
	peers[k] = fresh
	checkFor(t, 5*time.Second, "views agree", func() error { return agree(srv, "c", origin, peers) })
	fresh.mu.Lock()
	if fmt.Sprint(fresh.parents) != fmt.Sprint(wantParents) {
		t.Errorf("new connection's parents %v, want %v", fresh.parents, wantParents)
	}
	fresh.mu.Unlock()
	if n := fresh.count(proto.TypeAssignChild); n != wantKids {
		t.Errorf("new connection told of %d children, want %d", n, wantKids)
	}
	if after := srv.channel("c").snapshot(); fmt.Sprint(after.Nodes) != fmt.Sprint(before.Nodes) {
		t.Errorf("forest changed across a reconnect")
	}
	for c, n := range seen {
		if c != old && len(c.received()) != n {
			t.Errorf("peer %d heard of the reconnect: %v", c.peerID(), c.received()[n:])
		}
	}
}

// TestResumeRefusedIsNotFatal: a resume token this tracker did not issue
// gets a "resume-refused" error and a fresh place; the connection stays.
func TestResumeRefusedIsNotFatal(t *testing.T) {
	srv, base := startServer(t, Config{})
	origin := publish(t, base, "c")
	c := joinMsg(t, base, proto.Message{Type: proto.TypeJoin, Channel: "c", Kind: "browser", UploadKbps: 500,
		Resume: &proto.Resume{PeerID: 77, Token: "forged", Home: 1, Parents: []uint64{0, 0, 0, 0}}})
	if c.peerID() == 77 || !c.hasError(proto.CodeResumeRefused) || c.isClosed() {
		t.Fatalf("id %d errors %v closed %v", c.peerID(), c.errors(), c.isClosed())
	}
	checkFor(t, 5*time.Second, "views agree", func() error { return agree(srv, "c", origin, []*tclient{c}) })
}

// TestOriginReconnect: a second connection of the origin (same token and
// key) replaces the first and is told its children; another key is
// refused and changes nothing.
func TestOriginReconnect(t *testing.T) {
	srv, base := startServer(t, Config{})
	first := publish(t, base, "c")
	var peers []*tclient
	for i := 0; i < 6; i++ {
		peers = append(peers, join(t, base, "c", 1000))
	}
	checkFor(t, 5*time.Second, "views agree", func() error { return agree(srv, "c", first, peers) })
	second := publish(t, base, "c")
	checkFor(t, 5*time.Second, "first origin replaced", func() error {
		closed, _, reason := first.closedWith()
		if !closed || !strings.Contains(reason, "replaced by a newer connection of the origin") {
			return fmt.Errorf("closed %v reason %q", closed, reason)
		}
		return nil
	})
	checkFor(t, 5*time.Second, "views agree", func() error { return agree(srv, "c", second, peers) })

	other, _, err := dial(t, base, http.Header{"Authorization": {"Bearer " + testToken}})
	if err != nil {
		t.Fatal(err)
	}
	otherKey := make([]byte, 32)
	otherKey[0] = 1
	other.send(proto.Message{Type: proto.TypePublish, Channel: "c", Bitrate: 600_000, PublicKey: base64.StdEncoding.EncodeToString(otherKey)})
	checkFor(t, 5*time.Second, "refused", func() error {
		if !other.hasError(proto.CodeOriginLive) || !other.isClosed() {
			return fmt.Errorf("errors %v closed %v", other.errors(), other.isClosed())
		}
		return nil
	})
	if second.isClosed() {
		t.Fatal("live origin dropped by a publish with another key")
	}
}

// TestMessageRateLimit: a peer flooding messages gets one "rate-limited"
// error and its excess dropped, and stays connected; the origin is exempt.
func TestMessageRateLimit(t *testing.T) {
	_, base := startServer(t, Config{MessagesPerSecond: 1, MessageBurst: 5})
	origin := publish(t, base, "c")
	p := join(t, base, "c", 0)
	for i := 0; i < 40; i++ {
		p.send(proto.Message{Type: proto.TypeHeartbeat})
		origin.send(proto.Message{Type: proto.TypeHeartbeat})
	}
	checkFor(t, 5*time.Second, "throttled", func() error {
		if v := metric(t, base, `coopcast_rejected_total{reason="rate-limited"}`); v < 30 {
			return fmt.Errorf("%v rate-limited rejections", v)
		}
		return nil
	})
	var n int
	for _, e := range p.errors() {
		if e.Code == proto.CodeRateLimited {
			n++
		}
	}
	if n != 1 || p.isClosed() || len(origin.errors()) > 0 {
		t.Fatalf("%d rate-limited errors (want 1), closed %v; origin errors %v", n, p.isClosed(), origin.errors())
	}
}

// TestReports: a peer's reports (and stats riding on heartbeats) show in
// /forest, and their sums in /stats.
func TestReports(t *testing.T) {
	srv, base := startServer(t, Config{})
	origin := publish(t, base, "c")
	a, b := join(t, base, "c", 1000), join(t, base, "c", 1000)
	checkFor(t, 5*time.Second, "views agree", func() error { return agree(srv, "c", origin, []*tclient{a, b}) })
	a.send(proto.Message{Type: proto.TypeReport, Stats: &proto.PeerReport{RelayBytes: 1000, Children: 2, Continuity: 0.5}})
	b.send(proto.Message{Type: proto.TypeHeartbeat, Stats: &proto.PeerReport{RelayBytes: 500, Continuity: 1}})
	checkFor(t, 5*time.Second, "reports visible", func() error {
		st := srv.channel("c").stats()
		if st.RelayBytes != 1500 || st.Continuity != 0.75 {
			return fmt.Errorf("stats %+v", st)
		}
		for _, n := range srv.channel("c").snapshot().Nodes {
			if n.Report == nil {
				return fmt.Errorf("node %d has no report", n.ID)
			}
			if n.ID == a.peerID() && (n.Report.RelayBytes != 1000 || n.Report.Children != 2) {
				return fmt.Errorf("node %d report %+v", n.ID, n.Report)
			}
		}
		return nil
	})
	// Absurd figures are clamped: the sums stay encodable.
	b.send(proto.Message{Type: proto.TypeReport, Stats: &proto.PeerReport{RelayBytes: 500, Continuity: 1e308, LatencyMS: -1e308}})
	a.send(proto.Message{Type: proto.TypeReport, Stats: &proto.PeerReport{RelayBytes: 1000, Continuity: 1e308, LatencyMS: 1e308}})
	checkFor(t, 5*time.Second, "clamped", func() error {
		code, body := get(t, base+"/api/v1/channels/c/stats")
		if code != http.StatusOK || !strings.Contains(body, `"continuity":1`) {
			return fmt.Errorf("/stats: %d %s", code, body)
		}
		if code, body := get(t, base+"/api/v1/channels/c/forest"); code != http.StatusOK || !strings.Contains(body, `"latency_ms":3600000`) {
			return fmt.Errorf("/forest: %d %s", code, body)
		}
		return nil
	})
	// The latest report wins.
	a.send(proto.Message{Type: proto.TypeReport, Stats: &proto.PeerReport{RelayBytes: 3000, Continuity: 1}})
	checkFor(t, 5*time.Second, "latest report", func() error {
		if st := srv.channel("c").stats(); st.RelayBytes != 3500 {
			return fmt.Errorf("relay bytes %d", st.RelayBytes)
		}
		return nil
	})
}

// TestEmptyChannelRetired: a channel with no origin and no peers for a
// minute is dropped with its metrics; a client holding it finds it
// retired and looks again; publishing creates it afresh.
func TestEmptyChannelRetired(t *testing.T) {
	srv, base := startServer(t, Config{})
	origin := publish(t, base, "c")
	p := join(t, base, "c", 0)
	p.send(proto.Message{Type: proto.TypeLeave})
	origin.send(proto.Message{Type: proto.TypeLeave})
	checkFor(t, 5*time.Second, "both gone", func() error {
		if !p.isClosed() || !origin.isClosed() {
			return errors.New("still connected")
		}
		return nil
	})
	ch := srv.channel("c")
	srv.sweep(time.Now().Add(2 * time.Minute))
	if srv.channel("c") != nil {
		t.Fatal("empty channel not retired")
	}
	if code, _ := get(t, base+"/api/v1/channels/c/stats"); code != http.StatusNotFound {
		t.Fatalf("stats of a retired channel: %d", code)
	}
	if v := metric(t, base, `coopcast_peers{channel="c"}`); v != -1 {
		t.Fatalf("metric of a retired channel still exported: %v", v)
	}
	if _, ok := ch.join(&client{}, proto.Message{Type: proto.TypeJoin, Channel: "c", Kind: "native"}); ok {
		t.Fatal("a retired channel accepted a join")
	}
	again := publish(t, base, "c")
	peer := join(t, base, "c", 1000)
	checkFor(t, 5*time.Second, "views agree", func() error { return agree(srv, "c", again, []*tclient{peer}) })
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   Config
		field string // "" = valid
	}{
		{"zero but token", Config{PublishToken: "x"}, ""},
		{"no token", Config{}, "PublishToken"},
		{"tiny heartbeat", Config{PublishToken: "x", HeartbeatInterval: time.Microsecond}, "HeartbeatInterval"},
		{"negative misses", Config{PublishToken: "x", HeartbeatMisses: -1}, "HeartbeatMisses"},
		{"tiny queue", Config{PublishToken: "x", OutboundQueue: 2}, "OutboundQueue"},
		{"k above trees", Config{PublishToken: "x", K: 5}, "K"},
		{"k fits trees", Config{PublishToken: "x", K: 6, Forest: forest.Config{Trees: 8}}, ""},
		{"too many trees", Config{PublishToken: "x", Forest: forest.Config{Trees: 100}}, "Forest.Trees"},
		{"negative reserve", Config{PublishToken: "x", Forest: forest.Config{OriginReserve: -1}}, "Forest.OriginReserve"},
		{"negative max slots", Config{PublishToken: "x", Forest: forest.Config{MaxSlots: -1}}, "Forest.MaxSlots"},
		{"negative join rate", Config{PublishToken: "x", JoinsPerIP: -1}, "JoinsPerIP"},
		{"negative restore window", Config{PublishToken: "x", RestoreWindow: -time.Second}, "RestoreWindow"},
		{"small messages", Config{PublishToken: "x", MaxMessageBytes: 10}, "MaxMessageBytes"},
		{"negative join timeout", Config{PublishToken: "x", JoinTimeout: -time.Second}, "JoinTimeout"},
		{"negative per-address cap", Config{PublishToken: "x", MaxConnsPerIP: -1}, "MaxConnsPerIP"},
		{"negative connection cap", Config{PublishToken: "x", MaxConns: -1}, "MaxConns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			var ce *ConfigError
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tc.field == "":
			case !errors.As(err, &ce) || ce.Field != tc.field || !strings.Contains(err.Error(), tc.field):
				t.Fatalf("Validate() = %v, want a ConfigError naming %s", err, tc.field)
			case strings.Contains(ce.Msg, "forest:"):
				t.Fatalf("message repeats the package: %q", ce.Msg)
			}
		})
	}
}
