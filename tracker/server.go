package tracker

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/coopcast/coopcast/internal/forest"
	"github.com/coopcast/coopcast/internal/proto"
	"github.com/coopcast/coopcast/webclient"
)

// Server is a tracker. Create it with New.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	router  *gin.Engine
	secret  []byte
	limits  *ipLimits
	bad     *badLog

	ctx       context.Context // ends on Close, after the grace period
	cancel    context.CancelFunc
	wg        sync.WaitGroup // connection handlers
	closeOnce sync.Once

	mu       sync.Mutex // guards the fields below
	channels map[string]*channel
	conns    map[*client]struct{}
	closed   bool
	// open counts the connections that MaxConns and MaxConnsPerIP bound
	// (all but origins'), from before the handshake to the session's end;
	// perIP the same by address, without zero entries.
	open  int
	perIP map[string]int
}

// closeGrace is how long Close lets clients take their close frames
// before it cuts the remaining connections.
const closeGrace = 2 * time.Second

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
	if len(secret) == 0 && cfg.StateDir != "" {
		var err error
		if secret, err = loadOrCreateSecret(cfg.StateDir, log); err != nil {
			return nil, fmt.Errorf("tracker: resume secret: %w", err)
		}
	}
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
		bad:      newBadLog(log, time.Now()),
		ctx:      ctx,
		cancel:   cancel,
		channels: make(map[string]*channel),
		conns:    make(map[*client]struct{}),
		perIP:    make(map[string]int),
	}
	gin.SetMode(gin.ReleaseMode) // no route listing or debug warnings on stdout
	r := gin.New()
	r.Use(gin.CustomRecoveryWithWriter(io.Discard, func(c *gin.Context, err any) {
		s.log.Error("panic in HTTP handler", "path", c.Request.URL.Path, "err", err, "stack", string(debug.Stack()))
		c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"error": "internal error"})
	}))
	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(gath, promhttp.HandlerOpts{})))
	r.GET("/ws", func(c *gin.Context) { s.serveWS(c.Writer, c.Request) })
	api := r.Group("/api/v1")
	api.GET("/channels", s.listChannels)
	api.GET("/channels/:id/stats", s.channelStats)
	api.GET("/channels/:id/forest", s.channelForest)
	// The browser peer and the dashboard: anyone can join with no install.
	web := gin.WrapH(webclient.Handler())
	r.GET("/", web)
	r.GET("/dashboard", web)
	r.GET("/static/*file", web)
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

// Close refuses new connections, closes every WebSocket with "going
// away" (cutting those that do not finish within a grace period), waits
// for every connection's goroutines, and makes Run return. It is safe to
// call more than once, and concurrently.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		conns := make([]*client, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		for _, c := range conns {
			c.kill(websocket.StatusGoingAway, "tracker shutting down")
		}
		done := make(chan struct{})
		go func() { s.wg.Wait(); close(done) }()
		t := time.NewTimer(closeGrace)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
		}
		s.cancel() // cuts whatever is left; done follows
		<-done
	})
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
			if ch.retire() {
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
	s.bad.flush(now)
}

func (s *Server) channel(id string) *channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.channels[id]
}

// smallBuffers hands the WebSocket library 1 KiB read and write buffers
// instead of net/http's 4 KiB each: most tracker messages are far
// smaller, larger reads and writes bypass the buffers anyway, and an idle
// socket then holds 6 KiB less.
type smallBuffers struct{ http.ResponseWriter }

const wsBufferSize = 1 << 10

func (w smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	br := brw.Reader
	if br.Buffered() == 0 {
		// Else a client sent before the 101 arrived: those bytes stay in
		// net/http's reader, where the library looks for them.
		br = bufio.NewReaderSize(conn, wsBufferSize)
	}
	return conn, bufio.NewReadWriter(br, bufio.NewWriterSize(conn, wsBufferSize)), nil
}

// WriteHeaderNow is gin's: the library calls it to send the 101 before
// hijacking.
func (w smallBuffers) WriteHeaderNow() {
	if g, ok := w.ResponseWriter.(interface{ WriteHeaderNow() }); ok {
		g.WriteHeaderNow()
	}
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
		s.metrics.rejected.WithLabelValues(reasonJoinRate).Inc()
		s.log.Warn("join rate limit", "ip", ip)
		http.Error(w, "too many connections from your address; slow down and retry in a few seconds", http.StatusTooManyRequests)
		return
	}
	authed := false
	if h := r.Header.Get("Authorization"); h != "" || r.URL.Query().Get("role") == "origin" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.PublishToken)) != 1 {
			s.metrics.rejected.WithLabelValues(string(proto.CodeUnauthorized)).Inc()
			s.log.Warn("bad publish token", "ip", ip)
			http.Error(w, "missing or wrong publish token: send Authorization: Bearer <token>", http.StatusUnauthorized)
			return
		}
		authed = true
	}
	if status, msg := s.admit(ip, authed); status != 0 {
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "10")
		}
		http.Error(w, msg, status)
		return
	}
	conn, err := websocket.Accept(smallBuffers{w}, r, nil)
	if err != nil {
		s.log.Debug("websocket accept", "ip", ip, "err", err)
		s.leave(ip, authed)
		return
	}
	// The session runs on a goroutine of its own so that this handler
	// returns and net/http lets go of the request, its headers and the
	// handler's deep stack: an idle socket holds only what its session
	// needs.
	go s.session(conn, ip, authed)
}

// session serves one WebSocket until it closes. It holds s.wg and the
// connection's place under the caps, given by admit.
func (s *Server) session(conn *websocket.Conn, ip string, authed bool) {
	defer s.leave(ip, authed)
	conn.SetReadLimit(s.cfg.MaxMessageBytes)
	c := &client{srv: s, conn: conn, ip: ip, authed: authed, dying: make(chan struct{}), wdone: make(chan struct{}),
		out: outq{limit: min(preJoinQueue, s.cfg.OutboundQueue), ready: make(chan struct{}, 1)}}
	c.ctx, c.cancel = context.WithCancel(s.ctx)
	c.wctx, c.wcancel = context.WithCancel(c.ctx)
	defer c.cancel()
	if !authed {
		c.limiter = rate.NewLimiter(rate.Limit(s.cfg.MessagesPerSecond), s.cfg.MessageBurst)
	}
	c.touch()
	if !s.track(c) {
		conn.Close(websocket.StatusGoingAway, "tracker shutting down")
		return
	}
	defer s.untrack(c)
	s.metrics.connected.Inc()
	defer s.metrics.connected.Dec()
	noJoin := time.AfterFunc(s.cfg.JoinTimeout, func() {
		if !c.joined.Load() {
			s.metrics.rejected.WithLabelValues(reasonNoJoin).Inc()
			s.log.Debug("no join or publish in time; closing", "ip", ip, "timeout", s.cfg.JoinTimeout)
			c.kill(websocket.StatusPolicyViolation, fmt.Sprintf("no join or publish within %v: send join first", s.cfg.JoinTimeout))
		}
	})
	defer noJoin.Stop()

	code, reason := s.readLoop(c)
	if c.ch != nil {
		c.ch.remove(c)
	}
	c.kill(code, reason) // no-op if the tracker killed it first; starts the writer if need be
	<-c.wdone
}

// admit counts a new connection against the caps. It returns 0 if the
// connection may go on, holding s.wg and, unless authed, a place that
// leave gives back; else the HTTP status and message to refuse it with.
func (s *Server) admit(ip string, authed bool) (status int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return http.StatusServiceUnavailable, "tracker shutting down"
	case authed:
	case s.open >= s.cfg.MaxConns:
		s.metrics.rejected.WithLabelValues(reasonConns).Inc()
		s.log.Debug("connection cap", "ip", ip, "open", s.open)
		return http.StatusServiceUnavailable, fmt.Sprintf("the tracker is at its limit of %d connections; retry later", s.cfg.MaxConns)
	case s.perIP[ip] >= s.cfg.MaxConnsPerIP:
		s.metrics.rejected.WithLabelValues(reasonConnsIP).Inc()
		s.log.Debug("per-address connection cap", "ip", ip, "open", s.perIP[ip])
		return http.StatusTooManyRequests, fmt.Sprintf("too many open connections from your address (at most %d at once); close some before opening more", s.cfg.MaxConnsPerIP)
	default:
		s.open++
		s.perIP[ip]++
	}
	s.wg.Add(1)
	return 0, ""
}

// leave gives back what admit took.
func (s *Server) leave(ip string, authed bool) {
	defer s.wg.Done()
	if authed {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open--
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
}

// track registers c so that Close can reach it; false once closed.
func (s *Server) track(c *client) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

// readLoop reads messages until the client leaves or fails, and returns the
// close status to send.
func (s *Server) readLoop(c *client) (websocket.StatusCode, string) {
	for {
		typ, b, err := c.conn.Read(c.ctx)
		if err != nil {
			if errors.Is(err, websocket.ErrMessageTooBig) {
				// The library has sent the close frame (1009) already.
				s.metrics.rejected.WithLabelValues(reasonTooLarge).Inc()
				s.log.Warn("message too large; closing", "ip", c.ip, "peer", c.id, "limit", s.cfg.MaxMessageBytes)
				return websocket.StatusMessageTooBig, fmt.Sprintf("message larger than %d bytes", s.cfg.MaxMessageBytes)
			}
			return websocket.StatusNormalClosure, ""
		}
		c.touch()
		if !c.allow() {
			if !c.throttled {
				c.throttled = true
				s.log.Warn("client message rate limit", "ip", c.ip, "peer", c.id)
				c.sendError(proto.CodeRateLimited, fmt.Sprintf("more than %v messages a second: messages are being dropped; slow down", s.cfg.MessagesPerSecond))
			} else {
				s.metrics.rejected.WithLabelValues(string(proto.CodeRateLimited)).Inc()
			}
			continue
		}
		if typ != websocket.MessageText {
			s.bad.drop(c.ip, uint64(c.id), errBinary)
			c.sendError(proto.CodeBadMessage, "send JSON text messages, not binary")
			continue
		}
		m, err := proto.Decode(b)
		if err != nil {
			code := proto.CodeBadMessage
			if !errors.Is(err, proto.ErrBadMessage) {
				code = proto.CodeUnknownType
			}
			s.bad.drop(c.ip, uint64(c.id), err)
			c.sendError(code, err.Error())
			continue
		}
		s.metrics.messages.WithLabelValues(m.Type).Inc()
		if fatal := s.safeHandle(c, m); fatal != "" {
			return websocket.StatusPolicyViolation, fatal
		}
		if c.ch != nil && !c.joined.Load() {
			c.joined.Store(true)
		}
		if m.Type == proto.TypeLeave {
			return websocket.StatusNormalClosure, "bye"
		}
	}
}

// safeHandle is handle with a net under it: a bug that a client's message
// trips costs that client its connection, never the tracker.
func (s *Server) safeHandle(c *client, m proto.Message) (fatal string) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic handling a message", "type", m.Type, "peer", c.id, "ip", c.ip, "err", r, "stack", string(debug.Stack()))
			fatal = c.fatalError(proto.CodeInternal, "the tracker failed on your message; reconnect")
		}
	}()
	return s.handle(c, m)
}

// handle dispatches one message. A non-empty result closes the connection
// with that reason.
func (s *Server) handle(c *client, m proto.Message) string {
	if c.ch == nil {
		switch m.Type {
		case proto.TypePublish, proto.TypeJoin:
			// Joining brings assignments (an origin's may be many): the
			// queue gets its full size. A join that fails closes.
			c.out.setLimit(s.cfg.OutboundQueue)
		}
		switch m.Type {
		case proto.TypePublish:
			return s.publish(c, m)
		case proto.TypeJoin:
			return s.join(c, m)
		case proto.TypeHeartbeat, proto.TypeLeave:
			return ""
		}
		c.sendError(proto.CodeState, fmt.Sprintf("%q before join or publish: send join first", m.Type))
		return ""
	}
	switch m.Type {
	case proto.TypePublish, proto.TypeJoin:
		c.sendError(proto.CodeState, "already joined: one join per connection")
	case proto.TypeHeartbeat:
		if m.Stats != nil {
			c.ch.report(c, *m.Stats)
		}
	case proto.TypeSignal:
		c.ch.signal(c, m)
	case proto.TypeComplaint:
		c.ch.complain(c, m)
	case proto.TypeEdgeOpen:
		c.ch.edgeOpen(c, m)
	case proto.TypeReport:
		c.ch.report(c, *m.Stats)
	case proto.TypeLeave:
		c.ch.remove(c)
	}
	return ""
}

func (s *Server) publish(c *client, m proto.Message) string {
	if !c.authed {
		return c.fatalError(proto.CodeUnauthorized, "publishing needs the publish token: connect with Authorization: Bearer <token>")
	}
	key, err := base64.StdEncoding.DecodeString(m.PublicKey)
	if err != nil || len(key) != 32 {
		return c.fatalError(proto.CodeBadJoin, "public_key must be a base64 Ed25519 public key (32 bytes)")
	}
	trees := m.Trees
	if trees == 0 {
		trees = s.cfg.Forest.Trees
	}
	k := m.K
	if k == 0 {
		k = min(s.cfg.K, trees)
	}
	switch {
	case trees < 1 || trees > maxTrees:
		return c.fatalError(proto.CodeBadJoin, fmt.Sprintf("trees must be in [1, %d], got %d", maxTrees, trees))
	case k < 1 || k > trees:
		return c.fatalError(proto.CodeBadJoin, fmt.Sprintf("k must be in [1, trees=%d], got %d", trees, k))
	case m.Bitrate <= 0 || m.Bitrate > maxBitrate:
		return c.fatalError(proto.CodeBadJoin, fmt.Sprintf("bitrate must be in (0, %d] bits/s, got %d", maxBitrate, m.Bitrate))
	}
	// A channel being retired (empty for a minute) refuses attachment;
	// the next lookup finds it gone and creates a fresh one.
	for {
		s.mu.Lock()
		ch := s.channels[m.Channel]
		if ch == nil {
			if len(s.channels) >= s.cfg.MaxChannels {
				s.mu.Unlock()
				return c.fatalError(proto.CodeChannelFull, fmt.Sprintf("tracker holds its maximum of %d channels", s.cfg.MaxChannels))
			}
			ch, err = newChannel(s, m.Channel, trees, k, m.Bitrate, m.PublicKey, m.FallbackURL)
			if err != nil {
				s.mu.Unlock()
				return c.fatalError(proto.CodeBadJoin, err.Error())
			}
			s.channels[m.Channel] = ch
		}
		s.mu.Unlock()
		if fatal, ok := ch.attachOrigin(c, m); ok {
			return fatal
		}
	}
}

func (s *Server) join(c *client, m proto.Message) string {
	for {
		ch := s.channel(m.Channel)
		if ch == nil {
			return c.fatalError(proto.CodeNoChannel, fmt.Sprintf("no channel %q on this tracker: is its origin publishing? retry in a few seconds", m.Channel))
		}
		if fatal, ok := ch.join(c, m); ok {
			return fatal
		}
	}
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
