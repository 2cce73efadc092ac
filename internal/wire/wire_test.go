package wire

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"math/rand/v2"
	"testing"
)

func testKey() ed25519.PrivateKey { return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32)) }

func shardsOf(n, m int) [][]byte {
	r := rand.New(rand.NewPCG(uint64(n), 3))
	out := make([][]byte, m)
	for i := range out {
		out[i] = make([]byte, n)
		for j := range out[i] {
			out[i][j] = byte(r.Uint32())
		}
	}
	return out
}

func manifestFor(shards [][]byte) Manifest {
	return Manifest{Seq: 42, Timestamp: 1_700_000_000_000_000, DecodeTime: 90000, Duration: 45000, Timescale: 90000,
		Length: uint32(len(shards[0])*3 - 1), Flags: FlagKeyframe, M: uint8(len(shards)), K: 3,
		ShardSize: uint32(len(shards[0])), Hashes: HashShards(shards)}
}

func TestFragmentsRoundTrip(t *testing.T) {
	for _, size := range []int{0, 1, MaxPayload - 1, MaxPayload, MaxPayload + 1, 3*MaxPayload + 17} {
		data := shardsOf(size, 1)[0]
		r, err := NewReassembler(size)
		if err != nil {
			t.Fatal(err)
		}
		var msgs [][]byte
		Fragments(9, 2, data, func(m []byte) { msgs = append(msgs, m) })
		if len(msgs) != FragmentCount(size) {
			t.Fatalf("size %d: %d fragments, want %d", size, len(msgs), FragmentCount(size))
		}
		// Backwards, with a duplicate: order does not matter.
		msgs = append(msgs, msgs[0])
		complete := false
		for i := len(msgs) - 1; i >= 0; i-- {
			if len(msgs[i]) > MaxMessage {
				t.Fatalf("message of %d bytes", len(msgs[i]))
			}
			f, err := ParseFragment(msgs[i])
			if err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
			if f.Seq != 9 || f.Shard != 2 || int(f.Total) != size {
				t.Fatalf("header %+v", f)
			}
			if complete, err = r.Add(f); err != nil {
				t.Fatal(err)
			}
		}
		if !complete || !bytes.Equal(r.Bytes(), data) {
			t.Fatalf("size %d: complete %v, equal %v", size, complete, bytes.Equal(r.Bytes(), data))
		}
	}
}

func TestParseFragmentRejects(t *testing.T) {
	good := AppendFragment(nil, Fragment{Seq: 1, Shard: 0, Offset: 0, Total: 10, Payload: make([]byte, 10)})
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"short", good[:10], ErrTruncated},
		{"version", mut(func(b []byte) []byte { b[0] = 9; return b }), ErrVersion},
		{"type", mut(func(b []byte) []byte { b[1] = TypeManifest; return b }), ErrType},
		{"payload longer than shard", mut(func(b []byte) []byte { return append(b, 1) }), ErrRange},
		{"payload shorter", good[:len(good)-1], ErrRange},
		{"offset not aligned", mut(func(b []byte) []byte { b[10] = 1; return b }), ErrRange},
		{"huge total", mut(func(b []byte) []byte { b[11] = 0xff; return b }), ErrRange},
		{"too large", append(bytes.Clone(good), make([]byte, MaxMessage)...), ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseFragment(tc.b); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestReassemblerConflict(t *testing.T) {
	r, _ := NewReassembler(20)
	if _, err := r.Add(Fragment{Total: 20, Payload: make([]byte, 20)}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Add(Fragment{Total: 20, Payload: bytes.Repeat([]byte{1}, 20)}); !errors.Is(err, ErrConflict) {
		t.Fatalf("conflicting duplicate: %v", err)
	}
	if _, err := r.Add(Fragment{Total: 21, Payload: make([]byte, 21)}); !errors.Is(err, ErrRange) {
		t.Fatalf("wrong total: %v", err)
	}
	if _, err := NewReassembler(MaxShardSize + 1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("huge shard: %v", err)
	}
}

func TestManifestSignVerify(t *testing.T) {
	priv := testKey()
	pub := priv.Public().(ed25519.PublicKey)
	shards := shardsOf(2*MaxPayload+5, 4)
	m := manifestFor(shards)
	raw, err := SignManifest(priv, "demo", &m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Verify(pub, "demo"); err != nil {
		t.Fatal(err)
	}
	if got.Seq != 42 || got.Timestamp != m.Timestamp || got.DecodeTime != 90000 || !got.Keyframe() || got.ShardSize != m.ShardSize || len(got.Hashes[3]) != 3 {
		t.Fatalf("parsed %+v", got)
	}
	if err := got.Verify(pub, "other"); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("replay into another channel verified: %v", err)
	}
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32)).Public().(ed25519.PublicKey)
	if err := got.Verify(other, "demo"); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("wrong key verified: %v", err)
	}
	// Any flipped bit breaks the signature or the parse.
	for i := 0; i < len(raw); i += 7 {
		b := bytes.Clone(raw)
		b[i] ^= 0x10
		if g, err := ParseManifest(b); err == nil && g.Verify(pub, "demo") == nil {
			t.Fatalf("manifest with byte %d flipped verified", i)
		}
	}
	// Fragments and shards check against it.
	for i, s := range shards {
		if err := got.VerifyShard(i, s); err != nil {
			t.Fatal(err)
		}
		Fragments(42, uint8(i), s, func(msg []byte) {
			f, _ := ParseFragment(msg)
			if err := got.VerifyFragment(f); err != nil {
				t.Fatal(err)
			}
			f.Payload = bytes.Clone(f.Payload)
			f.Payload[0] ^= 1
			if err := got.VerifyFragment(f); !errors.Is(err, ErrHash) {
				t.Fatalf("corrupt fragment: %v", err)
			}
		})
	}
	bad := bytes.Clone(shards[1])
	bad[len(bad)-1] ^= 1
	if err := got.VerifyShard(1, bad); !errors.Is(err, ErrHash) {
		t.Fatalf("corrupt shard: %v", err)
	}
	if err := got.VerifyFragment(Fragment{Seq: 43, Total: m.ShardSize}); !errors.Is(err, ErrRange) {
		t.Fatalf("fragment of another chunk: %v", err)
	}
}

// TestManifestEpoch: the epoch is signed, read back, and VerifyEpoch
// refuses a manifest of an earlier epoch (a replay from a previous run or
// push of the origin) while taking the same or a later one.
func TestManifestEpoch(t *testing.T) {
	priv := testKey()
	pub := priv.Public().(ed25519.PublicKey)
	sign := func(epoch uint64) Manifest {
		t.Helper()
		m := manifestFor(shardsOf(100, 4))
		m.Epoch = epoch
		raw, err := SignManifest(priv, "demo", &m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseManifest(raw)
		if err != nil || got.Verify(pub, "demo") != nil || got.Epoch != epoch {
			t.Fatalf("epoch %d: parsed %d, %v", epoch, got.Epoch, err)
		}
		return got
	}
	old, cur := sign(1_700_000_000_000_000), sign(1_700_000_100_000_000)
	for _, tc := range []struct {
		name   string
		m      Manifest
		newest uint64
		want   error
	}{
		{"the current epoch", cur, cur.Epoch, nil},
		{"a later epoch: the origin restarted", cur, old.Epoch, nil},
		{"nothing known yet", old, 0, nil},
		{"an earlier epoch: a replay", old, cur.Epoch, ErrOldEpoch},
		{"one microsecond earlier", cur, cur.Epoch + 1, ErrOldEpoch},
	} {
		if err := tc.m.VerifyEpoch(tc.newest); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestManifestLimits(t *testing.T) {
	m := manifestFor(shardsOf(10, 4))
	m.K = 5
	if _, err := SignManifest(testKey(), "c", &m); !errors.Is(err, ErrRange) {
		t.Fatalf("k > M: %v", err)
	}
	wide := make([][]byte, 32) // 32 shards × 19 fragments × 32 B of hashes > 16 KiB
	for i := range wide {
		wide[i] = make([]byte, 300_000)
	}
	big := manifestFor(wide)
	if _, err := SignManifest(testKey(), "c", &big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("manifest over 16 KiB: %v", err)
	}
	var unsigned Manifest
	if err := unsigned.Verify(testKey().Public().(ed25519.PublicKey), "c"); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("unsigned manifest verified: %v", err)
	}
}

func FuzzParseFragment(f *testing.F) {
	f.Add(AppendFragment(nil, Fragment{Seq: 1, Total: 3, Payload: []byte{1, 2, 3}}))
	f.Add([]byte{1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := ParseFragment(b)
		if err != nil {
			return
		}
		if !bytes.Equal(AppendFragment(nil, fr), b) {
			t.Fatal("accepted fragment does not re-encode to the same bytes")
		}
		r, err := NewReassembler(int(fr.Total))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Add(fr); err != nil {
			t.Fatalf("parsed fragment rejected by reassembler: %v", err)
		}
	})
}

func FuzzParseManifest(f *testing.F) {
	m := manifestFor(shardsOf(100, 4))
	raw, _ := SignManifest(testKey(), "c", &m)
	f.Add(raw)
	f.Add(raw[:50])
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		_ = m.Verify(testKey().Public().(ed25519.PublicKey), "c")
		for i := 0; i < int(m.M); i++ {
			_ = m.VerifyShard(i, make([]byte, m.ShardSize))
		}
	})
}

func FuzzReassembler(f *testing.F) {
	f.Add(uint16(100), []byte{0, 1, 2})
	f.Fuzz(func(t *testing.T, total uint16, ops []byte) {
		r, err := NewReassembler(int(total))
		if err != nil {
			t.Fatal(err)
		}
		data := shardsOf(int(total), 1)[0]
		var frags []Fragment
		Fragments(0, 0, data, func(m []byte) { fr, _ := ParseFragment(m); frags = append(frags, fr) })
		done := false
		for _, op := range ops {
			c, err := r.Add(frags[int(op)%len(frags)])
			if err != nil {
				t.Fatal(err)
			}
			done = c
		}
		if done && !bytes.Equal(r.Bytes(), data) {
			t.Fatal("complete but wrong")
		}
	})
}

func BenchmarkFragmentParse(b *testing.B) {
	msg := AppendFragment(nil, Fragment{Total: MaxPayload, Payload: make([]byte, MaxPayload)})
	b.SetBytes(int64(len(msg)))
	for i := 0; i < b.N; i++ {
		if _, err := ParseFragment(msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyFragment: the per-message check a relay does before it
// forwards (a SHA-256 of up to 16 KiB).
func BenchmarkVerifyFragment(b *testing.B) {
	shards := shardsOf(MaxPayload, 4)
	m := manifestFor(shards)
	f := Fragment{Seq: 42, Total: MaxPayload, Payload: shards[0]}
	b.SetBytes(MaxPayload)
	for i := 0; i < b.N; i++ {
		if err := m.VerifyFragment(f); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkManifestVerify(b *testing.B) {
	m := manifestFor(shardsOf(30000, 4))
	raw, _ := SignManifest(testKey(), "c", &m)
	pub := testKey().Public().(ed25519.PublicKey)
	for i := 0; i < b.N; i++ {
		got, err := ParseManifest(raw)
		if err != nil || got.Verify(pub, "c") != nil {
			b.Fatal(err)
		}
	}
}
