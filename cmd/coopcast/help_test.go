package main

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestHelp: every way of asking for help prints it to standard output,
// nothing to standard error, and exits 0; flags are written --flag, as
// in the README.
func TestHelp(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string // in stdout, in order
	}{
		{"coopcast help", []string{"help"}, []string{"Commands:", "peer", "version"}},
		{"coopcast --help shows the demo's flags", []string{"--help"}, []string{"Commands:", "Usage: coopcast [demo]", "--listen ADDR", "--source"}},
		{"coopcast -h", []string{"-h"}, []string{"Commands:", "--listen"}},
		{"coopcast demo --help", []string{"demo", "--help"}, []string{"Usage: coopcast [demo]", "--channel ID", "--listen"}},
		{"coopcast help peer", []string{"help", "peer"}, []string{"Usage: coopcast peer", "Exit status:", "--channel ID", "--tracker URL", "--wait"}},
		{"coopcast peer --help", []string{"peer", "--help"}, []string{"Usage: coopcast peer", "--channel"}},
		{"coopcast help origin", []string{"help", "origin"}, []string{"Usage: coopcast origin", "--publish-token"}},
		{"coopcast loadtest -help", []string{"loadtest", "-help"}, []string{"Usage: coopcast loadtest", "--report FILE"}},
		{"coopcast help tracker", []string{"help", "tracker"}, []string{"Usage: coopcast tracker", "--listen"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errs syncBuffer
			if code := run(t.Context(), tc.args, &out, &errs); code != 0 {
				t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out.String(), errs.String())
			}
			if errs.String() != "" {
				t.Errorf("help wrote to stderr: %s", errs.String())
			}
			rest := out.String()
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("stdout lacks %q (in order %q):\n%s", w, tc.want, out.String())
				}
				rest = rest[i+len(w):]
			}
			if m := regexp.MustCompile(`(?m)^  -[a-z]`).FindString(out.String()); m != "" {
				t.Errorf("a flag is shown with one dash: %q", m)
			}
		})
	}
}

// TestVersion: coopcast version and --version print the module version
// and the Go release; a revision, when stamped, is a full commit hash.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var out, errs syncBuffer
		if code := run(t.Context(), args, &out, &errs); code != 0 || errs.String() != "" {
			t.Fatalf("%q: exit %d, stderr %q", args, code, errs.String())
		}
		got := out.String()
		if !strings.HasPrefix(got, "coopcast ") || !strings.Contains(got, runtime.Version()) || strings.Count(got, "\n") != 1 {
			t.Errorf("%q: %q, want one line: coopcast VERSION, revision …, %s", args, got, runtime.Version())
		}
		if !regexp.MustCompile(`revision ([0-9a-f]{40}|unknown)`).MatchString(got) {
			t.Errorf("%q: %q names no revision (a commit hash or unknown)", args, got)
		}
	}
}

// TestUsageErrorOnce: a mistake in the flags is said once, on standard
// error, with a pointer to the help, and exits 2.
func TestUsageErrorOnce(t *testing.T) {
	var out, errs syncBuffer
	code := run(t.Context(), []string{"peer", "--bogus"}, &out, &errs)
	if code != 2 || strings.Count(errs.String(), "flag provided but not defined: --bogus") != 1 ||
		!strings.Contains(errs.String(), "Run 'coopcast help peer'") || out.String() != "" {
		t.Fatalf("exit %d; stdout %q; stderr %q", code, out.String(), errs.String())
	}
}

// TestDemoBanner: the demo points at the browser first (watch page, then
// dashboard), then at a native peer with the same network flags and
// channel, and says which addresses WebRTC peers are offered.
func TestDemoBanner(t *testing.T) {
	base, out, _ := startDemo(t, "--channel", "Live")
	want := []string{"Watch:      " + base + "/", "Dashboard:  " + base + "/dashboard",
		"go run ./cmd/coopcast peer --tracker " + base + " --channel Live --ice-interface lo --duration 20s --out peer.mp4",
		"WebRTC: the origin and native peers offer 127.0.0.1"}
	deadline := time.Now().Add(10 * time.Second)
	for {
		rest, ok := out.String(), true
		for _, w := range want {
			i := strings.Index(rest, w)
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(w):]
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the banner lacks, in order, %q:\n%s", want, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The channel it names is the one it publishes.
	var stdout, stderr syncBuffer
	if code := run(t.Context(), []string{"peer", "--tracker", base, "--channel", "demo", "--wait", "1s"}, &stdout, &stderr); code != exitNoChannel ||
		!strings.Contains(stderr.String(), "the tracker has: Live") {
		t.Errorf("exit %d; stderr %s", code, stderr.String())
	}
}

// TestOldFlagNames: loadtest's --json, now --report, still works, and
// help does not list it.
func TestOldFlagNames(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.json")
	var out, errs syncBuffer
	if code := run(t.Context(), []string{"loadtest", "--mode", "sim", "--peers", "20", "--duration", "3s", "--json", path}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	if _, err := os.Stat(path); err != nil || !strings.Contains(out.String(), "wrote "+path) {
		t.Fatalf("--json: %v; stdout %s", err, out.String())
	}
	out = syncBuffer{}
	run(t.Context(), []string{"loadtest", "--help"}, &out, &errs)
	if strings.Contains(out.String(), "  --json") {
		t.Errorf("help lists the hidden --json")
	}
}
