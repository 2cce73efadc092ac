package swarm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/coopcast/coopcast/internal/backoff"
	"github.com/coopcast/coopcast/internal/forest"
	"github.com/coopcast/coopcast/internal/proto"
	"github.com/coopcast/coopcast/internal/relay"
	"github.com/coopcast/coopcast/internal/rtc"
)

// Publish is what an origin announces when it publishes a channel.
type Publish struct {
	Token       string
	Trees, K    int
	Bitrate     int64
	PublicKey   string // base64 Ed25519
	FallbackURL string
	Media       *proto.Media
	// Epoch is the stream epoch of this run of the origin (see
	// wire.Manifest.Epoch); the tracker tells it to joining peers.
	Epoch uint64
	// TicketKey (base64) is what the tracker signs the peers' fallback
	// tickets with; the origin checks them with it.
	TicketKey string
}

// Handler receives what a Member learns. Methods are called from the
// Member's goroutines and must not block.
type Handler interface {
	// Welcome: joined (or re-joined) the channel.
	Welcome(w proto.Message)
	// Data: a message arrived on the link from a neighbour.
	Data(from forest.PeerID, b []byte)
	// Topology: a parent, child or fallback assignment changed.
	Topology()
	// ChildReady: the link to child is open and it is our child in the
	// trees of the bit mask: the moment to send it what it missed (the
	// chunks still before their deadline), so a new or repaired child
	// need not wait for the next chunk.
	ChildReady(child forest.PeerID, trees uint64)
}

// Config configures a Member. Zero values are defaults.
type Config struct {
	// TrackerURL is the tracker's base URL, http(s)://host:port.
	TrackerURL string
	Channel    string
	// Kind is "native" (default) or "browser".
	Kind string
	// UploadKbps is the upload the node offers for relaying.
	UploadKbps int64
	// Publish makes the Member the channel's origin.
	Publish *Publish
	RTC     rtc.Config
	Relay   relay.Config
	Handler Handler
	Logger  *slog.Logger
	// Reconnect is the backoff between attempts to reach a lost tracker;
	// its zero value is backoff's default (250 ms doubling to 10 s,
	// equal jitter, reset by a session that lasted 10 s), with the cap
	// lowered, when Reconnect.Max is zero, for the tracker's sake:
	//   - a peer the tracker has welcomed caps its delay at two heartbeat
	//     intervals, the tracker's default restore window: a tracker that
	//     restarts takes a peer back in its old place only if it returns
	//     within that window of the origin's return;
	//   - the origin caps it at originReconnectMax: it is one client per
	//     channel, and every peer waits for it after a tracker restart.
	// A tracker that answers "no-channel" (up again, its origin not yet
	// back) starts the schedule again, once per outage.
	Reconnect backoff.Backoff
	// Now is the clock of reconnect logging. Default time.Now.
	Now func() time.Time
	// GiveUpAfter ends Run with ErrNoChannel or ErrTrackerUnreachable
	// once no session has lasted (no welcome, or none since the last
	// one was lost) for this long. Zero: retry for ever (the origin).
	GiveUpAfter time.Duration
}

// Member is a node in a channel's swarm.
type Member struct {
	cfg Config
	log *slog.Logger
	ep  *rtc.Endpoint
	h   Handler

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	out chan proto.Message // to the tracker; dropped when full

	mu        sync.Mutex // guards everything below
	id        forest.PeerID
	welcome   *proto.Message
	trees     int
	parents   []forest.PeerID // per tree
	hasParent []bool
	fallback  []bool
	lostAt    []time.Time // per tree: when the last parent was lost, if the current one replaced it
	// drain, hasDrain: per tree, the former parent a make-before-break
	// move keeps us taking the tree from until the new parent delivers;
	// drainGen tells a drain's local timeout apart from a later one's.
	drain    []forest.PeerID
	hasDrain []bool
	drainGen uint64
	fbURL    string
	ticket   string // the newest fallback ticket from the tracker
	nbrs     map[forest.PeerID]*neighbour
	kids     atomic.Pointer[[][]*neighbour] // per tree; replaced whole, never changed in place
	// senders is, per tree, who may send us that tree's data (parent and
	// draining former parent), for the data path without the lock;
	// replaced whole. unconfirmed has a bit per tree whose parent's first
	// data we have not confirmed to the tracker yet (edge-open).
	senders     atomic.Pointer[[]treeSenders]
	unconfirmed atomic.Uint64
	closed      bool

	// up: a session with the tracker is open and welcomed.
	up             atomic.Bool
	retiredRelay   atomic.Uint64 // relay counters of neighbours gone
	retiredDropped atomic.Uint64
	// attempts numbers our link attempts. It starts at the clock in µs,
	// so a restarted process (the origin keeps id 0) never reuses a
	// number a neighbour has seen, and stays below 2^53 for browsers.
	attempts uint64
}

// neighbour is one peer we share at least one tree edge with. The masks
// and dialing are guarded by Member.mu; d and queue are safe on the data
// path without it.
type neighbour struct {
	id       forest.PeerID
	kind     string
	d        *nbr
	queue    *relay.Queue
	parentOf uint64 // bitmask of trees where it is our parent
	drainOf  uint64 // bitmask of trees where it is our former parent, still feeding us
	childOf  uint64 // bitmask of trees where it is our child
	dialing  bool
	// Link attempts (see proto.Message.Link): gen is our dial under
	// way, dialLink its link once Dial returned, answer an answer to it
	// that came first; accepted is the newest attempt of theirs we took.
	gen      uint64
	dialLink *rtc.Link
	answer   *rtc.Signal
	accepted uint64
}

// New returns a Member; Run connects it.
func New(cfg Config) (*Member, error) {
	if cfg.TrackerURL == "" {
		return nil, errors.New("swarm: TrackerURL is required")
	}
	if cfg.Channel == "" {
		return nil, errors.New("swarm: Channel is required")
	}
	if cfg.Handler == nil {
		return nil, errors.New("swarm: Handler is required")
	}
	if cfg.Kind == "" {
		cfg.Kind = "native"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ep, err := rtc.NewEndpoint(cfg.RTC)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Member{cfg: cfg, log: log, ep: ep, h: cfg.Handler, ctx: ctx, cancel: cancel,
		out: make(chan proto.Message, 256), nbrs: make(map[forest.PeerID]*neighbour), attempts: uint64(time.Now().UnixMicro())}, nil
}

// wsURL turns the tracker's base URL into its WebSocket URL.
func wsURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("tracker URL %q: %w", base, err)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	case "ws", "wss":
	default:
		return "", fmt.Errorf("tracker URL %q: scheme must be http or https", base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/ws"
	return u.String(), nil
}

// TrackerUp reports whether the Member has a session with the tracker
// now (welcomed, or its publish accepted).
func (m *Member) TrackerUp() bool { return m.up.Load() }

// ID returns the node's peer id (0 for the origin, or before welcome).
func (m *Member) ID() forest.PeerID {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.id
}

// Run keeps the Member in the swarm until ctx ends or Close: it connects
// to the tracker, and reconnects (resuming its id and links) when the
// tracker goes away. It returns an error only for a refusal that retrying
// cannot fix (bad token, bad flags, no such channel after a long wait).
func (m *Member) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-m.ctx.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	u, err := wsURL(m.cfg.TrackerURL)
	if err != nil {
		return err
	}
	rc := newReconnect(m.cfg.Reconnect, m.cfg.Publish != nil)
	var out backoff.Outage
	for {
		var joined time.Time // when the tracker welcomed us in this session
		err := m.session(ctx, u, func() {
			m.up.Store(true)
			joined = m.cfg.Now()
			if out.Up(joined) == backoff.Back {
				m.log.Info("tracker reachable again; joined", "down", out.Down(joined).Round(time.Millisecond), "attempts", out.Failures())
			}
		})
		m.up.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		var fatal fatalError
		if errors.As(err, &fatal) {
			return err
		}
		now := m.cfg.Now()
		lasted := time.Duration(-1)
		if !joined.IsZero() {
			lasted = now.Sub(joined)
		}
		wait := rc.next(err, lasted, m.heartbeat())
		ev := out.Failed(now)
		if g := m.cfg.GiveUpAfter; g > 0 {
			left := g - out.Down(now)
			if left <= 0 {
				if errors.Is(err, ErrNoChannel) {
					return fmt.Errorf("%w for %v: %w", ErrNoChannel, out.Down(now).Round(time.Second), err)
				}
				return fmt.Errorf("%w for %v (%d attempts): %w", ErrTrackerUnreachable, out.Down(now).Round(time.Second), out.Failures(), err)
			}
			wait = min(wait, left)
		}
		switch ev {
		case backoff.Lost:
			switch {
			case errors.Is(err, ErrNoChannel):
				m.log.Info("the tracker has no such channel (yet); waiting for its origin", "channel", m.cfg.Channel, "retry_in", wait.Round(time.Millisecond))
			case lasted < 0:
				m.log.Warn("tracker unreachable; retrying with backoff", "err", err, "retry_in", wait.Round(time.Millisecond))
			default:
				m.log.Warn("tracker session lost; reconnecting with backoff", "err", err, "retry_in", wait.Round(time.Millisecond))
			}
		case backoff.StillDown:
			m.log.Warn("tracker still unreachable", "down", out.Down(now).Round(time.Second), "attempts", out.Failures(), "err", err, "retry_in", wait.Round(time.Millisecond))
		default:
			m.log.Debug("tracker attempt failed", "err", err, "retry_in", wait.Round(time.Millisecond))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// originReconnectMax caps the origin's reconnect delay (see
// Config.Reconnect).
const originReconnectMax = time.Second

// reconnect is Run's reconnect policy (see Config.Reconnect), apart from
// the session so that it is tested without one.
type reconnect struct {
	bo       backoff.Backoff
	fixedMax bool // the Config set Max: keep it
	origin   bool
	answered bool // the tracker answered "no-channel" in this outage
}

func newReconnect(bo backoff.Backoff, origin bool) *reconnect {
	r := &reconnect{bo: bo, fixedMax: bo.Max != 0, origin: origin}
	if !r.fixedMax && origin {
		r.bo.Max = originReconnectMax
	}
	return r
}

// next returns the delay before the next attempt after a session that
// ended with err; lasted is how long it had been joined (< 0: it never
// was), heartbeat the interval of the tracker's last welcome (0: none).
func (r *reconnect) next(err error, lasted, heartbeat time.Duration) time.Duration {
	if lasted >= 0 {
		r.bo.Done(lasted)
		r.answered = false
		if !r.fixedMax && !r.origin && heartbeat > 0 {
			r.bo.Max = min(backoff.DefaultMax, 2*heartbeat)
		}
	}
	if errors.Is(err, ErrNoChannel) && !r.answered {
		r.answered = true
		r.bo.Reset()
	}
	return r.bo.Next()
}

// ErrNoChannel: the tracker has no such channel (yet): its origin may
// come. Run retries it, and returns it after Config.GiveUpAfter.
var ErrNoChannel = errors.New("no such channel on the tracker")

// ErrTrackerUnreachable is what Run returns when no session with the
// tracker could be made (or kept) for Config.GiveUpAfter.
var ErrTrackerUnreachable = errors.New("tracker unreachable")

// heartbeat is the interval the tracker asked for in its last welcome.
func (m *Member) heartbeat() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.welcome == nil {
		return 0
	}
	return time.Duration(m.welcome.HeartbeatMS) * time.Millisecond
}

type fatalError struct{ msg string }

func (e fatalError) Error() string { return e.msg }

// session is one WebSocket connection to the tracker; joined is called
// when the tracker welcomes us (or accepts our publish).
func (m *Member) session(ctx context.Context, u string, joined func()) error {
	var hdr http.Header
	if p := m.cfg.Publish; p != nil {
		hdr = http.Header{"Authorization": {"Bearer " + p.Token}}
	}
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	conn, resp, err := websocket.Dial(dctx, u, &websocket.DialOptions{HTTPHeader: hdr})
	dcancel()
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			return fatalError{"tracker refused the publish token (401): check --publish-token"}
		}
		return fmt.Errorf("dial tracker: %w", err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 20)
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()

	// Writer: the only goroutine that writes to conn.
	var wg sync.WaitGroup
	defer wg.Wait()
	defer scancel()
	first := m.hello()
	wg.Add(1)
	go func() {
		defer wg.Done()
		write := func(msg proto.Message) bool {
			b, _ := json.Marshal(msg)
			wctx, c := context.WithTimeout(sctx, 10*time.Second)
			defer c()
			return conn.Write(wctx, websocket.MessageText, b) == nil
		}
		if !write(first) {
			scancel()
			return
		}
		for {
			select {
			case <-sctx.Done():
				return
			case msg := <-m.out:
				if !write(msg) {
					scancel()
					return
				}
			}
		}
	}()
	for {
		_, b, err := conn.Read(sctx)
		if err != nil {
			return fmt.Errorf("tracker connection: %w", err)
		}
		var msg proto.Message
		if err := json.Unmarshal(b, &msg); err != nil {
			m.log.Warn("bad message from tracker", "err", err)
			continue
		}
		if msg.Type == proto.TypeWelcome || msg.Type == proto.TypePublished {
			joined()
		}
		if err := m.handle(sctx, msg); err != nil {
			return err
		}
	}
}

// hello is the first message of a session: publish, join, or a join that
// resumes the previous session's id and parents.
func (m *Member) hello() proto.Message {
	if p := m.cfg.Publish; p != nil {
		return proto.Message{Type: proto.TypePublish, Channel: m.cfg.Channel, Trees: p.Trees, K: p.K,
			Bitrate: p.Bitrate, PublicKey: p.PublicKey, FallbackURL: p.FallbackURL, Media: p.Media, Epoch: p.Epoch, TicketKey: p.TicketKey}
	}
	msg := proto.Message{Type: proto.TypeJoin, Channel: m.cfg.Channel, Kind: m.cfg.Kind, UploadKbps: m.cfg.UploadKbps}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.welcome != nil {
		r := &proto.Resume{PeerID: uint64(m.id), Token: m.welcome.ResumeToken, Parents: make([]uint64, m.trees)}
		if m.welcome.Home != nil {
			r.Home = *m.welcome.Home
		}
		for i := range r.Parents {
			r.Parents[i] = uint64(m.parents[i])
		}
		msg.Resume = r
	}
	return msg
}

// send queues a message to the tracker; it is dropped if the queue is
// full (the tracker session is stuck and about to be replaced).
func (m *Member) send(msg proto.Message) {
	select {
	case m.out <- msg:
	default:
		m.log.Warn("tracker queue full; message dropped", "type", msg.Type)
	}
}

func (m *Member) handle(ctx context.Context, msg proto.Message) error {
	switch msg.Type {
	case proto.TypeWelcome, proto.TypePublished:
		m.mu.Lock()
		m.welcome = &msg
		m.id = forest.PeerID(msg.PeerID)
		if m.trees != msg.Trees {
			m.trees = msg.Trees
			m.parents = make([]forest.PeerID, msg.Trees)
			m.hasParent = make([]bool, msg.Trees)
			m.fallback = make([]bool, msg.Trees)
			m.lostAt = make([]time.Time, msg.Trees)
			m.drain = make([]forest.PeerID, msg.Trees)
			m.hasDrain = make([]bool, msg.Trees)
			m.publishSendersLocked()
			empty := make([][]*neighbour, msg.Trees)
			m.kids.Store(&empty)
		}
		m.fbURL = msg.FallbackURL
		m.ticket = msg.Ticket
		m.mu.Unlock()
		if msg.HeartbeatMS > 0 {
			m.startHeartbeat(ctx, time.Duration(msg.HeartbeatMS)*time.Millisecond)
		}
		m.h.Welcome(msg)
	case proto.TypeAssignParent, proto.TypeRemoveParent, proto.TypeAssignChild, proto.TypeRemoveChild, proto.TypeFallback:
		if msg.Tree == nil || *msg.Tree < 0 || *msg.Tree >= m.treeCount() {
			m.log.Warn("assignment for a tree out of range", "msg", msg.Type)
			return nil
		}
		m.assign(msg)
		m.h.Topology()
	case proto.TypeTicket:
		m.mu.Lock()
		m.ticket = msg.Ticket
		m.mu.Unlock()
	case proto.TypeSignal:
		if msg.From == nil {
			return nil
		}
		m.onSignal(forest.PeerID(*msg.From), rtc.Signal{SDP: msg.SDP, Candidate: msg.Candidate}, msg.Link)
	case proto.TypeError:
		switch msg.Code {
		case proto.CodeUnauthorized, proto.CodeOriginLive, proto.CodeBadJoin, proto.CodeChannelFull:
			return fatalError{fmt.Sprintf("tracker refused: %s", msg.Error)}
		case proto.CodeNoChannel:
			// The origin may come: retry. Run logs the outage, not every
			// answer.
			return fmt.Errorf("tracker: %s: %w", msg.Error, ErrNoChannel)
		}
		m.log.Warn("tracker says", "code", msg.Code, "message", msg.Error)
	}
	return nil
}

func (m *Member) treeCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.trees
}

// startHeartbeat sends heartbeats for the life of one session.
func (m *Member) startHeartbeat(ctx context.Context, every time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				m.send(proto.Message{Type: proto.TypeHeartbeat})
			}
		}
	}()
}
