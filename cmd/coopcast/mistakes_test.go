package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// startDemo runs the demo in this process on a free loopback port and
// returns its base URL and what it printed; it stops with the test, or
// when stop is called (which waits for it).
func startDemo(t *testing.T, args ...string) (base string, out *syncBuffer, stop func()) {
	t.Helper()
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, errs syncBuffer
	done := make(chan int, 1)
	go func() {
		defer cancel()
		done <- run(ctx, append([]string{"demo", "--listen", "127.0.0.1:0", "--ice-interface", "lo", "--log-level", "error"}, args...), &stdout, &errs)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				t.Error("the demo did not stop")
			}
		})
	}
	t.Cleanup(stop)
	addr := regexp.MustCompile(`http://127\.0\.0\.1:\d+`)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if m := addr.FindString(stdout.String()); m != "" {
			return m, &stdout, stop
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo printed no address; stdout %q stderr %q", stdout.String(), errs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMistakes is the table of docs/COMMAND-LINE.md: the command-line
// mistakes a new user makes, what coopcast says, and the exit status.
// None hangs (each ends within its --wait and a margin), none exits 0.
func TestMistakes(t *testing.T) {
	base, _, _ := startDemo(t)
	dir := t.TempDir()
	report := filepath.Join(dir, "r.json")
	out := filepath.Join(dir, "o.mp4")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		want   []string // in stderr
		reason string   // in --report's reason, when the row writes one
	}{
		{"no such channel lists the tracker's", []string{"peer", "--tracker", base, "--channel", "Live", "--wait", "1s", "--out", out, "--report", report},
			exitNoChannel, []string{`no channel "Live" on the tracker after waiting 1s (--wait); the tracker has: demo`, "played 0 chunks"}, "no channel"},
		{"tracker down", []string{"peer", "--tracker", "127.0.0.1:1", "--channel", "demo", "--wait", "1s", "--report", report},
			exitUnreachable, []string{"tracker unreachable for 1s (--wait): dial tcp 127.0.0.1:1", "played 0 chunks"}, "tracker unreachable"},
		{"channel with a space", []string{"peer", "--tracker", base, "--channel", "my channel"},
			exitUsage, []string{`--channel: channel id must be 1–128 letters, digits`, `got "my channel"`}, ""},
		{"origin channel with a space", []string{"origin", "--tracker", base, "--channel", "my channel", "--publish-token", "t"},
			exitUsage, []string{`--channel: channel id must be`}, ""},
		{"tracker URL that is not one", []string{"peer", "--tracker", "http://[::1", "--channel", "demo"},
			exitUsage, []string{`--tracker "http://[::1" is not a URL; want http://HOST:PORT`}, ""},
		{"tracker URL with another scheme", []string{"peer", "--tracker", "ftp://x", "--channel", "demo"},
			exitUsage, []string{`--tracker "ftp://x": the scheme must be http or https`}, ""},
		{"no tracker", []string{"peer", "--channel", "demo"},
			exitUsage, []string{"--tracker is required"}, ""},
		{"an interface this machine lacks", []string{"peer", "--tracker", base, "--channel", "demo", "--ice-interface", "nosuch0"},
			exitUsage, []string{`--ice-interface: this machine has no interface "nosuch0" (it has lo`}, ""},
		{"unknown flag, said once", []string{"peer", "--chanel", "demo"},
			exitUsage, []string{"flag provided but not defined: --chanel", "Run 'coopcast help peer'"}, ""},
		{"text file as a source", []string{"origin", "--tracker", base, "--channel", "c", "--publish-token", "t", "--source", "main_test.go"},
			exitUsage, []string{"--source: media source main_test.go: not an MP4 file\n"}, ""},
		{"H.264 High 4:4:4 source", []string{"origin", "--tracker", base, "--channel", "c", "--publish-token", "t", "--source", yuv444(t)},
			exitUsage, []string{"is H.264 High 4:4:4, which browsers do not play; re-encode with -pix_fmt yuv420p"}, ""},
		{"unknown command", []string{"wtach"},
			exitUsage, []string{`unknown command "wtach"`}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(report)
			var stdout, stderr syncBuffer
			start := time.Now()
			code := run(t.Context(), tc.args, &stdout, &stderr)
			if took := time.Since(start); took > 15*time.Second {
				t.Errorf("took %v", took)
			}
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			if strings.Count(stderr.String(), tc.want[0]) != 1 {
				t.Errorf("stderr has %q %d times, want once", tc.want[0], strings.Count(stderr.String(), tc.want[0]))
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q", w)
				}
			}
			if t.Failed() {
				t.Fatalf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
			}
			if tc.reason == "" {
				return
			}
			b, err := os.ReadFile(report)
			if err != nil {
				t.Fatalf("no --report: %v", err)
			}
			var r struct {
				Exit   int
				Reason string
			}
			if err := json.Unmarshal(b, &r); err != nil || r.Exit != tc.code || !strings.Contains(r.Reason, tc.reason) {
				t.Errorf("--report says exit %d, reason %q (%v), want %d and %q", r.Exit, r.Reason, err, tc.code, tc.reason)
			}
			if !strings.Contains(stdout.String(), "wrote "+report) {
				t.Errorf("stdout does not say it wrote %s: %q", report, stdout.String())
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s was left behind, empty", out)
			}
		})
	}
}

// yuv444 makes a plain MP4 in H.264 High 4:4:4, libx264's choice for
// an RGB source.
func yuv444(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "444.mp4")
	cmd := exec.CommandContext(t.Context(), "ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-t", "1",
		"-c:v", "libx264", "-pix_fmt", "yuv444p", path)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg (apt-get install ffmpeg): %v\n%s", err, b)
	}
	return path
}

// TestPeerInterrupted: a peer stopped by a signal (its context) before
// its --duration exits 130 and its report says so.
func TestPeerInterrupted(t *testing.T) {
	report := filepath.Join(t.TempDir(), "r.json")
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	var stdout, stderr syncBuffer
	code := run(ctx, []string{"peer", "--tracker", "127.0.0.1:1", "--channel", "demo", "--wait", "0", "--report", report}, &stdout, &stderr)
	b, _ := os.ReadFile(report)
	if code != exitInterrupted || !strings.Contains(string(b), `"reason": "interrupted"`) || !strings.Contains(string(b), `"exit": 130`) {
		t.Fatalf("exit %d, report %s\nstderr %s", code, b, stderr.String())
	}
}

// TestPeerOutlivesNoDemo: a peer watching the demo when the demo is
// stopped (Ctrl-C) does not reconnect for ever: it ends after --wait
// with "tracker unreachable" (exit 4), and its report says so.
func TestPeerOutlivesNoDemo(t *testing.T) {
	base, _, stopDemo := startDemo(t)
	report := filepath.Join(t.TempDir(), "r.json")
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(t.Context(), []string{"peer", "--tracker", base, "--channel", "demo", "--ice-interface", "lo", "--wait", "2s",
			"--report", report}, &stdout, &stderr)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), "msg=joined") {
		if time.Now().After(deadline) {
			t.Fatalf("the peer did not join: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopDemo()
	stopped := time.Now()
	select {
	case code := <-done:
		if code != exitUnreachable || !strings.Contains(stderr.String(), "tracker unreachable for 2s (--wait)") {
			t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
		}
		t.Logf("ended %v after the demo stopped", time.Since(stopped).Round(time.Millisecond))
	case <-time.After(20 * time.Second):
		t.Fatal("the peer still runs 20 s after the demo stopped")
	}
	b, _ := os.ReadFile(report)
	if !strings.Contains(string(b), `"exit": 4`) {
		t.Errorf("report: %s", b)
	}
}
