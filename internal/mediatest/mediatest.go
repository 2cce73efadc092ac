// Package mediatest checks media files with the real ffprobe and ffmpeg,
// for tests.
package mediatest

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// CheckPlayable asserts, with the real ffprobe and ffmpeg, that path is
// H.264 video with strictly increasing decode timestamps, that ffmpeg
// decodes it without an error, and that it has at least minFrames frames.
func CheckPlayable(t testing.TB, path string, minFrames int) (frames int) {
	t.Helper()
	for _, tool := range []string{"ffprobe", "ffmpeg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (bash .ci/run installs it): %v", tool, err)
		}
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=codec_name",
		"-of", "default=nw=1:nk=1", path).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "h264" {
		t.Fatalf("ffprobe codec: %q %v", out, err)
	}
	out, err = exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=dts",
		"-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe packets: %v\n%s", err, out)
	}
	var prev int64 = -1 << 62
	for _, line := range strings.Fields(string(out)) {
		var dts int64
		if _, err := fmt.Sscan(line, &dts); err != nil {
			t.Fatalf("ffprobe dts %q", line)
		}
		if dts <= prev {
			t.Fatalf("decode timestamps not increasing: %d after %d", dts, prev)
		}
		prev = dts
		frames++
	}
	if frames < minFrames {
		t.Fatalf("%d video frames, want ≥ %d", frames, minFrames)
	}
	out, err = exec.Command("ffmpeg", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("ffmpeg decode: %v\n%s", err, out)
	}
	return frames
}
