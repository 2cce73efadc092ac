package origin

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coopcast/coopcast/internal/fec"
	"github.com/coopcast/coopcast/internal/forest"
	"github.com/coopcast/coopcast/internal/proto"
	"github.com/coopcast/coopcast/internal/relay"
	"github.com/coopcast/coopcast/internal/rtc"
	"github.com/coopcast/coopcast/internal/swarm"
	"github.com/coopcast/coopcast/internal/ticket"
	"github.com/coopcast/coopcast/internal/wire"
)

// Config configures an Origin. Zero values are defaults where one is
// documented.
type Config struct {
	TrackerURL   string
	Channel      string
	PublishToken string
	Source       Source
	// Trees is M, K the stripes that rebuild a chunk. Defaults 4 and 3.
	Trees, K int
	// Bitrate is the stream's bits per second, announced to the tracker
	// (it sizes peers' slots). Required.
	Bitrate int64
	// PrivateKey signs manifests. Nil: a fresh key, so the channel cannot
	// outlive this origin (a restarted origin with another key is refused
	// by the tracker and by peers); LoadKey keeps one in a file.
	PrivateKey ed25519.PrivateKey
	// StateFile, if set, keeps where the stream stands (its epoch, the
	// next chunk number, the source's decode times) across runs, so that
	// an origin restarted with the same PrivateKey continues the stream
	// (peers see a gap, not a new stream) and never reuses a chunk number.
	// Empty: each run starts at chunk 0.
	StateFile string
	// FallbackURL is where peers reach Handler, up to and including the
	// channel: e.g. http://127.0.0.1:8080/fallback/demo.
	FallbackURL string
	// Keep is how many recent chunks are kept for fallback. Default 64.
	Keep int
	// AllowOrigins are the web page origins (scheme://host[:port]) whose
	// pages may read HTTP fallback from this origin's address (CORS): where
	// the watch page is served, the tracker. Empty: the origin of
	// TrackerURL. "*" allows every page (tickets still apply).
	AllowOrigins []string
	// FallbackPerIP bounds what one IP address may fetch over HTTP
	// fallback, in bits/s, with a burst of 10 s of it. Default 4 × Bitrate:
	// a peer that takes the whole stream over HTTP, with room to catch up,
	// is never held back. < 0: no limit (test swarms, whose peers all
	// share the loopback address).
	FallbackPerIP int64
	// FallbackRequests and FallbackBurst bound the requests one IP address
	// may make per second and at once. Defaults 50 and 200 (a peer on
	// fallback in every tree makes a few per chunk). FallbackRequests < 0:
	// no limit.
	FallbackRequests float64
	FallbackBurst    int
	// FallbackCap bounds the origin's HTTP fallback egress in all, in
	// bits/s, with a burst of 2 s of it. Default 20 × Bitrate. < 0: no cap.
	FallbackCap int64
	// EndLinger is how long Run keeps serving after the source ended, so
	// the end of stream reaches every peer. Default 3 s.
	EndLinger time.Duration
	RTC       rtc.Config
	Relay     relay.Config
	Logger    *slog.Logger
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.TrackerURL == "":
		return errors.New("origin: TrackerURL is required")
	case c.Channel == "":
		return errors.New("origin: Channel is required")
	case c.PublishToken == "":
		return errors.New("origin: PublishToken is required")
	case c.Source == nil:
		return errors.New("origin: Source is required")
	case c.Bitrate <= 0:
		return fmt.Errorf("origin: Bitrate must be > 0, got %d", c.Bitrate)
	case c.Trees < 0 || c.Trees > 32:
		return fmt.Errorf("origin: Trees must be in [1, 32], got %d", c.Trees)
	case c.K < 0 || (c.K > 0 && c.Trees > 0 && c.K > c.Trees):
		return fmt.Errorf("origin: K must be in [1, Trees], got %d", c.K)
	case c.PrivateKey != nil && len(c.PrivateKey) != ed25519.PrivateKeySize:
		return errors.New("origin: PrivateKey is not an Ed25519 private key")
	case c.Keep < 0:
		return fmt.Errorf("origin: Keep must be ≥ 0, got %d", c.Keep)
	case c.FallbackBurst < 0:
		return fmt.Errorf("origin: FallbackBurst must be ≥ 0, got %d", c.FallbackBurst)
	}
	for _, a := range c.AllowOrigins {
		if !ValidPageOrigin(a) {
			return fmt.Errorf("origin: AllowOrigins: %q is not a page origin: want scheme://host[:port] (e.g. https://watch.example.org) or *", a)
		}
	}
	return nil
}

// Stats counts what the origin sent.
type Stats struct {
	Chunks     uint64 // chunks cut and sent
	ChunkBytes uint64 // bytes of those chunks: one copy of the stream
	RTCBytes   uint64 // bytes sent to children over WebRTC
	HTTPBytes  uint64 // bytes served by HTTP fallback
	Dropped    uint64 // bytes dropped for slow children
	// FallbackUnauthorized counts fallback requests refused 401 (no
	// ticket, or a forged, expired or another channel's);
	// FallbackLimited those refused 429 for an address over its budget,
	// FallbackCapped those refused 429 at the origin's egress cap.
	FallbackUnauthorized uint64
	FallbackLimited      uint64
	FallbackCapped       uint64
}

// Origin is a running origin. Create it with New.
type Origin struct {
	cfg    Config
	log    *slog.Logger
	coder  *fec.Coder
	priv   ed25519.PrivateKey
	store  *store
	member *swarm.Member
	// epoch is this run's stream epoch (see wire.Manifest.Epoch).
	epoch uint64
	// next is the next chunk number; owned by Run.
	next uint32
	// initHash is the init segment's SHA-256 (hex), initChanged whether it
	// differs from the one of the run before, which did not end the stream.
	initHash    string
	initChanged bool
	saveFailed  bool // a state save failed: logged once

	chunks, chunkBytes, httpBytes atomic.Uint64
	init                          atomic.Pointer[signedInit]
	// ticketKey checks fallback tickets; the tracker mints them with it.
	ticketKey                           []byte
	guard                               *guard
	unauthorized, limitedIP, limitedCap atomic.Uint64

	closeOnce sync.Once
}

// New returns an Origin for cfg.
func New(cfg Config) (*Origin, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Trees == 0 {
		cfg.Trees = 4
	}
	if cfg.K == 0 {
		cfg.K = min(3, cfg.Trees)
	}
	if cfg.Keep == 0 {
		cfg.Keep = 64
	}
	if cfg.EndLinger == 0 {
		cfg.EndLinger = 3 * time.Second
	}
	if cfg.FallbackPerIP == 0 {
		cfg.FallbackPerIP = defaultPerIPFactor * cfg.Bitrate
	}
	if cfg.FallbackRequests == 0 {
		cfg.FallbackRequests = defaultRequests
	}
	if cfg.FallbackBurst == 0 {
		cfg.FallbackBurst = defaultRequestBurst
	}
	if cfg.FallbackCap == 0 {
		cfg.FallbackCap = defaultCapFactor * cfg.Bitrate
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	priv := cfg.PrivateKey
	if priv == nil {
		var err error
		if _, priv, err = ed25519.GenerateKey(rand.Reader); err != nil {
			return nil, fmt.Errorf("origin: channel key: %w", err)
		}
	}
	coder, err := fec.New(cfg.K, cfg.Trees)
	if err != nil {
		return nil, fmt.Errorf("origin: %w", err)
	}
	o := &Origin{cfg: cfg, log: log, coder: coder, priv: priv, store: newStore(cfg.Keep), epoch: uint64(time.Now().UnixMicro()),
		ticketKey: ticket.DeriveKey(priv)}
	o.guard = newGuard(o, cfg)
	if init := cfg.Source.Init(); init != nil {
		h := sha256.Sum256(init)
		o.initHash = hex.EncodeToString(h[:])
	}
	if err := o.resume(); err != nil {
		return nil, err
	}
	var media *proto.Media
	if d, ok := cfg.Source.(Describer); ok {
		media = d.Describe()
	}
	o.member, err = swarm.New(swarm.Config{
		TrackerURL: cfg.TrackerURL, Channel: cfg.Channel, Kind: "native",
		Publish: &swarm.Publish{Token: cfg.PublishToken, Trees: cfg.Trees, K: cfg.K, Bitrate: cfg.Bitrate,
			PublicKey: base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey)), FallbackURL: cfg.FallbackURL, Media: media,
			Epoch: o.epoch, TicketKey: base64.StdEncoding.EncodeToString(o.ticketKey)},
		RTC: cfg.RTC, Relay: cfg.Relay, Handler: (*handler)(o), Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("origin: %w", err)
	}
	return o, nil
}

// resume picks up the stream where the previous run left it, from
// Config.StateFile: a larger epoch, the next chunk number, the source's
// position.
func (o *Origin) resume() error {
	if o.cfg.StateFile == "" {
		return nil
	}
	st, err := loadState(o.cfg.StateFile)
	if err != nil {
		return fmt.Errorf("origin: %w", err)
	}
	if st.Epoch == 0 {
		return nil // a first run
	}
	o.epoch = max(o.epoch, st.Epoch+1)
	o.next = st.NextSeq
	o.initChanged = !st.Ended && st.Init != o.initHash
	if r, ok := o.cfg.Source.(Resumer); ok {
		if err := r.Resume(st.Source); err != nil {
			return fmt.Errorf("origin: resume the source: %w", err)
		}
	}
	o.log.Info("continuing the stream of a previous run", "epoch", o.epoch, "previous_epoch", st.Epoch, "next_chunk", o.next)
	return nil
}

// save records in Config.StateFile that chunks up to next-1 are out (or
// about to be), before they are: a restart then never reuses their
// numbers, which peers would take for forgeries.
func (o *Origin) save(next uint32, ended bool) {
	if o.cfg.StateFile == "" {
		return
	}
	st := state{Epoch: o.epoch, NextSeq: next, Ended: ended, Init: o.initHash}
	if r, ok := o.cfg.Source.(Resumer); ok {
		st.Source = r.Position()
	}
	if err := st.save(o.cfg.StateFile); err != nil && !o.saveFailed {
		o.saveFailed = true
		o.log.Error("cannot keep the stream's state: a restarted origin would break its viewers", "err", err)
	}
}

// PublicKey is the channel's manifest-signing key.
func (o *Origin) PublicKey() ed25519.PublicKey { return o.priv.Public().(ed25519.PublicKey) }

// Epoch is this run's stream epoch, signed into every manifest and the
// init segment.
func (o *Origin) Epoch() uint64 { return o.epoch }

// Stats returns the origin's counters.
func (o *Origin) Stats() Stats {
	sent, dropped, _ := o.member.RelayStats()
	return Stats{Chunks: o.chunks.Load(), ChunkBytes: o.chunkBytes.Load(), RTCBytes: sent, HTTPBytes: o.httpBytes.Load(), Dropped: dropped,
		FallbackUnauthorized: o.unauthorized.Load(), FallbackLimited: o.limitedIP.Load(), FallbackCapped: o.limitedCap.Load()}
}

// Ticket mints a fallback ticket valid for d, as the tracker does for
// the channel's peers: for a client the origin's owner vouches for (a
// load test's plain-HTTP viewers, a test).
func (o *Origin) Ticket(peer uint64, d time.Duration) string {
	return ticket.Mint(o.ticketKey, o.cfg.Channel, peer, time.Now().Add(d))
}

// Run publishes the channel and streams the source into the trees until
// ctx ends, the source ends (io.EOF: a clean end) or fails.
func (o *Origin) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if init := o.cfg.Source.Init(); init != nil {
		o.init.Store(&signedInit{data: init, sig: wire.SignInit(o.priv, o.cfg.Channel, o.epoch, init), epoch: o.epoch})
	}
	errc := make(chan error, 1)
	go func() { errc <- o.member.Run(ctx) }()
	defer func() {
		o.Close()
		<-errc
	}()
	if o.initChanged {
		// The viewers of the previous run cannot decode this one's
		// fragments with the init segment they have: end their stream
		// (they stop, with whole files) before this one begins.
		o.log.Warn("the init segment differs from the previous run's: ending that stream first")
		if err := o.sendEnd(); err != nil {
			o.log.Error("end of stream", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.cfg.EndLinger):
		}
	}
	for {
		c, err := o.cfg.Source.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// Tell the peers the stream is over, clean end or not, and
			// give the news time to reach the leaves before leaving.
			if eerr := o.sendEnd(); eerr != nil {
				o.log.Error("end of stream", "err", eerr)
			}
			select {
			case <-ctx.Done():
			case <-time.After(o.cfg.EndLinger):
			}
			return err
		}
		if err := o.send(c); err != nil {
			return err
		}
		select {
		case err := <-errc:
			errc <- err
			if err != nil {
				return err
			}
		default:
		}
	}
}

// send codes, signs, stores and fans out one chunk.
func (o *Origin) send(c Chunk) error {
	seq := o.next
	shards, err := o.coder.Encode(c.Data)
	if err != nil {
		return fmt.Errorf("origin: encode chunk %d: %w", seq, err)
	}
	m := wire.Manifest{
		Seq: seq, Timestamp: time.Now().UnixMicro(), DecodeTime: c.DecodeTime, Duration: c.Duration, Timescale: c.Timescale,
		Length: uint32(len(c.Data)), M: uint8(o.cfg.Trees), K: uint8(o.cfg.K), ShardSize: uint32(len(shards[0])),
		Epoch: o.epoch, Hashes: wire.HashShards(shards),
	}
	if c.Keyframe {
		m.Flags |= wire.FlagKeyframe
	}
	raw, err := wire.SignManifest(o.priv, o.cfg.Channel, &m)
	if err != nil {
		return fmt.Errorf("origin: sign chunk %d: %w", seq, err)
	}
	o.save(seq+1, false)
	o.next++
	o.store.put(stored{seq: seq, manifest: raw, shards: shards, chunk: c.Data})
	for i, sh := range shards {
		o.member.Fanout(i, seq, raw)
		wire.Fragments(seq, uint8(i), sh, func(msg []byte) { o.member.Fanout(i, seq, msg) })
	}
	o.chunks.Add(1)
	o.chunkBytes.Add(uint64(len(c.Data)))
	return nil
}

// sendEnd sends the end-of-stream manifest: no data, FlagEnd, the seq
// after the last chunk.
func (o *Origin) sendEnd() error {
	seq := o.next
	shards, _ := o.coder.Encode(nil)
	m := wire.Manifest{Seq: seq, Timestamp: time.Now().UnixMicro(), M: uint8(o.cfg.Trees), K: uint8(o.cfg.K),
		Flags: wire.FlagEnd, Epoch: o.epoch, Hashes: wire.HashShards(shards)}
	raw, err := wire.SignManifest(o.priv, o.cfg.Channel, &m)
	if err != nil {
		return err
	}
	o.save(seq+1, true)
	o.next++
	o.store.put(stored{seq: seq, manifest: raw, shards: shards})
	for i := range shards {
		o.member.Fanout(i, seq, raw)
	}
	o.log.Info("stream ended", "chunks", o.chunks.Load(), "seq", seq)
	return nil
}

// Close stops the origin's swarm membership. Safe to call twice.
func (o *Origin) Close() error {
	o.closeOnce.Do(func() { o.member.Close() })
	return nil
}

// handler is the Origin seen as a swarm.Handler: it needs nothing from
// its children.
type handler Origin

func (h *handler) Welcome(m proto.Message) {
	h.log.Info("published", "channel", m.Channel, "trees", m.Trees, "k", m.K, "stripe_bps", m.StripeRate)
}
func (h *handler) Data(forest.PeerID, []byte) {}
func (h *handler) Topology()                  {}

// ChildReady sends a new child the newest chunk's manifest and its
// trees' shards, so it starts (or resumes) without waiting for the next
// chunk.
func (h *handler) ChildReady(child forest.PeerID, trees uint64) {
	o := (*Origin)(h)
	seq, ok := o.store.last()
	if !ok {
		return
	}
	c, ok := o.store.get(seq)
	if !ok {
		return
	}
	o.member.SendTo(child, seq, c.manifest)
	for i, sh := range c.shards {
		if trees&(1<<i) != 0 {
			wire.Fragments(seq, uint8(i), sh, func(msg []byte) { o.member.SendTo(child, seq, msg) })
		}
	}
}

// signedInit is the init segment with the channel key's signature for
// epoch.
type signedInit struct {
	data, sig []byte
	epoch     uint64
}
