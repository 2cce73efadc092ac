package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coopcast/coopcast/internal/proto"
	"github.com/coopcast/coopcast/tracker"
)

// TestOriginKeyRestart: `coopcast origin --key FILE` creates the key file
// (mode 0600) on its first run and keeps where the stream stands beside
// it; stopped and run again with the same file, it is taken back by the
// tracker (no origin-live), keeps the key, takes a later epoch and goes on
// from the chunk number where the first run stopped.
func TestOriginKeyRestart(t *testing.T) {
	srv, err := tracker.New(tracker.Config{PublishToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	tctx, tcancel := context.WithCancel(context.Background())
	tdone := make(chan struct{})
	go func() { defer close(tdone); srv.Run(tctx) }()
	t.Cleanup(func() { tcancel(); <-tdone; srv.Close(); hs.Close() })

	keyFile := filepath.Join(t.TempDir(), "channel.pem")
	type saved struct {
		Epoch   uint64 `json:"epoch"`
		NextSeq uint32 `json:"next_seq"`
	}
	readState := func() saved {
		var st saved
		if b, err := os.ReadFile(keyFile + ".state"); err == nil {
			json.Unmarshal(b, &st)
		}
		return st
	}
	// origin runs the command until the state shows chunks past from.
	origin := func(from uint32) (saved, string) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var out, errs syncBuffer
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, []string{"origin", "--tracker", hs.URL, "--channel", "c", "--publish-token", "tok", "--source", "synthetic",
				"--bitrate", "100k", "--chunk", "100ms", "--listen", "127.0.0.1:0", "--key", keyFile}, &out, &errs)
		}()
		deadline := time.Now().Add(15 * time.Second)
		for st := readState(); st.NextSeq < from+3 || !originConnected(t, hs.URL); st = readState() {
			if time.Now().After(deadline) {
				t.Fatalf("state %+v after 15 s; stdout %q stderr %q", st, out.String(), errs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		if code := <-done; code != 0 {
			t.Fatalf("exit %d; stderr %s", code, errs.String())
		}
		if strings.Contains(errs.String(), "origin-live") {
			t.Fatalf("refused by the tracker: %s", errs.String())
		}
		return readState(), out.String()
	}

	first, out := origin(0)
	if !strings.Contains(out, "created the channel key "+keyFile) {
		t.Errorf("first run does not say it created the key: %q", out)
	}
	st, err := os.Stat(keyFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v", err, st.Mode().Perm())
	}
	key, _ := os.ReadFile(keyFile)

	second, out := origin(first.NextSeq)
	if strings.Contains(out, "created the channel key") {
		t.Errorf("second run made a new key: %q", out)
	}
	if again, _ := os.ReadFile(keyFile); string(again) != string(key) {
		t.Error("the key file changed")
	}
	if second.Epoch <= first.Epoch || second.NextSeq < first.NextSeq+3 {
		t.Errorf("first run %+v, second %+v: want a later epoch and chunk numbers going on", first, second)
	}
}

// originConnected reports whether channel "c" has its origin.
func originConnected(t *testing.T, base string) bool {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/channels/c/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st proto.ChannelStats
	return json.NewDecoder(resp.Body).Decode(&st) == nil && st.Origin
}
