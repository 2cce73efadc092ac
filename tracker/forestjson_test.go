package tracker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/coopcast/coopcast/internal/proto"
)

// TestForestCachedWithETag: /forest is gzipped for clients that accept
// it, carries a weak ETag, answers 304 to If-None-Match while nothing
// changed, is encoded once per change (the same bytes are served until
// the forest changes), and changes as soon as the forest does; a change
// to reports alone shows within reportRefresh.
func TestForestCachedWithETag(t *testing.T) {
	srv, base := startServer(t, Config{})
	origin := publish(t, base, "c")
	peers := []*tclient{join(t, base, "c", 1000), join(t, base, "c", 0)}
	checkFor(t, 5*time.Second, "views agree", func() error { return agree(srv, "c", origin, peers) })
	url := base + "/api/v1/channels/c/forest"
	hc := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(hc.CloseIdleConnections)
	get := func(h http.Header) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		req.Header = h
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	nodes := func(b []byte) int {
		t.Helper()
		var snap proto.ForestSnapshot
		if err := json.Unmarshal(b, &snap); err != nil {
			t.Fatalf("not a snapshot: %v: %.100s", err, b)
		}
		return len(snap.Nodes)
	}

	resp, gz := get(http.Header{"Accept-Encoding": {"gzip"}})
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" || !strings.HasPrefix(etag, `W/"`) ||
		!strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
		t.Fatalf("gzip request: %d, headers %v", resp.StatusCode, resp.Header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	resp, plain := get(http.Header{})
	if resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(plain, unzipped) || resp.Header.Get("ETag") != etag {
		t.Fatalf("plain response differs from the gzipped one, or its ETag %q from %q", resp.Header.Get("ETag"), etag)
	}
	if n := nodes(plain); n != 2 {
		t.Fatalf("%d nodes, want 2", n)
	}
	for _, inm := range []string{etag, strings.TrimPrefix(etag, "W/"), `"other", ` + etag, "*"} {
		if resp, body := get(http.Header{"If-None-Match": {inm}, "Accept-Encoding": {"gzip"}}); resp.StatusCode != http.StatusNotModified || len(body) != 0 {
			t.Errorf("If-None-Match %s: %d with %d bytes, want 304 and none", inm, resp.StatusCode, len(body))
		}
	}
	if resp, _ := get(http.Header{"If-None-Match": {`W/"stale"`}}); resp.StatusCode != 200 {
		t.Errorf("stale If-None-Match: %d, want 200", resp.StatusCode)
	}
	if resp, _ := get(http.Header{"Accept-Encoding": {"gzip;q=0, identity"}}); resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("gzip;q=0 was gzipped")
	}

	// Built once: the same bytes until the forest changes.
	ch := srv.channel("c")
	_, b1, _, _ := ch.forestJSON(time.Now())
	_, b2, _, _ := ch.forestJSON(time.Now())
	if &b1[0] != &b2[0] {
		t.Errorf("rebuilt with nothing changed")
	}

	peers = append(peers, join(t, base, "c", 0))
	resp, body := get(http.Header{"If-None-Match": {etag}})
	if resp.StatusCode != 200 || resp.Header.Get("ETag") == etag || nodes(body) != 3 {
		t.Fatalf("after a join: %d, ETag %q (was %q), %d nodes", resp.StatusCode, resp.Header.Get("ETag"), etag, nodes(body))
	}

	// A report alone: kept for up to reportRefresh, then shown.
	now := time.Now()
	tag0, _, _, _ := ch.forestJSON(now)
	ch.mu.Lock()
	rv := ch.reportVer
	ch.mu.Unlock()
	peers[0].send(proto.Message{Type: proto.TypeReport, Stats: &proto.PeerReport{RelayBytes: 4242, Continuity: 1}})
	checkFor(t, 5*time.Second, "report taken", func() error {
		ch.mu.Lock()
		defer ch.mu.Unlock()
		if ch.reportVer == rv {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	if tag, _, _, _ := ch.forestJSON(now.Add(reportRefresh / 2)); tag != tag0 {
		t.Errorf("rebuilt for a report within reportRefresh")
	}
	tag, body, _, _ := ch.forestJSON(now.Add(reportRefresh + time.Millisecond))
	if tag == tag0 || !bytes.Contains(body, []byte(`"relay_bytes":4242`)) {
		t.Errorf("report not shown after reportRefresh")
	}
}
