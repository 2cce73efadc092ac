package main

import (
	"math"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPeerOutputStartsAtZero: a peer that joins a live stream and plays
// --duration 20s writes a file that ffprobe says starts at 0 (± one
// frame) and lasts 20 s (± one chunk, the test card's 1 s GOP), says
// "wrote FILE (size, duration)", prints its summary, and exits 0.
func TestPeerOutputStartsAtZero(t *testing.T) {
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Fatal("ffprobe is needed (apt-get install ffmpeg)")
	}
	base, _, _ := startDemo(t)
	out := filepath.Join(t.TempDir(), "peer.mp4")
	var stdout, stderr syncBuffer
	code := run(t.Context(), []string{"peer", "--tracker", base, "--channel", "demo", "--ice-interface", "lo", "--duration", "20s",
		"--out", out, "--log-level", "warn"}, &stdout, &stderr)
	if code != 0 || !strings.Contains(stdout.String(), "wrote "+out+" (") || !strings.Contains(stderr.String(), "coopcast peer: played ") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	probe, err := exec.CommandContext(t.Context(), "ffprobe", "-v", "error", "-show_entries", "format=start_time,duration",
		"-of", "default=noprint_wrappers=1", out).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, probe)
	}
	got := map[string]float64{}
	for _, line := range strings.Fields(string(probe)) {
		if k, v, ok := strings.Cut(line, "="); ok {
			got[k], _ = strconv.ParseFloat(v, 64)
		}
	}
	const frame, chunk = 1.0 / 25, 1.0
	if math.Abs(got["start_time"]) > frame || math.Abs(got["duration"]-20) > chunk {
		t.Errorf("ffprobe: start_time %v (want 0 ± %v), duration %v (want 20 ± %v)\n%s", got["start_time"], frame, got["duration"], chunk, probe)
	}
	t.Logf("ffprobe: %s; %s", strings.ReplaceAll(strings.TrimSpace(string(probe)), "\n", ", "), strings.TrimSpace(stdout.String()))
}
