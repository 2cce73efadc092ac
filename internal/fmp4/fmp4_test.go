package fmp4

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coopcast/coopcast/internal/mediatest"
)

func testcard(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("../../origin/testcard/testcard.mp4")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readAll(t testing.TB, b []byte) (*Init, []Fragment) {
	t.Helper()
	r := NewReader(bytes.NewReader(b))
	in, err := r.Init()
	if err != nil {
		t.Fatal(err)
	}
	var fs []Fragment
	for {
		f, err := r.Next()
		if err == io.EOF {
			return in, fs
		}
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
}

func TestReadTestcard(t *testing.T) {
	in, fs := readAll(t, testcard(t))
	if len(in.Tracks) != 2 || in.Tracks[in.Main].Kind != "video" {
		t.Fatalf("tracks: %+v", in.Tracks)
	}
	v := in.Tracks[in.Main]
	if !strings.HasPrefix(v.Codec, "avc1.42") || v.Width != 640 || v.Height != 360 {
		t.Errorf("video track: %+v", v)
	}
	if got := in.Codecs(); got != v.Codec+",mp4a.40.2" {
		t.Errorf("codecs %q", got)
	}
	if len(fs) != 10 {
		t.Fatalf("%d fragments, want 10 (1 s GOPs of a 10 s clip)", len(fs))
	}
	var next uint64
	for i, f := range fs {
		// 1 s GOPs (ffmpeg stretches the first frame a little).
		if !f.Keyframe || f.Timescale != v.Timescale || f.DecodeTime != next || f.Duration < uint64(v.Timescale) || f.Duration > uint64(v.Timescale)*21/20 {
			t.Errorf("fragment %d: keyframe %v, time %d dur %d / %d, want time %d", i, f.Keyframe, f.DecodeTime, f.Duration, f.Timescale, next)
		}
		next += f.Duration
	}
}

// TestShiftedLoopDecodes: the clip, then the clip again with its decode
// times moved past the end of the first, is one stream that ffprobe sees
// with increasing timestamps and ffmpeg decodes without an error.
func TestShiftedLoopDecodes(t *testing.T) {
	in, fs := readAll(t, testcard(t))
	last := fs[len(fs)-1]
	shift := map[uint32]uint64{}
	for _, tr := range in.Tracks {
		_, end, _ := last.Span(tr.ID)
		start, _, _ := fs[0].Span(tr.ID)
		shift[tr.ID] = end - start
	}
	var out bytes.Buffer
	out.Write(in.Bytes)
	for _, f := range fs {
		out.Write(f.Bytes)
	}
	for i, f := range fs {
		g, err := Shift(f, shift, uint32(len(fs)+i+1))
		if err != nil {
			t.Fatal(err)
		}
		if g.DecodeTime != f.DecodeTime+shift[in.Tracks[in.Main].ID] {
			t.Fatalf("shifted decode time %d", g.DecodeTime)
		}
		out.Write(g.Bytes)
	}
	// The result reads back with the shifted times.
	_, again := readAll(t, out.Bytes())
	if len(again) != 20 || again[19].DecodeTime != fs[9].DecodeTime+shift[in.Tracks[in.Main].ID] {
		t.Fatalf("read back %d fragments, last at %d", len(again), again[len(again)-1].DecodeTime)
	}
	path := filepath.Join(t.TempDir(), "loop.mp4")
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	mediatest.CheckPlayable(t, path, 500)
}

func TestBadInput(t *testing.T) {
	card := testcard(t)
	in, fs := readAll(t, card)
	initLen := len(in.Bytes)
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrNotMP4},
		{"text", []byte("#EXTM3U\n#EXT-X-VERSION:3\n"), ErrNotMP4},
		{"truncated header", card[:5], ErrNotMP4},
		{"truncated moov", card[:initLen-10], ErrTruncated},
		{"truncated fragment", card[:initLen+len(fs[0].Bytes)+100], ErrTruncated},
		{"backwards", append(append(append([]byte(nil), in.Bytes...), fs[3].Bytes...), fs[1].Bytes...), ErrBackwards},
		{"huge box", append(append([]byte(nil), in.Bytes...), 0x7f, 0xff, 0xff, 0xff, 'm', 'o', 'o', 'f'), ErrMalformed},
		{"unsupported codec", bytes.Replace(append([]byte(nil), card...), []byte("avc1"), []byte("mp4v"), 1), ErrCodec},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(c.b))
			var err error
			if _, err = r.Init(); err == nil {
				for err == nil {
					_, err = r.Next()
				}
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if err.Error() == c.want.Error() {
				t.Errorf("error %q says nothing about the input", err)
			}
		})
	}
}

// FuzzReader: arbitrary bytes never panic or hang the reader, and what it
// accepts as a fragment starts with its moof or a box allowed before it.
func FuzzReader(f *testing.F) {
	card := testcard(f)
	in, fs := readAll(f, card)
	f.Add(card[:len(in.Bytes)+len(fs[0].Bytes)])
	f.Add(in.Bytes)
	f.Add([]byte{0, 0, 0, 8, 'f', 't', 'y', 'p'})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(bytes.NewReader(b))
		if _, err := r.Init(); err != nil {
			return
		}
		for i := 0; i < 1000; i++ {
			fr, err := r.Next()
			if err != nil {
				return
			}
			if len(fr.Bytes) < 16 {
				t.Fatalf("fragment of %d bytes", len(fr.Bytes))
			}
			if _, err := Shift(fr, map[uint32]uint64{1: 1 << 40}, 7); err != nil {
				t.Fatalf("shift of an accepted fragment: %v", err)
			}
		}
	})
}

// TestProgressivePlays: a plain MP4 (the test card remuxed by ffmpeg) is
// fragmented at its keyframes into a stream ffmpeg decodes cleanly, with
// every frame.
func TestProgressivePlays(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.mp4")
	if out, err := exec.Command("ffmpeg", "-v", "error", "-y", "-i", "../../origin/testcard/testcard.mp4", "-c", "copy", plain).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg remux: %v\n%s", err, out)
	}
	f, err := os.Open(plain)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	src, err := Open(f)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := src.(*Progressive); !ok {
		t.Fatalf("a plain MP4 opened as %T", src)
	}
	in, err := src.Init()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	out.Write(in.Bytes)
	n := 0
	for {
		fr, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !fr.Keyframe {
			t.Errorf("fragment %d does not start at a keyframe", n)
		}
		out.Write(fr.Bytes)
		n++
	}
	if n != 10 {
		t.Errorf("%d fragments, want 10 (1 s GOPs)", n)
	}
	path := filepath.Join(dir, "fragmented.mp4")
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if frames := mediatest.CheckPlayable(t, path, 250); frames != 250 {
		t.Errorf("%d frames, want all 250", frames)
	}
}
