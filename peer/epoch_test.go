package peer

import (
	"crypto/ed25519"
	"testing"

	"github.com/coopcast/coopcast/internal/fec"
	"github.com/coopcast/coopcast/internal/forest"
	"github.com/coopcast/coopcast/internal/wire"
)

// TestManifestOfOldEpochRefused: a peer that knows epoch E (from the
// tracker's welcome) drops a correctly signed manifest of an earlier
// epoch (a replay from a previous run of the origin) without blaming the
// sender, takes one of E, and takes one of a later epoch as the origin
// restarted, after which E itself is refused.
func TestManifestOfOldEpochRefused(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	p, err := New(Config{TrackerURL: "http://127.0.0.1:1", Channel: "t"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.member.Close() })
	coder, err := fec.New(3, 4)
	if err != nil {
		t.Fatal(err)
	}
	const e = 1_700_000_000_000_000
	p.mu.Lock()
	p.key, p.coder, p.k, p.m, p.epoch = priv.Public().(ed25519.PublicKey), coder, 3, 4, e
	p.mu.Unlock()

	manifest := func(seq uint32, epoch uint64) []byte {
		t.Helper()
		shards, err := coder.Encode(make([]byte, 3000))
		if err != nil {
			t.Fatal(err)
		}
		m := wire.Manifest{Seq: seq, Timestamp: 1, Length: 3000, Flags: wire.FlagKeyframe, M: 4, K: 3,
			ShardSize: uint32(len(shards[0])), Epoch: epoch, Hashes: wire.HashShards(shards)}
		raw, err := wire.SignManifest(priv, "t", &m)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	taken := func(seq uint32) bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		c := p.chunks[seq]
		return c != nil && c.man != nil
	}
	for _, step := range []struct {
		name      string
		seq       uint32
		epoch     uint64
		taken     bool
		wantEpoch uint64
	}{
		{"an earlier epoch: a replay", 10, e - 1, false, e},
		{"the current epoch", 11, e, true, e},
		{"a later epoch: the origin restarted", 12, e + 5_000_000, true, e + 5_000_000},
		{"the epoch before the restart, now a replay", 13, e, false, e + 5_000_000},
	} {
		p.onManifest(forest.Origin, manifest(step.seq, step.epoch), true)
		p.mu.Lock()
		epoch, bad := p.epoch, p.st.badMessages
		p.mu.Unlock()
		if taken(step.seq) != step.taken || epoch != step.wantEpoch {
			t.Fatalf("%s: taken %v (want %v), peer at epoch %d (want %d)", step.name, taken(step.seq), step.taken, epoch, step.wantEpoch)
		}
		if bad != 0 {
			t.Fatalf("%s: %d messages counted bad: a replayed manifest is dropped, not blamed", step.name, bad)
		}
	}
}
