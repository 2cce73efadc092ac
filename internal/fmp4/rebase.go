package fmp4

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// Rebaser passes an fMP4 stream through to a writer with every track's
// decode times moved back by the track's first, so that what a peer
// records of a live stream starts at time 0, not at the stream's age.
// Each track is rebased on its own first fragment, so tracks that start
// apart by less than a fragment keep that offset only to within it (a
// frame, in practice). A stream that does not start like an MP4 (the
// synthetic source's bytes) passes through unchanged. Writes may split
// boxes anywhere; a box is held until it is whole.
type Rebaser struct {
	w       io.Writer
	buf     []byte
	base    map[uint32]uint64
	decided bool // the first box header was seen
	pass    bool // not an MP4, or a box that cannot be rebased: pass the rest through
}

// NewRebaser returns a Rebaser writing to w.
func NewRebaser(w io.Writer) *Rebaser { return &Rebaser{w: w, base: map[uint32]uint64{}} }

// Write implements io.Writer.
func (r *Rebaser) Write(p []byte) (int, error) {
	if r.pass {
		return r.w.Write(p)
	}
	r.buf = append(r.buf, p...)
	for len(r.buf) >= 8 {
		size := uint64(binary.BigEndian.Uint32(r.buf))
		typ := string(r.buf[4:8])
		if !r.decided {
			r.decided = true
			if typ != "ftyp" && typ != "styp" && typ != "moov" && typ != "moof" {
				return len(p), r.passRest()
			}
		}
		if size == 1 {
			if len(r.buf) < 16 {
				break
			}
			size = binary.BigEndian.Uint64(r.buf[8:])
		}
		if size < 8 || size > MaxBox {
			return len(p), r.passRest() // runs to the end, or is not a box: leave it be
		}
		if uint64(len(r.buf)) < size {
			break
		}
		box := r.buf[:size]
		if typ == "moof" {
			if b, err := r.rebase(box); err == nil {
				box = b
			}
		}
		if _, err := r.w.Write(box); err != nil {
			return 0, err
		}
		r.buf = append(r.buf[:0], r.buf[size:]...)
	}
	return len(p), nil
}

func (r *Rebaser) passRest() error {
	r.pass = true
	_, err := r.w.Write(r.buf)
	r.buf = nil
	return err
}

// rebase returns moof with each traf's decode time less its track's base
// (the first it saw), fixing the sample data offsets if the size changed.
func (r *Rebaser) rebase(b []byte) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil { // mp4ff on a hostile moof
			out, err = nil, fmt.Errorf("%w: moof: %v", ErrMalformed, p)
		}
	}()
	moof, err := decodeMoof(b)
	if err != nil {
		return nil, err
	}
	for _, traf := range moof.Trafs {
		if traf.Tfhd == nil || traf.Tfdt == nil {
			return nil, fmt.Errorf("%w: traf without tfhd or tfdt", ErrMalformed)
		}
		id := traf.Tfhd.TrackID
		t := traf.Tfdt.BaseMediaDecodeTime()
		base, ok := r.base[id]
		if !ok {
			base, r.base[id] = t, t
		}
		v1 := traf.Tfdt.Version == 1
		traf.Tfdt.SetBaseMediaDecodeTime(t - min(t, base))
		if v1 {
			traf.Tfdt.Version = 1
		}
	}
	if delta := int64(moof.Size()) - int64(len(b)); delta != 0 {
		for _, traf := range moof.Trafs {
			for _, trun := range traf.Truns {
				if trun.HasDataOffset() {
					trun.DataOffset += int32(delta)
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := moof.Encode(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Length reads an fMP4 stream to its end and returns how long its main
// track plays: from the first fragment's start to the last one's end.
func Length(rd io.Reader) (float64, error) {
	r := NewReader(rd)
	if _, err := r.Init(); err != nil {
		return 0, err
	}
	var first, end uint64
	var scale uint32
	for n := 0; ; n++ {
		f, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
		if n == 0 {
			first = f.DecodeTime
		}
		end, scale = f.DecodeTime+f.Duration, f.Timescale
	}
	if scale == 0 {
		return 0, nil
	}
	return float64(end-first) / float64(scale), nil
}

// Flush writes what is held of an unfinished box (a stream cut short
// mid-box), unchanged.
func (r *Rebaser) Flush() error {
	if len(r.buf) == 0 {
		return nil
	}
	_, err := r.w.Write(r.buf)
	r.buf = r.buf[:0]
	return err
}
