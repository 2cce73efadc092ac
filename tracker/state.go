package tracker

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// secretFile is the resume secret's file in Config.StateDir.
const secretFile = "resume-secret"

// loadOrCreateSecret returns the resume secret kept in dir, creating dir
// (0700) and the secret (32 random bytes, base64, mode 0600) on first
// use. Two trackers starting at once on the same dir agree: the file
// appears whole or not at all, and the second reads the first's.
func loadOrCreateSecret(dir string, log *slog.Logger) ([]byte, error) {
	path := filepath.Join(dir, secretFile)
	if b, err := readSecret(path, log); err == nil {
		return b, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(dir, secretFile+".*")
	if err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(base64.StdEncoding.EncodeToString(secret) + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	// CreateTemp makes the file 0600. Link fails if another tracker got
	// there first: then its secret is the one.
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return readSecret(path, log)
	} else if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	log.Info("created a resume secret; peers can resume across restarts that keep it", "path", path)
	return secret, nil
}

func readSecret(path string, log *slog.Logger) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	secret, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(secret) < 16 {
		return nil, fmt.Errorf("%s is not a resume secret (base64 of at least 16 bytes): delete it to have a new one made, which invalidates peers' resume tokens", path)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("resume secret is readable by others; chmod 600 it", "path", path, "mode", fi.Mode().Perm())
	}
	return secret, nil
}
