package fmp4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"
)

var ftyp = []byte{0, 0, 0, 16, 'f', 't', 'y', 'p', 'i', 's', 'o', 'm', 0, 0, 0, 0}

// nested is a box of type outer holding depth-1 boxes of type typ, each
// inside the one before: what a hostile source sends to make a recursive
// decoder work for ever.
func nested(depth int, outer, typ string) []byte {
	var b []byte
	size := 8*depth + 8
	for i := 0; i < depth; i++ {
		t := typ
		if i == 0 {
			t = outer
		}
		b = binary.BigEndian.AppendUint32(b, uint32(size-8*i))
		b = append(b, t...)
	}
	return append(b, 0, 0, 0, 8, 'f', 'r', 'e', 'e')
}

// patchBox returns a copy of b with the uint32 at off bytes into the
// first box of type typ set to v.
func patchBox(t *testing.T, b []byte, typ string, off int, v uint32) []byte {
	t.Helper()
	i := bytes.Index(b, []byte(typ))
	if i < 4 {
		t.Fatalf("no %s box", typ)
	}
	out := bytes.Clone(b)
	binary.BigEndian.PutUint32(out[i-4+off:], v)
	return out
}

// TestHostileBoxes: boxes built to hurt (sizes that lie, nesting that
// never ends, sample counts in the billions) are each refused with an
// error that names the fault, without a panic, and without allocating
// more than a few MB (runtime.MemStats.TotalAlloc before and after, in
// this process).
func TestHostileBoxes(t *testing.T) {
	card := testcard(t)
	in, fs := readAll(t, card)
	initB := in.Bytes
	frag := fs[0].Bytes
	withFrag := func(f []byte) []byte { return append(bytes.Clone(initB), f...) }
	cases := []struct {
		name string
		b    []byte
		want error
		says string
	}{
		{"size 0 (to the end of the stream)", withFrag([]byte{0, 0, 0, 0, 'm', 'o', 'o', 'f'}), ErrMalformed, "runs to the end"},
		{"size 1, a 64-bit size of 2^63", withFrag([]byte{0, 0, 0, 1, 'm', 'o', 'o', 'f', 0x80, 0, 0, 0, 0, 0, 0, 0}), ErrMalformed, "more than"},
		{"size smaller than its header", withFrag([]byte{0, 0, 0, 4, 'm', 'o', 'o', 'f'}), ErrMalformed, "claims 4 bytes"},
		{"claims 60 MB, sends 100 bytes", withFrag(append([]byte{0x03, 0xc0, 0, 0, 'm', 'd', 'a', 't'}, make([]byte, 92)...)), ErrTruncated, "100 of 62914560"},
		{"moov nested 200,000 deep", append(bytes.Clone(ftyp), nested(200_000, "moov", "trak")...), ErrMalformed, "nest more than"},
		{"moov nested 40 deep in udta", append(bytes.Clone(ftyp), nested(40, "moov", "udta")...), ErrMalformed, "nest more than"},
		{"moof nested 100,000 deep", withFrag(append(nested(100_000, "moof", "traf"), 0, 0, 0, 8, 'm', 'd', 'a', 't')), ErrMalformed, "nest more than"},
		{"trun claiming 2^32-1 samples", withFrag(patchBox(t, frag, "trun", 12, 0xffffffff)), ErrMalformed, "trun"},
		{"stsz claiming 2^32-1 samples", patchBox(t, card, "stsz", 16, 0xffffffff), ErrMalformed, "stsz"},
		{"stts claiming 2^32-1 entries", patchBox(t, card, "stts", 12, 0xffffffff), ErrMalformed, "stts"},
		{"moov truncated mid-box", card[:len(initB)-100], ErrTruncated, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			before := ms.TotalAlloc
			r := NewReader(bytes.NewReader(c.b))
			var err error
			if _, err = r.Init(); err == nil {
				for i := 0; err == nil && i < 100; i++ {
					_, err = r.Next()
				}
			}
			runtime.ReadMemStats(&ms)
			alloc := ms.TotalAlloc - before
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("got %v, want %v saying %q", err, c.want, c.says)
			}
			if limit := uint64(4<<20 + 4*len(c.b)); alloc > limit {
				t.Errorf("allocated %d KB for %d bytes of input, want at most %d KB", alloc>>10, len(c.b), limit>>10)
			}
			t.Logf("%v (allocated %d KB)", err, alloc>>10)
		})
	}
}

// TestNestingRealStreams: the nesting check passes the real init
// segments and fragments (the test card's).
func TestNestingRealStreams(t *testing.T) {
	in, fs := readAll(t, testcard(t))
	if err := checkNesting(in.Bytes); err != nil {
		t.Fatal(err)
	}
	for i, f := range fs {
		if err := checkNesting(f.Bytes); err != nil {
			t.Fatalf("fragment %d: %v", i, err)
		}
	}
}
