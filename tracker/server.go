package tracker

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/coopcast/coopcast/internal/forest"
)

// Server is a tracker. Create it with New.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	router  *gin.Engine
	secret  []byte
	limits  *ipLimits

	ctx    context.Context // ends on Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // connection handlers

	mu       sync.Mutex // guards channels, closed
	channels map[string]*channel
	closed   bool
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg, gath := cfg.Registerer, cfg.Gatherer
	if reg == nil {
		r := prometheus.NewRegistry()
		reg, gath = r, r
	}
	secret := cfg.ResumeSecret
	if len(secret) == 0 {
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, fmt.Errorf("tracker: resume secret: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:      cfg,
		log:      log,
		metrics:  newMetrics(reg),
		secret:   secret,
		limits:   newIPLimits(rate.Limit(cfg.JoinsPerIP), cfg.JoinBurst),
		ctx:      ctx,
		cancel:   cancel,
		channels: make(map[string]*channel),
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())
	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(gath, promhttp.HandlerOpts{})))
	r.GET("/ws", func(c *gin.Context) { s.serveWS(c.Writer, c.Request) })
	api := r.Group("/api/v1")
	api.GET("/channels", s.listChannels)
	api.GET("/channels/:id/stats", s.channelStats)
	api.GET("/channels/:id/forest", s.channelForest)
	s.router = r
	return s, nil
}

// Handler returns the tracker's HTTP handler.
func (s *Server) Handler() http.Handler { return s.router }

// Router returns the gin engine, so that one process can serve more (the
// web client, an origin's fallback) on the tracker's address.
func (s *Server) Router() *gin.Engine { return s.router }

// Run does the tracker's periodic work — heartbeat checks, the end of
// restore windows, pruning — until ctx ends or the server is closed.
func (s *Server) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.HeartbeatInterval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.ctx.Done():
			return ErrClosed
		case now := <-t.C:
			s.sweep(now)
		}
	}
}

// Close drops every connection and waits for their handlers. It is safe to
// call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

func (s *Server) sweep(now time.Time) {
	s.mu.Lock()
	chans := make([]*channel, 0, len(s.channels))
	for _, ch := range s.channels {
		chans = append(chans, ch)
	}
	s.mu.Unlock()
	for _, ch := range chans {
		if ch.sweep(now) {
			s.mu.Lock()
			if ch.empty() {
				delete(s.channels, ch.id)
				s.metrics.peers.DeleteLabelValues(ch.id)
				s.metrics.fallback.DeleteLabelValues(ch.id)
				for i := 0; i < ch.trees; i++ {
					s.metrics.depth.DeleteLabelValues(ch.id, treeLabel(i))
				}
				s.log.Info("channel closed", "channel", ch.id)
			}
			s.mu.Unlock()
		}
	}
	s.limits.prune(now)
}

func (s *Server) channel(id string) *channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.channels[id]
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	ip := clientIP(r)
	if !s.limits.allow(ip, time.Now()) {
		s.metrics.rejected.WithLabelValues("rate-limited").Inc()
		s.log.Warn("join rate limit", "ip", ip)
		http.Error(w, "too many connections from your address; slow down and retry", http.StatusTooManyRequests)
		return
	}
	authed := false
	if h := r.Header.Get("Authorization"); h != "" || r.URL.Query().Get("role") == "origin" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.PublishToken)) != 1 {
			s.metrics.rejected.WithLabelValues(codeUnauthorized).Inc()
			s.log.Warn("bad publish token", "ip", ip)
			http.Error(w, "missing or wrong publish token: send Authorization: Bearer <token>", http.StatusUnauthorized)
			return
		}
		authed = true
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "tracker shutting down", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		s.log.Debug("websocket accept", "ip", ip, "err", err)
		return
	}
	conn.SetReadLimit(s.cfg.MaxMessageBytes)
	ctx, cancel := context.WithCancel(s.ctx)
	c := &client{srv: s, conn: conn, ip: ip, authed: authed, out: make(chan []byte, s.cfg.OutboundQueue), ctx: ctx, cancel: cancel}
	c.touch()
	s.metrics.connected.Inc()
	defer s.metrics.connected.Dec()

	done := make(chan struct{})
	go func() { defer close(done); c.writeLoop() }()
	status, reason := s.readLoop(c)
	if c.ch != nil {
		c.ch.remove(c)
	}
	cancel()
	<-done
	if r := c.closeReason(); r != "" && status == websocket.StatusNormalClosure {
		status, reason = websocket.StatusPolicyViolation, r
	}
	conn.Close(status, truncate(reason, 120))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// readLoop reads messages until the client leaves or fails, and returns the
// close status to send.
func (s *Server) readLoop(c *client) (websocket.StatusCode, string) {
	for {
		typ, b, err := c.conn.Read(c.ctx)
		if err != nil {
			switch {
			case websocket.CloseStatus(err) != -1:
				return websocket.StatusNormalClosure, ""
			case strings.Contains(err.Error(), "read limited"):
				s.metrics.rejected.WithLabelValues("too-large").Inc()
				s.log.Warn("message too large", "ip", c.ip, "peer", c.id, "limit", s.cfg.MaxMessageBytes)
				return websocket.StatusMessageTooBig, fmt.Sprintf("message larger than %d bytes", s.cfg.MaxMessageBytes)
			default:
				return websocket.StatusNormalClosure, ""
			}
		}
		c.touch()
		if typ != websocket.MessageText {
			c.sendError(codeBadMessage, "send JSON text messages, not binary")
			continue
		}
		m, err := decodeMessage(b)
		if err != nil {
			code := codeBadMessage
			if !errors.Is(err, errBadMessage) {
				code = codeUnknownType
			}
			s.log.Info("bad message", "ip", c.ip, "peer", c.id, "err", err)
			c.sendError(code, err.Error())
			continue
		}
		s.metrics.messages.WithLabelValues(m.Type).Inc()
		if fatal := s.handle(c, m); fatal != "" {
			return websocket.StatusPolicyViolation, fatal
		}
		if m.Type == TypeLeave {
			return websocket.StatusNormalClosure, "bye"
		}
	}
}

// fatalError writes an error message synchronously (the writer may be
// cancelled next) and returns its text as the close reason.
func (c *client) fatalError(code, msg string) string {
	c.srv.metrics.rejected.WithLabelValues(code).Inc()
	b, _ := json.Marshal(Message{Type: TypeError, Code: code, Error: msg})
	ctx, cancel := context.WithTimeout(c.ctx, 2*time.Second)
	defer cancel()
	_ = c.conn.Write(ctx, websocket.MessageText, b)
	return msg
}

// handle dispatches one message. A non-empty result closes the connection
// with that reason.
func (s *Server) handle(c *client, m Message) string {
	if c.ch == nil {
		switch m.Type {
		case TypePublish:
			return s.publish(c, m)
		case TypeJoin:
			return s.join(c, m)
		case TypeHeartbeat, TypeLeave:
			return ""
		}
		c.sendError(codeState, fmt.Sprintf("%q before join or publish: send join first", m.Type))
		return ""
	}
	switch m.Type {
	case TypePublish, TypeJoin:
		c.sendError(codeState, "already joined: one join per connection")
	case TypeHeartbeat:
	case TypeSignal:
		c.ch.signal(c, m)
	case TypeComplaint:
		c.ch.complain(c, m)
	case TypeReport:
		c.ch.report(c, *m.Stats)
	case TypeLeave:
		c.ch.remove(c)
	}
	return ""
}

func (s *Server) publish(c *client, m Message) string {
	if !c.authed {
		return c.fatalError(codeUnauthorized, "publishing needs the publish token: connect with Authorization: Bearer <token>")
	}
	key, err := base64.StdEncoding.DecodeString(m.PublicKey)
	if err != nil || len(key) != 32 {
		return c.fatalError(codeBadJoin, "public_key must be a base64 Ed25519 public key (32 bytes)")
	}
	trees := m.Trees
	if trees == 0 {
		trees = forestTrees(s.cfg.Forest)
	}
	k := m.K
	if k == 0 {
		k = min(3, trees)
	}
	switch {
	case trees < 1 || trees > 32:
		return c.fatalError(codeBadJoin, fmt.Sprintf("trees must be in [1, 32], got %d", trees))
	case k < 1 || k > trees:
		return c.fatalError(codeBadJoin, fmt.Sprintf("k must be in [1, trees=%d], got %d", trees, k))
	case m.Bitrate <= 0 || m.Bitrate > 1_000_000_000:
		return c.fatalError(codeBadJoin, fmt.Sprintf("bitrate must be in (0, 1e9] bits/s, got %d", m.Bitrate))
	case len(m.Channel) > 128:
		return c.fatalError(codeBadJoin, "channel id longer than 128 bytes")
	}
	s.mu.Lock()
	ch := s.channels[m.Channel]
	if ch == nil {
		if len(s.channels) >= s.cfg.MaxChannels {
			s.mu.Unlock()
			return c.fatalError(codeChannelFull, fmt.Sprintf("tracker holds its maximum of %d channels", s.cfg.MaxChannels))
		}
		ch, err = newChannel(s, m.Channel, trees, k, m.Bitrate, m.PublicKey, m.FallbackURL)
		if err != nil {
			s.mu.Unlock()
			return c.fatalError(codeBadJoin, err.Error())
		}
		s.channels[m.Channel] = ch
	}
	s.mu.Unlock()
	return ch.attachOrigin(c, m)
}

func forestTrees(cfg forest.Config) int {
	if cfg.Trees == 0 {
		return 4
	}
	return cfg.Trees
}

func (s *Server) join(c *client, m Message) string {
	ch := s.channel(m.Channel)
	if ch == nil {
		return c.fatalError(codeNoChannel, fmt.Sprintf("no channel %q on this tracker: is its origin publishing? retry in a few seconds", m.Channel))
	}
	return ch.join(c, m)
}

// token returns the resume token for peer id in channel.
func (s *Server) token(channel string, id forest.PeerID) string {
	mac := hmac.New(sha256.New, s.secret)
	mac.Write([]byte(channel))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(id))
	mac.Write(b[:])
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:18])
}

func (s *Server) validToken(channel string, id forest.PeerID, tok string) bool {
	return hmac.Equal([]byte(s.token(channel, id)), []byte(tok))
}

// newPeerID returns a random id below 2^53 (exact in JSON numbers and
// JavaScript), never the origin's 0.
func newPeerID() forest.PeerID {
	var b [8]byte
	for {
		_, _ = rand.Read(b[:])
		id := binary.BigEndian.Uint64(b[:]) & (1<<53 - 1)
		if id != 0 {
			return forest.PeerID(id)
		}
	}
}
