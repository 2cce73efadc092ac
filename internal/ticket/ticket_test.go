package ticket

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestVerify(t *testing.T) {
	key := make([]byte, KeySize)
	key[0] = 1
	other := make([]byte, KeySize)
	now := time.Unix(1_764_040_000, 0)
	good := Mint(key, "demo", 81723, now.Add(DefaultTTL))
	for _, tc := range []struct {
		name    string
		key     []byte
		channel string
		tok     string
		at      time.Time
		want    error
	}{
		{"valid", key, "demo", good, now, nil},
		{"valid one second before expiry", key, "demo", good, now.Add(DefaultTTL - time.Second), nil},
		{"missing", key, "demo", "", now, ErrMissing},
		{"expired", key, "demo", good, now.Add(DefaultTTL), ErrExpired},
		{"wrong channel", key, "other", good, now, ErrForged},
		{"wrong key (forged)", other, "demo", good, now, ErrForged},
		{"another peer's id", key, "demo", "81724" + good[5:], now, ErrForged},
		{"a later expiry", key, "demo", strings.Replace(good, ".", ".9", 1), now, ErrForged},
		{"garbage", key, "demo", "hello", now, ErrMalformed},
		{"short MAC", key, "demo", "1.2.AAAA", now, ErrMalformed},
		{"too long", key, "demo", strings.Repeat("1", 200), now, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peer, err := Verify(tc.key, tc.channel, tc.tok, tc.at)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
			if tc.want == nil && peer != 81723 {
				t.Fatalf("peer %d, want 81723", peer)
			}
		})
	}
}

func TestDeriveKeyStable(t *testing.T) {
	seed := make([]byte, ed25519.SeedSize)
	a := DeriveKey(ed25519.NewKeyFromSeed(seed))
	seed[0] = 1
	b := DeriveKey(ed25519.NewKeyFromSeed(seed))
	if len(a) != KeySize || string(a) == string(b) {
		t.Fatalf("keys %x and %x", a, b)
	}
	seed[0] = 0
	if string(DeriveKey(ed25519.NewKeyFromSeed(seed))) != string(a) {
		t.Fatal("the same channel key gave another ticket key")
	}
}

// FuzzVerify: the origin parses tickets from anyone; none may panic, and
// none but the tracker's may pass.
func FuzzVerify(f *testing.F) {
	key := make([]byte, KeySize)
	now := time.Unix(1_764_040_000, 0)
	f.Add(Mint(key, "demo", 1, now.Add(time.Minute)))
	f.Add("1.2.3")
	f.Add("..")
	f.Fuzz(func(t *testing.T, tok string) {
		peer, err := Verify(key, "demo", tok, now)
		if err == nil && Mint(key, "demo", peer, now.Add(time.Minute)) == "" {
			t.Fatal("unreachable")
		}
		if err == nil && !strings.HasPrefix(tok, "1.") {
			t.Fatalf("accepted %q", tok)
		}
	})
}
