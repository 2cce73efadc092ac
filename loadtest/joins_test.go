package loadtest

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/coopcast/coopcast/internal/testbin"
)

// TestJoinsCostNoChunk: 60 real peers join over 20 s and nobody leaves.
// Joins move peers (an interior peer displaces a leaf, ADR 0002); moves
// are made before they break (ADR 0008), so no peer may miss a single
// chunk. It runs a separate non-race build: under -race a 60-peer pion
// swarm measures the race detector.
func TestJoinsCostNoChunk(t *testing.T) {
	bin := testbin.Coopcast(t)
	out := filepath.Join(t.TempDir(), "joins.json")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "loadtest", "--mode", "real", "--peers", "60", "--join-over", "20s",
		"--duration", "35s", "--bitrate", "400k", "--json", out, "--log-level", "error")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("loadtest: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	t.Logf("60 peers joining over 20 s: continuity %.4f (worst peer %.4f), offload %.4f, startup p95 %.0f ms, latency p95 %.0f ms, depth %v",
		r.Continuity, r.ContinuityMin, r.OffloadRatio, r.StartupP95, r.LatencyP95, r.DepthMax)
	if r.PeersTotal != 60 {
		t.Fatalf("%d peers ran, want 60", r.PeersTotal)
	}
	if r.ContinuityMin < 1 {
		t.Errorf("a peer missed chunks with nobody leaving: worst continuity %.4f", r.ContinuityMin)
	}
}
