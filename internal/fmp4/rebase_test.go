package fmp4

import (
	"bytes"
	"math"
	"testing"
)

// TestRebaser: a stream joined mid-way, 100 s into its life, written in
// pieces that split boxes anywhere, comes out starting at decode time 0
// on every track, each fragment as long as before, and plays as long.
func TestRebaser(t *testing.T) {
	in, fs := readAll(t, testcard(t))
	shift := map[uint32]uint64{}
	for _, tr := range in.Tracks {
		shift[tr.ID] = 100 * uint64(tr.Timescale)
	}
	var live bytes.Buffer
	live.Write(in.Bytes)
	for i, f := range fs[3:] {
		g, err := Shift(f, shift, uint32(i+1))
		if err != nil {
			t.Fatal(err)
		}
		live.Write(g.Bytes)
	}
	var out bytes.Buffer
	r := NewRebaser(&out)
	b := live.Bytes()
	for len(b) > 0 {
		n := min(len(b), 997)
		if _, err := r.Write(b[:n]); err != nil {
			t.Fatal(err)
		}
		b = b[n:]
	}
	if out.Len() != live.Len() {
		t.Fatalf("wrote %d bytes of %d", out.Len(), live.Len())
	}
	_, got := readAll(t, out.Bytes())
	if len(got) != len(fs)-3 {
		t.Fatalf("%d fragments, want %d", len(got), len(fs)-3)
	}
	for _, tr := range in.Tracks {
		start, _, _ := got[0].Span(tr.ID)
		want0, _, _ := fs[3].Span(tr.ID)
		want1, _, _ := fs[4].Span(tr.ID)
		next, _, _ := got[1].Span(tr.ID)
		if start != 0 || next != want1-want0 {
			t.Errorf("track %d: starts at %d, next fragment at %d; want 0 and %d", tr.ID, start, next, want1-want0)
		}
	}
	d, err := Length(bytes.NewReader(out.Bytes()))
	wantLen := float64(fs[len(fs)-1].DecodeTime+fs[len(fs)-1].Duration-fs[3].DecodeTime) / float64(fs[3].Timescale)
	if err != nil || math.Abs(d-wantLen) > 1e-9 {
		t.Errorf("Length %v %v, want %v", d, err, wantLen)
	}
}

// TestRebaserPassesOtherBytes: a stream that is not MP4 (the synthetic
// source) passes through byte for byte.
func TestRebaserPassesOtherBytes(t *testing.T) {
	in := bytes.Repeat([]byte("coopcast synthetic chunk "), 1000)
	var out bytes.Buffer
	r := NewRebaser(&out)
	for _, part := range [][]byte{in[:5], in[5:4000], in[4000:]} {
		if _, err := r.Write(part); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(out.Bytes(), in) {
		t.Fatalf("%d bytes out of %d, changed", out.Len(), len(in))
	}
}

// FuzzRebaser: any bytes, split anywhere, never panic the Rebaser; a
// stream the Reader takes comes out starting at decode time 0.
func FuzzRebaser(f *testing.F) {
	card := testcard(f)
	in, fs := readAll(f, card)
	f.Add(card[:len(in.Bytes)+len(fs[0].Bytes)+len(fs[1].Bytes)], 100)
	f.Add([]byte("not an mp4 at all"), 3)
	f.Add([]byte{0, 0, 0, 8, 'm', 'o', 'o', 'f'}, 4)
	f.Fuzz(func(t *testing.T, b []byte, split int) {
		var out bytes.Buffer
		r := NewRebaser(&out)
		split = min(max(split, 0), len(b))
		r.Write(b[:split])
		r.Write(b[split:])
		r.Flush()
		src := NewReader(bytes.NewReader(b))
		if _, err := src.Init(); err != nil {
			return
		}
		if _, err := src.Next(); err != nil {
			return
		}
		got := NewReader(bytes.NewReader(out.Bytes()))
		if _, err := got.Init(); err != nil {
			t.Fatalf("rebased init: %v", err)
		}
		fr, err := got.Next()
		if err != nil {
			t.Fatalf("rebased first fragment: %v", err)
		}
		if fr.DecodeTime != 0 {
			t.Fatalf("rebased first fragment at %d", fr.DecodeTime)
		}
	})
}
