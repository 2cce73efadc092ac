package rtc

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/transport/v5"
	"github.com/pion/webrtc/v4"
)

// Config configures an Endpoint. Zero values are defaults.
type Config struct {
	// ICEInterfaces limits candidate gathering to these network interfaces
	// (e.g. "lo", "eth0"). Naming "lo" also turns on loopback candidates,
	// which pion leaves out by default. Empty: every interface but loopback.
	ICEInterfaces []string
	// ICEServers are STUN/TURN servers. Default none.
	ICEServers []webrtc.ICEServer
	// PacketLifetime bounds retransmission on the data channel: a message
	// not delivered within it is abandoned, since it would arrive after
	// its playout deadline anyway. Default 1 s.
	PacketLifetime time.Duration
	// Net replaces the host network, e.g. with pion's vnet in tests.
	Net transport.Net
	// Logger receives link events. Nil: discard.
	Logger *slog.Logger
}

// Validate reports a bad field by name.
func (c Config) Validate() error {
	if c.PacketLifetime < 0 || c.PacketLifetime > time.Minute {
		return fmt.Errorf("rtc: PacketLifetime must be in [0, 1m], got %v", c.PacketLifetime)
	}
	for _, name := range c.ICEInterfaces {
		if name == "" {
			return errors.New("rtc: ICEInterfaces has an empty name")
		}
	}
	return nil
}

// Endpoint makes Links that share one configured pion API.
type Endpoint struct {
	api      *webrtc.API
	cfg      Config
	log      *slog.Logger
	lifetime uint16
}

// NewEndpoint configures pion's setting engine from cfg.
func NewEndpoint(cfg Config) (*Endpoint, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.PacketLifetime == 0 {
		cfg.PacketLifetime = time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var se webrtc.SettingEngine
	if len(cfg.ICEInterfaces) > 0 {
		names := slices.Clone(cfg.ICEInterfaces)
		se.SetInterfaceFilter(func(name string) bool { return slices.Contains(names, name) })
		if slices.Contains(names, "lo") {
			se.SetIncludeLoopbackCandidate(true)
		}
	}
	// mDNS names would need resolving on every peer; coopcast peers
	// exchange plain addresses through the tracker.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.To4() != nil })
	if cfg.Net != nil {
		se.SetNet(cfg.Net)
	}
	// A link that never connects (its answer was lost, the other side
	// went away) gives up after 10 s instead of pion's 30.
	se.SetICETimeouts(5*time.Second, 5*time.Second, 2*time.Second)
	se.LoggerFactory = quietLogs{}
	// Links carry data channels only: no codecs, and none of the RTP
	// interceptors pion registers by default (each would run its own
	// timers on every link).
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(&webrtc.MediaEngine{}),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
	return &Endpoint{
		api:      api,
		cfg:      cfg,
		log:      log,
		lifetime: uint16(min(cfg.PacketLifetime.Milliseconds(), 65535)),
	}, nil
}

// quietLogs keeps pion's own chatter out of coopcast's logs.
type quietLogs struct{}

func (quietLogs) NewLogger(string) logging.LeveledLogger {
	return logging.NewDefaultLeveledLoggerForScope("", logging.LogLevelDisabled, nil)
}

// Signal is one signaling message for a Link: a session description or a
// trickled ICE candidate.
type Signal struct {
	SDP       *webrtc.SessionDescription `json:"sdp,omitempty"`
	Candidate *webrtc.ICECandidateInit   `json:"candidate,omitempty"`
}

// Link is one PeerConnection to a neighbour with its data channel.
type Link struct {
	pc   *webrtc.PeerConnection
	log  *slog.Logger
	done chan struct{}

	mu        sync.Mutex // guards dc, onMessage, onOpen, onLow, lowWater, closed
	dc        *webrtc.DataChannel
	onMessage func([]byte)
	onOpen    func()
	onLow     func()
	lowWater  uint64
	closed    bool
	closeOnce sync.Once
}

const channelLabel = "coopcast"

func (e *Endpoint) newLink() (*Link, error) {
	pc, err := e.api.NewPeerConnection(webrtc.Configuration{ICEServers: e.cfg.ICEServers})
	if err != nil {
		return nil, fmt.Errorf("rtc: new peer connection: %w", err)
	}
	l := &Link{pc: pc, log: e.log, done: make(chan struct{})}
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed, webrtc.PeerConnectionStateDisconnected:
			l.shutdown()
		}
	})
	return l, nil
}

// Dial starts a link as the offering side. The offer, with its candidates,
// goes out through signal; pass the answer to HandleSignal.
func (e *Endpoint) Dial(signal func(Signal) error) (*Link, error) {
	l, err := e.newLink()
	if err != nil {
		return nil, err
	}
	ordered := false
	dc, err := l.pc.CreateDataChannel(channelLabel, &webrtc.DataChannelInit{Ordered: &ordered, MaxPacketLifeTime: &e.lifetime})
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("rtc: create data channel: %w", err)
	}
	l.attach(dc)
	offer, err := l.pc.CreateOffer(nil)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("rtc: create offer: %w", err)
	}
	if err := l.setLocalAndSend(offer, signal); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// Accept answers an offer received through the tracker. The answer goes
// out through signal.
func (e *Endpoint) Accept(offer Signal, signal func(Signal) error) (*Link, error) {
	if offer.SDP == nil || offer.SDP.Type != webrtc.SDPTypeOffer {
		return nil, ErrNotOffer
	}
	l, err := e.newLink()
	if err != nil {
		return nil, err
	}
	l.pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		if dc.Label() == channelLabel {
			l.attach(dc)
		}
	})
	if err := l.pc.SetRemoteDescription(*offer.SDP); err != nil {
		l.Close()
		return nil, fmt.Errorf("rtc: set offer: %w", err)
	}
	answer, err := l.pc.CreateAnswer(nil)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("rtc: create answer: %w", err)
	}
	if err := l.setLocalAndSend(answer, signal); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// setLocalAndSend gathers every candidate before signaling, so that one
// message each way sets a link up.
func (l *Link) setLocalAndSend(sd webrtc.SessionDescription, signal func(Signal) error) error {
	gathered := webrtc.GatheringCompletePromise(l.pc)
	if err := l.pc.SetLocalDescription(sd); err != nil {
		return fmt.Errorf("rtc: set local description: %w", err)
	}
	select {
	case <-gathered:
	case <-l.done:
		return ErrClosed
	case <-time.After(10 * time.Second):
		return ErrGatherTimeout
	}
	local := l.pc.LocalDescription()
	if err := signal(Signal{SDP: local}); err != nil {
		return fmt.Errorf("rtc: send %s: %w", local.Type, err)
	}
	return nil
}

// HandleSignal takes the remote side's answer or a trickled candidate.
func (l *Link) HandleSignal(s Signal) error {
	switch {
	case s.SDP != nil:
		if s.SDP.Type != webrtc.SDPTypeAnswer {
			return fmt.Errorf("rtc: expected an answer, got %s", s.SDP.Type)
		}
		if err := l.pc.SetRemoteDescription(*s.SDP); err != nil {
			return fmt.Errorf("rtc: set answer: %w", err)
		}
	case s.Candidate != nil:
		if err := l.pc.AddICECandidate(*s.Candidate); err != nil {
			return fmt.Errorf("rtc: add candidate: %w", err)
		}
	default:
		return ErrEmptySignal
	}
	return nil
}

func (l *Link) attach(dc *webrtc.DataChannel) {
	l.mu.Lock()
	l.dc = dc
	if l.onLow != nil {
		dc.SetBufferedAmountLowThreshold(l.lowWater)
		dc.OnBufferedAmountLow(l.onLow)
	}
	l.mu.Unlock()
	dc.OnOpen(func() {
		l.mu.Lock()
		fn := l.onOpen
		l.mu.Unlock()
		if fn != nil {
			fn()
		}
	})
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		l.mu.Lock()
		fn := l.onMessage
		l.mu.Unlock()
		if fn != nil {
			fn(m.Data)
		}
	})
	dc.OnClose(l.shutdown)
}

// OnMessage sets the function called with every message received. It runs
// on pion's read goroutine and must not block; b is valid only during the
// call.
func (l *Link) OnMessage(fn func(b []byte)) {
	l.mu.Lock()
	l.onMessage = fn
	l.mu.Unlock()
}

// OnBufferedLow sets the function called when the bytes queued on the data
// channel fall to threshold or below: the moment to send more.
func (l *Link) OnBufferedLow(threshold uint64, fn func()) {
	l.mu.Lock()
	l.onLow, l.lowWater = fn, threshold
	if l.dc != nil {
		l.dc.SetBufferedAmountLowThreshold(threshold)
		l.dc.OnBufferedAmountLow(fn)
	}
	l.mu.Unlock()
}

// OnOpen sets the function called once the data channel is open.
func (l *Link) OnOpen(fn func()) {
	l.mu.Lock()
	l.onOpen = fn
	open := l.dc != nil && l.dc.ReadyState() == webrtc.DataChannelStateOpen
	l.mu.Unlock()
	if open && fn != nil {
		fn()
	}
}

// Open reports whether the data channel is open.
func (l *Link) Open() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dc != nil && l.dc.ReadyState() == webrtc.DataChannelStateOpen
}

// Send queues one message without blocking. It fails when the channel is
// not open; callers watch Buffered to keep the queue bounded.
func (l *Link) Send(b []byte) error {
	l.mu.Lock()
	dc, closed := l.dc, l.closed
	l.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if dc == nil || dc.ReadyState() != webrtc.DataChannelStateOpen {
		return ErrNotOpen
	}
	return dc.Send(b)
}

// Buffered returns the bytes queued on the data channel and not yet sent.
func (l *Link) Buffered() uint64 {
	l.mu.Lock()
	dc := l.dc
	l.mu.Unlock()
	if dc == nil {
		return 0
	}
	return dc.BufferedAmount()
}

// Done is closed when the link has failed or been closed.
func (l *Link) Done() <-chan struct{} { return l.done }

func (l *Link) shutdown() {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		close(l.done)
	})
}

// Close tears the link down. It is safe to call more than once.
func (l *Link) Close() error {
	l.shutdown()
	return l.pc.Close()
}
