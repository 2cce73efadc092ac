package golden

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// Pattern is the vectors' deterministic data (the same as
// testdata/vectors/vectors.js makes): xorshift32 from seed ^ 0x9e3779b9,
// one byte (the top eight bits) per step.
func Pattern(seed uint32, n int) []byte {
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

// Blob is a byte string in the vectors: always its length and SHA-256;
// the bytes themselves base64 (inline, then Pad zero bytes), or the seed
// of Pattern that makes them (generated), or neither (digest only, for
// large outputs).
type Blob struct {
	Seed   *uint32 `json:"seed,omitempty"`
	Len    int     `json:"len"`
	SHA256 string  `json:"sha256"`
	B64    string  `json:"b64,omitempty"`
	Pad    int     `json:"pad,omitempty"`
}

// Sum is b's SHA-256 in hex.
func Sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Gen is the blob of Pattern(seed, n), and those bytes.
func Gen(seed uint32, n int) (Blob, []byte) {
	b := Pattern(seed, n)
	return Blob{Seed: &seed, Len: n, SHA256: Sum(b)}, b
}

// Inline is b, written out.
func Inline(b []byte) Blob {
	return Blob{Len: len(b), SHA256: Sum(b), B64: base64.StdEncoding.EncodeToString(b)}
}

// Padded is b inline up to its trailing zeros, which it counts.
func Padded(b []byte) Blob {
	n := len(bytes.TrimRight(b, "\x00"))
	return Blob{Len: len(b), SHA256: Sum(b), B64: base64.StdEncoding.EncodeToString(b[:n]), Pad: len(b) - n}
}

// Digest is b's length and hash only.
func Digest(b []byte) Blob { return Blob{Len: len(b), SHA256: Sum(b)} }

// Bytes returns an inline or generated blob's bytes, checked against its
// length and hash.
func (v Blob) Bytes() ([]byte, error) {
	var b []byte
	switch {
	case v.Seed != nil:
		b = Pattern(*v.Seed, v.Len)
	case v.B64 != "" || v.Len == v.Pad:
		var err error
		if b, err = base64.StdEncoding.DecodeString(v.B64); err != nil {
			return nil, err
		}
		b = append(b, make([]byte, v.Pad)...)
	default:
		return nil, fmt.Errorf("blob of %d bytes is a digest only", v.Len)
	}
	if !v.Matches(b) {
		return nil, fmt.Errorf("blob of %d bytes: got %d bytes with SHA-256 %s, want %s", v.Len, len(b), Sum(b), v.SHA256)
	}
	return b, nil
}

// Matches reports whether b is the blob's bytes.
func (v Blob) Matches(b []byte) bool { return len(b) == v.Len && Sum(b) == v.SHA256 }
