package tracker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coopcast/coopcast/internal/proto"
)

// TestResumeSecretKeptInStateDir: a tracker with a StateDir makes a
// resume secret there (mode 0600) and a tracker started after it on the
// same dir accepts the tokens the first handed out (the peer keeps its
// id); one on another dir refuses them (the peer joins as a new one).
func TestResumeSecretKeptInStateDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	srvA, baseA := startServer(t, Config{StateDir: dir})
	publish(t, baseA, "c")
	p := join(t, baseA, "c", 0)
	r := proto.Resume{PeerID: p.peerID(), Token: p.resume(4).Token}
	fi, err := os.Stat(filepath.Join(dir, secretFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file: %v %v, want mode 0600", fi, err)
	}
	srvA.Close()

	for _, tc := range []struct {
		name    string
		dir     string
		resumed bool
	}{
		{"same dir", dir, true},
		{"same dir again", dir, true},
		{"another dir", t.TempDir(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, base := startServer(t, Config{StateDir: tc.dir})
			publish(t, base, "c")
			rr := r
			c := joinMsg(t, base, proto.Message{Type: proto.TypeJoin, Channel: "c", Kind: "native", Resume: &rr})
			if got := c.peerID() == r.PeerID && !c.hasError(proto.CodeResumeRefused); got != tc.resumed {
				t.Fatalf("resumed %v (id %d, was %d; errors %v), want %v", got, c.peerID(), r.PeerID, c.errors(), tc.resumed)
			}
			srv.Close()
		})
	}
}

// TestStateDirErrors: a secret file that is not one stops New with an
// error naming it; ResumeSecret, when set, wins over StateDir and no file
// is made.
func TestStateDirErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, secretFile)
	if err := os.WriteFile(path, []byte("not base64!\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{PublishToken: "x", StateDir: dir}); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("New with a bad secret file: %v, want an error naming %s", err, path)
	}
	dir2 := t.TempDir()
	srv, err := New(Config{PublishToken: "x", StateDir: dir2, ResumeSecret: []byte("given")})
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if _, err := os.Stat(filepath.Join(dir2, secretFile)); !os.IsNotExist(err) {
		t.Fatalf("a secret file was made although ResumeSecret was given: %v", err)
	}
}
