// Package fmp4 reads a fragmented MP4 (CMAF-style) stream box by box: the
// init segment (ftyp + moov) and then one media fragment (moof + mdat, with
// any styp, prft or emsg boxes before it) at a time. It checks what coopcast
// relies on, describes the tracks, and can shift a fragment's decode times
// so a looped file plays as one never-ending live stream.
//
// Box parsing is github.com/Eyevinn/mp4ff's; this package only frames the
// stream, bounds what an untrusted source can make it hold, and decides.
package fmp4

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/Eyevinn/mp4ff/mp4"
)

// MaxBox bounds one box (and so one fragment's mdat): larger is refused
// rather than buffered.
const MaxBox = 64 << 20

// Errors a source can cause. Each wraps the detail.
var (
	ErrNotMP4     = errors.New("fmp4: not an MP4 stream")
	ErrTruncated  = errors.New("fmp4: stream ends inside a box")
	ErrCodec      = errors.New("fmp4: codec cannot be carried")
	ErrBackwards  = errors.New("fmp4: decode time jumps backwards")
	ErrNotFragged = errors.New("fmp4: MP4 is not fragmented")
	ErrMalformed  = errors.New("fmp4: malformed box")
)

// Track is one track of the init segment.
type Track struct {
	ID        uint32 `json:"id"`
	Kind      string `json:"kind"` // "video" or "audio"
	Codec     string `json:"codec"`
	Timescale uint32 `json:"timescale"`
	Width     int    `json:"width,omitempty"`
	Height    int    `json:"height,omitempty"`
	trex      *mp4.TrexBox
}

// Init is the parsed init segment.
type Init struct {
	Bytes  []byte
	Tracks []Track
	// Main is the index in Tracks of the track whose keyframes and times
	// define chunks: the video track, or the first track.
	Main int
}

// Codecs is the RFC 6381 codecs string of the stream, as MSE wants it.
func (in *Init) Codecs() string {
	s := ""
	for i, t := range in.Tracks {
		if i > 0 {
			s += ","
		}
		s += t.Codec
	}
	return s
}

// Fragment is one media fragment.
type Fragment struct {
	Bytes []byte
	// Keyframe: the main track's first sample is a sync sample, so a
	// decoder can start here.
	Keyframe bool
	// DecodeTime and Duration of the main track, in Timescale units.
	DecodeTime uint64
	Duration   uint64
	Timescale  uint32
	// per track: decode time at the start and the end of the fragment
	start, end map[uint32]uint64
	main       uint32
}

// Reader reads an fMP4 stream.
type Reader struct {
	r    *bufio.Reader
	init *Init
	// end is, per track, where the last fragment ended: the next must not
	// start before it.
	end map[uint32]uint64
}

// NewReader reads from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10), end: map[uint32]uint64{}}
}

// box reads one whole box. io.EOF only when the stream ends cleanly
// between boxes.
func (r *Reader) box() (typ string, b []byte, err error) {
	var hdr [16]byte
	n, err := io.ReadFull(r.r, hdr[:8])
	if err == io.EOF {
		return "", nil, io.EOF
	}
	if err != nil {
		return "", nil, fmt.Errorf("%w (%d bytes of a box header)", ErrTruncated, n)
	}
	size := uint64(binary.BigEndian.Uint32(hdr[:4]))
	typ = string(hdr[4:8])
	hlen := 8
	switch size {
	case 0:
		return typ, nil, fmt.Errorf("%w: box %q runs to the end of the stream, which a live stream has not", ErrMalformed, printable(typ))
	case 1:
		if _, err := io.ReadFull(r.r, hdr[8:16]); err != nil {
			return typ, nil, fmt.Errorf("%w (in the large size of box %q)", ErrTruncated, printable(typ))
		}
		size = binary.BigEndian.Uint64(hdr[8:16])
		hlen = 16
	}
	if size < uint64(hlen) {
		return typ, nil, fmt.Errorf("%w: box %q claims %d bytes", ErrMalformed, printable(typ), size)
	}
	if size > MaxBox {
		return typ, nil, fmt.Errorf("%w: box %q is %d bytes, more than the %d allowed", ErrMalformed, printable(typ), size, MaxBox)
	}
	// Grow as bytes arrive: a header may claim more than ever comes.
	var buf bytes.Buffer
	buf.Grow(int(min(size, 1<<20)))
	buf.Write(hdr[:hlen])
	if n, err := io.CopyN(&buf, r.r, int64(size)-int64(hlen)); err != nil {
		return typ, nil, fmt.Errorf("%w: box %q has %d of %d bytes", ErrTruncated, printable(typ), n+int64(hlen), size)
	}
	return typ, buf.Bytes(), nil
}

func printable(s string) string {
	for _, c := range []byte(s) {
		if c < 0x20 || c > 0x7e {
			return fmt.Sprintf("%x", s)
		}
	}
	return s
}

// Init reads up to and including the moov box and returns the init
// segment. It must be called first.
func (r *Reader) Init() (*Init, error) {
	if r.init != nil {
		return r.init, nil
	}
	var buf bytes.Buffer
	for first := true; ; first = false {
		typ, b, err := r.box()
		if err == io.EOF {
			if first {
				return nil, fmt.Errorf("%w: the stream is empty", ErrNotMP4)
			}
			return nil, fmt.Errorf("%w: no moov box", ErrNotMP4)
		}
		if !first && (typ == "mdat" || typ == "moof") {
			return nil, fmt.Errorf("%w: %s before moov", ErrNotFragged, typ)
		}
		if err != nil {
			if first {
				return nil, fmt.Errorf("%w (%s)", ErrNotMP4, strings.TrimPrefix(err.Error(), "fmp4: "))
			}
			return nil, err
		}
		if first && typ != "ftyp" && typ != "styp" && typ != "moov" {
			return nil, fmt.Errorf("%w: it starts with %q, not ftyp", ErrNotMP4, printable(typ))
		}
		switch typ {
		case "ftyp", "moov":
			buf.Write(b)
		case "mdat", "moof":
			return nil, fmt.Errorf("%w: %s before moov", ErrNotFragged, typ)
		}
		if typ == "moov" {
			in, err := parseMoov(b)
			if err != nil {
				return nil, err
			}
			in.Bytes = buf.Bytes()
			r.init = in
			return in, nil
		}
	}
}

func parseMoov(b []byte) (in *Init, err error) {
	defer func() {
		if p := recover(); p != nil { // mp4ff on hostile input
			in, err = nil, fmt.Errorf("%w: moov: %v", ErrMalformed, p)
		}
	}()
	box, err := mp4.DecodeBox(0, bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: moov: %w", ErrMalformed, err)
	}
	moov, ok := box.(*mp4.MoovBox)
	if !ok {
		return nil, fmt.Errorf("%w: moov", ErrMalformed)
	}
	if moov.Mvex == nil {
		return nil, fmt.Errorf("%w: the moov has no mvex (fragment it, e.g. ffmpeg -movflags frag_keyframe+empty_moov+default_base_moof)", ErrNotFragged)
	}
	in = &Init{Main: -1}
	for _, trak := range moov.Traks {
		t, err := describe(trak)
		if err != nil {
			return nil, err
		}
		for _, x := range moov.Mvex.Trexs {
			if x.TrackID == t.ID {
				t.trex = x
			}
		}
		if t.Kind == "video" && in.Main < 0 {
			in.Main = len(in.Tracks)
		}
		in.Tracks = append(in.Tracks, t)
	}
	if len(in.Tracks) == 0 {
		return nil, fmt.Errorf("%w: no tracks", ErrMalformed)
	}
	if in.Main < 0 {
		in.Main = 0
	}
	return in, nil
}

// describe names a track's kind and codec, refusing what browsers and
// coopcast cannot carry.
func describe(trak *mp4.TrakBox) (Track, error) {
	if trak.Tkhd == nil || trak.Mdia == nil || trak.Mdia.Mdhd == nil || trak.Mdia.Hdlr == nil ||
		trak.Mdia.Minf == nil || trak.Mdia.Minf.Stbl == nil || trak.Mdia.Minf.Stbl.Stsd == nil {
		return Track{}, fmt.Errorf("%w: a trak lacks tkhd, mdhd, hdlr or stsd", ErrMalformed)
	}
	t := Track{ID: trak.Tkhd.TrackID, Timescale: trak.Mdia.Mdhd.Timescale}
	if t.Timescale == 0 {
		return Track{}, fmt.Errorf("%w: track %d has timescale 0", ErrMalformed, t.ID)
	}
	stsd := trak.Mdia.Minf.Stbl.Stsd
	switch trak.Mdia.Hdlr.HandlerType {
	case "vide":
		t.Kind = "video"
		switch {
		case stsd.AvcX != nil && stsd.AvcX.AvcC != nil:
			c := stsd.AvcX.AvcC
			if name, ok := unplayableAVC[c.AVCProfileIndication]; ok {
				return Track{}, fmt.Errorf("%w: video track %d is H.264 %s, which browsers do not play; re-encode with -pix_fmt yuv420p (ffmpeg -i IN -c:v libx264 -pix_fmt yuv420p -c:a copy OUT.mp4)", ErrCodec, t.ID, name)
			}
			t.Codec = fmt.Sprintf("%s.%02x%02x%02x", stsd.AvcX.Type(), c.AVCProfileIndication, c.ProfileCompatibility, c.AVCLevelIndication)
			t.Width, t.Height = int(stsd.AvcX.Width), int(stsd.AvcX.Height)
		case stsd.HvcX != nil:
			t.Codec = stsd.HvcX.Type()
			t.Width, t.Height = int(stsd.HvcX.Width), int(stsd.HvcX.Height)
		default:
			return Track{}, fmt.Errorf("%w: video track %d is %s; coopcast carries H.264 (avc1/avc3) and H.265 (hvc1/hev1)", ErrCodec, t.ID, entryName(stsd))
		}
	case "soun":
		t.Kind = "audio"
		switch {
		case stsd.Mp4a != nil:
			t.Codec = "mp4a.40.2"
		case stsd.Opus != nil:
			t.Codec = "opus"
		default:
			return Track{}, fmt.Errorf("%w: audio track %d is %s; coopcast carries AAC (mp4a) and Opus", ErrCodec, t.ID, entryName(stsd))
		}
	default:
		return Track{}, fmt.Errorf("%w: track %d is a %q track; coopcast carries video and audio", ErrCodec, t.ID, printable(trak.Mdia.Hdlr.HandlerType))
	}
	return t, nil
}

// unplayableAVC are the H.264 profiles (by profile_idc) that browsers'
// decoders refuse: more than 8 bits, or chroma other than 4:2:0. libx264
// picks High 4:4:4 for an RGB source unless told -pix_fmt yuv420p.
var unplayableAVC = map[byte]string{
	110: "High 10",
	122: "High 4:2:2",
	244: "High 4:4:4",
	44:  "CAVLC 4:4:4 Intra",
}

func entryName(stsd *mp4.StsdBox) string {
	if len(stsd.Children) == 0 {
		return "empty"
	}
	return fmt.Sprintf("%q", printable(stsd.Children[0].Type()))
}

// Next reads the next fragment. It returns io.EOF at a clean end of the
// stream, and an error wrapping ErrTruncated when the stream stops inside
// a fragment.
func (r *Reader) Next() (Fragment, error) {
	if r.init == nil {
		if _, err := r.Init(); err != nil {
			return Fragment{}, err
		}
	}
	var buf bytes.Buffer
	moofAt := -1
	for {
		typ, b, err := r.box()
		if err == io.EOF {
			if buf.Len() > 0 {
				return Fragment{}, fmt.Errorf("%w: the stream ends after a %s without its mdat", ErrTruncated, "moof")
			}
			return Fragment{}, io.EOF
		}
		if err != nil {
			return Fragment{}, err
		}
		switch typ {
		case "moof":
			if moofAt >= 0 {
				return Fragment{}, fmt.Errorf("%w: two moof boxes without an mdat between", ErrMalformed)
			}
			moofAt = buf.Len()
			buf.Write(b)
		case "mdat":
			if moofAt < 0 {
				return Fragment{}, fmt.Errorf("%w: mdat without a moof", ErrMalformed)
			}
			buf.Write(b)
			f, err := r.parseFragment(buf.Bytes(), moofAt)
			if err != nil {
				return Fragment{}, err
			}
			return f, nil
		case "styp", "prft", "emsg", "sidx":
			buf.Write(b)
		case "mfra", "free", "skip", "udta", "meta":
			// not part of any fragment
		case "moov", "ftyp":
			return Fragment{}, fmt.Errorf("%w: a second %s mid-stream (a new stream needs a new channel)", ErrMalformed, typ)
		default:
			// Unknown top-level boxes are skipped, as the format allows.
		}
		if buf.Len() > MaxBox {
			return Fragment{}, fmt.Errorf("%w: boxes before the mdat exceed %d bytes", ErrMalformed, MaxBox)
		}
	}
}

func (r *Reader) parseFragment(b []byte, moofAt int) (f Fragment, err error) {
	moof, err := decodeMoof(b[moofAt:])
	if err != nil {
		return Fragment{}, err
	}
	main := r.init.Tracks[r.init.Main]
	f = Fragment{Bytes: b, start: map[uint32]uint64{}, end: map[uint32]uint64{}, main: main.ID}
	f.Timescale = main.Timescale
	for _, traf := range moof.Trafs {
		if traf.Tfhd == nil {
			return Fragment{}, fmt.Errorf("%w: traf without tfhd", ErrMalformed)
		}
		id := traf.Tfhd.TrackID
		var tr *Track
		for i := range r.init.Tracks {
			if r.init.Tracks[i].ID == id {
				tr = &r.init.Tracks[i]
			}
		}
		if tr == nil {
			return Fragment{}, fmt.Errorf("%w: fragment for track %d, which the moov does not have", ErrMalformed, id)
		}
		if traf.Tfdt == nil {
			return Fragment{}, fmt.Errorf("%w: traf of track %d has no tfdt (decode time)", ErrMalformed, id)
		}
		start := traf.Tfdt.BaseMediaDecodeTime()
		var dur uint64
		first := true
		keyframe := false
		for _, trun := range traf.Truns {
			dur += trun.AddSampleDefaultValues(traf.Tfhd, tr.trex)
			if first && trun.SampleCount() > 0 {
				flags := trun.Samples[0].Flags
				if fl, ok := trun.FirstSampleFlags(); ok {
					flags = fl
				}
				keyframe = mp4.IsSyncSampleFlags(flags)
				first = false
			}
		}
		if end, ok := r.end[id]; ok && start < end && end-start > uint64(tr.Timescale)/10 {
			// Up to 100 ms of overlap is rounding in some muxers; more
			// is a stream going back in time.
			return Fragment{}, fmt.Errorf("%w: track %d starts at %d after ending at %d (timescale %d)", ErrBackwards, id, start, end, tr.Timescale)
		}
		if start > math.MaxUint64-dur {
			return Fragment{}, fmt.Errorf("%w: track %d decode time overflows", ErrMalformed, id)
		}
		f.start[id], f.end[id] = start, start+dur
		if id == main.ID {
			f.DecodeTime, f.Duration, f.Keyframe = start, dur, keyframe
		}
	}
	if _, ok := f.start[main.ID]; !ok {
		return Fragment{}, fmt.Errorf("%w: a fragment without the main track %d", ErrMalformed, main.ID)
	}
	for id, e := range f.end {
		r.end[id] = e
	}
	return f, nil
}

func decodeMoof(b []byte) (moof *mp4.MoofBox, err error) {
	defer func() {
		if p := recover(); p != nil {
			moof, err = nil, fmt.Errorf("%w: moof: %v", ErrMalformed, p)
		}
	}()
	box, err := mp4.DecodeBox(0, bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: moof: %w", ErrMalformed, err)
	}
	moof, ok := box.(*mp4.MoofBox)
	if !ok || moof.Mfhd == nil {
		return nil, fmt.Errorf("%w: moof", ErrMalformed)
	}
	return moof, nil
}

// Shift returns a copy of fragment f with every track's decode time moved
// by shift[trackID] and the fragment sequence number set to seq, fixing
// the sample data offsets if the moof changes size.
func Shift(f Fragment, shift map[uint32]uint64, seq uint32) (Fragment, error) {
	b := f.Bytes
	// Find the moof: any styp/prft/emsg come first.
	at := 0
	for at+8 <= len(b) && string(b[at+4:at+8]) != "moof" {
		at += int(binary.BigEndian.Uint32(b[at:]))
		if at <= 0 {
			return Fragment{}, fmt.Errorf("%w: fragment framing", ErrMalformed)
		}
	}
	if at+8 > len(b) {
		return Fragment{}, fmt.Errorf("%w: fragment without moof", ErrMalformed)
	}
	moofLen := int(binary.BigEndian.Uint32(b[at:]))
	moof, err := decodeMoof(b[at : at+moofLen])
	if err != nil {
		return Fragment{}, err
	}
	moof.Mfhd.SequenceNumber = seq
	out := Fragment{Keyframe: f.Keyframe, Duration: f.Duration, Timescale: f.Timescale, start: map[uint32]uint64{}, end: map[uint32]uint64{}}
	for _, traf := range moof.Trafs {
		id := traf.Tfhd.TrackID
		v1 := traf.Tfdt.Version == 1
		t := traf.Tfdt.BaseMediaDecodeTime() + shift[id]
		traf.Tfdt.SetBaseMediaDecodeTime(t)
		if v1 {
			traf.Tfdt.Version = 1
		}
		out.start[id], out.end[id] = t, f.end[id]+shift[id]
	}
	if delta := int64(moof.Size()) - int64(moofLen); delta != 0 {
		for _, traf := range moof.Trafs {
			for _, trun := range traf.Truns {
				if trun.HasDataOffset() {
					trun.DataOffset += int32(delta)
				}
			}
		}
	}
	var buf bytes.Buffer
	buf.Grow(len(b) + 8)
	buf.Write(b[:at])
	if err := moof.Encode(&buf); err != nil {
		return Fragment{}, fmt.Errorf("fmp4: encode moof: %w", err)
	}
	buf.Write(b[at+moofLen:])
	out.Bytes = buf.Bytes()
	out.main = f.main
	out.DecodeTime = f.DecodeTime + shift[f.main]
	return out, nil
}

// Span is, per track, the decode time at the fragment's start and end.
func (f Fragment) Span(track uint32) (start, end uint64, ok bool) {
	s, ok := f.start[track]
	return s, f.end[track], ok
}
