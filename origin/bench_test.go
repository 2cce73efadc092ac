package origin

import (
	"bytes"
	"crypto/ed25519"
	"io"
	"testing"

	"github.com/coopcast/coopcast/internal/fec"
	"github.com/coopcast/coopcast/internal/fmp4"
	"github.com/coopcast/coopcast/internal/wire"
)

// BenchmarkPackaging is the origin's whole per-chunk work short of the
// network, over the test card: read each fMP4 fragment, move its decode
// times (as looping does), erasure-code it into 4 stripes (k = 3), hash
// the stripes, sign the manifest and cut the stripes into messages. One op
// is one pass over the 10 s clip. ms/s@2Mbps scales the cost per byte to
// one second of 2 Mbit/s video: the CPU the origin spends per second of
// such a stream.
func BenchmarkPackaging(b *testing.B) {
	coder, err := fec.New(3, 4)
	if err != nil {
		b.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(nil)
	shift := map[uint32]uint64{1: 1 << 20, 2: 1 << 22}
	var total int64
	msgs := 0
	b.ReportAllocs()
	b.SetBytes(int64(len(testcardMP4)))
	for i := 0; i < b.N; i++ {
		rd := fmp4.NewReader(bytes.NewReader(testcardMP4))
		if _, err := rd.Init(); err != nil {
			b.Fatal(err)
		}
		for seq := uint32(0); ; seq++ {
			f, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			g, err := fmp4.Shift(f, shift, seq)
			if err != nil {
				b.Fatal(err)
			}
			shards, err := coder.Encode(g.Bytes)
			if err != nil {
				b.Fatal(err)
			}
			m := wire.Manifest{Seq: seq, Length: uint32(len(g.Bytes)), M: 4, K: 3, ShardSize: uint32(len(shards[0])),
				Flags: wire.FlagKeyframe, Hashes: wire.HashShards(shards)}
			if _, err := wire.SignManifest(priv, "bench", &m); err != nil {
				b.Fatal(err)
			}
			for j, sh := range shards {
				wire.Fragments(seq, uint8(j), sh, func([]byte) { msgs++ })
			}
			total += int64(len(g.Bytes))
		}
	}
	if total > 0 {
		nsPerByte := float64(b.Elapsed().Nanoseconds()) / float64(total)
		b.ReportMetric(nsPerByte*2e6/8/1e6, "ms/s@2Mbps")
	}
}
