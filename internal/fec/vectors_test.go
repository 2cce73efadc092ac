package fec

// Shared test vectors: testdata/vectors/fec.json holds what this package
// produces for fixed chunks (every shard of Encode, and what Reconstruct
// and Regenerate give for chosen erasures, corrupt shards among them), and
// the errors of bad input. The browser twin, webclient/js/rs.js, is checked
// against the same file by webclient/test/rs.test.js.
//
// TestFECVectors rebuilds the file from the Go code and fails if it
// differs from the committed one by a single byte; after an intended
// change, rewrite it with
//
//	go test ./internal/fec -run TestFECVectors -update
//
// TestFECVectorsReplay reads the committed file and checks Go against
// every entry. The file format is described in testdata/vectors/README.md.

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/coopcast/coopcast/internal/golden"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors/fec.json from what the Go code produces now")

var fecVectorsPath = filepath.Join("..", "..", "testdata", "vectors", "fec.json")

// vecPattern is the vectors' deterministic data (the same as
// internal/wire's and testdata/vectors/vectors.js'): xorshift32 from seed ^
// 0x9e3779b9, one byte (the top eight bits) per step.
func vecPattern(seed uint32, n int) []byte {
	x := seed ^ 0x9e3779b9
	if x == 0 {
		x = 1
	}
	b := make([]byte, n)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x >> 24)
	}
	return b
}

// vecBlob is a byte string in the vectors: always its length and SHA-256;
// the bytes themselves base64 (inline, then Pad zero bytes), or the seed
// of vecPattern that makes them (generated), or neither (digest only, for
// large outputs).
type vecBlob struct {
	Seed   *uint32 `json:"seed,omitempty"`
	Len    int     `json:"len"`
	SHA256 string  `json:"sha256"`
	B64    string  `json:"b64,omitempty"`
	Pad    int     `json:"pad,omitempty"`
}

func vecSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func vecInline(b []byte) vecBlob {
	return vecBlob{Len: len(b), SHA256: vecSum(b), B64: base64.StdEncoding.EncodeToString(b)}
}

func vecDigest(b []byte) vecBlob { return vecBlob{Len: len(b), SHA256: vecSum(b)} }

// bytes returns an inline or generated blob's bytes, checked against its
// length and hash.
func (v vecBlob) bytes() ([]byte, error) {
	var b []byte
	switch {
	case v.Seed != nil:
		b = vecPattern(*v.Seed, v.Len)
	case v.B64 != "" || v.Len == v.Pad:
		var err error
		if b, err = base64.StdEncoding.DecodeString(v.B64); err != nil {
			return nil, err
		}
		b = append(b, make([]byte, v.Pad)...)
	default:
		return nil, fmt.Errorf("blob of %d bytes is a digest only", v.Len)
	}
	if !v.matches(b) {
		return nil, fmt.Errorf("blob of %d bytes: got %d bytes with SHA-256 %s, want %s", v.Len, len(b), vecSum(b), v.SHA256)
	}
	return b, nil
}

func (v vecBlob) matches(b []byte) bool { return len(b) == v.Len && vecSum(b) == v.SHA256 }

// inlineMax: shards and chunks up to this many bytes are inline, larger
// ones generated (chunks) or digest only (shards, outputs).
const inlineMax = 2048

type fecVectors struct {
	About string `json:"about"`
	// MaxShards is fec.MaxShards.
	MaxShards int       `json:"max_shards"`
	Cases     []fecCase `json:"cases"`
	Bad       []fecBad  `json:"bad"`
}

// fecCase is one chunk coded for (k, M).
type fecCase struct {
	Name      string  `json:"name"`
	K         int     `json:"k"`
	M         int     `json:"m"`
	Chunk     vecBlob `json:"chunk"`
	ShardSize int     `json:"shard_size"`
	// Shards is Encode(chunk).
	Shards   []vecBlob    `json:"shards"`
	Erasures []fecErasure `json:"erasures"`
}

// fecErasure: Reconstruct and Regenerate of the case's shards with those
// in Missing left out (nil) and, first, byte 0 of those in Corrupt XORed
// with 0x5a. Chunk is Reconstruct's result (the case's chunk unless a
// shard was corrupt), Shards every shard after Regenerate.
type fecErasure struct {
	Missing []int     `json:"missing"`
	Corrupt []int     `json:"corrupt,omitempty"`
	Chunk   vecBlob   `json:"chunk"`
	Shards  []vecBlob `json:"shards"`
}

// fecBad is input the Go code rejects:
//
//	new          New(k, m)
//	reconstruct  New(k, m), then Reconstruct(shards, length)
//	regenerate   New(k, m), then Regenerate(shards)
//
// Shards holds null for a missing shard.
type fecBad struct {
	Name   string     `json:"name"`
	Op     string     `json:"op"`
	K      int        `json:"k"`
	M      int        `json:"m"`
	Shards []*vecBlob `json:"shards,omitempty"`
	Length int        `json:"length,omitempty"`
	// Category is the sentinel the error wraps (ErrTooFewShards, ...; ""
	// for New's errors), Error its whole text.
	Category string `json:"category"`
	Error    string `json:"error"`
}

var vecCategories = []struct {
	name string
	err  error
}{
	{"ErrTooFewShards", ErrTooFewShards}, {"ErrShardSize", ErrShardSize},
	{"ErrShardCount", ErrShardCount}, {"ErrLength", ErrLength},
}

func vecCategory(err error) string {
	for _, c := range vecCategories {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	return ""
}

// erase copies shards, flips byte 0 of those in corrupt and drops those in
// missing.
func erase(shards [][]byte, missing, corrupt []int) [][]byte {
	out := make([][]byte, len(shards))
	for i, s := range shards {
		out[i] = bytes.Clone(s)
	}
	for _, i := range corrupt {
		out[i][0] ^= 0x5a
	}
	for _, i := range missing {
		out[i] = nil
	}
	return out
}

// blobOf is b inline when short, else digest only.
func blobOf(b []byte) vecBlob {
	if len(b) <= inlineMax {
		return vecInline(b)
	}
	return vecDigest(b)
}

func buildFECVectors(t *testing.T) []byte {
	t.Helper()
	v := fecVectors{
		About: "Generated by `go test ./internal/fec -run TestFECVectors -update`; do not edit. " +
			"Checked by internal/fec/vectors_test.go and webclient/test/rs.test.js. Format: README.md here.",
		MaxShards: MaxShards,
	}
	type erasure struct{ missing, corrupt []int }
	for i, tc := range []struct {
		k, m, length int
		erasures     []erasure
	}{
		{3, 4, 0, []erasure{{missing: []int{1}}}},
		{3, 4, 1, []erasure{{missing: []int{0}}, {missing: []int{3}}}},
		{3, 4, 2, []erasure{{missing: []int{2}}}},
		{3, 4, 1001, []erasure{{missing: []int{0}}, {missing: []int{2}}, {missing: []int{3}}, {missing: []int{1}, corrupt: []int{3}}}},
		{1, 1, 7, []erasure{{}}},
		{4, 4, 999, []erasure{{}}},
		{1, 2, 10, []erasure{{missing: []int{0}}, {missing: []int{1}}}},
		{2, 4, 1000, []erasure{{missing: []int{0, 1}}, {missing: []int{1, 3}}, {missing: []int{0, 2}, corrupt: []int{3}}}},
		{5, 8, 777, []erasure{{missing: []int{0, 2, 4}}, {missing: []int{5, 6, 7}}, {missing: []int{1, 6, 7}}, {missing: []int{3}, corrupt: []int{1}}}},
		{10, 12, 3, []erasure{{missing: []int{0, 11}}, {missing: []int{1, 2}}}},
		{16, 32, 517, []erasure{{missing: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}}, {missing: []int{3, 17, 31}}}},
		{1, 32, 33, []erasure{{missing: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30}}}},
		{31, 32, 100, []erasure{{missing: []int{30}}, {missing: []int{31}}}},
		{32, 32, 40, []erasure{{}}},
		{3, 4, 100_000, []erasure{{missing: []int{1}}, {missing: []int{2}, corrupt: []int{0}}}},
		{5, 8, 65_536, []erasure{{missing: []int{0, 3, 7}}}},
		{16, 32, 100_003, []erasure{{missing: []int{0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30}}}},
	} {
		c, err := New(tc.k, tc.m)
		if err != nil {
			t.Fatal(err)
		}
		chunk := vecPattern(uint32(i+1), tc.length)
		fc := fecCase{Name: fmt.Sprintf("k=%d M=%d, %d bytes", tc.k, tc.m, tc.length), K: tc.k, M: tc.m, ShardSize: ShardSize(tc.length, tc.k)}
		if tc.length <= inlineMax {
			fc.Chunk = vecInline(chunk)
		} else {
			seed := uint32(i + 1)
			fc.Chunk = vecBlob{Seed: &seed, Len: tc.length, SHA256: vecSum(chunk)}
		}
		shards, err := c.Encode(chunk)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range shards {
			fc.Shards = append(fc.Shards, blobOf(s))
		}
		for _, e := range tc.erasures {
			got, err := c.Reconstruct(erase(shards, e.missing, e.corrupt), tc.length)
			if err != nil {
				t.Fatalf("%s missing %v: %v", fc.Name, e.missing, err)
			}
			if e.corrupt == nil && !bytes.Equal(got, chunk) {
				t.Fatalf("%s missing %v: wrong chunk", fc.Name, e.missing)
			}
			all := erase(shards, e.missing, e.corrupt)
			if err := c.Regenerate(all); err != nil {
				t.Fatalf("%s missing %v: %v", fc.Name, e.missing, err)
			}
			fe := fecErasure{Missing: append([]int{}, e.missing...), Corrupt: e.corrupt, Chunk: vecDigest(got)}
			for _, s := range all {
				fe.Shards = append(fe.Shards, vecDigest(s))
			}
			fc.Erasures = append(fc.Erasures, fe)
		}
		v.Cases = append(v.Cases, fc)
	}

	c, _ := New(3, 4)
	shards, _ := c.Encode(vecPattern(99, 30))
	b := func(i int) *vecBlob { x := vecInline(shards[i]); return &x }
	short := vecInline(shards[1][:9])
	for _, tc := range []fecBad{
		{Name: "k = 0", Op: "new", K: 0, M: 4},
		{Name: "k > M", Op: "new", K: 5, M: 4},
		{Name: "M = 0", Op: "new", K: 1, M: 0},
		{Name: "M = 33", Op: "new", K: 1, M: 33},
		{Name: "k negative", Op: "new", K: -1, M: 4},
		{Name: "too few shards", Op: "reconstruct", K: 3, M: 4, Shards: []*vecBlob{b(0), nil, nil, b(3)}, Length: 30},
		{Name: "none at all", Op: "reconstruct", K: 3, M: 4, Shards: []*vecBlob{nil, nil, nil, nil}, Length: 30},
		{Name: "3 shards where 4 are wanted", Op: "reconstruct", K: 3, M: 4, Shards: []*vecBlob{b(0), b(1), b(2)}, Length: 30},
		{Name: "5 shards where 4 are wanted", Op: "reconstruct", K: 3, M: 4, Shards: []*vecBlob{b(0), b(1), b(2), b(3), b(3)}, Length: 30},
		{Name: "shards differ in size", Op: "reconstruct", K: 3, M: 4, Shards: []*vecBlob{b(0), &short, b(2), nil}, Length: 30},
		{Name: "length longer than the shards hold", Op: "reconstruct", K: 3, M: 4, Shards: []*vecBlob{b(0), b(1), b(2), b(3)}, Length: 31},
		{Name: "length that needs smaller shards", Op: "reconstruct", K: 3, M: 4, Shards: []*vecBlob{b(0), b(1), b(2), b(3)}, Length: 27},
		{Name: "negative length", Op: "reconstruct", K: 3, M: 4, Shards: []*vecBlob{b(0), b(1), b(2), b(3)}, Length: -1},
		{Name: "regenerate from too few", Op: "regenerate", K: 3, M: 4, Shards: []*vecBlob{nil, b(1), nil, b(3)}},
		{Name: "regenerate with sizes that differ", Op: "regenerate", K: 3, M: 4, Shards: []*vecBlob{b(0), &short, nil, b(3)}},
		{Name: "regenerate 3 shards where 4 are wanted", Op: "regenerate", K: 3, M: 4, Shards: []*vecBlob{b(0), b(1), b(2)}},
	} {
		err := runFECBad(tc)
		if err == nil || errors.Is(err, errVectorPassed) || strings.HasPrefix(err.Error(), "vector:") {
			t.Fatalf("%s: %v", tc.Name, err)
		}
		tc.Category, tc.Error = vecCategory(err), err.Error()
		v.Bad = append(v.Bad, tc)
	}

	out, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

var errVectorPassed = errors.New("no error")

func runFECBad(b fecBad) error {
	c, err := New(b.K, b.M)
	if b.Op == "new" {
		if err == nil {
			return errVectorPassed
		}
		return err
	}
	if err != nil {
		return fmt.Errorf("vector: %w", err)
	}
	shards := make([][]byte, len(b.Shards))
	for i, s := range b.Shards {
		if s != nil {
			if shards[i], err = s.bytes(); err != nil {
				return fmt.Errorf("vector: %w", err)
			}
		}
	}
	switch b.Op {
	case "reconstruct":
		_, err = c.Reconstruct(shards, b.Length)
	case "regenerate":
		err = c.Regenerate(shards)
	default:
		return fmt.Errorf("vector: unknown op %q", b.Op)
	}
	if err == nil {
		return errVectorPassed
	}
	return err
}

// TestFECVectors fails when the Go code no longer produces the committed
// vectors byte for byte.
func TestFECVectors(t *testing.T) {
	got := buildFECVectors(t)
	golden.Check(t, fecVectorsPath, got, *update, 120_000, "update webclient/js/rs.js to match")
}

// TestFECVectorsReplay checks the Go code against every entry of the
// committed file, as webclient/test/rs.test.js does for the browser.
func TestFECVectorsReplay(t *testing.T) {
	data, err := os.ReadFile(fecVectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var v fecVectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Cases) < 15 || len(v.Bad) < 10 {
		t.Fatalf("only %d cases and %d bad vectors", len(v.Cases), len(v.Bad))
	}
	for _, fc := range v.Cases {
		c, err := New(fc.K, fc.M)
		if err != nil {
			t.Fatal(err)
		}
		chunk, err := fc.Chunk.bytes()
		if err != nil {
			t.Fatalf("%s: %v", fc.Name, err)
		}
		shards, err := c.Encode(chunk)
		if err != nil || len(shards) != len(fc.Shards) || ShardSize(len(chunk), fc.K) != fc.ShardSize {
			t.Fatalf("%s: %d shards, %v", fc.Name, len(shards), err)
		}
		for i, s := range shards {
			if !fc.Shards[i].matches(s) {
				t.Fatalf("%s: shard %d differs", fc.Name, i)
			}
		}
		for _, e := range fc.Erasures {
			got, err := c.Reconstruct(erase(shards, e.Missing, e.Corrupt), len(chunk))
			if err != nil || !e.Chunk.matches(got) {
				t.Fatalf("%s missing %v corrupt %v: reconstruct differs (%v)", fc.Name, e.Missing, e.Corrupt, err)
			}
			all := erase(shards, e.Missing, e.Corrupt)
			if err := c.Regenerate(all); err != nil {
				t.Fatal(err)
			}
			for i, s := range all {
				if !e.Shards[i].matches(s) {
					t.Fatalf("%s missing %v corrupt %v: shard %d regenerated differs", fc.Name, e.Missing, e.Corrupt, i)
				}
			}
		}
	}
	for _, b := range v.Bad {
		err := runFECBad(b)
		if err == nil || err.Error() != b.Error || vecCategory(err) != b.Category {
			t.Errorf("%s: got %q (%s), want %q (%s)", b.Name, err, vecCategory(err), b.Error, b.Category)
		}
	}
}
