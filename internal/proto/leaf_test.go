package proto

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/coopcast/coopcast"

// thirdParty are the modules outside the standard library proto may
// import: pion's WebRTC types are the signaling messages' own JSON.
var thirdParty = []string{"github.com/pion/webrtc/v4"}

// TestLeaf: proto imports only the standard library, the few third-party
// types its messages carry, and coopcast packages that are leaves
// themselves (import no coopcast package), so that every side of the
// protocol can import it without linking the tracker, a client, or
// anything that imports them.
func TestLeaf(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-json=ImportPath,Standard,Imports", ".").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	type pkg struct {
		ImportPath string
		Standard   bool
		Imports    []string
	}
	pkgs := map[string]pkg{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("decode go list: %v", err)
		}
		pkgs[p.ImportPath] = p
	}
	self, ok := pkgs[module+"/internal/proto"]
	if !ok {
		t.Fatalf("go list did not list %s/internal/proto", module)
	}
	ours := func(path string) bool { return path == module || strings.HasPrefix(path, module+"/") }
	for _, imp := range self.Imports {
		switch p := pkgs[imp]; {
		case p.Standard:
		case ours(imp):
			for _, sub := range p.Imports {
				if ours(sub) {
					t.Errorf("proto imports %s, which is not a leaf: it imports %s", imp, sub)
				}
			}
		default:
			allowed := false
			for _, m := range thirdParty {
				allowed = allowed || imp == m || strings.HasPrefix(imp, m+"/")
			}
			if !allowed {
				t.Errorf("proto imports %s: only the standard library, leaf coopcast packages and %v may be imported", imp, thirdParty)
			}
		}
	}
	// However deep: nothing proto links may be a coopcast package that
	// is not a leaf (a third-party module never imports coopcast).
	for path, p := range pkgs {
		if !ours(path) || path == self.ImportPath {
			continue
		}
		for _, sub := range p.Imports {
			if ours(sub) {
				t.Errorf("proto links %s, which imports %s", path, sub)
			}
		}
	}
}
