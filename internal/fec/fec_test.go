package fec

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// subsets calls fn with every way of keeping exactly k of m shards.
func subsets(m, k int, fn func(keep []bool)) {
	for mask := 0; mask < 1<<m; mask++ {
		n := 0
		keep := make([]bool, m)
		for i := 0; i < m; i++ {
			if mask&(1<<i) != 0 {
				keep[i] = true
				n++
			}
		}
		if n == k {
			fn(keep)
		}
	}
}

func TestEveryKOfMRebuilds(t *testing.T) {
	for _, tc := range []struct{ k, m, size int }{
		{3, 4, 62500}, {2, 4, 1000}, {4, 4, 999}, {1, 2, 10}, {5, 8, 65536}, {3, 4, 1}, {3, 4, 0}, {1, 1, 7},
	} {
		c, err := New(tc.k, tc.m)
		if err != nil {
			t.Fatal(err)
		}
		chunk := randBytes(tc.size, uint64(tc.size))
		shards, err := c.Encode(chunk)
		if err != nil {
			t.Fatal(err)
		}
		if len(shards) != tc.m || len(shards[0]) != ShardSize(tc.size, tc.k) {
			t.Fatalf("k=%d m=%d: %d shards of %d", tc.k, tc.m, len(shards), len(shards[0]))
		}
		subsets(tc.m, tc.k, func(keep []bool) {
			got := make([][]byte, tc.m)
			for i := range got {
				if keep[i] {
					got[i] = bytes.Clone(shards[i])
				}
			}
			out, err := c.Reconstruct(got, tc.size)
			if err != nil || !bytes.Equal(out, chunk) {
				t.Fatalf("k=%d m=%d keep %v: err %v, equal %v", tc.k, tc.m, keep, err, bytes.Equal(out, chunk))
			}
			// Regenerate brings back every shard exactly.
			got = make([][]byte, tc.m)
			for i := range got {
				if keep[i] {
					got[i] = bytes.Clone(shards[i])
				}
			}
			if err := c.Regenerate(got); err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if !bytes.Equal(got[i], shards[i]) {
					t.Fatalf("k=%d m=%d keep %v: shard %d regenerated wrong", tc.k, tc.m, keep, i)
				}
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	if _, err := New(0, 4); err == nil {
		t.Error("k=0 accepted")
	}
	if _, err := New(5, 4); err == nil {
		t.Error("k>M accepted")
	}
	if _, err := New(1, 33); err == nil {
		t.Error("M=33 accepted")
	}
	c, _ := New(3, 4)
	shards, _ := c.Encode(randBytes(3000, 1))
	tests := []struct {
		name   string
		shards [][]byte
		length int
		want   error
	}{
		{"too few", [][]byte{shards[0], nil, nil, shards[3]}, 3000, ErrTooFewShards},
		{"wrong count", shards[:3], 3000, ErrShardCount},
		{"sizes differ", [][]byte{shards[0], shards[1][:10], shards[2], nil}, 3000, ErrShardSize},
		{"length too long", shards, 3001, ErrLength},
		{"length too short", shards, 2990 - 1000, ErrLength},
		{"negative length", shards, -1, ErrLength},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.Reconstruct(tc.shards, tc.length); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func benchCoder(b *testing.B) (*Coder, []byte) {
	c, err := New(3, 4)
	if err != nil {
		b.Fatal(err)
	}
	return c, randBytes(64<<10, 9)
}

// BenchmarkEncode64K: one 64 KiB chunk into 3+1 shards.
func BenchmarkEncode64K(b *testing.B) {
	c, chunk := benchCoder(b)
	b.SetBytes(int64(len(chunk)))
	for i := 0; i < b.N; i++ {
		if _, err := c.Encode(chunk); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReconstruct64K: rebuild a 64 KiB chunk with one data shard lost.
func BenchmarkReconstruct64K(b *testing.B) {
	c, chunk := benchCoder(b)
	shards, _ := c.Encode(chunk)
	work := make([][]byte, len(shards))
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		copy(work, shards)
		work[1] = nil
		if _, err := c.Reconstruct(work, len(chunk)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeReconstruct64K: both, the origin's and a peer's work for
// one chunk.
func BenchmarkEncodeReconstruct64K(b *testing.B) {
	c, chunk := benchCoder(b)
	b.SetBytes(int64(len(chunk)))
	for i := 0; i < b.N; i++ {
		shards, err := c.Encode(chunk)
		if err != nil {
			b.Fatal(err)
		}
		shards[0] = nil
		if _, err := c.Reconstruct(shards, len(chunk)); err != nil {
			b.Fatal(err)
		}
	}
}
