package tracker

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// A peer's WebSocket is upgraded at once (the 101 goes out with the
// library's own headers) but handed to the WebSocket library only when
// its first bytes arrive. Until then the socket costs the tracker its
// file descriptor, a few hundred bytes and one goroutine parked a few
// frames deep, waiting for the socket to become readable with the join
// deadline as its read deadline: no library connection, no buffers, no
// timer. The thousands of sockets a flood may open and never use (or
// the tabs that open the page and wait) then hold a quarter of what a
// live connection does; see TestIdleSocketsBounded and docs/BENCHMARKS.md.

// wsBufferSize is the read and write buffer of a peer's connection,
// instead of net/http's 4 KiB each: most tracker messages are smaller,
// and larger reads and writes bypass the buffers anyway.
const wsBufferSize = 512

// errProbe ends a probing Accept at its hijack: the request was valid.
var errProbe = errors.New("probe: not hijacked")

// probeWriter lets websocket.Accept check a request and set the 101's
// headers without taking the connection.
type probeWriter struct {
	h  http.Header
	ok bool // Accept got as far as hijacking: the request is a valid upgrade
}

func (p *probeWriter) Header() http.Header         { return p.h }
func (p *probeWriter) Write(b []byte) (int, error) { return len(b), nil }
func (p *probeWriter) WriteHeader(int)             {}
func (p *probeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	p.ok = true
	return nil, nil, errProbe
}

// replayWriter hands websocket.Accept a connection whose 101 has been
// sent already, with small buffers and the bytes the client sent early.
type replayWriter struct {
	h     http.Header
	raw   net.Conn
	early []byte
}

func (p *replayWriter) Header() http.Header         { return p.h }
func (p *replayWriter) Write(b []byte) (int, error) { return len(b), nil }
func (p *replayWriter) WriteHeader(int)             {}
func (p *replayWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	br := bufio.NewReaderSize(p.raw, max(wsBufferSize, len(p.early)))
	if len(p.early) > 0 {
		// Buffered, where Accept looks for what came before the 101 (it
		// then reads from raw).
		br.Reset(bytes.NewReader(p.early))
		br.Peek(len(p.early))
	}
	return p.raw, bufio.NewReadWriter(br, bufio.NewWriterSize(p.raw, wsBufferSize)), nil
}

// handshakeHeaders are what websocket.Accept reads of a request (with
// nil AcceptOptions): all a waiting socket keeps of it.
var handshakeHeaders = []string{"Connection", "Upgrade", "Sec-WebSocket-Version", "Sec-WebSocket-Key", "Origin"}

// upgradeLater answers r's upgrade and leaves the socket waiting for its
// first bytes on a goroutine of its own. It holds the place admit gave.
func (s *Server) upgradeLater(w http.ResponseWriter, r *http.Request, ip string, joinBy time.Time) {
	probe := &probeWriter{h: http.Header{}}
	if _, err := websocket.Accept(probe, r, nil); !probe.ok {
		// Refused: Accept answers the real writer the same way.
		if c, err := websocket.Accept(w, r, nil); err == nil {
			c.CloseNow() // not expected: the probe said no
		}
		s.log.Debug("websocket accept", "ip", ip, "err", err)
		s.leave(ip, false)
		return
	}
	for k, v := range probe.h {
		w.Header()[k] = v
	}
	w.WriteHeader(http.StatusSwitchingProtocols)
	if g, ok := w.(interface{ WriteHeaderNow() }); ok {
		g.WriteHeaderNow() // gin's writer sends the header only then
	}
	raw, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		s.log.Debug("websocket hijack", "ip", ip, "err", err)
		s.leave(ip, false)
		return
	}
	var early []byte
	if n := brw.Reader.Buffered(); n > 0 {
		// The client sent before the 101 arrived.
		b, _ := brw.Reader.Peek(n)
		early = bytes.Clone(b)
	}
	slim := &http.Request{Method: r.Method, Proto: r.Proto, ProtoMajor: r.ProtoMajor, ProtoMinor: r.ProtoMinor, Host: r.Host, Header: http.Header{}}
	for _, k := range handshakeHeaders {
		if v := r.Header.Values(k); len(v) > 0 {
			slim.Header[http.CanonicalHeaderKey(k)] = v
		}
	}
	go s.waitFirst(raw, early, slim, ip, joinBy)
}

// waitFirst waits until raw is readable, then takes it up as a
// WebSocket and serves its session; or closes it at the join deadline
// or when the tracker shuts down.
func (s *Server) waitFirst(raw net.Conn, early []byte, r *http.Request, ip string, joinBy time.Time) {
	// The deadline is set before the socket is registered, so that
	// Close's (now) comes after it.
	raw.SetReadDeadline(joinBy)
	if !s.wait(raw) {
		s.leave(ip, false)
		raw.Close()
		return
	}
	s.metrics.connected.Inc()
	var err error
	if len(early) == 0 {
		if err = awaitReadable(raw); errors.Is(err, errNoPeek) {
			err = nil
		}
	}
	closing := s.unwait(raw)
	raw.SetReadDeadline(time.Time{})
	s.metrics.connected.Dec()
	if err != nil || closing {
		code, reason := websocket.StatusPolicyViolation, fmt.Sprintf("no join or publish within %v: send join first", s.cfg.JoinTimeout)
		switch {
		case closing:
			code, reason = websocket.StatusGoingAway, "tracker shutting down"
		case errors.Is(err, io.EOF):
			code, reason = 0, ""
		default:
			s.metrics.rejected.WithLabelValues(reasonNoJoin).Inc()
			s.log.Debug("no join or publish in time; closing", "ip", ip, "timeout", s.cfg.JoinTimeout)
		}
		if code != 0 {
			raw.SetWriteDeadline(time.Now().Add(flushTimeout))
			raw.Write(closeFrame(code, reason))
		}
		raw.Close()
		s.leave(ip, false)
		return
	}
	conn, err := websocket.Accept(&replayWriter{h: http.Header{}, raw: raw, early: early}, r, nil)
	if err != nil {
		s.log.Debug("websocket accept", "ip", ip, "err", err)
		raw.Close()
		s.leave(ip, false)
		return
	}
	s.session(conn, ip, false, joinBy)
}

// closeFrame is an unmasked WebSocket close frame (a server's).
func closeFrame(code websocket.StatusCode, reason string) []byte {
	reason = closeReason(reason)
	b := []byte{0x88, byte(2 + len(reason)), 0, 0}
	binary.BigEndian.PutUint16(b[2:], uint16(code))
	return append(b, reason...)
}

// wait registers a waiting socket so that Close can wake it; false once
// the tracker is closed.
func (s *Server) wait(raw net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.waiting[raw] = struct{}{}
	return true
}

// unwait removes raw from the waiting sockets and reports whether the
// tracker is shutting down.
func (s *Server) unwait(raw net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.waiting, raw)
	return s.closed
}
