// Package testbin builds the coopcast command for tests that run it as
// real processes (the load tester's agreement test, the fault tests) and
// runs those processes (Start), each in a process group of its own that
// the test's cleanup kills, so that a test can SIGKILL or SIGSTOP one.
package testbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Coopcast builds the coopcast command without the race detector, into
// a temporary directory of t, and returns its path: the race detector
// makes pion several times slower, and dozens of peers under it measure
// the detector rather than coopcast.
func Coopcast(t testing.TB) string {
	t.Helper()
	// go test puts its own GOROOT/bin first in PATH, so this finds the
	// go that is running the tests.
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not in PATH: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "coopcast")
	cmd := exec.CommandContext(t.Context(), goBin, "build", "-o", bin, "github.com/coopcast/coopcast/cmd/coopcast")
	var env []string
	for _, kv := range os.Environ() {
		if v, ok := strings.CutPrefix(kv, "GOFLAGS="); ok {
			kv = "GOFLAGS=" + strings.ReplaceAll(v, "-race", "")
		}
		env = append(env, kv)
	}
	cmd.Env = env
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return bin
}
