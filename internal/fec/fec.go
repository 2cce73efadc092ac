package fec

import (
	"errors"
	"fmt"

	"github.com/klauspost/reedsolomon"
)

// MaxShards bounds M.
const MaxShards = 32

// Errors callers branch on.
var (
	ErrTooFewShards = errors.New("fec: fewer than k shards present")
	ErrShardSize    = errors.New("fec: shards differ in size")
	ErrShardCount   = errors.New("fec: wrong number of shards")
	ErrLength       = errors.New("fec: length does not fit the shards")
)

// Coder codes chunks for one (k, M). It is safe for concurrent use.
type Coder struct {
	k, m int
	enc  reedsolomon.Encoder // nil when k == m: no parity
}

// New returns a Coder where any k of m shards rebuild a chunk.
func New(k, m int) (*Coder, error) {
	if m < 1 || m > MaxShards {
		return nil, fmt.Errorf("fec: M (shards) must be in [1, %d], got %d", MaxShards, m)
	}
	if k < 1 || k > m {
		return nil, fmt.Errorf("fec: k must be in [1, M=%d], got %d", m, k)
	}
	c := &Coder{k: k, m: m}
	if k < m {
		enc, err := reedsolomon.New(k, m-k)
		if err != nil {
			return nil, fmt.Errorf("fec: %w", err)
		}
		c.enc = enc
	}
	return c, nil
}

// K is the number of shards that rebuild a chunk.
func (c *Coder) K() int { return c.k }

// M is the number of shards.
func (c *Coder) M() int { return c.m }

// ShardSize is the size of each shard of a chunk of length bytes.
func ShardSize(length, k int) int { return (length + k - 1) / k }

// Encode splits chunk into M shards of ShardSize(len(chunk), k) bytes.
// The shards are fresh memory; chunk is not kept. An empty chunk gives M
// empty shards.
func (c *Coder) Encode(chunk []byte) ([][]byte, error) {
	size := ShardSize(len(chunk), c.k)
	buf := make([]byte, size*c.m)
	copy(buf, chunk)
	shards := make([][]byte, c.m)
	for i := range shards {
		shards[i] = buf[i*size : (i+1)*size : (i+1)*size]
	}
	if c.enc != nil && size > 0 {
		if err := c.enc.Encode(shards); err != nil {
			return nil, fmt.Errorf("fec: encode: %w", err)
		}
	}
	return shards, nil
}

// check validates a shard set: M entries, at least k present, all of one
// size.
func (c *Coder) check(shards [][]byte) (size int, err error) {
	if len(shards) != c.m {
		return 0, fmt.Errorf("%w: got %d, want %d", ErrShardCount, len(shards), c.m)
	}
	present := 0
	size = -1
	for _, s := range shards {
		if s == nil {
			continue
		}
		present++
		if size >= 0 && len(s) != size {
			return 0, ErrShardSize
		}
		size = len(s)
	}
	if present < c.k {
		return 0, fmt.Errorf("%w: have %d, need %d", ErrTooFewShards, present, c.k)
	}
	return size, nil
}

// Reconstruct rebuilds the chunk of length bytes from shards, in which
// missing ones are nil (any k suffice). Missing data shards are filled in
// shards as a side effect.
func (c *Coder) Reconstruct(shards [][]byte, length int) ([]byte, error) {
	size, err := c.check(shards)
	if err != nil {
		return nil, err
	}
	if length < 0 || ShardSize(length, c.k) != size {
		return nil, fmt.Errorf("%w: %d bytes in %d shards of %d", ErrLength, length, c.k, size)
	}
	if size == 0 {
		return []byte{}, nil
	}
	if c.enc != nil {
		if err := c.enc.ReconstructData(shards); err != nil {
			return nil, fmt.Errorf("fec: reconstruct: %w", err)
		}
	}
	out := make([]byte, 0, length)
	for i := 0; i < c.k && len(out) < length; i++ {
		out = append(out, shards[i][:min(size, length-len(out))]...)
	}
	return out, nil
}

// Regenerate fills every missing (nil) shard, data and parity, from any k
// present, so a relaying peer can forward a shard it never received.
func (c *Coder) Regenerate(shards [][]byte) error {
	size, err := c.check(shards)
	if err != nil {
		return err
	}
	if size == 0 {
		for i := range shards {
			if shards[i] == nil {
				shards[i] = []byte{}
			}
		}
		return nil
	}
	if c.enc == nil {
		return nil // k == M: all present already
	}
	if err := c.enc.Reconstruct(shards); err != nil {
		return fmt.Errorf("fec: regenerate: %w", err)
	}
	return nil
}
