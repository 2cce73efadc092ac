package origin

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coopcast/coopcast/internal/fmp4"
	"github.com/coopcast/coopcast/internal/mediatest"
)

// TestLoadKey: the first load creates the key file (mode 0600, PEM
// PKCS #8), later loads return the same key; a key openssl made loads; a
// file that is not an Ed25519 key, or a place where none can be created,
// is an error that says what is wrong, and the file is left alone.
func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "channel.pem")
	priv, created, err := LoadKey(path)
	if err != nil || !created {
		t.Fatalf("first load: created %v, %v", created, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", st.Mode().Perm(), err)
	}
	again, created, err := LoadKey(path)
	if err != nil || created || !again.Equal(priv) {
		t.Fatalf("second load: created %v, same key %v, %v", created, again.Equal(priv), err)
	}

	if _, err := exec.LookPath("openssl"); err == nil {
		ossl := filepath.Join(dir, "openssl.pem")
		if out, err := exec.Command("openssl", "genpkey", "-algorithm", "ed25519", "-out", ossl).CombinedOutput(); err != nil {
			t.Fatalf("openssl: %v %s", err, out)
		}
		if _, created, err := LoadKey(ossl); err != nil || created {
			t.Fatalf("openssl's key: created %v, %v", created, err)
		}
	}

	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	for _, tc := range []struct {
		name, content, want string
	}{
		{"not PEM", "hello\n", "not an Ed25519 private key in PEM"},
		{"another PEM block", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}})), "not an Ed25519 private key in PEM"},
		{"a broken key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}})), "not an Ed25519 private key in PEM"},
		{"an ECDSA key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})), "it holds a *ecdsa.PrivateKey"},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
		os.WriteFile(p, []byte(tc.content), 0o600)
		if _, _, err := LoadKey(p); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v; want an error naming the file and saying %q", tc.name, err, tc.want)
		}
		if b, _ := os.ReadFile(p); string(b) != tc.content {
			t.Errorf("%s: the file was changed", tc.name)
		}
	}
	if _, _, err := LoadKey(filepath.Join(dir, "no", "such", "dir", "k.pem")); err == nil || !strings.Contains(err.Error(), "no such file or directory") {
		t.Errorf("key in a missing directory: %v", err)
	}
}

// jumpingClock makes a paced source yield at once: every reading is an
// hour after the last.
func jumpingClock() func() time.Time {
	t := time.Unix(0, 0)
	return func() time.Time { t = t.Add(time.Hour); return t }
}

// TestMediaResumeContinues: a test card resumed from where another run
// stopped goes on from there: its first fragment starts, in every track,
// no earlier than the decode time at which the other ended (and the main
// track less than a fragment later: the tracks move by one common time,
// as far as the one that needs most), fragment numbers go on, and the two runs
// concatenated behind the init segment are one file that ffmpeg decodes
// without a word, with strictly increasing decode times.
func TestMediaResumeContinues(t *testing.T) {
	ctx := context.Background()
	a, err := NewTestcard()
	if err != nil {
		t.Fatal(err)
	}
	a.now = jumpingClock()
	file := bytes.NewBuffer(bytes.Clone(a.Init()))
	var last Chunk
	for i := 0; i < 3; i++ {
		if last, err = a.Next(ctx); err != nil {
			t.Fatal(err)
		}
		file.Write(last.Data)
	}
	pos := a.Position()
	if pos.Seq != 3 || len(pos.Ends) != 2 {
		t.Fatalf("position after 3 fragments: %+v", pos)
	}

	b, err := NewTestcard()
	if err != nil {
		t.Fatal(err)
	}
	b.now = jumpingClock()
	if err := b.Resume(pos); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		c, err := b.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			end := last.DecodeTime + uint64(last.Duration)
			if c.DecodeTime < end || c.DecodeTime-end >= uint64(last.Duration) || !c.Keyframe {
				t.Fatalf("resumed at decode time %d (keyframe %v), want %d or a little later", c.DecodeTime, c.Keyframe, end)
			}
			r := fmp4.NewReader(bytes.NewReader(append(bytes.Clone(b.Init()), c.Data...)))
			if _, err := r.Init(); err != nil {
				t.Fatal(err)
			}
			f, err := r.Next()
			if err != nil {
				t.Fatal(err)
			}
			for id, end := range pos.Ends {
				if s, _, ok := f.Span(id); !ok || s < end {
					t.Fatalf("track %d resumes at %d, before the end of the last run %d", id, s, end)
				}
			}
		}
		file.Write(c.Data)
	}
	if got := b.Position().Seq; got != 6 {
		t.Fatalf("fragments numbered up to %d, want 6", got)
	}
	path := filepath.Join(t.TempDir(), "both-runs.mp4")
	if err := os.WriteFile(path, file.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// 6 fragments of 25 frames.
	mediatest.CheckPlayable(t, path, 6*25)
}

// TestNewResumesFromState: an origin given the state file of an earlier
// run takes a later epoch than it, goes on from its next chunk number,
// and ends the earlier stream first only if the init segment changed.
func TestNewResumesFromState(t *testing.T) {
	dir := t.TempDir()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	src, err := NewTestcard()
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{TrackerURL: "http://127.0.0.1:1", Channel: "c", PublishToken: "t", Source: src, Bitrate: 1, PrivateKey: priv,
		StateFile: filepath.Join(dir, "state")}
	fresh, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	fresh.Close()
	if fresh.next != 0 || fresh.initChanged {
		t.Fatalf("first run: next %d, init changed %v", fresh.next, fresh.initChanged)
	}
	future := uint64(time.Now().Add(time.Hour).UnixMicro())
	for _, tc := range []struct {
		name        string
		st          state
		initChanged bool
	}{
		{"same init", state{Epoch: future, NextSeq: 41, Init: fresh.initHash, Source: Position{Seq: 41}}, false},
		{"init changed", state{Epoch: future, NextSeq: 41, Init: "00", Source: Position{Seq: 41}}, true},
		{"init changed after an end of stream", state{Epoch: future, NextSeq: 41, Ended: true, Init: "00", Source: Position{Seq: 41}}, false},
	} {
		if err := tc.st.save(cfg.StateFile); err != nil {
			t.Fatal(err)
		}
		src, _ := NewTestcard()
		cfg.Source = src
		o, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		o.Close()
		if o.Epoch() != future+1 || o.next != 41 || o.initChanged != tc.initChanged || src.seq != 41 {
			t.Errorf("%s: epoch %d (want %d), next %d, init changed %v, source at %d", tc.name, o.Epoch(), future+1, o.next, o.initChanged, src.seq)
		}
	}
	os.WriteFile(cfg.StateFile, []byte("{"), 0o600)
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "state file") {
		t.Errorf("a broken state file: %v", err)
	}
}
