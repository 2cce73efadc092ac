package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a bytes.Buffer safe for a command's goroutines and the
// test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestCommandLine: help exits 0, and every bad command, flag or value
// exits 2 with a message that names what was wrong.
func TestCommandLine(t *testing.T) {
	t.Setenv("COOPCAST_PUBLISH_TOKEN", "")
	t.Setenv("COOPCAST_RESUME_SECRET", "")
	t.Setenv("XDG_STATE_HOME", t.TempDir()) // the tracker keeps its resume secret there
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string // in stdout or stderr
	}{
		{"help", []string{"help"}, 0, "tracker"},
		{"unknown command lists the valid ones", []string{"frobnicate"}, 2, "unknown command \"frobnicate\""},
		{"tracker help", []string{"tracker", "--help"}, 0, "Usage: coopcast tracker"},
		{"tracker without token", []string{"tracker"}, 2, "--publish-token (or COOPCAST_PUBLISH_TOKEN) is required"},
		{"tracker bad listen", []string{"tracker", "--publish-token", "t", "--listen", "nowhere"}, 2, "--listen: address nowhere: missing port in address"},
		{"tracker tiny heartbeat", []string{"tracker", "--publish-token", "t", "--heartbeat", "1ms"}, 2, "--heartbeat must be ≥ 10ms"},
		{"tracker k above trees", []string{"tracker", "--publish-token", "t", "--trees", "2", "--k", "3"}, 2, "--k must be between 1 and the number of trees (2)"},
		{"tracker too many trees", []string{"tracker", "--publish-token", "t", "--trees", "100"}, 2, "--trees must be in [1, 64]"},
		{"tracker negative slots", []string{"tracker", "--publish-token", "t", "--max-slots", "-2"}, 2, "--max-slots must be"},
		{"tracker negative reserve", []string{"tracker", "--publish-token", "t", "--origin-reserve", "-1"}, 2, "--origin-reserve must be"},
		{"tracker bad ICE server", []string{"tracker", "--publish-token", "t", "--ice-server", "http://x"}, 2, "--ice-server must be a stun:"},
		{"tracker TURN without credential", []string{"tracker", "--publish-token", "t", "--ice-server", "turn:x:3478"}, 2, "--turn-username and --turn-credential"},
		{"tracker bad log format", []string{"tracker", "--publish-token", "t", "--log-format", "xml"}, 2, "--log-format must be text or json"},
		{"tracker bad log level", []string{"tracker", "--publish-token", "t", "--log-level", "loud"}, 2, "--log-level must be"},
		{"tracker unknown flag", []string{"tracker", "--bogus"}, 2, "flag provided but not defined: --bogus"},
		{"tracker stray argument", []string{"tracker", "--publish-token", "t", "extra"}, 2, "unexpected argument \"extra\""},
		{"origin help names the sources", []string{"origin", "--help"}, 0, "Sources: testcard"},
		{"origin missing file", []string{"origin", "--tracker", "http://127.0.0.1:1", "--channel", "c", "--publish-token", "t", "--source", "/no/such.mp4"}, 2, "open /no/such.mp4: no such file"},
		{"origin not MP4", []string{"origin", "--tracker", "http://127.0.0.1:1", "--channel", "c", "--publish-token", "t", "--source", "main_test.go"}, 2, "media source main_test.go: not an MP4 file"},
		{"demo refuses stdin", []string{"demo", "--source", "-"}, 2, "the demo loops a file"},
		{"origin help says why --key", []string{"origin", "--help"}, 0, "a restarted origin is refused"},
		{"origin key file not a key", []string{"origin", "--tracker", "http://127.0.0.1:1", "--channel", "c", "--publish-token", "t", "--key", "main_test.go"}, 2, "--key main_test.go: key file main_test.go: not an Ed25519 private key in PEM"},
		{"origin key file in no directory", []string{"origin", "--tracker", "http://127.0.0.1:1", "--channel", "c", "--publish-token", "t", "--key", "/no/such/dir/k.pem"}, 2, "--key /no/such/dir/k.pem: key file: create: open /no/such/dir/k.pem: no such file or directory"},
		{"demo key file not a key", []string{"demo", "--listen", "127.0.0.1:0", "--key", "main_test.go"}, 2, "--key main_test.go: key file main_test.go: not an Ed25519 private key"},
		{"loadtest unknown scenario", []string{"loadtest", "--scenario", "superbowl"}, 2, "scenarios: churn-storm, flash-crowd"},
		{"loadtest bad mix", []string{"loadtest", "--mix", "zero=0.8,low=0.5"}, 2, "add up to at most 1"},
		{"loadtest bad arrival", []string{"loadtest", "--arrival", "sudden"}, 2, "--arrival must be linear or exponential"},
		{"loadtest missing csv", []string{"loadtest", "--arrival-csv", "/no/such.csv"}, 2, "--arrival-csv: open /no/such.csv"},
		{"loadtest bad fail-if", []string{"loadtest", "--fail-if", "offload<0.9"}, 2, `no measure "offload"`},
		{"loadtest help explains the modes", []string{"loadtest", "--help"}, 0, "--mode sim runs the same forest code"},
		{"loadtest bad mode", []string{"loadtest", "--mode", "warp"}, 2, "--mode must be real or sim, got \"warp\""},
		{"loadtest real crowd too big", []string{"loadtest", "--peers", "5000"}, 2, "use --mode sim for more"},
		{"loadtest sim crowd too big", []string{"loadtest", "--mode", "sim", "--peers", "3000000"}, 2, "--peers must be in [1, 2000000] in sim mode"},
		{"loadtest sim bad net", []string{"loadtest", "--mode", "sim", "--net", "moon"}, 2, "--net must be one of internet, loopback"},
		{"loadtest net without sim", []string{"loadtest", "--net", "internet"}, 2, "use it with --mode sim"},
		{"loadtest sim media", []string{"loadtest", "--mode", "sim", "--source", "testcard"}, 2, "--source must be synthetic in sim mode"},
		{"loadtest bad ungraceful share", []string{"loadtest", "--mode", "sim", "--churn-ungraceful", "2"}, 2, "--churn-ungraceful must be a share in [0, 1]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errs syncBuffer
			code := run(t.Context(), tc.args, &out, &errs)
			all := out.String() + errs.String()
			if code != tc.code || !strings.Contains(all, tc.want) {
				t.Fatalf("exit %d, want %d; output lacks %q:\n%s", code, tc.code, tc.want, all)
			}
		})
	}
}

// TestTrackerServesAndStops: the tracker subcommand serves its HTTP API
// and shuts down cleanly (exit 0, no goroutine left) when its context
// ends, as on SIGINT or SIGTERM.
func TestTrackerServesAndStops(t *testing.T) {
	state := t.TempDir()
	t.Setenv("XDG_STATE_HOME", state)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errs syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"tracker", "--listen", "127.0.0.1:0", "--publish-token", "t", "--log-format", "json"}, &out, &errs)
	}()
	addr := regexp.MustCompile(`http://(127\.0\.0\.1:\d+)`)
	var base string
	deadline := time.Now().Add(10 * time.Second)
	for base == "" {
		if m := addr.FindStringSubmatch(out.String()); m != nil {
			base = "http://" + m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no address printed; stdout %q stderr %q", out.String(), errs.String())
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for path, want := range map[string]string{
		"/healthz":                     `"status":"ok"`,
		"/api/v1/channels":             `"channels":[]`,
		"/metrics":                     "coopcast_joins_total 0",
		"/api/v1/channels/none/forest": "no such channel",
	} {
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d %s, want %q", path, resp.StatusCode, b, want)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d; stderr %s", code, errs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tracker did not stop")
	}
	if !strings.Contains(errs.String(), `"msg":"shutting down"`) {
		t.Errorf("no shutdown log line in %s", errs.String())
	}
	// No --resume-secret: one was made and kept in the default state dir.
	if fi, err := os.Stat(filepath.Join(state, "coopcast", "resume-secret")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("resume secret in $XDG_STATE_HOME/coopcast: %v %v, want a 0600 file", fi, err)
	}
}

// TestLoadtestSim: a simulated flash crowd from the command line writes
// its summary (saying it is simulated), a JSON result with the measures'
// names and an HTML report with every chart.
func TestLoadtestSim(t *testing.T) {
	dir := t.TempDir()
	jsonOut, htmlOut := filepath.Join(dir, "s.json"), filepath.Join(dir, "s.html")
	var out, errs syncBuffer
	code := run(t.Context(), []string{"loadtest", "--mode", "sim", "--scenario", "flash-crowd", "--peers", "3000", "--duration", "15s",
		"--report", jsonOut, "--html", htmlOut, "--fail-if", "continuity<0.99"}, &out, &errs)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errs.String())
	}
	for _, want := range []string{"wrote " + jsonOut + " (", "wrote " + htmlOut + " (", "3000 simulated peers", "sim: every figure below comes from the simulator", "offload_ratio", "simulator: max RSS"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	b, err := os.ReadFile(jsonOut)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Scenario struct{ Mode, Net string }
		Offload  float64 `json:"offload_ratio"`
		Cont     float64 `json:"continuity"`
		Startup  float64 `json:"startup_ms_p95"`
		Depth    []int   `json:"depth_max"`
		RSS      float64 `json:"max_rss_mb"`
		Sim      *struct {
			Events uint64
		}
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if res.Scenario.Mode != "sim" || res.Scenario.Net != "loopback" || res.Sim == nil || res.Sim.Events == 0 ||
		res.Offload < 0.99 || res.Cont < 0.99 || res.Startup <= 0 || len(res.Depth) != 4 || res.RSS <= 0 {
		t.Fatalf("JSON: %s", b)
	}
	page, err := os.ReadFile(htmlOut)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(page), "<svg"); n != 7 || !strings.Contains(string(page), "simulated, loopback model") {
		t.Errorf("report: %d charts, title %q", n, regexp.MustCompile(`<h1>.*</h1>`).FindString(string(page)))
	}
}
