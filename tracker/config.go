package tracker

import (
	"log/slog"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/coopcast/coopcast/internal/channelid"
	"github.com/coopcast/coopcast/internal/forest"
	"github.com/coopcast/coopcast/internal/ticket"
)

// Config configures a Server. Every zero field means its documented
// default.
type Config struct {
	// PublishToken is the secret an origin must present (Authorization:
	// Bearer) to publish a channel. Required: a tracker with no token
	// would let anyone publish.
	PublishToken string
	// Forest shapes every channel's forest (origin slots, origin reserve,
	// the cap on a peer's slots; see forest.Config for their defaults).
	// Forest.Trees (M, default 4) is the default for an origin that does
	// not announce its own.
	Forest forest.Config
	// K is how many of the M stripes rebuild a chunk, the default for an
	// origin that does not announce its own. Default 3, or M if M < 3.
	K int
	// HeartbeatInterval is how often clients must send a heartbeat.
	// Default 2 s.
	HeartbeatInterval time.Duration
	// HeartbeatMisses is how many intervals without a heartbeat make a
	// client failed. Default 3.
	HeartbeatMisses int
	// ProbeTimeout is how long a peer a child reports silent has to answer
	// a WebSocket ping before it is declared failed: a process stopped or
	// frozen, or a host gone quiet with its socket still open, answers
	// nothing and is replaced now rather than at heartbeat expiry; a live
	// one answers within a round trip, so a complaint alone never fails
	// it. Default 500 ms.
	ProbeTimeout time.Duration
	// MaxMessageBytes bounds one WebSocket message. Default 64 KiB.
	MaxMessageBytes int64
	// MaxPeersPerChannel bounds a channel's audience. Default 100,000.
	MaxPeersPerChannel int
	// MaxChannels bounds the channels one tracker holds. Default 1,000.
	MaxChannels int
	// JoinsPerIP is how many WebSocket upgrades one IP address may make
	// per second; JoinBurst how many at once. Defaults 10 and 50. Beyond
	// that the upgrade is answered 429. At most 100,000 addresses are
	// tracked; past that, new ones share one bucket.
	JoinsPerIP float64
	JoinBurst  int
	// JoinTimeout is how long a new WebSocket may take to send its join
	// or publish. One that has not by then is closed (policy violation,
	// reason "no join or publish within …"): an idle socket holds memory
	// and a file descriptor and does nothing for the stream. Default 10 s.
	JoinTimeout time.Duration
	// MaxConnsPerIP bounds the WebSockets open at once from one IP
	// address — the TCP peer's address: X-Forwarded-For is not trusted,
	// so behind a reverse proxy raise this to what the proxy carries.
	// MaxConns bounds the tracker's total. Beyond them an upgrade is
	// refused before the handshake: 429 for the per-address cap, 503 with
	// Retry-After for the total. Connections that present the publish
	// token (origins) are exempt from both, so a flood of idle sockets
	// cannot keep an origin out. Defaults 64 and 20,000.
	MaxConnsPerIP int
	MaxConns      int
	// MessagesPerSecond and MessageBurst bound what one peer sends on its
	// connection (the origin is exempt). Beyond them messages are dropped
	// with a "rate-limited" error. Defaults 50 and 200: a flash crowd's
	// worth of offers and trickled candidates fits in the burst.
	MessagesPerSecond float64
	MessageBurst      int
	// ICEServers are handed to every peer in its welcome.
	ICEServers []webrtc.ICEServer
	// RestoreWindow is how long after a channel is (re)published — so,
	// after a tracker restart, after its origin comes back — the tracker
	// takes peers' reports of their parents to rebuild its forest without
	// moving anyone. Default 2 × HeartbeatInterval.
	RestoreWindow time.Duration
	// ResumeSecret signs the resume tokens peers use after a reconnect or a
	// tracker restart. Empty: the one kept in StateDir, or, without a
	// StateDir, a random one, so tokens do not survive a restart.
	ResumeSecret []byte
	// StateDir is where the tracker keeps what must outlive a restart:
	// the resume secret (file "resume-secret", mode 0600, made on first
	// start in a directory made 0700), unless ResumeSecret is set. Empty:
	// nothing is kept.
	StateDir string
	// ComplaintWindow and ComplaintLimit: this many distinct children
	// reporting corrupt data from one parent within the window demote it
	// to a leaf in every tree. Defaults 30 s and 2.
	ComplaintWindow time.Duration
	ComplaintLimit  int
	// TicketTTL is how long the fallback tickets the tracker hands peers
	// (in welcome, and in a ticket message every TicketTTL/2) are valid.
	// Default 2 minutes. The origin's clock may run up to TicketTTL/2
	// ahead of the tracker's before peers see their tickets expire.
	TicketTTL time.Duration
	// OutboundQueue is how many messages may wait for one client before the
	// tracker gives up on it as too slow and disconnects it (the forest
	// repairs around it; nobody else waits). Default 1024. The queue takes
	// memory only for what waits in it, and until a client has sent its
	// join or publish at most 16 messages (errors) may wait.
	OutboundQueue int
	// Logger receives the tracker's logs. Nil: discard.
	Logger *slog.Logger
	// Registerer receives the tracker's Prometheus metrics. Nil: a registry
	// of the server's own, served at /metrics (never the global one: a
	// process may run many trackers, tests do).
	Registerer prometheus.Registerer
	// Gatherer serves /metrics when Registerer is set.
	Gatherer prometheus.Gatherer
}

// Limits on what an origin may announce.
const (
	maxTrees      = 64 // the forest's limit; also the swarm's tree bitmask
	maxBitrate    = 1_000_000_000
	maxChannelLen = channelid.MaxLen
)

func (c Config) withDefaults() Config {
	if c.Forest.Trees == 0 {
		c.Forest.Trees = 4
	}
	if c.K == 0 {
		c.K = min(3, c.Forest.Trees)
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 2 * time.Second
	}
	if c.HeartbeatMisses == 0 {
		c.HeartbeatMisses = 3
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = 500 * time.Millisecond
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = 64 << 10
	}
	if c.MaxPeersPerChannel == 0 {
		c.MaxPeersPerChannel = 100_000
	}
	if c.MaxChannels == 0 {
		c.MaxChannels = 1000
	}
	if c.JoinsPerIP == 0 {
		c.JoinsPerIP = 10
	}
	if c.JoinBurst == 0 {
		c.JoinBurst = 50
	}
	if c.JoinTimeout == 0 {
		c.JoinTimeout = 10 * time.Second
	}
	if c.TicketTTL == 0 {
		c.TicketTTL = ticket.DefaultTTL
	}
	if c.MaxConnsPerIP == 0 {
		c.MaxConnsPerIP = 64
	}
	if c.MaxConns == 0 {
		c.MaxConns = 20_000
	}
	if c.MessagesPerSecond == 0 {
		c.MessagesPerSecond = 50
	}
	if c.MessageBurst == 0 {
		c.MessageBurst = 200
	}
	if c.RestoreWindow == 0 {
		c.RestoreWindow = 2 * c.HeartbeatInterval
	}
	if c.ComplaintWindow == 0 {
		c.ComplaintWindow = 30 * time.Second
	}
	if c.ComplaintLimit == 0 {
		c.ComplaintLimit = 2
	}
	if c.OutboundQueue == 0 {
		c.OutboundQueue = 1024
	}
	return c
}

// Validate reports the first bad field as a *ConfigError naming it.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.PublishToken == "":
		return fieldErr("PublishToken", "is required: origins prove themselves with it")
	case c.K < 1 || c.K > c.Forest.Trees:
		return fieldErr("K", "must be between 1 and the number of trees (%d), got %d", c.Forest.Trees, c.K)
	case c.HeartbeatInterval < 10*time.Millisecond:
		return fieldErr("HeartbeatInterval", "must be ≥ 10ms, got %v", c.HeartbeatInterval)
	case c.HeartbeatMisses < 1:
		return fieldErr("HeartbeatMisses", "must be ≥ 1, got %d", c.HeartbeatMisses)
	case c.ProbeTimeout < 0:
		return fieldErr("ProbeTimeout", "must be ≥ 0, got %v", c.ProbeTimeout)
	case c.MaxMessageBytes < 1024:
		return fieldErr("MaxMessageBytes", "must be ≥ 1024, got %d", c.MaxMessageBytes)
	case c.MaxPeersPerChannel < 1:
		return fieldErr("MaxPeersPerChannel", "must be ≥ 1, got %d", c.MaxPeersPerChannel)
	case c.MaxChannels < 1:
		return fieldErr("MaxChannels", "must be ≥ 1, got %d", c.MaxChannels)
	case c.JoinsPerIP < 0:
		return fieldErr("JoinsPerIP", "must be ≥ 0, got %v", c.JoinsPerIP)
	case c.JoinBurst < 1:
		return fieldErr("JoinBurst", "must be ≥ 1, got %d", c.JoinBurst)
	case c.JoinTimeout < 0:
		return fieldErr("JoinTimeout", "must be ≥ 0, got %v", c.JoinTimeout)
	case c.MaxConnsPerIP < 1:
		return fieldErr("MaxConnsPerIP", "must be ≥ 1, got %d", c.MaxConnsPerIP)
	case c.MaxConns < 1:
		return fieldErr("MaxConns", "must be ≥ 1, got %d", c.MaxConns)
	case c.MessagesPerSecond < 0:
		return fieldErr("MessagesPerSecond", "must be ≥ 0, got %v", c.MessagesPerSecond)
	case c.MessageBurst < 1:
		return fieldErr("MessageBurst", "must be ≥ 1, got %d", c.MessageBurst)
	case c.RestoreWindow < 0:
		return fieldErr("RestoreWindow", "must be ≥ 0, got %v", c.RestoreWindow)
	case c.TicketTTL < 0:
		return fieldErr("TicketTTL", "must be ≥ 0, got %v", c.TicketTTL)
	case c.ComplaintWindow < 0:
		return fieldErr("ComplaintWindow", "must be ≥ 0, got %v", c.ComplaintWindow)
	case c.ComplaintLimit < 1:
		return fieldErr("ComplaintLimit", "must be ≥ 1, got %d", c.ComplaintLimit)
	case c.OutboundQueue < 16:
		return fieldErr("OutboundQueue", "must be ≥ 16, got %d", c.OutboundQueue)
	case c.Registerer != nil && c.Gatherer == nil:
		return fieldErr("Gatherer", "is required with Registerer, to serve /metrics")
	}
	// The forest validates its fields; check them one at a time so the
	// error can name the one that is wrong.
	for _, f := range []struct {
		name string
		cfg  forest.Config
	}{
		{"Forest.Trees", forest.Config{Trees: c.Forest.Trees}},
		{"Forest.OriginSlots", forest.Config{OriginSlots: c.Forest.OriginSlots}},
		{"Forest.OriginReserve", forest.Config{OriginReserve: c.Forest.OriginReserve}},
		{"Forest.MaxSlots", forest.Config{MaxSlots: c.Forest.MaxSlots}},
	} {
		if err := f.cfg.Validate(); err != nil {
			// "forest: Trees must be …" → "must be …"
			msg := strings.TrimPrefix(err.Error(), "forest: "+strings.TrimPrefix(f.name, "Forest.")+" ")
			return &ConfigError{Field: f.name, Msg: msg}
		}
	}
	return nil
}
