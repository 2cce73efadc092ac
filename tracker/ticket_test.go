package tracker

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/coopcast/coopcast/internal/proto"
	"github.com/coopcast/coopcast/internal/ticket"
)

// tickets returns the fallback tickets c was sent, in order: the
// welcome's, then each ticket message's.
func (c *tclient) tickets() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, m := range c.all {
		if (m.Type == proto.TypeWelcome || m.Type == proto.TypeTicket) && m.Ticket != "" {
			out = append(out, m.Ticket)
		}
	}
	return out
}

func publishKey(t *testing.T, base string, key []byte) *tclient {
	t.Helper()
	c, _, err := dial(t, base, http.Header{"Authorization": {"Bearer " + testToken}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.send(proto.Message{Type: proto.TypePublish, Channel: "c", Trees: 4, K: 3, Bitrate: 600_000, PublicKey: testKey,
		FallbackURL: "http://origin/fallback/c", TicketKey: base64.StdEncoding.EncodeToString(key)}); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestFallbackTickets: a peer's welcome carries a ticket for it and the
// channel under the origin's ticket key; a fresh one comes at half its
// life; an origin back with another key has every peer re-ticketed at
// once; a publish with a bad key is refused.
func TestFallbackTickets(t *testing.T) {
	_, base := startServer(t, Config{HeartbeatInterval: 200 * time.Millisecond, HeartbeatMisses: 50, TicketTTL: 2 * time.Second})
	key := make([]byte, ticket.KeySize)
	key[0] = 1
	o := publishKey(t, base, key)
	o.heartbeat(100 * time.Millisecond)
	p := join(t, base, "c", 1000)
	p.heartbeat(100 * time.Millisecond)
	valid := func(tok string, key []byte) error {
		peer, err := ticket.Verify(key, "c", tok, time.Now())
		if err == nil && peer != p.peerID() {
			err = fmt.Errorf("ticket for peer %d, want %d", peer, p.peerID())
		}
		return err
	}
	first := p.tickets()
	if len(first) != 1 {
		t.Fatalf("welcome has no ticket")
	}
	if err := valid(first[0], key); err != nil {
		t.Fatalf("welcome's ticket: %v", err)
	}
	checkFor(t, 5*time.Second, "a fresh ticket", func() error {
		ts := p.tickets()
		if len(ts) < 2 {
			return fmt.Errorf("%d tickets", len(ts))
		}
		return valid(ts[len(ts)-1], key)
	})

	// The origin comes back with another ticket key: fresh tickets at once.
	o.drop()
	key2 := make([]byte, ticket.KeySize)
	key2[0] = 2
	o2 := publishKey(t, base, key2)
	o2.heartbeat(100 * time.Millisecond)
	checkFor(t, 900*time.Millisecond, "a ticket under the new key", func() error {
		ts := p.tickets()
		return valid(ts[len(ts)-1], key2)
	})

	bad, _, err := dial(t, base, http.Header{"Authorization": {"Bearer " + testToken}})
	if err != nil {
		t.Fatal(err)
	}
	bad.send(proto.Message{Type: proto.TypePublish, Channel: "d", PublicKey: testKey, Bitrate: 1000, TicketKey: "c2hvcnQ="})
	checkFor(t, 5*time.Second, "bad-message", func() error {
		if !bad.hasError(proto.CodeBadMessage) {
			return fmt.Errorf("errors %v", bad.errors())
		}
		return nil
	})
}
