package rtc

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pair connects two links over loopback through an in-memory "tracker".
func pair(t *testing.T) (a, b *Link) {
	t.Helper()
	ep, err := NewEndpoint(Config{ICEInterfaces: []string{"lo"}})
	if err != nil {
		t.Fatal(err)
	}
	offers := make(chan Signal, 1)
	a, err = ep.Dial(func(s Signal) error { offers <- s; return nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	offer := <-offers
	for _, line := range strings.Split(offer.SDP.SDP, "\n") {
		if strings.HasPrefix(line, "a=candidate") && !strings.Contains(line, " 127.0.0.1 ") {
			t.Fatalf("candidate off loopback: %s", line)
		}
	}
	if !strings.Contains(offer.SDP.SDP, "127.0.0.1") {
		t.Fatalf("no loopback candidate in offer:\n%s", offer.SDP.SDP)
	}
	answers := make(chan Signal, 1)
	b, err = ep.Accept(offer, func(s Signal) error { answers <- s; return nil })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := a.HandleSignal(<-answers); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func waitOpen(t *testing.T, l *Link) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !l.Open() {
		if time.Now().After(deadline) {
			t.Fatal("data channel did not open within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLinkCarriesMessagesBothWays(t *testing.T) {
	a, b := pair(t)
	var mu sync.Mutex
	var gotA, gotB [][]byte
	a.OnMessage(func(m []byte) { mu.Lock(); gotA = append(gotA, bytes.Clone(m)); mu.Unlock() })
	b.OnMessage(func(m []byte) { mu.Lock(); gotB = append(gotB, bytes.Clone(m)); mu.Unlock() })
	waitOpen(t, a)
	waitOpen(t, b)
	const n = 200
	for i := 0; i < n; i++ {
		msg := bytes.Repeat([]byte{byte(i)}, 16384)
		if err := a.Send(msg); err != nil {
			t.Fatal(err)
		}
		if err := b.Send(msg[:100]); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		na, nb := len(gotA), len(gotB)
		mu.Unlock()
		if na == n && nb == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d and %d of %d messages", na, nb, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	seen := map[byte]bool{}
	for _, m := range gotB {
		if len(m) != 16384 || !bytes.Equal(m, bytes.Repeat(m[:1], 16384)) {
			t.Fatalf("corrupt message of %d bytes", len(m))
		}
		seen[m[0]] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct messages, want %d", len(seen), n)
	}
}

func TestCloseTwiceAndDone(t *testing.T) {
	a, b := pair(t)
	waitOpen(t, a)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := a.Send([]byte("x")); err != ErrClosed {
		t.Fatalf("Send after Close: %v, want ErrClosed", err)
	}
	select {
	case <-b.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("remote side did not notice the close")
	}
}

func TestBadInput(t *testing.T) {
	ep, err := NewEndpoint(Config{ICEInterfaces: []string{"lo"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ep.Accept(Signal{}, func(Signal) error { return nil }); err != ErrNotOffer {
		t.Fatalf("Accept(empty) = %v", err)
	}
	if _, err := NewEndpoint(Config{PacketLifetime: -1}); err == nil || !strings.Contains(err.Error(), "PacketLifetime") {
		t.Fatalf("bad PacketLifetime: %v", err)
	}
}
