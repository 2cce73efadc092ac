package tracker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/coopcast/coopcast/internal/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testToken = "test-token"

var testKey = base64.StdEncoding.EncodeToString(make([]byte, 32))

// startServer runs a tracker on an httptest server until the test ends.
func startServer(t testing.TB, cfg Config) (*Server, string) {
	t.Helper()
	if cfg.PublishToken == "" {
		cfg.PublishToken = testToken
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = time.Minute // tests of heartbeats set their own
	}
	if cfg.JoinsPerIP == 0 {
		cfg.JoinsPerIP, cfg.JoinBurst = 1e6, 1e6
	}
	if cfg.MaxConnsPerIP == 0 {
		cfg.MaxConnsPerIP = 1 << 20 // every test client is on loopback
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
		srv.Close() // twice is fine
		hs.Close()
	})
	return srv, hs.URL
}

// tclient is a test WebSocket client that keeps the view a real peer
// would build from the tracker's messages.
type tclient struct {
	t      testing.TB
	conn   *websocket.Conn
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	beats  sync.WaitGroup

	mu       sync.Mutex
	id       uint64
	welcome  *proto.Message
	parents  map[int]uint64
	fallback map[int]bool
	children map[int]map[uint64]bool
	errs     []proto.Message
	signals  []proto.Message
	all      []proto.Message
	closed   bool
	// closeCode and closeReason: the close frame the tracker sent, -1 and
	// "" if the connection ended without one.
	closeCode   websocket.StatusCode
	closeReason string
	// holdEdges: do not answer a make-before-break move with edge-open at
	// once (as a peer whose new link delivers at once would); a test
	// sends it when it wants.
	holdEdges bool
}

func dial(t testing.TB, base string, header http.Header) (*tclient, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	conn, resp, err := websocket.Dial(dctx, strings.Replace(base, "http", "ws", 1)+"/ws", &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		cancel()
		return nil, resp, err
	}
	conn.SetReadLimit(1 << 20)
	c := &tclient{t: t, conn: conn, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		parents: map[int]uint64{}, fallback: map[int]bool{}, children: map[int]map[uint64]bool{}}
	go c.readLoop()
	t.Cleanup(c.close)
	return c, resp, nil
}

func (c *tclient) close() {
	c.cancel()
	c.conn.CloseNow()
	<-c.done
	c.beats.Wait()
}

// heartbeat sends a heartbeat every d until the client closes.
func (c *tclient) heartbeat(d time.Duration) {
	c.beats.Add(1)
	go func() {
		defer c.beats.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-c.ctx.Done():
				return
			case <-t.C:
				if c.send(proto.Message{Type: proto.TypeHeartbeat}) != nil {
					return
				}
			}
		}
	}()
}

// drop closes the TCP connection without a goodbye.
func (c *tclient) drop() { c.close() }

func (c *tclient) readLoop() {
	defer close(c.done)
	for {
		_, b, err := c.conn.Read(c.ctx)
		if err != nil {
			c.mu.Lock()
			c.closed = true
			c.closeCode = websocket.CloseStatus(err)
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				c.closeReason = ce.Reason
			}
			c.mu.Unlock()
			return
		}
		var m proto.Message
		if err := json.Unmarshal(b, &m); err != nil {
			c.t.Errorf("tracker sent invalid JSON: %s", b)
			continue
		}
		c.mu.Lock()
		c.all = append(c.all, m)
		if m.Type == proto.TypeAssignParent && m.Keep != nil && !c.holdEdges {
			go c.send(proto.Message{Type: proto.TypeEdgeOpen, Tree: m.Tree, Parent: m.Parent})
		}
		switch m.Type {
		case proto.TypeWelcome:
			c.welcome, c.id = &m, m.PeerID
		case proto.TypeAssignParent:
			c.parents[*m.Tree] = m.Parent
			c.fallback[*m.Tree] = false
		case proto.TypeRemoveParent:
			if c.parents[*m.Tree] == m.Parent {
				delete(c.parents, *m.Tree)
			}
		case proto.TypeFallback:
			delete(c.parents, *m.Tree)
			c.fallback[*m.Tree] = true
		case proto.TypeAssignChild:
			if c.children[*m.Tree] == nil {
				c.children[*m.Tree] = map[uint64]bool{}
			}
			c.children[*m.Tree][m.Child] = true
		case proto.TypeRemoveChild:
			delete(c.children[*m.Tree], m.Child)
		case proto.TypeError:
			c.errs = append(c.errs, m)
		case proto.TypeSignal:
			c.signals = append(c.signals, m)
		}
		c.mu.Unlock()
	}
}

func (c *tclient) send(m any) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return c.sendRaw(b)
}

func (c *tclient) sendRaw(b []byte) error {
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	return c.conn.Write(ctx, websocket.MessageText, b)
}

func (c *tclient) isClosed() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.closed }

func (c *tclient) peerID() uint64 { c.mu.Lock(); defer c.mu.Unlock(); return c.id }

func (c *tclient) errors() []proto.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]proto.Message(nil), c.errs...)
}

func (c *tclient) hasError(code proto.Code) bool {
	for _, e := range c.errors() {
		if e.Code == code {
			return true
		}
	}
	return false
}

// checkFor polls cond until it holds or the deadline passes.
func checkFor(t testing.TB, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: not true within %v: %v", what, d, err)
}

func publish(t testing.TB, base, channel string) *tclient {
	t.Helper()
	h := http.Header{"Authorization": {"Bearer " + testToken}}
	c, _, err := dial(t, base, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.send(proto.Message{Type: proto.TypePublish, Channel: channel, Trees: 4, K: 3, Bitrate: 600_000, PublicKey: testKey, FallbackURL: "http://origin/fallback"}); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 5*time.Second, "published", func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, m := range c.all {
			if m.Type == proto.TypePublished {
				return nil
			}
		}
		return fmt.Errorf("no published message; errors %v", c.errs)
	})
	return c
}

func join(t testing.TB, base, channel string, uploadKbps int64) *tclient {
	t.Helper()
	return joinWith(t, base, channel, uploadKbps, false)
}

// joinWith is join; holdEdges sets tclient.holdEdges.
func joinWith(t testing.TB, base, channel string, uploadKbps int64, holdEdges bool) *tclient {
	t.Helper()
	c, _, err := dial(t, base, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.holdEdges = holdEdges
	if err := c.send(proto.Message{Type: proto.TypeJoin, Channel: channel, Kind: "native", UploadKbps: uploadKbps}); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 10*time.Second, "welcome", func() error {
		if c.peerID() == 0 {
			return fmt.Errorf("no welcome; errors %v", c.errors())
		}
		return nil
	})
	return c
}

// agree checks that every client's view equals the tracker's forest, and
// that the forest's invariants hold.
func agree(srv *Server, channel string, origin *tclient, clients []*tclient) error {
	ch := srv.channel(channel)
	if ch == nil {
		return fmt.Errorf("no channel")
	}
	ch.mu.Lock()
	err := ch.f.Check()
	ch.mu.Unlock()
	if err != nil {
		return err
	}
	snap := ch.snapshot()
	nodes := map[uint64]proto.ForestNode{}
	kids := map[int]map[uint64]map[uint64]bool{}
	for _, n := range snap.Nodes {
		nodes[n.ID] = n
		for i, e := range n.Trees {
			if e.Fallback || e.Pending {
				continue
			}
			if kids[i] == nil {
				kids[i] = map[uint64]map[uint64]bool{}
			}
			if kids[i][e.Parent] == nil {
				kids[i][e.Parent] = map[uint64]bool{}
			}
			kids[i][e.Parent][n.ID] = true
		}
	}
	live := 0
	for _, c := range clients {
		if c.isClosed() {
			continue
		}
		live++
		if err := func() error {
			c.mu.Lock()
			defer c.mu.Unlock()
			n, ok := nodes[c.id]
			if !ok {
				return fmt.Errorf("client %d connected but not in the forest", c.id)
			}
			for i, e := range n.Trees {
				if e.Fallback != c.fallback[i] {
					return fmt.Errorf("peer %d tree %d: fallback %v, client believes %v", c.id, i, e.Fallback, c.fallback[i])
				}
				if p, has := c.parents[i]; !e.Fallback && (!has || p != e.Parent) {
					return fmt.Errorf("peer %d tree %d: parent %d, client believes %d (%v)", c.id, i, e.Parent, p, has)
				}
				if len(kids[i][c.id]) != len(c.children[i]) {
					return fmt.Errorf("peer %d tree %d: %d children, client believes %d", c.id, i, len(kids[i][c.id]), len(c.children[i]))
				}
				for k := range kids[i][c.id] {
					if !c.children[i][k] {
						return fmt.Errorf("peer %d tree %d: child %d unknown to it", c.id, i, k)
					}
				}
			}
			return nil
		}(); err != nil {
			return err
		}
	}
	if live != len(snap.Nodes) {
		return fmt.Errorf("%d clients connected, forest has %d", live, len(snap.Nodes))
	}
	if origin != nil {
		origin.mu.Lock()
		defer origin.mu.Unlock()
		for i := 0; i < snap.Trees; i++ {
			if len(kids[i][0]) != len(origin.children[i]) {
				return fmt.Errorf("origin tree %d: %d children, origin believes %d", i, len(kids[i][0]), len(origin.children[i]))
			}
		}
	}
	return nil
}
