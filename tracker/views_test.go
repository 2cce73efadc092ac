package tracker

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/coopcast/coopcast/internal/proto"
)

// closedWith returns whether c is closed, and the close frame's code and
// reason.
func (c *tclient) closedWith() (bool, websocket.StatusCode, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed, c.closeCode, c.closeReason
}

// count returns how many messages of type typ c has received.
func (c *tclient) count(typ string) int {
	n := 0
	for _, m := range c.received() {
		if m.Type == typ {
			n++
		}
	}
	return n
}

// received returns a copy of every message c has received.
func (c *tclient) received() []proto.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]proto.Message(nil), c.all...)
}

// resume returns what c would report to resume: its id, token, home and
// the parent it believes it has in each tree.
func (c *tclient) resume(trees int) proto.Resume {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := proto.Resume{PeerID: c.id, Token: c.welcome.ResumeToken, Home: *c.welcome.Home, Parents: make([]uint64, trees)}
	for i := range r.Parents {
		r.Parents[i] = c.parents[i]
	}
	return r
}

// joinMsg dials, sends m (a join, perhaps with resume) and waits for the
// welcome.
func joinMsg(t testing.TB, base string, m proto.Message) *tclient {
	t.Helper()
	c, _, err := dial(t, base, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.send(m); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 10*time.Second, "welcome", func() error {
		if c.peerID() == 0 {
			return fmt.Errorf("no welcome; errors %v", c.errors())
		}
		return nil
	})
	return c
}

// metric returns the value of one series in /metrics, or -1 if absent.
func metric(t testing.TB, base, series string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return -1
}
