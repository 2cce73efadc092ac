package tracker

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/coopcast/coopcast/internal/forest"
)

// client is one WebSocket connection: an origin or a peer.
type client struct {
	srv    *Server
	conn   *websocket.Conn
	ip     string
	authed bool // presented the publish token on upgrade
	out    chan []byte
	ctx    context.Context
	cancel context.CancelFunc

	lastSeen atomic.Int64 // unix nanoseconds of the last message

	// Set once, by the read goroutine, before the client is visible in a
	// channel; read-only afterwards.
	ch       *channel
	id       forest.PeerID
	isOrigin bool
	kind     forest.Kind

	closeMu sync.Mutex // guards reason
	reason  string     // why the tracker dropped it, sent in the close frame
}

func (c *client) touch() { c.lastSeen.Store(time.Now().UnixNano()) }

func (c *client) idle(now time.Time) time.Duration {
	return now.Sub(time.Unix(0, c.lastSeen.Load()))
}

// send queues m without blocking. A client whose queue is full is too
// slow to keep up with its assignments: it is dropped, and the forest
// repairs around it, rather than stalling everyone else.
func (c *client) send(m Message) {
	b, err := json.Marshal(m)
	if err != nil {
		c.srv.log.Error("encode message", "type", m.Type, "err", err)
		return
	}
	select {
	case c.out <- b:
	default:
		c.srv.metrics.rejected.WithLabelValues(codeTooSlow).Inc()
		c.kill("too slow: outbound queue full")
	}
}

func (c *client) sendError(code, msg string) {
	c.srv.metrics.rejected.WithLabelValues(code).Inc()
	c.send(Message{Type: TypeError, Code: code, Error: msg})
}

// kill ends the connection; the read loop then removes the client.
func (c *client) kill(reason string) {
	c.closeMu.Lock()
	if c.reason == "" {
		c.reason = reason
	}
	c.closeMu.Unlock()
	c.cancel()
}

func (c *client) closeReason() string {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	return c.reason
}

// writeLoop is the only writer to the connection. It ends with the
// client's context.
func (c *client) writeLoop() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case b := <-c.out:
			ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
			err := c.conn.Write(ctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				c.kill("write failed")
				return
			}
		}
	}
}
