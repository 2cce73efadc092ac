package origin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Position is where a Source stands in the stream: what a restarted
// origin needs to continue it without going back in time.
type Position struct {
	// Seq counts the chunks the source handed out (a media source's
	// fragment sequence numbers go on from it).
	Seq uint32 `json:"seq"`
	// Ends is, per track id, the decode time at which the last chunk
	// handed out ended, in the track's timescale.
	Ends map[uint32]uint64 `json:"ends,omitempty"`
}

// Resumer is a Source that can continue a stream an earlier run of the
// origin began. Position is called after each Next; Resume, before the
// first Next, makes the source go on from pos: decode times and sequence
// numbers carry on from there instead of starting over.
type Resumer interface {
	Position() Position
	Resume(pos Position) error
}

// state is what the origin keeps in Config.StateFile, rewritten before
// each chunk goes out (so a chunk that was sent is always covered, even
// if the origin is killed right after).
type state struct {
	// Epoch is the run's stream epoch; the next run takes a larger one.
	Epoch uint64 `json:"epoch"`
	// NextSeq is the first chunk number the next run may use.
	NextSeq uint32 `json:"next_seq"`
	// Ended: the run sent the end of stream (peers have stopped).
	Ended bool `json:"ended,omitempty"`
	// Init is the SHA-256 (hex) of the run's init segment.
	Init   string   `json:"init_sha256,omitempty"`
	Source Position `json:"source"`
}

// loadState reads path; a missing file is a zero state (a first run).
func loadState(path string) (state, error) {
	var st state
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("state file: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("state file %s: %w", path, err)
	}
	return st, nil
}

// save writes st to path atomically (a temporary file renamed over it),
// so a kill mid-write leaves the previous state, never half of one.
func (st state) save(path string) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("state file %s: %w", path, err)
	}
	return nil
}
