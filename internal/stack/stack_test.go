package stack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/coopcast/coopcast/internal/proto"
	"github.com/coopcast/coopcast/internal/rtc"
	"github.com/coopcast/coopcast/origin"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func synthetic(t *testing.T, channel string) origin.Config {
	t.Helper()
	src, err := origin.NewSynthetic(200_000, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	return origin.Config{Channel: channel, Source: src, Bitrate: 200_000, RTC: rtc.Config{ICEInterfaces: []string{"lo"}}}
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, still not %s: %v", d, what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(url string) (int, []byte, error) {
	r, err := http.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	return r.StatusCode, b, err
}

// TestStack: one address serves the tracker's API, with the origin
// published on it, and the origin's fallback; Close stops everything,
// closes the listener, and is safe to call twice and concurrently.
func TestStack(t *testing.T) {
	st, err := Start(context.Background(), Config{Origin: synthetic(t, "c")})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(st.URL(), "http://127.0.0.1:") {
		t.Errorf("URL() = %q, want a loopback URL", st.URL())
	}
	waitFor(t, 10*time.Second, "published with a chunk to fall back on", func() error {
		code, b, err := get(st.URL() + "/api/v1/channels/c/stats")
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("stats: %d %v", code, err)
		}
		var s proto.ChannelStats
		if err := json.Unmarshal(b, &s); err != nil || !s.Origin {
			return fmt.Errorf("stats %s: %v", b, err)
		}
		// The fallback is the origin's: without a ticket, 401.
		if code, _, err := get(st.URL() + "/fallback/c/latest"); err != nil || code != http.StatusUnauthorized {
			return fmt.Errorf("fallback: %d %v", code, err)
		}
		return nil
	})
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := st.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}()
	}
	wg.Wait()
	if err := st.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	select {
	case <-st.Done():
	default:
		t.Fatal("Done not closed after Close returned")
	}
	if c, err := net.Dial("tcp", strings.TrimPrefix(st.URL(), "http://")); err == nil {
		c.Close()
		t.Fatal("the listener still accepts after Close")
	}
}

// TestStackContext: the stack stops when its context ends.
func TestStackContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	st, err := Start(ctx, Config{Origin: synthetic(t, "c"), Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-st.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the stack did not stop within 10 s of its context's end")
	}
	if err := st.Wait(); err != nil {
		t.Errorf("Wait after an orderly stop: %v", err)
	}
}

// TestStackNoOrigin: without a source, the stack is a tracker and the
// caller's fallback handler on one address.
func TestStackNoOrigin(t *testing.T) {
	fb := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "mine:"+r.URL.Path) })
	st, err := Start(context.Background(), Config{Fallback: fb})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Origin != nil {
		t.Error("an origin without a source")
	}
	if code, b, err := get(st.URL() + "/fallback/x/latest"); err != nil || code != 200 || string(b) != "mine:/fallback/x/latest" {
		t.Errorf("fallback: %d %q %v", code, b, err)
	}
	if code, _, err := get(st.URL() + "/healthz"); err != nil || code != 200 {
		t.Errorf("healthz: %d %v", code, err)
	}
}

// TestStackOriginFails: an origin the tracker refuses for good stops its
// stack, and Wait says why.
func TestStackOriginFails(t *testing.T) {
	a, err := Start(context.Background(), Config{PublishToken: "tok", Origin: synthetic(t, "c")})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	waitFor(t, 10*time.Second, "published", func() error {
		if code, _, err := get(a.URL() + "/api/v1/channels/c/stats"); err != nil || code != 200 {
			return fmt.Errorf("%d %v", code, err)
		}
		return nil
	})
	// A second origin for the same channel, on another stack, publishing
	// to the first one's tracker: refused, "origin-live".
	ocfg := synthetic(t, "c")
	ocfg.TrackerURL = a.URL()
	b, err := Start(context.Background(), Config{PublishToken: "tok", Origin: ocfg})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	select {
	case <-b.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("a stack whose origin was refused still runs after 20 s")
	}
	if err := b.Wait(); err == nil || !strings.Contains(err.Error(), "origin") {
		t.Errorf("Wait = %v, want the origin's refusal", err)
	}
}

// TestStartFails: a config the origin refuses leaves nothing running and
// the listener closed.
func TestStartFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ocfg := synthetic(t, "")
	if _, err := Start(context.Background(), Config{Listener: ln, Origin: ocfg}); err == nil {
		t.Fatal("Start accepted an origin without a channel")
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Fatal("the listener still accepts after a failed Start")
	}
}
