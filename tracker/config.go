package tracker

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/coopcast/coopcast/internal/forest"
)

// Config configures a Server. Every zero field means its documented
// default.
type Config struct {
	// PublishToken is the secret an origin must present (Authorization:
	// Bearer) to publish a channel. Required: a tracker with no token
	// would let anyone publish.
	PublishToken string
	// Forest shapes every channel's forest; Trees is overridden by what the
	// origin announces when it publishes.
	Forest forest.Config
	// HeartbeatInterval is how often clients must send a heartbeat.
	// Default 2 s.
	HeartbeatInterval time.Duration
	// HeartbeatMisses is how many intervals without a heartbeat make a
	// client failed. Default 3.
	HeartbeatMisses int
	// MaxMessageBytes bounds one WebSocket message. Default 64 KiB.
	MaxMessageBytes int64
	// MaxPeersPerChannel bounds a channel's audience. Default 100,000.
	MaxPeersPerChannel int
	// MaxChannels bounds the channels one tracker holds. Default 1,000.
	MaxChannels int
	// JoinsPerIP is how many WebSocket upgrades one IP address may make
	// per second; JoinBurst how many at once. Defaults 10 and 50. Beyond
	// that the upgrade is answered 429.
	JoinsPerIP float64
	JoinBurst  int
	// ICEServers are handed to every peer in its welcome.
	ICEServers []webrtc.ICEServer
	// RestoreWindow is how long after a channel is (re)published the
	// tracker takes peers' reports of their parents to rebuild its forest
	// after a restart. Default 2 × HeartbeatInterval.
	RestoreWindow time.Duration
	// ResumeSecret signs the resume tokens peers use after a reconnect or a
	// tracker restart. Empty: random, so tokens do not survive a restart;
	// set it (the same on every run) to let peers resume.
	ResumeSecret []byte
	// ComplaintWindow and ComplaintLimit: this many distinct children
	// reporting corrupt data from one parent within the window demote it
	// to a leaf in every tree. Defaults 30 s and 2.
	ComplaintWindow time.Duration
	ComplaintLimit  int
	// OutboundQueue is how many messages may wait for one client before the
	// tracker gives up on it as too slow. Default 1024.
	OutboundQueue int
	// Logger receives the tracker's logs. Nil: discard.
	Logger *slog.Logger
	// Registerer receives the tracker's Prometheus metrics. Nil: a registry
	// of the server's own, served at /metrics.
	Registerer prometheus.Registerer
	// Gatherer serves /metrics when Registerer is set.
	Gatherer prometheus.Gatherer
}

func (c Config) withDefaults() Config {
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 2 * time.Second
	}
	if c.HeartbeatMisses == 0 {
		c.HeartbeatMisses = 3
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

// Validate reports the first bad field by name.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.PublishToken == "":
		return fmt.Errorf("tracker: PublishToken is required (origins prove themselves with it)")
	case c.HeartbeatInterval < 10*time.Millisecond:
		return fmt.Errorf("tracker: HeartbeatInterval must be ≥ 10ms, got %v", c.HeartbeatInterval)
	case c.HeartbeatMisses < 1:
		return fmt.Errorf("tracker: HeartbeatMisses must be ≥ 1, got %d", c.HeartbeatMisses)
	case c.MaxMessageBytes < 1024:
		return fmt.Errorf("tracker: MaxMessageBytes must be ≥ 1024, got %d", c.MaxMessageBytes)
	case c.MaxPeersPerChannel < 1:
		return fmt.Errorf("tracker: MaxPeersPerChannel must be ≥ 1, got %d", c.MaxPeersPerChannel)
	case c.MaxChannels < 1:
		return fmt.Errorf("tracker: MaxChannels must be ≥ 1, got %d", c.MaxChannels)
	case c.JoinsPerIP < 0 || c.JoinBurst < 1:
		return fmt.Errorf("tracker: JoinsPerIP must be ≥ 0 and JoinBurst ≥ 1, got %v and %d", c.JoinsPerIP, c.JoinBurst)
	case c.RestoreWindow < 0:
		return fmt.Errorf("tracker: RestoreWindow must be ≥ 0, got %v", c.RestoreWindow)
	case c.ComplaintLimit < 1:
		return fmt.Errorf("tracker: ComplaintLimit must be ≥ 1, got %d", c.ComplaintLimit)
	case c.OutboundQueue < 16:
		return fmt.Errorf("tracker: OutboundQueue must be ≥ 16, got %d", c.OutboundQueue)
	case c.Registerer != nil && c.Gatherer == nil:
		return fmt.Errorf("tracker: Gatherer is required with Registerer, to serve /metrics")
	}
	if err := c.Forest.Validate(); err != nil {
		return fmt.Errorf("tracker: Forest: %w", err)
	}
	return nil
}
