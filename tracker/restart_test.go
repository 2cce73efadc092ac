package tracker

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/coopcast/coopcast/internal/proto"
)

// TestOriginRestartTakesOver: an origin whose connection dies without a
// goodbye (killed) leaves its peers in place; one started again with the
// channel's key and a newer epoch takes the channel over, is told its
// children, and joiners learn the new epoch from welcome. A publish of an
// older epoch (the old process coming back) is refused with origin-live
// and changes nothing.
func TestOriginRestartTakesOver(t *testing.T) {
	srv, base := startServer(t, Config{})
	const e1, e2 = 1_764_000_000_000_000, 1_764_000_060_000_000
	publishEpoch := func(epoch uint64) *tclient {
		t.Helper()
		c, _, err := dial(t, base, http.Header{"Authorization": {"Bearer " + testToken}})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.send(proto.Message{Type: proto.TypePublish, Channel: "c", Trees: 4, K: 3, Bitrate: 600_000, PublicKey: testKey, Epoch: epoch}); err != nil {
			t.Fatal(err)
		}
		return c
	}
	published := func(c *tclient, epoch uint64) func() error {
		return func() error {
			c.mu.Lock()
			defer c.mu.Unlock()
			for _, m := range c.all {
				if m.Type == proto.TypePublished {
					if m.Epoch != epoch {
						return fmt.Errorf("published with epoch %d, want %d", m.Epoch, epoch)
					}
					return nil
				}
			}
			return fmt.Errorf("not published; errors %v", c.errs)
		}
	}
	first := publishEpoch(e1)
	checkFor(t, 5*time.Second, "first run published", published(first, e1))
	var peers []*tclient
	for i := 0; i < 6; i++ {
		p := join(t, base, "c", 1000)
		p.heartbeat(200 * time.Millisecond)
		peers = append(peers, p)
	}
	checkFor(t, 5*time.Second, "views agree", func() error { return agree(srv, "c", first, peers) })
	if w := peers[0].welcome; w == nil || w.Epoch != e1 {
		t.Fatalf("welcome %+v, want epoch %d", w, e1)
	}

	first.drop()
	checkFor(t, 5*time.Second, "origin gone", func() error {
		if st := srv.channel("c").stats(); st.Origin {
			return fmt.Errorf("origin still connected")
		}
		return nil
	})
	second := publishEpoch(e2)
	checkFor(t, 5*time.Second, "second run published", published(second, e2))
	checkFor(t, 5*time.Second, "peers kept their places; the new origin knows its children", func() error {
		return agree(srv, "c", second, peers)
	})
	if st := srv.channel("c").stats(); st.Leaves != 0 || st.Peers != len(peers) {
		t.Fatalf("%d peers, %d leaves after the restart", st.Peers, st.Leaves)
	}
	late := join(t, base, "c", 0)
	if w := late.welcome; w == nil || w.Epoch != e2 {
		t.Fatalf("welcome after the restart %+v, want epoch %d", w, e2)
	}

	stale := publishEpoch(e1)
	checkFor(t, 5*time.Second, "older run refused", func() error {
		if !stale.hasError(proto.CodeOriginLive) || !stale.isClosed() {
			return fmt.Errorf("errors %v closed %v", stale.errors(), stale.isClosed())
		}
		return nil
	})
	if second.isClosed() {
		t.Fatal("live origin dropped by a publish of an older epoch")
	}
}
