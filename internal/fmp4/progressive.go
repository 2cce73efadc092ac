package fmp4

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/Eyevinn/mp4ff/mp4"
)

// Source yields an init segment and then fragments: a Reader over a
// fragmented stream, or a Progressive over a plain MP4 file.
type Source interface {
	Init() (*Init, error)
	Next() (Fragment, error)
}

// Progressive fragments a plain (progressive) MP4 file at the keyframes
// of its main track: one fragment per GOP, every track's samples of that
// span in it. The sample tables are read once; sample data is read from
// the file fragment by fragment.
type Progressive struct {
	rs     io.ReadSeeker
	init   *Init
	tracks []*progTrack
	main   *progTrack
	cuts   []int // main-track sample indices where fragments start
	next   int   // index into cuts
	reader *Reader
}

type progTrack struct {
	id        uint32
	timescale uint32
	samples   []progSample
	pos       int // next sample to put in a fragment
}

type progSample struct {
	decode uint64
	dur    uint32
	size   uint32
	offset uint64
	cto    int32
	sync   bool
}

// maxSamples bounds the sample tables a file can make us hold.
const maxSamples = 10_000_000

// NewProgressive reads the sample tables of the plain MP4 in rs. A
// fragmented file is for NewReader (Open picks).
func NewProgressive(rs io.ReadSeeker) (p *Progressive, err error) {
	defer func() {
		if x := recover(); x != nil { // mp4ff on a hostile file
			p, err = nil, fmt.Errorf("%w: %v", ErrMalformed, x)
		}
	}()
	f, err := mp4.DecodeFile(rs, mp4.WithDecodeMode(mp4.DecModeLazyMdat))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotMP4, err)
	}
	if f.Moov == nil {
		return nil, fmt.Errorf("%w: no moov box", ErrNotMP4)
	}
	out := mp4.CreateEmptyInit()
	p = &Progressive{rs: rs}
	for _, trak := range f.Moov.Traks {
		t, err := describe(trak)
		if err != nil {
			return nil, err
		}
		stbl := trak.Mdia.Minf.Stbl
		kind := t.Kind
		ot := out.AddEmptyTrack(t.Timescale, kind, trak.Mdia.Mdhd.GetLanguage())
		ot.Mdia.Minf.Stbl.Stsd.AddChild(stbl.Stsd.Children[0])
		pt, err := sampleTable(trak, ot.Tkhd.TrackID)
		if err != nil {
			return nil, err
		}
		p.tracks = append(p.tracks, pt)
		if kind == "video" && p.main == nil {
			p.main = pt
		}
	}
	if len(p.tracks) == 0 {
		return nil, fmt.Errorf("%w: no tracks", ErrMalformed)
	}
	if p.main == nil {
		p.main = p.tracks[0]
	}
	var buf bytes.Buffer
	if err := out.Encode(&buf); err != nil {
		return nil, fmt.Errorf("fmp4: encode init segment: %w", err)
	}
	p.reader = NewReader(bytes.NewReader(buf.Bytes()))
	if p.init, err = p.reader.Init(); err != nil {
		return nil, err
	}
	for i, s := range p.main.samples {
		if s.sync {
			p.cuts = append(p.cuts, i)
		}
	}
	if len(p.cuts) == 0 || p.cuts[0] != 0 {
		return nil, fmt.Errorf("%w: the main track does not start with a keyframe", ErrMalformed)
	}
	return p, nil
}

func sampleTable(trak *mp4.TrakBox, id uint32) (*progTrack, error) {
	stbl := trak.Mdia.Minf.Stbl
	if stbl.Stts == nil || stbl.Stsz == nil || stbl.Stsc == nil || (stbl.Stco == nil && stbl.Co64 == nil) {
		return nil, fmt.Errorf("%w: track %d lacks sample tables", ErrMalformed, trak.Tkhd.TrackID)
	}
	n := int(stbl.Stsz.GetNrSamples())
	if n > maxSamples {
		return nil, fmt.Errorf("%w: track %d has %d samples", ErrMalformed, trak.Tkhd.TrackID, n)
	}
	t := &progTrack{id: id, timescale: trak.Mdia.Mdhd.Timescale, samples: make([]progSample, n)}
	// Durations, run-length coded in stts.
	i := 0
	var decode uint64
	for e := range stbl.Stts.SampleCount {
		for c := uint32(0); c < stbl.Stts.SampleCount[e] && i < n; c++ {
			t.samples[i].decode, t.samples[i].dur = decode, stbl.Stts.SampleTimeDelta[e]
			decode += uint64(stbl.Stts.SampleTimeDelta[e])
			i++
		}
	}
	if i != n {
		return nil, fmt.Errorf("%w: track %d: stts covers %d of %d samples", ErrMalformed, trak.Tkhd.TrackID, i, n)
	}
	chunkOff := func(nr int) (uint64, error) {
		if stbl.Co64 != nil {
			return stbl.Co64.GetOffset(nr)
		}
		return stbl.Stco.GetOffset(nr)
	}
	var prevChunk int
	var off uint64
	for i := range t.samples {
		s := &t.samples[i]
		s.size = stbl.Stsz.GetSampleSize(i + 1)
		chunk, first, err := stbl.Stsc.ChunkNrFromSampleNr(i + 1)
		if err != nil {
			return nil, fmt.Errorf("%w: track %d: %w", ErrMalformed, trak.Tkhd.TrackID, err)
		}
		if chunk != prevChunk || i+1 == first {
			if off, err = chunkOff(chunk); err != nil {
				return nil, fmt.Errorf("%w: track %d: %w", ErrMalformed, trak.Tkhd.TrackID, err)
			}
			prevChunk = chunk
		}
		s.offset = off
		off += uint64(s.size)
		if stbl.Ctts != nil {
			s.cto = stbl.Ctts.GetCompositionTimeOffset(uint32(i + 1))
		}
		s.sync = stbl.Stss == nil || stbl.Stss.IsSyncSample(uint32(i+1))
	}
	return t, nil
}

// Init returns the init segment made for the fragments.
func (p *Progressive) Init() (*Init, error) { return p.init, nil }

// Next returns the next GOP as a fragment; io.EOF after the last.
func (p *Progressive) Next() (Fragment, error) {
	if p.next >= len(p.cuts) {
		return Fragment{}, io.EOF
	}
	endIdx := len(p.main.samples)
	if p.next+1 < len(p.cuts) {
		endIdx = p.cuts[p.next+1]
	}
	p.next++
	main := p.main
	// The span of this fragment, in seconds as a fraction of the main
	// timescale, decides which samples of the other tracks it takes.
	var endTime uint64
	last := endIdx == len(main.samples)
	if !last {
		endTime = main.samples[endIdx].decode
	}
	// Where each track's samples for this fragment end.
	upto := make([]int, len(p.tracks))
	var ids []uint32
	for i, t := range p.tracks {
		to := len(t.samples)
		if t == main {
			to = endIdx
		} else if !last {
			for to = t.pos; to < len(t.samples); to++ {
				// t.samples[to].decode / t.timescale ≥ endTime / main.timescale
				if t.samples[to].decode*uint64(main.timescale) >= endTime*uint64(t.timescale) {
					break
				}
			}
		}
		upto[i] = to
		if to > t.pos {
			ids = append(ids, t.id)
		}
	}
	frag, err := mp4.CreateMultiTrackFragment(uint32(p.next), ids)
	if err != nil {
		return Fragment{}, err
	}
	for i, t := range p.tracks {
		for ; t.pos < upto[i]; t.pos++ {
			s := t.samples[t.pos]
			data := make([]byte, s.size)
			if _, err := p.rs.Seek(int64(s.offset), io.SeekStart); err != nil {
				return Fragment{}, err
			}
			if _, err := io.ReadFull(p.rs, data); err != nil {
				return Fragment{}, fmt.Errorf("%w: sample data of track %d: %w", ErrTruncated, t.id, err)
			}
			flags := mp4.NonSyncSampleFlags
			if s.sync {
				flags = mp4.SyncSampleFlags
			}
			fs := mp4.FullSample{Sample: mp4.Sample{Flags: flags, Dur: s.dur, Size: s.size, CompositionTimeOffset: s.cto},
				DecodeTime: s.decode, Data: data}
			if err := frag.AddFullSampleToTrack(fs, t.id); err != nil {
				return Fragment{}, err
			}
		}
	}
	var buf bytes.Buffer
	if err := frag.Encode(&buf); err != nil {
		return Fragment{}, fmt.Errorf("fmp4: encode fragment: %w", err)
	}
	return p.reader.parseFragment(buf.Bytes(), 0)
}

// Open returns the Source for an MP4 in rs: a Reader when it is
// fragmented, else a Progressive that fragments it at keyframes.
func Open(rs io.ReadSeeker) (Source, error) {
	r := NewReader(rs)
	_, err := r.Init()
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, ErrNotFragged) {
		return nil, err
	}
	if _, err := rs.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return NewProgressive(rs)
}
