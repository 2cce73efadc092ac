package origin

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"
)

// Chunk is one unit of the live stream as a source yields it: for video,
// an fMP4 fragment that starts at a keyframe.
type Chunk struct {
	Data     []byte
	Keyframe bool
	// DecodeTime and Duration are in Timescale units (media time);
	// a synthetic source uses microseconds.
	DecodeTime uint64
	Duration   uint32
	Timescale  uint32
}

// Source yields the live stream chunk by chunk, at real time: Next blocks
// until the next chunk is due. It returns io.EOF when the stream ends.
type Source interface {
	// Init returns the init segment (ftyp+moov) that every joiner needs
	// first, or nil for a source without one.
	Init() []byte
	Next(ctx context.Context) (Chunk, error)
}

// Synthetic is a Source of deterministic pseudo-random chunks at a fixed
// bitrate. Anyone can recompute chunk n with SyntheticChunk and check that
// the bytes they rebuilt are the origin's, byte for byte.
type Synthetic struct {
	bitrate  int64
	interval time.Duration
	seq      uint32
	from     uint32 // the first chunk number of this run (Resume)
	start    time.Time
	now      func() time.Time
}

// DefaultChunkInterval is the synthetic source's chunk duration.
const DefaultChunkInterval = 500 * time.Millisecond

// NewSynthetic returns a synthetic source of bitrate bits per second cut
// into chunks of interval (0: DefaultChunkInterval).
func NewSynthetic(bitrate int64, interval time.Duration) (*Synthetic, error) {
	if bitrate < 8_000 || bitrate > 100_000_000 {
		return nil, fmt.Errorf("synthetic source: bitrate must be between 8k and 100M bits/s, got %d", bitrate)
	}
	if interval == 0 {
		interval = DefaultChunkInterval
	}
	if interval < 10*time.Millisecond || interval > 10*time.Second {
		return nil, fmt.Errorf("synthetic source: chunk interval must be between 10ms and 10s, got %v", interval)
	}
	return &Synthetic{bitrate: bitrate, interval: interval, now: time.Now}, nil
}

// Init returns nil: the synthetic stream has no init segment.
func (s *Synthetic) Init() []byte { return nil }

// Next waits until the next chunk is due and returns it.
func (s *Synthetic) Next(ctx context.Context) (Chunk, error) {
	if s.start.IsZero() {
		s.start = s.now()
	}
	if err := waitUntil(ctx, s.now, s.start.Add(time.Duration(s.seq-s.from)*s.interval)); err != nil {
		return Chunk{}, err
	}
	seq := s.seq
	s.seq++
	return Chunk{
		Data:       SyntheticChunk(seq, s.bitrate, s.interval),
		Keyframe:   true,
		DecodeTime: uint64(seq) * uint64(s.interval.Microseconds()),
		Duration:   uint32(s.interval.Microseconds()),
		Timescale:  1_000_000,
	}, nil
}

// Position is the number of chunks handed out; decode times follow from it.
func (s *Synthetic) Position() Position { return Position{Seq: s.seq} }

// Resume makes the stream go on from chunk pos.Seq (its bytes and decode
// time are those of that chunk number). Call it before the first Next.
func (s *Synthetic) Resume(pos Position) error {
	s.seq, s.from = pos.Seq, pos.Seq
	return nil
}

// SyntheticChunk returns the bytes of synthetic chunk n: bitrate×interval/8
// bytes from a PRNG seeded with n, the first 4 bytes being n itself.
func SyntheticChunk(n uint32, bitrate int64, interval time.Duration) []byte {
	size := int(bitrate * interval.Microseconds() / 8_000_000)
	size = max(size, 8)
	b := make([]byte, size)
	r := rand.New(rand.NewPCG(uint64(n), 0x5eed))
	for i := 0; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	binary.BigEndian.PutUint32(b, n)
	return b
}

// waitUntil sleeps until due by now's clock, or until ctx ends.
func waitUntil(ctx context.Context, now func() time.Time, due time.Time) error {
	d := due.Sub(now())
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
