package origin

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"time"

	"github.com/coopcast/coopcast/internal/fmp4"
	"github.com/coopcast/coopcast/internal/proto"
)

//go:embed testcard/testcard.mp4
var testcardMP4 []byte

// Media is a Source of real video: a fragmented MP4 read fragment by
// fragment, one chunk per fragment. A file is played at real time and may
// loop, with its decode times moved on at each pass so the stream never
// goes back in time; a live stream (standard input, an HTTP push) comes at
// its own pace.
type Media struct {
	name string
	open func() (io.Closer, fmp4.Source, error) // (re)opens the file for a pass
	loop bool
	pace bool
	now  func() time.Time

	mu   sync.Mutex // guards rc for Close
	rc   io.Closer
	rd   fmp4.Source
	init *fmp4.Init

	seq        uint32
	shift      map[uint32]uint64 // added to every decode time of this pass
	passStart  map[uint32]uint64 // per track, this pass's first decode time (file time)
	passEnd    map[uint32]uint64 // and where its last fragment ended
	passFrags  int
	start      time.Time // wall clock of decode time t0
	t0         uint64
	bytes      uint64
	mediaTicks uint64 // main-track time sent, for the bitrate
	// resume, until the first fragment, is where an earlier run of the
	// stream ended (Resume); ends is where this one stands (Position).
	resume map[uint32]uint64
	ends   map[uint32]uint64
}

// MediaInfo describes a media source's stream for stats.
type MediaInfo struct {
	Source string       `json:"source"`
	Codecs string       `json:"codecs"`
	Width  int          `json:"width,omitempty"`
	Height int          `json:"height,omitempty"`
	Tracks []fmp4.Track `json:"tracks"`
	// Bitrate is measured over what was sent so far, in bits/s.
	Bitrate int64 `json:"bitrate"`
}

// NewTestcard returns the built-in test card, looped forever.
func NewTestcard() (*Media, error) {
	return newMedia("testcard", func() (io.Closer, fmp4.Source, error) {
		src, err := fmp4.Open(bytes.NewReader(testcardMP4))
		return io.NopCloser(nil), src, err
	}, true, true)
}

// NewFile plays the MP4 at path at real time, looping if loop. A plain
// (progressive) MP4 is fragmented at its keyframes.
func NewFile(path string, loop bool) (*Media, error) {
	return newMedia(path, func() (io.Closer, fmp4.Source, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, err
		}
		src, err := fmp4.Open(f)
		if err != nil {
			f.Close()
			if errors.Is(err, fmp4.ErrNotMP4) {
				return nil, nil, notMP4File{err}
			}
			return nil, nil, err
		}
		return f, src, nil
	}, loop, true)
}

// notMP4File is a file source that is no MP4 at all (a text file, say):
// a plain message, the parser's detail only for errors.Is.
type notMP4File struct{ err error }

func (notMP4File) Error() string   { return "not an MP4 file" }
func (e notMP4File) Unwrap() error { return e.err }

// NewLive reads a live fMP4 stream from r (standard input, an HTTP
// body): chunks go out as they arrive, and the stream ends when r does.
func NewLive(name string, r io.Reader) (*Media, error) {
	return newMedia(name, func() (io.Closer, fmp4.Source, error) { return io.NopCloser(nil), fmp4.NewReader(r), nil }, false, false)
}

func newMedia(name string, open func() (io.Closer, fmp4.Source, error), loop, pace bool) (*Media, error) {
	m := &Media{name: name, open: open, loop: loop, pace: pace, now: time.Now,
		shift: map[uint32]uint64{}, passStart: map[uint32]uint64{}, passEnd: map[uint32]uint64{}, ends: map[uint32]uint64{}}
	rc, rd, err := open()
	if err != nil {
		return nil, fmt.Errorf("media source %s: %w", name, err)
	}
	m.rc, m.rd = rc, rd
	in, err := m.rd.Init()
	if err != nil {
		rc.Close()
		return nil, fmt.Errorf("media source %s: %w", name, err)
	}
	m.init = in
	return m, nil
}

// Describer is a Source that can say what its stream is.
type Describer interface {
	Describe() *proto.Media
}

// Describe says what the stream is, for the tracker's stats.
func (m *Media) Describe() *proto.Media {
	info := m.Info()
	return &proto.Media{Codecs: info.Codecs, Width: info.Width, Height: info.Height}
}

// Init returns the init segment (ftyp+moov).
func (m *Media) Init() []byte { return m.init.Bytes }

// Info describes the stream.
func (m *Media) Info() MediaInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	main := m.init.Tracks[m.init.Main]
	info := MediaInfo{Source: m.name, Codecs: m.init.Codecs(), Tracks: m.init.Tracks}
	if main.Kind == "video" {
		info.Width, info.Height = main.Width, main.Height
	}
	if m.mediaTicks > 0 {
		info.Bitrate = int64(float64(m.bytes*8) * float64(main.Timescale) / float64(m.mediaTicks))
	}
	return info
}

// Close releases the file. Safe to call twice.
func (m *Media) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rc == nil {
		return nil
	}
	err := m.rc.Close()
	m.rc = nil
	return err
}

// Next returns the next fragment as a chunk, at real time for a file.
func (m *Media) Next(ctx context.Context) (Chunk, error) {
	f, err := m.rd.Next()
	if err == io.EOF && m.loop {
		if err := m.rewind(); err != nil {
			return Chunk{}, err
		}
		f, err = m.rd.Next()
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			return Chunk{}, io.EOF
		}
		return Chunk{}, fmt.Errorf("media source %s: %w", m.name, err)
	}
	m.passFrags++
	for _, t := range m.init.Tracks {
		s, e, ok := f.Span(t.ID)
		if !ok {
			continue
		}
		if _, seen := m.passStart[t.ID]; !seen {
			m.passStart[t.ID] = s
		}
		m.passEnd[t.ID] = e
	}
	m.seq++
	if m.resume != nil {
		m.resumeShift(f)
	}
	if len(m.shift) > 0 {
		if f, err = fmp4.Shift(f, m.shift, m.seq); err != nil {
			return Chunk{}, fmt.Errorf("media source %s: %w", m.name, err)
		}
	}
	if m.pace {
		// A live encoder emits a fragment once its last frame is in.
		if m.start.IsZero() {
			m.start, m.t0 = m.now(), f.DecodeTime
		}
		due := m.start.Add(time.Duration(float64(f.DecodeTime+f.Duration-m.t0) / float64(f.Timescale) * float64(time.Second)))
		if err := waitUntil(ctx, m.now, due); err != nil {
			return Chunk{}, err
		}
	}
	for _, t := range m.init.Tracks {
		if _, e, ok := f.Span(t.ID); ok {
			m.ends[t.ID] = e
		}
	}
	m.mu.Lock()
	m.bytes += uint64(len(f.Bytes))
	m.mediaTicks += f.Duration
	m.mu.Unlock()
	return Chunk{Data: f.Bytes, Keyframe: f.Keyframe, DecodeTime: f.DecodeTime, Duration: uint32(min(f.Duration, 1<<32-1)), Timescale: f.Timescale}, nil
}

// Position says where the stream stands: fragments handed out and, per
// track, the decode time where the last one ended.
func (m *Media) Position() Position {
	ends := make(map[uint32]uint64, len(m.ends))
	for id, e := range m.ends {
		ends[id] = e
	}
	return Position{Seq: m.seq, Ends: ends}
}

// Resume makes the stream go on from pos, where an earlier run of the
// origin left it: fragment sequence numbers continue from pos.Seq and
// decode times from pos.Ends, so a viewer's decoder never sees time go
// back. Call it before the first Next.
func (m *Media) Resume(pos Position) error {
	if m.seq != 0 {
		return errors.New("media source: Resume after the stream started")
	}
	m.seq = pos.Seq
	m.resume = make(map[uint32]uint64, len(pos.Ends))
	for id, e := range pos.Ends {
		m.resume[id] = e
	}
	return nil
}

// resumeShift moves every track of this run on so that the first
// fragment, f, starts where the earlier run ended: by the same time for
// every track (keeping them in sync), at least as far as any track needs
// to go on from its own end.
func (m *Media) resumeShift(f fmp4.Fragment) {
	var secs float64
	for _, t := range m.init.Tracks {
		if s, _, ok := f.Span(t.ID); ok && m.resume[t.ID] > s && t.Timescale > 0 {
			secs = max(secs, float64(m.resume[t.ID]-s)/float64(t.Timescale))
		}
	}
	for _, t := range m.init.Tracks {
		sh := uint64(math.Ceil(secs * float64(t.Timescale)))
		if s, _, ok := f.Span(t.ID); ok && m.resume[t.ID] > s {
			sh = max(sh, m.resume[t.ID]-s)
		}
		m.shift[t.ID] += sh // an entry for every track: renumber fragments from m.seq
	}
	m.resume = nil
}

// rewind starts the next pass of a looped file, its decode times moved on
// by the length of the pass before.
func (m *Media) rewind() error {
	if m.passFrags == 0 {
		return fmt.Errorf("media source %s: no fragments to loop", m.name)
	}
	for id, s := range m.passStart {
		m.shift[id] += m.passEnd[id] - s
	}
	m.passStart, m.passEnd, m.passFrags = map[uint32]uint64{}, map[uint32]uint64{}, 0
	rc, rd, err := m.open()
	if err != nil {
		return fmt.Errorf("media source %s: reopen to loop: %w", m.name, err)
	}
	m.mu.Lock()
	if m.rc != nil {
		m.rc.Close()
	}
	m.rc = rc
	m.mu.Unlock()
	m.rd = rd
	in, err := m.rd.Init()
	if err != nil {
		return fmt.Errorf("media source %s: reopen to loop: %w", m.name, err)
	}
	if !bytes.Equal(in.Bytes, m.init.Bytes) {
		return fmt.Errorf("media source %s: the file changed while looping", m.name)
	}
	return nil
}

// estimate scans up to 30 fragments of a fresh read of the file for its
// bitrate, so the tracker can size stripes before the first pass ends.
func (m *Media) estimate() (int64, error) {
	rc, rd, err := m.open()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	if _, err := rd.Init(); err != nil {
		return 0, err
	}
	var bytes, ticks uint64
	var scale uint32
	for i := 0; i < 30; i++ {
		f, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
		bytes += uint64(len(f.Bytes))
		ticks += f.Duration
		scale = f.Timescale
	}
	if ticks == 0 {
		return 0, fmt.Errorf("%w: no media fragments", fmp4.ErrMalformed)
	}
	return int64(float64(bytes*8) * float64(scale) / float64(ticks)), nil
}

// Open returns the source spec names: "synthetic" (at bitrate, cut every
// chunk), "testcard", "-" (a live fMP4 on stdin) or the path of a
// fragmented MP4 file, looped if loop. It also returns the bitrate to
// announce: bitrate if set (> 0), else the file's, else 2 Mbit/s for a
// live stream.
func Open(spec string, loop bool, bitrate int64, chunk time.Duration, stdin io.Reader) (Source, int64, error) {
	if spec == "synthetic" {
		if bitrate <= 0 {
			bitrate = 500_000
		}
		s, err := NewSynthetic(bitrate, chunk)
		return s, bitrate, err
	}
	var m *Media
	var err error
	switch spec {
	case "testcard":
		m, err = NewTestcard()
	case "-":
		m, err = NewLive("stdin", stdin)
	case "":
		return nil, 0, errors.New("--source is empty: synthetic, testcard, - (stdin) or a file path")
	default:
		m, err = NewFile(spec, loop)
	}
	if err != nil {
		return nil, 0, err
	}
	if bitrate <= 0 {
		bitrate = 2_000_000
		if m.pace {
			if bitrate, err = m.estimate(); err != nil {
				m.Close()
				return nil, 0, fmt.Errorf("media source %s: %w", spec, err)
			}
		}
	}
	return m, bitrate, nil
}
