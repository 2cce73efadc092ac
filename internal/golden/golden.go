// Package golden checks a generated file against its committed copy, or
// rewrites the copy when asked: the shared test vectors under
// testdata/vectors, which the Go tests write and the browser's tests read.
package golden

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Check fails t when got differs from the file at path, naming the first
// line that differs and what to do (hint). With update it writes got to
// path instead. Files over limit bytes fail too: vectors stay small.
func Check(t testing.TB, path string, got []byte, update bool, limit int, hint string) {
	t.Helper()
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", path, len(got))
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (generate it with -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from what the Go code produces now, %s; if the change is intended, rerun with -update and %s",
			path, FirstDiff(want, got), hint)
	}
	if len(got) > limit {
		t.Errorf("%s is %d bytes; keep the vectors small (under %d)", path, len(got), limit)
	}
}

// FirstDiff describes where two texts first differ.
func FirstDiff(want, got []byte) string {
	wl, gl := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < max(len(wl), len(gl)); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("first at line %d:\n  committed: %.200s\n  Go now:    %.200s", i+1, w, g)
		}
	}
	return "in length only"
}
