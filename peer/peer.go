package peer

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coopcast/coopcast/internal/cadence"
	"github.com/coopcast/coopcast/internal/fec"
	"github.com/coopcast/coopcast/internal/forest"
	"github.com/coopcast/coopcast/internal/playout"
	"github.com/coopcast/coopcast/internal/proto"
	"github.com/coopcast/coopcast/internal/relay"
	"github.com/coopcast/coopcast/internal/rtc"
	"github.com/coopcast/coopcast/internal/swarm"
)

// Config configures a Peer. Zero values are defaults.
type Config struct {
	TrackerURL string
	Channel    string
	// UploadKbps is the upload offered for relaying; 0 makes the peer a
	// leaf everywhere.
	UploadKbps int64
	// Kind is "native" (default); the load test may say "browser" to
	// model browsers.
	Kind string
	// Out receives the stream: init segment, then chunks in order. Nil:
	// discard.
	Out io.Writer
	// Playout is the playout buffer: a chunk is due this long after the
	// origin cut it (plus the best one-way delay seen). Default 2 s.
	Playout time.Duration
	// FallbackLead: shards still missing this long before a chunk's
	// deadline are fetched from the origin over HTTP. Default 600 ms.
	FallbackLead time.Duration
	// SilenceTimeout: a parent that sent nothing for this long while other
	// trees deliver is reported to the tracker. Default 1.5 s.
	SilenceTimeout time.Duration
	// OnChunk, if set, is called with every rebuilt chunk (in rebuild
	// order, before playout): for checks such as the load test's.
	OnChunk func(seq uint32, data []byte)
	// Wait bounds how long the peer goes without a session with the
	// tracker (never welcomed, or lost and not back): then Run returns
	// ErrNoChannel (the tracker answers, without the channel) or
	// ErrTrackerUnreachable. Zero: retry for ever.
	Wait   time.Duration
	RTC    rtc.Config
	Relay  relay.Config
	HTTP   *http.Client
	Logger *slog.Logger
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.TrackerURL == "":
		return errors.New("peer: TrackerURL is required")
	case c.Channel == "":
		return errors.New("peer: Channel is required")
	case c.UploadKbps < 0:
		return fmt.Errorf("peer: --upload-kbps must be ≥ 0, got %d", c.UploadKbps)
	case c.Wait < 0:
		return fmt.Errorf("peer: Wait must be ≥ 0, got %v", c.Wait)
	case c.Playout < 0 || c.Playout > time.Minute:
		return fmt.Errorf("peer: Playout must be in [0, 1m], got %v", c.Playout)
	}
	return nil
}

// fallbackClient keeps connections to the origin alive across fetches.
var fallbackClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8, IdleConnTimeout: 30 * time.Second}}

// ErrNoChannel and ErrTrackerUnreachable are what Run returns when
// Config.Wait ran out.
var (
	ErrNoChannel          = swarm.ErrNoChannel
	ErrTrackerUnreachable = swarm.ErrTrackerUnreachable
)

// ErrStreamEnded is what Run returns when the origin ended the stream and
// the peer played it to the end.
var ErrStreamEnded = errors.New("peer: the stream ended")

// Ended is closed once the peer played the end of the stream.
func (p *Peer) Ended() <-chan struct{} { return p.ended }

// Joined is closed once the tracker first welcomed the peer.
func (p *Peer) Joined() <-chan struct{} { return p.welcomed }

// Playing is closed once the peer played its first chunk.
func (p *Peer) Playing() <-chan struct{} { return p.playing }

// Peer is a running native peer. Create it with New.
type Peer struct {
	cfg    Config
	rule   playout.Rule
	log    *slog.Logger
	member *swarm.Member
	http   *http.Client
	start  time.Time
	// lose, set only by tests before Run, makes the peer lose the
	// messages (from parents, or manifests over HTTP) it returns true for.
	lose func(msg []byte) bool
	// backoffUntil (unix ns) is when the origin's last 429 said fallback
	// may be asked again.
	backoffUntil atomic.Int64

	mu      sync.Mutex // guards everything below
	key     ed25519.PublicKey
	epoch   uint64 // newest stream epoch known: older manifests are replays
	coder   *fec.Coder
	k, m    int
	chunks  map[uint32]*chunk
	newest  uint32
	haveAny bool
	// newestAt is when the newest manifest arrived.
	newestAt time.Time
	// play is the playout rule's state (internal/playout): the playout
	// position, the clock offset and chunk interval the manifests show,
	// played/on time/missed, and whether the stream stopped.
	play      playout.State
	decisions []playout.Decision // due's, reused
	polling   bool               // a manifest-gap poll is under way
	lastPoll  time.Time          // when it started
	lastRx    []time.Time        // per tree: last verified message from the parent
	// lastSeqRx: per tree, the newest chunk a fragment of that tree came
	// for, from the parent (the cadence silence is judged by).
	lastSeqRx []uint32
	// treeLag: per tree, a decaying maximum of how long after a chunk's
	// manifest the tree's first fragment of it comes.
	treeLag []time.Duration
	// switchAt, switchFrom: per tree, when the parent was replaced and by
	// whom, until the new parent's first message (repair_ms).
	switchAt   []time.Time
	switchFrom []forest.PeerID
	welcomed   chan struct{}
	ended      chan struct{} // closed when the end of stream was played
	playing    chan struct{} // closed when the first chunk was played
	playOnce   sync.Once
	endOnce    sync.Once
	st         stats
	wakeup     chan struct{}
	// blamed: when each neighbour was last shown to the tracker with
	// evidence of bad data; floods, floodAt: unasked messages from each
	// neighbour, and when it was last reported for a flood (chunk.go).
	blamed    map[forest.PeerID]time.Time
	floods    map[forest.PeerID]floodCount
	floodAt   map[forest.PeerID]time.Time
	reportNow chan struct{} // cap 1: the stream stopped or resumed, report it (reportSoon)
	cad       cadence.Rule  // when a parent counts as silent
	cadTrees  []cadence.Tree
	newsLag   time.Duration // how late manifests come by the trees, past the fastest: a decaying maximum
	gap       gap           // what the last manifest poll found no tree had brought
	// complained: per tree, when its parent was last judged silent, until
	// the tree delivers again: the tree counts as stalled meanwhile (its
	// lastRx was reset to give the next parent a full slack).
	complained []time.Time
	why        []cadence.Reason
}

// New returns a Peer; Run joins.
func New(cfg Config) (*Peer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Playout == 0 {
		cfg.Playout = 2 * time.Second
	}
	if cfg.FallbackLead == 0 {
		cfg.FallbackLead = 600 * time.Millisecond
	}
	if cfg.SilenceTimeout == 0 {
		cfg.SilenceTimeout = 1500 * time.Millisecond
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.HTTP == nil {
		cfg.HTTP = fallbackClient
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Peer{cfg: cfg, rule: newRule(cfg), cad: cadence.New(cadence.Config{SilenceTimeout: cfg.SilenceTimeout}), log: log, http: cfg.HTTP, chunks: make(map[uint32]*chunk),
		blamed: map[forest.PeerID]time.Time{}, floods: map[forest.PeerID]floodCount{}, floodAt: map[forest.PeerID]time.Time{},
		welcomed: make(chan struct{}), wakeup: make(chan struct{}, 1), reportNow: make(chan struct{}, 1), ended: make(chan struct{}), playing: make(chan struct{})}
	var err error
	p.member, err = swarm.New(swarm.Config{TrackerURL: cfg.TrackerURL, Channel: cfg.Channel, Kind: cfg.Kind,
		UploadKbps: cfg.UploadKbps, RTC: cfg.RTC, Relay: cfg.Relay, Handler: (*handler)(p), Logger: log, GiveUpAfter: cfg.Wait})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// ID is the peer's id in the swarm (0 before it is welcomed).
func (p *Peer) ID() forest.PeerID { return p.member.ID() }

// Member exposes the peer's swarm membership (its trees), for tests and
// the load test.
func (p *Peer) Member() *swarm.Member { return p.member }

// Run joins the channel and plays the stream until ctx ends.
func (p *Peer) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p.start = time.Now()
	errc := make(chan error, 1)
	go func() { errc <- p.member.Run(ctx) }()
	var wg sync.WaitGroup
	defer func() {
		cancel()
		p.member.Close()
		wg.Wait()
	}()
	select {
	case <-p.welcomed:
	case err := <-errc:
		if err == nil {
			err = ctx.Err()
		}
		return err
	case <-ctx.Done():
		<-errc
		return nil
	}
	wg.Add(2)
	go func() { defer wg.Done(); p.playout(ctx) }()
	go func() { defer wg.Done(); p.repairLoop(ctx) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		<-errc
		return nil
	case <-p.ended:
		cancel()
		<-errc
		return ErrStreamEnded
	}
}

// handler is the Peer seen as a swarm.Handler.
type handler Peer

func (h *handler) Welcome(m proto.Message) {
	p := (*Peer)(h)
	key, err := base64.StdEncoding.DecodeString(m.PublicKey)
	if err != nil || len(key) != ed25519.PublicKeySize {
		p.log.Error("tracker sent a bad channel key", "err", err)
		return
	}
	coder, err := fec.New(m.K, m.Trees)
	if err != nil {
		p.log.Error("tracker sent a bad stream shape", "err", err)
		return
	}
	p.mu.Lock()
	first := p.key == nil
	p.key, p.coder, p.k, p.m = key, coder, m.K, m.Trees
	p.epoch = max(p.epoch, m.Epoch)
	if len(p.lastRx) != m.Trees {
		p.lastRx = make([]time.Time, m.Trees)
		p.complained = make([]time.Time, m.Trees)
		p.lastSeqRx = make([]uint32, m.Trees)
		p.treeLag = make([]time.Duration, m.Trees)
		p.switchAt = make([]time.Time, m.Trees)
		p.switchFrom = make([]forest.PeerID, m.Trees)
	}
	p.mu.Unlock()
	if first {
		close(p.welcomed)
	}
	p.log.Info("joined", "channel", m.Channel, "peer", m.PeerID)
}

func (h *handler) Topology() {}

func (h *handler) ChildReady(child forest.PeerID, trees uint64) { (*Peer)(h).childReady(child, trees) }

func (h *handler) Data(from forest.PeerID, b []byte) {
	if h.lose != nil && h.lose(b) {
		return
	}
	(*Peer)(h).receive(from, b, false)
}
