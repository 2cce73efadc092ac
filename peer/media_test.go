package peer

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coopcast/coopcast/internal/mediatest"
	"github.com/coopcast/coopcast/internal/rtc"
	"github.com/coopcast/coopcast/origin"
)

// TestTestcardPlays: an origin loops the built-in test card; three peers
// write what they play to files. Each file is H.264 that ffprobe reads
// with increasing timestamps and ffmpeg decodes without an error, and it
// holds at least 90 % of the frames of the time the peer played.
func TestTestcardPlays(t *testing.T) {
	src, err := origin.NewTestcard()
	if err != nil {
		t.Fatal(err)
	}
	e := startSwarmWith(t, src, 400_000)
	dir := t.TempDir()
	type running struct {
		p    *Peer
		path string
		f    *os.File
		done chan struct{}
	}
	var rs []running
	for i := 0; i < 3; i++ {
		path := filepath.Join(dir, "out"+string(rune('a'+i))+".mp4")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		p, err := New(Config{TrackerURL: e.url, Channel: "t", UploadKbps: 2000, Out: f, RTC: rtc.Config{ICEInterfaces: []string{"lo"}}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(e.ctx, 8*time.Second)
		r := running{p: p, path: path, f: f, done: make(chan struct{})}
		go func() { defer close(r.done); defer cancel(); p.Run(ctx) }()
		rs = append(rs, r)
	}
	for i, r := range rs {
		<-r.done
		r.f.Close()
		rep := r.p.Report()
		if rep.ChunksPlayed < 3 {
			t.Fatalf("peer %d played %d chunks: %+v", i, rep.ChunksPlayed, rep)
		}
		// 1 s chunks of 25 frames: 90 % of the frames of the chunks due.
		want := int(float64(rep.ChunksPlayed+rep.ChunksMissed) * 25 * 0.9)
		frames := mediatest.CheckPlayable(t, r.path, want)
		t.Logf("peer %d: %d chunks played, %d missed, %d frames", i, rep.ChunksPlayed, rep.ChunksMissed, frames)
	}
}
