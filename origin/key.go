package origin

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// LoadKey reads the channel's Ed25519 private key from path, a PEM
// "PRIVATE KEY" block (PKCS #8, as `openssl genpkey -algorithm ed25519`
// writes). If path does not exist it creates it with a fresh key, mode
// 0600, and reports created. A channel keeps its key across origin
// restarts this way: peers and the tracker know the channel by its public
// key, and refuse an origin that signs with another.
func LoadKey(path string) (priv ed25519.PrivateKey, created bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		priv, err = createKey(path)
		if errors.Is(err, fs.ErrExist) {
			// Another process created it first: use that one.
			b, err = os.ReadFile(path)
		} else {
			return priv, err == nil, err
		}
	}
	if err != nil {
		return nil, false, fmt.Errorf("key file: %w", err)
	}
	priv, err = parseKey(b)
	if err != nil {
		return nil, false, fmt.Errorf("key file %s: %w", path, err)
	}
	return priv, false, nil
}

var errKeyFormat = errors.New("not an Ed25519 private key in PEM (a PKCS #8 \"PRIVATE KEY\" block, as coopcast or `openssl genpkey -algorithm ed25519` writes)")

func parseKey(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errKeyFormat
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errKeyFormat, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: it holds a %T", errKeyFormat, k)
	}
	return priv, nil
}

// createKey writes a fresh key to path, which must not exist yet.
func createKey(path string) (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		return nil, fmt.Errorf("key file: create: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return priv, nil
}
