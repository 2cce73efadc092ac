package tracker

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/coopcast/coopcast/internal/forest"
	"github.com/coopcast/coopcast/internal/proto"
)

// client is one WebSocket connection: an origin or a peer.
//
// Two goroutines serve it, both joined by Server.session: the read loop
// (the session's own goroutine), which decodes and dispatches messages,
// and writeLoop, the only writer to the connection, started when there is
// first something to write. Everything else talks to the client through
// send (non-blocking) and kill.
type client struct {
	srv     *Server
	conn    *websocket.Conn
	ip      string
	authed  bool // presented the publish token on upgrade
	out     outq
	limiter *rate.Limiter // messages from this client; nil for origins

	// ctx is the connection's lifetime: it ends when session is done or the
	// server stops, and ending it closes the socket. wctx bounds writes and
	// is cancelled by abort, which cuts a blocked write short.
	ctx     context.Context
	cancel  context.CancelFunc
	wctx    context.Context
	wcancel context.CancelFunc
	dying   chan struct{} // closed by kill: writeLoop flushes, closes, ends
	// writeLoop starts with the first message queued, or the kill: a
	// socket that is never sent anything has no writer goroutine. wdone
	// is closed when it ends.
	writer sync.Once
	wdone  chan struct{}

	lastSeen  atomic.Int64 // unix nanoseconds of the last message
	probing   atomic.Bool  // a ping to it is under way (channel.probeLocked)
	joined    atomic.Bool  // has joined or published: JoinTimeout no longer applies
	throttled bool         // read loop only: told "rate-limited" already

	// Set under the channel's mu when the client joins or publishes, and
	// then read-only, except that the read loop may read them without the
	// lock once set (it is the one that set them).
	ch       *channel
	id       forest.PeerID
	isOrigin bool
	kind     forest.Kind

	// kids is what this connection was told it feeds: every assign-child
	// not yet undone by a remove-child. Guarded by ch.mu. A newer
	// connection of the same peer inherits it (see channel.takeOver).
	kids []edge
	// ticketAt is when this peer was last sent a fallback ticket; the
	// channel's sweep sends a fresh one at half its life. Guarded by ch.mu.
	ticketAt time.Time

	closeMu sync.Mutex // guards the fields below
	killed  bool
	aborted bool
	code    websocket.StatusCode
	reason  string
}

// edge is one child in one tree.
type edge struct {
	tree  int
	child forest.PeerID
}

// writeTimeout bounds one write to a client; flushTimeout the writes of
// what is still queued when the client is being closed.
const (
	writeTimeout = 10 * time.Second
	flushTimeout = 2 * time.Second
)

func (c *client) touch() { c.lastSeen.Store(time.Now().UnixNano()) }

func (c *client) idle(now time.Time) time.Duration {
	return now.Sub(time.Unix(0, c.lastSeen.Load()))
}

// send queues m without blocking. A client whose queue is full is too
// slow to keep up with its assignments: it is cut off at once, and the
// forest repairs around it, rather than stalling everyone else.
func (c *client) send(m proto.Message) {
	b, err := json.Marshal(m)
	if err != nil {
		c.srv.log.Error("encode message", "type", m.Type, "err", err)
		return
	}
	if c.out.push(b) {
		c.startWriter()
	} else {
		if c.abort("too slow: outbound queue full") {
			c.srv.metrics.rejected.WithLabelValues(string(proto.CodeTooSlow)).Inc()
			c.srv.log.Warn("client too slow; disconnecting", "peer", c.id, "ip", c.ip, "queue", c.out.cap())
		}
	}
}

func (c *client) sendError(code proto.Code, msg string) {
	c.srv.metrics.rejected.WithLabelValues(string(code)).Inc()
	c.send(proto.Message{Type: proto.TypeError, Code: code, Error: msg})
}

// fatalError queues an error message and returns its text, which the
// caller hands back to the read loop as the close reason: the message is
// flushed before the close frame.
func (c *client) fatalError(code proto.Code, msg string) string {
	c.sendError(code, msg)
	return msg
}

// kill asks writeLoop to flush what is queued and close the connection
// with code and reason. It never blocks; the first call's reason wins. The
// read loop then ends and removes the client from its channel.
func (c *client) kill(code websocket.StatusCode, reason string) {
	defer c.startWriter()
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.killed {
		return
	}
	c.killed, c.code, c.reason = true, code, reason
	close(c.dying)
}

// abort is kill without the flush: for a client that does not read, whose
// socket is full. It reports whether this call did it.
func (c *client) abort(reason string) bool {
	defer c.startWriter()
	c.closeMu.Lock()
	first := !c.aborted
	c.aborted = true
	if !c.killed {
		c.killed, c.code, c.reason = true, websocket.StatusPolicyViolation, reason
		close(c.dying)
	}
	c.closeMu.Unlock()
	c.wcancel() // a write blocked on the full socket ends now
	return first
}

func (c *client) closeState() (code websocket.StatusCode, reason string, aborted bool) {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	return c.code, c.reason, c.aborted
}

func (c *client) write(b []byte, d time.Duration) error {
	ctx, cancel := context.WithTimeout(c.wctx, d)
	defer cancel()
	return c.conn.Write(ctx, websocket.MessageText, b)
}

func (c *client) startWriter() {
	c.writer.Do(func() {
		go func() {
			defer close(c.wdone)
			c.writeLoop()
		}()
	})
}

// writeLoop is the only writer to the connection. It ends when the client
// is killed (after flushing and closing) or a write fails.
func (c *client) writeLoop() {
	for {
		select {
		case <-c.dying:
			c.finish()
			return
		case <-c.out.ready:
			for b, ok := c.out.pop(); ok; b, ok = c.out.pop() {
				if err := c.write(b, writeTimeout); err != nil {
					c.abort("write failed")
					c.conn.CloseNow()
					return
				}
			}
		}
	}
}

// finish flushes what is queued (an error that explains the close, a
// goodbye) and closes the connection with the kill's code and reason. The
// close handshake is bounded by the websocket library (5 s each way); it
// also ends the read loop's pending read.
func (c *client) finish() {
	code, reason, aborted := c.closeState()
	if aborted {
		c.conn.CloseNow()
		return
	}
	for b, ok := c.out.pop(); ok; b, ok = c.out.pop() {
		if err := c.write(b, flushTimeout); err != nil {
			c.conn.CloseNow()
			return
		}
	}
	c.conn.Close(code, closeReason(reason))
}

// closeReason fits a reason into a close frame (at most 123 bytes of
// valid UTF-8).
func closeReason(s string) string {
	const max = 123
	if len(s) <= max {
		return s
	}
	s = s[:max]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// allow applies the client's message rate limit.
func (c *client) allow() bool {
	if c.limiter == nil || c.limiter.Allow() {
		c.throttled = false
		return true
	}
	return false
}

// told records what the connection has been told it feeds. Under ch.mu.
func (c *client) told(m proto.Message) {
	switch m.Type {
	case proto.TypeAssignChild:
		e := edge{*m.Tree, forest.PeerID(m.Child)}
		for _, k := range c.kids {
			if k == e {
				return
			}
		}
		c.kids = append(c.kids, e)
	case proto.TypeRemoveChild:
		e := edge{*m.Tree, forest.PeerID(m.Child)}
		for i, k := range c.kids {
			if k == e {
				c.kids[i] = c.kids[len(c.kids)-1]
				c.kids = c.kids[:len(c.kids)-1]
				return
			}
		}
	}
}

// outq is a client's outbound queue, filled by send and drained by
// writeLoop. It holds memory only for what waits in it, so the thousands
// of idle sockets a tracker may hold cost nothing here, and it grows up
// to limit: a queue that reaches it belongs to a client that does not
// read.
type outq struct {
	mu    sync.Mutex // guards msgs and limit
	msgs  [][]byte
	limit int
	ready chan struct{} // 1-buffered: set when something is queued
}

// preJoinQueue bounds the queue of a client that has not yet sent its
// join or publish: until then it is only ever sent errors.
const preJoinQueue = 16

// push queues b; false if the queue is full.
func (q *outq) push(b []byte) bool {
	q.mu.Lock()
	if len(q.msgs) >= q.limit {
		q.mu.Unlock()
		return false
	}
	q.msgs = append(q.msgs, b)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// pop takes the oldest queued message.
func (q *outq) pop() ([]byte, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.msgs) == 0 {
		return nil, false
	}
	b := q.msgs[0]
	q.msgs[0] = nil
	q.msgs = q.msgs[1:]
	if len(q.msgs) == 0 {
		q.msgs = nil // give the backing array back
	}
	return b, true
}

func (q *outq) setLimit(n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.limit = n
}

func (q *outq) cap() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.limit
}
