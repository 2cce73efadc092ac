package wire

// Shared test vectors: testdata/vectors/wire.json holds what this package
// produces for fixed inputs (fragments, signed manifests, a signed init
// segment, and bad messages with the error each gives). The browser twin,
// webclient/js/wire.js, is checked against the same file by
// webclient/test/wire.test.js, so the two read and write the same bytes.
//
// TestWireVectors rebuilds the file from the Go code and fails if it
// differs from the committed one by a single byte; after an intended
// layout change, rewrite it with
//
//	go test ./internal/wire -run TestWireVectors -update
//
// TestWireVectorsReplay reads the committed file and checks Go against
// every entry, the way the JavaScript test does. The file format is
// described in testdata/vectors/README.md.

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/coopcast/coopcast/internal/golden"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors/wire.json from what the Go code produces now")

var wireVectorsPath = filepath.Join("..", "..", "testdata", "vectors", "wire.json")

// The vectors' blobs and data pattern, shared with internal/wire and
// internal/fec.
type vecBlob = golden.Blob

var (
	vecPattern = golden.Pattern
	vecInline  = golden.Inline
	vecDigest  = golden.Digest
	vecGen     = golden.Gen
	vecPadded  = golden.Padded
)

type wireVectors struct {
	About     string         `json:"about"`
	Constants map[string]int `json:"constants"`
	// InitSignatureHeader is wire.InitSignatureHeader.
	InitSignatureHeader string `json:"init_signature_header"`
	// InitEpochHeader is wire.InitEpochHeader.
	InitEpochHeader string `json:"init_epoch_header"`
	// TicketHeader is wire.TicketHeader.
	TicketHeader string `json:"ticket_header"`
	// Seed is the channel key's Ed25519 seed, PublicKey its public key (hex).
	Seed      string `json:"seed"`
	PublicKey string `json:"public_key"`
	Channel   string `json:"channel"`

	Fragments []vecFragments `json:"fragments"`
	Manifests []vecManifest  `json:"manifests"`
	Inits     []vecInit      `json:"inits"`
	Bad       []vecBad       `json:"bad"`
}

// vecFragments is one shard cut by Fragments(seq, shard, data).
type vecFragments struct {
	Name     string       `json:"name"`
	Seq      uint32       `json:"seq"`
	Shard    uint8        `json:"shard"`
	Data     vecBlob      `json:"data"`
	Messages []vecMessage `json:"messages"`
}

// vecMessage is one fragment message with the offset and total it carries.
type vecMessage struct {
	Offset uint32  `json:"offset"`
	Total  uint32  `json:"total"`
	Msg    vecBlob `json:"msg"`
}

// vecManifest is a manifest signed by the vectors' key for their channel,
// over the hashes of Shards (HashShards).
type vecManifest struct {
	Name      string `json:"name"`
	Seq       uint32 `json:"seq"`
	Timestamp int64  `json:"timestamp,string"`
	Decode    uint64 `json:"decode,string"`
	Duration  uint32 `json:"duration"`
	Timescale uint32 `json:"timescale"`
	Length    uint32 `json:"length"`
	Flags     uint8  `json:"flags"`
	M         uint8  `json:"m"`
	K         uint8  `json:"k"`
	ShardSize uint32 `json:"shard_size"`
	Epoch     uint64 `json:"epoch,string"`
	// FragmentsPerShard is FragmentCount(ShardSize).
	FragmentsPerShard int       `json:"fragments_per_shard"`
	Shards            []vecBlob `json:"shards"`
	// Hashes is every hash in message order, shard by shard (digest only).
	Hashes vecBlob `json:"hashes"`
	// Signed is what the signature covers: prefix ‖ channel ‖ body.
	Signed    vecBlob `json:"signed"`
	Signature string  `json:"signature"`
	Raw       vecBlob `json:"raw"`
}

// vecInit is an init segment signed with SignInit.
type vecInit struct {
	Name  string  `json:"name"`
	Init  vecBlob `json:"init"`
	Epoch uint64  `json:"epoch,string"`
	// Signed is what the signature covers: context ‖ channel ‖ 0 ‖ epoch ‖ init.
	Signed    vecBlob `json:"signed"`
	Signature string  `json:"signature"`
}

// vecBad is an input the Go code rejects, with the error it gives.
//
//	parse_fragment   ParseFragment(raw)
//	parse_manifest   ParseManifest(raw)
//	verify_manifest  ParseManifest(raw) succeeds, Verify(key, channel) fails
//	verify_fragment  ParseFragment(raw) succeeds, manifests[manifest].VerifyFragment fails
//	verify_shard     manifests[manifest].VerifyShard(index, raw)
//	reassembler      NewReassembler(total), Add of every message in adds, then Add of raw
//	                 (no raw: NewReassembler itself fails)
//	verify_init      VerifyInit(key, channel, epoch, raw, signature)
//	verify_epoch     manifests[manifest].VerifyEpoch(epoch)
//
// Channel and Key default to the vectors' own, Epoch (decimal) to
// inits[1]'s.
type vecBad struct {
	Name      string    `json:"name"`
	Op        string    `json:"op"`
	Raw       *vecBlob  `json:"raw,omitempty"`
	Manifest  *int      `json:"manifest,omitempty"`
	Index     *int      `json:"index,omitempty"`
	Total     *int      `json:"total,omitempty"`
	Adds      []vecBlob `json:"adds,omitempty"`
	Channel   string    `json:"channel,omitempty"`
	Key       string    `json:"key,omitempty"`
	Signature string    `json:"signature,omitempty"`
	Epoch     string    `json:"epoch,omitempty"`
	// Category is the sentinel the error wraps (ErrTruncated, ...), Error
	// its whole text.
	Category string `json:"category"`
	Error    string `json:"error"`
}

var vecCategories = []struct {
	name string
	err  error
}{
	{"ErrTruncated", ErrTruncated}, {"ErrVersion", ErrVersion}, {"ErrType", ErrType},
	{"ErrTooLarge", ErrTooLarge}, {"ErrRange", ErrRange}, {"ErrBadSignature", ErrBadSignature},
	{"ErrHash", ErrHash}, {"ErrConflict", ErrConflict}, {"ErrOldEpoch", ErrOldEpoch},
}

func vecCategory(err error) string {
	for _, c := range vecCategories {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	return ""
}

const vecChannel = "vectors-channel"

func vecKey() ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	return ed25519.NewKeyFromSeed(seed)
}

func intp(i int) *int { return &i }

// buildWireVectors produces wire.json's content from the Go code.
func buildWireVectors(t *testing.T) []byte {
	t.Helper()
	priv := vecKey()
	v := wireVectors{
		About: "Generated by `go test ./internal/wire -run TestWireVectors -update`; do not edit. " +
			"Checked by internal/wire/vectors_test.go and webclient/test/wire.test.js. Format: README.md here.",
		Constants: map[string]int{
			"VERSION": Version, "TYPE_FRAGMENT": TypeFragment, "TYPE_MANIFEST": TypeManifest,
			"MAX_MESSAGE": MaxMessage, "FRAGMENT_HEADER": FragmentHeader, "MAX_PAYLOAD": MaxPayload,
			"MAX_SHARD_SIZE": MaxShardSize, "MANIFEST_FIXED": manifestFixed, "SIGNATURE_SIZE": signatureSize,
			"FLAG_KEYFRAME": int(FlagKeyframe), "FLAG_INIT": int(FlagInit), "FLAG_END": int(FlagEnd),
		},
		InitSignatureHeader: InitSignatureHeader,
		InitEpochHeader:     InitEpochHeader,
		TicketHeader:        TicketHeader,
		Seed:                hex.EncodeToString(priv.Seed()),
		PublicKey:           hex.EncodeToString(priv.Public().(ed25519.PublicKey)),
		Channel:             vecChannel,
	}

	// Fragments: an empty shard (one empty fragment), short ones, exactly
	// one full fragment, and one full fragment plus a 1-byte last one.
	for i, tc := range []struct {
		name  string
		seq   uint32
		shard uint8
		size  int
	}{
		{"empty shard", 7, 0, 0},
		{"one byte", 8, 1, 1},
		{"short", 0xfffffffe, 31, 37},
		{"exactly one full fragment", 9, 2, MaxPayload},
		{"full fragment and a 1-byte last one", 0x01020304, 3, MaxPayload + 1},
	} {
		data, b := vecGen(uint32(100+i), tc.size)
		f := vecFragments{Name: tc.name, Seq: tc.seq, Shard: tc.shard, Data: data}
		Fragments(tc.seq, tc.shard, b, func(msg []byte) {
			p, err := ParseFragment(msg)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			f.Messages = append(f.Messages, vecMessage{Offset: p.Offset, Total: p.Total, Msg: vecInline(msg)})
		})
		v.Fragments = append(v.Fragments, f)
	}

	// Manifests: M/k combinations, every flag, decode times past 2^32 (and
	// one past 2^63), a negative timestamp, an end-of-stream manifest with
	// empty shards, and one near the 16 KiB limit.
	for i, tc := range []struct {
		name   string
		seq    uint32
		ts     int64
		decode uint64
		dur    uint32
		scale  uint32
		flags  uint8
		m, k   uint8
		size   int
		length uint32
		epoch  uint64
	}{
		{"4/3 keyframe, 3 fragments a shard", 42, 1_700_000_000_123_456, 5_000_000_000_001, 180_000, 90_000, FlagKeyframe, 4, 3, 2*MaxPayload + 5, 3*(2*MaxPayload+5) - 2, 1_699_999_000_000_001},
		{"8/5 no flags", 0xfffffff0, 1_700_000_000_500_000, 1<<40 + 7, 1024, 48_000, 0, 8, 5, 1000, 5*1000 - 1, 1_699_999_000_000_002},
		{"1/1 init segment and keyframe, epoch 0", 1, 1_700_000_001_000_000, 1<<32 + 1, 3003, 30_000, FlagInit | FlagKeyframe, 1, 1, 777, 777, 0},
		{"32/16 smallest length that fits", 0x80000000, 1_700_000_002_000_000, 1<<33 + 3, 1, 1_000_000, FlagKeyframe, 32, 16, 500, 15*500 + 1, 1 << 53},
		{"2/2 exactly one full fragment a shard", 77, 1_700_000_003_000_000, 1<<35 + 5, 90_000, 90_000, FlagKeyframe, 2, 2, MaxPayload, 2 * MaxPayload, 1<<53 + 1},
		{"4/3 end of stream", 100, 1_700_000_004_000_000, 1<<36 + 11, 0, 90_000, FlagEnd, 4, 3, 0, 0, 1_700_000_000_000_000},
		{"decode and epoch past 2^63, negative timestamp", 5, -1_234_567, 1<<63 + 12345, 0xffffffff, 0xffffffff, FlagKeyframe | FlagInit | FlagEnd, 3, 2, 10, 19, 1<<64 - 1},
		{"32/32 near the 16 KiB limit", 123456, 1_700_000_005_000_000, 1<<40 + 1, 6000, 90_000, FlagKeyframe, 32, 32, 15 * MaxPayload, 32 * 15 * MaxPayload, 1_700_000_005_000_000},
	} {
		mv := vecManifest{
			Name: tc.name, Seq: tc.seq, Timestamp: tc.ts, Decode: tc.decode, Duration: tc.dur, Timescale: tc.scale,
			Length: tc.length, Flags: tc.flags, M: tc.m, K: tc.k, ShardSize: uint32(tc.size), Epoch: tc.epoch, FragmentsPerShard: FragmentCount(tc.size),
		}
		shards := make([][]byte, tc.m)
		for j := range shards {
			var b vecBlob
			b, shards[j] = vecGen(uint32(1000*(i+1)+j), tc.size)
			mv.Shards = append(mv.Shards, b)
		}
		m := Manifest{Seq: tc.seq, Timestamp: tc.ts, DecodeTime: tc.decode, Duration: tc.dur, Timescale: tc.scale,
			Length: tc.length, Flags: tc.flags, M: tc.m, K: tc.k, ShardSize: uint32(tc.size), Epoch: tc.epoch, Hashes: HashShards(shards)}
		raw, err := SignManifest(priv, vecChannel, &m)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if _, err := ParseManifest(raw); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		sigAt := len(raw) - signatureSize
		mv.Hashes = vecDigest(raw[manifestFixed:sigAt])
		mv.Signed = vecDigest(signedBytes(vecChannel, raw[:sigAt]))
		mv.Signature = hex.EncodeToString(raw[sigAt:])
		mv.Raw = vecInline(raw)
		v.Manifests = append(v.Manifests, mv)
	}

	for i, tc := range []struct {
		n     int
		epoch uint64
	}{{0, 0}, {1234, 1_700_000_000_000_001}, {99, 1<<64 - 1}} {
		init, b := vecGen(uint32(5000+i), tc.n)
		v.Inits = append(v.Inits, vecInit{
			Name: fmt.Sprintf("init segment of %d bytes, epoch %d", tc.n, tc.epoch), Init: init, Epoch: tc.epoch,
			Signed:    vecDigest(initMessage(vecChannel, tc.epoch, b)),
			Signature: hex.EncodeToString(SignInit(priv, vecChannel, tc.epoch, b)),
		})
	}

	v.Bad = buildBadVectors(t, &v)

	out, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n')
}

// mutated returns a copy of b changed by f.
func mutated(b []byte, f func(b []byte) []byte) []byte { return f(bytes.Clone(b)) }

func buildBadVectors(t *testing.T, v *wireVectors) []vecBad {
	t.Helper()
	rawOf := func(i int) []byte {
		b, err := v.Manifests[i].Raw.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	shardOf := func(i, j int) []byte {
		b, err := v.Manifests[i].Shards[j].Bytes()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	frag := AppendFragment(nil, Fragment{Seq: 1, Shard: 0, Offset: 0, Total: 10, Payload: vecPattern(1, 10)})
	last := AppendFragment(nil, Fragment{Seq: 1, Shard: 0, Offset: MaxPayload, Total: MaxPayload + 1, Payload: []byte{9}})
	m85 := rawOf(1) // 8/5, shards of 1000 bytes: one fragment each
	sig := len(m85) - signatureSize
	otherKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32)).Public().(ed25519.PublicKey)
	ok85 := func(j int) []byte {
		var out []byte
		Fragments(v.Manifests[1].Seq, uint8(j), shardOf(1, j), func(msg []byte) { out = msg })
		return out
	}
	inline := func(b []byte) *vecBlob { x := vecPadded(b); return &x }

	bad := []struct {
		vecBad
		raw  []byte
		want error
	}{
		// ParseFragment
		{vecBad{Name: "empty fragment", Op: "parse_fragment"}, []byte{}, ErrTruncated},
		{vecBad{Name: "version only", Op: "parse_fragment"}, []byte{1}, ErrTruncated},
		{vecBad{Name: "fragment header cut short", Op: "parse_fragment"}, frag[:14], ErrTruncated},
		{vecBad{Name: "fragment of version 1 (before the stream epoch)", Op: "parse_fragment"}, mutated(frag, func(b []byte) []byte { b[0] = 1; return b }), ErrVersion},
		{vecBad{Name: "fragment of version 3", Op: "parse_fragment"}, mutated(frag, func(b []byte) []byte { b[0] = 3; return b }), ErrVersion},
		{vecBad{Name: "fragment of version 0", Op: "parse_fragment"}, mutated(frag, func(b []byte) []byte { b[0] = 0; return b }), ErrVersion},
		{vecBad{Name: "manifest type where a fragment is wanted", Op: "parse_fragment"}, mutated(frag, func(b []byte) []byte { b[1] = TypeManifest; return b }), ErrType},
		{vecBad{Name: "unknown type 3", Op: "parse_fragment"}, mutated(frag, func(b []byte) []byte { b[1] = 3; return b }), ErrType},
		{vecBad{Name: "fragment over 16 KiB", Op: "parse_fragment"}, append(AppendFragment(nil, Fragment{Offset: MaxPayload, Total: MaxPayload + 1, Payload: []byte{1}}), make([]byte, MaxMessage-15)...), ErrTooLarge},
		{vecBad{Name: "payload longer than the shard", Op: "parse_fragment"}, append(bytes.Clone(frag), 1), ErrRange},
		{vecBad{Name: "payload shorter than the shard", Op: "parse_fragment"}, frag[:len(frag)-1], ErrRange},
		{vecBad{Name: "offset not a multiple of MaxPayload", Op: "parse_fragment"}, mutated(frag, func(b []byte) []byte { b[10] = 1; return b }), ErrRange},
		{vecBad{Name: "offset past the shard", Op: "parse_fragment"}, mutated(last, func(b []byte) []byte { b[13] = 0x3f; b[14] = 0; return b }), ErrRange},
		{vecBad{Name: "offset at the shard's end", Op: "parse_fragment"}, mutated(last, func(b []byte) []byte { b[13] = 0x3f; b[14] = 0xf1; return b }), ErrRange},
		{vecBad{Name: "empty payload at the shard's end", Op: "parse_fragment"}, AppendFragment(nil, Fragment{Offset: MaxPayload, Total: MaxPayload}), ErrRange},
		{vecBad{Name: "shard over MaxShardSize", Op: "parse_fragment"}, mutated(frag, func(b []byte) []byte { b[12] = 0x10; b[14] = 1; return b }), ErrRange},
		{vecBad{Name: "empty shard with an offset", Op: "parse_fragment"}, mutated(AppendFragment(nil, Fragment{}), func(b []byte) []byte { b[9] = 0x3f; b[10] = 0xf1; return b }), ErrRange},
		{vecBad{Name: "empty shard with a payload", Op: "parse_fragment"}, append(AppendFragment(nil, Fragment{}), 0), ErrRange},

		// ParseManifest
		{vecBad{Name: "empty manifest", Op: "parse_manifest"}, []byte{}, ErrTruncated},
		{vecBad{Name: "manifest of version 1 (before the stream epoch)", Op: "parse_manifest"}, mutated(m85, func(b []byte) []byte { b[0] = 1; return b }), ErrVersion},
		{vecBad{Name: "manifest of version 3", Op: "parse_manifest"}, mutated(m85, func(b []byte) []byte { b[0] = 3; return b }), ErrVersion},
		{vecBad{Name: "fragment type where a manifest is wanted", Op: "parse_manifest"}, mutated(m85, func(b []byte) []byte { b[1] = TypeFragment; return b }), ErrType},
		{vecBad{Name: "manifest shorter than its fixed part and signature", Op: "parse_manifest"}, m85[:manifestFixed+signatureSize-1], ErrTruncated},
		{vecBad{Name: "manifest over 16 KiB", Op: "parse_manifest"}, append(bytes.Clone(m85), make([]byte, MaxMessage-len(m85)+1)...), ErrTooLarge},
		{vecBad{Name: "M = 0", Op: "parse_manifest"}, mutated(m85, func(b []byte) []byte { b[35] = 0; return b }), ErrRange},
		{vecBad{Name: "k = 0", Op: "parse_manifest"}, mutated(m85, func(b []byte) []byte { b[36] = 0; return b }), ErrRange},
		{vecBad{Name: "k > M", Op: "parse_manifest"}, mutated(m85, func(b []byte) []byte { b[36] = 9; return b }), ErrRange},
		{vecBad{Name: "shard size over MaxShardSize", Op: "parse_manifest"}, mutated(m85, func(b []byte) []byte { b[38] = 0x10; b[40] = 1; return b }), ErrRange},
		{vecBad{Name: "length over k shards", Op: "parse_manifest"}, mutated(m85, func(b []byte) []byte { b[32] = 0x13; b[33] = 0x89; return b }), ErrRange},
		{vecBad{Name: "length that k-1 shards hold", Op: "parse_manifest"}, mutated(m85, func(b []byte) []byte { b[32] = 0x0f; b[33] = 0xa0; return b }), ErrRange},
		{vecBad{Name: "one hash byte missing", Op: "parse_manifest"}, append(bytes.Clone(m85[:sig-1]), m85[sig:]...), ErrTruncated},
		{vecBad{Name: "one byte too many", Op: "parse_manifest"}, append(bytes.Clone(m85), 0), ErrTruncated},
		{vecBad{Name: "shard size claims a second fragment", Op: "parse_manifest"}, mutated(rawOf(4), func(b []byte) []byte { b[40]++; return b }), ErrTruncated},

		// Manifest.Verify
		{vecBad{Name: "signature byte flipped", Op: "verify_manifest"}, mutated(m85, func(b []byte) []byte { b[sig+10] ^= 1; return b }), ErrBadSignature},
		{vecBad{Name: "hash byte flipped", Op: "verify_manifest"}, mutated(m85, func(b []byte) []byte { b[manifestFixed+5] ^= 0x80; return b }), ErrBadSignature},
		{vecBad{Name: "sequence number changed", Op: "verify_manifest"}, mutated(m85, func(b []byte) []byte { b[5] ^= 1; return b }), ErrBadSignature},
		{vecBad{Name: "epoch changed", Op: "verify_manifest"}, mutated(m85, func(b []byte) []byte { b[48] ^= 1; return b }), ErrBadSignature},
		{vecBad{Name: "replayed into another channel", Op: "verify_manifest", Channel: "another-channel"}, m85, ErrBadSignature},
		{vecBad{Name: "replayed into a channel whose id extends this one's", Op: "verify_manifest", Channel: vecChannel + "x"}, m85, ErrBadSignature},
		{vecBad{Name: "another key", Op: "verify_manifest", Key: hex.EncodeToString(otherKey)}, m85, ErrBadSignature},
		{vecBad{Name: "key of 31 bytes", Op: "verify_manifest", Key: hex.EncodeToString(otherKey[:31])}, m85, ErrBadSignature},

		// Manifest.VerifyFragment
		{vecBad{Name: "fragment of another chunk", Op: "verify_fragment", Manifest: intp(1)}, mutated(ok85(2), func(b []byte) []byte { b[5]++; return b }), ErrRange},
		{vecBad{Name: "fragment of a shard the manifest lacks", Op: "verify_fragment", Manifest: intp(1)}, mutated(ok85(2), func(b []byte) []byte { b[6] = 8; return b }), ErrRange},
		{vecBad{Name: "fragment of another shard size", Op: "verify_fragment", Manifest: intp(1)},
			AppendFragment(nil, Fragment{Seq: v.Manifests[1].Seq, Shard: 2, Total: 999, Payload: shardOf(1, 2)[:999]}), ErrRange},
		{vecBad{Name: "fragment payload byte flipped", Op: "verify_fragment", Manifest: intp(1)}, mutated(ok85(2), func(b []byte) []byte { b[FragmentHeader+500] ^= 4; return b }), ErrHash},
		{vecBad{Name: "fragment with another shard's payload", Op: "verify_fragment", Manifest: intp(1)}, mutated(ok85(2), func(b []byte) []byte { b[6] = 3; return b }), ErrHash},

		// Manifest.VerifyShard
		{vecBad{Name: "shard byte flipped", Op: "verify_shard", Manifest: intp(1), Index: intp(4)}, mutated(shardOf(1, 4), func(b []byte) []byte { b[999] ^= 1; return b }), ErrHash},
		{vecBad{Name: "another shard's bytes", Op: "verify_shard", Manifest: intp(1), Index: intp(4)}, shardOf(1, 5), ErrHash},
		{vecBad{Name: "shard one byte short", Op: "verify_shard", Manifest: intp(1), Index: intp(4)}, shardOf(1, 4)[:999], ErrRange},
		{vecBad{Name: "shard index M", Op: "verify_shard", Manifest: intp(1), Index: intp(8)}, shardOf(1, 4), ErrRange},
		{vecBad{Name: "shard index -1", Op: "verify_shard", Manifest: intp(1), Index: intp(-1)}, shardOf(1, 4), ErrRange},

		// Reassembler
		{vecBad{Name: "reassembler over MaxShardSize", Op: "reassembler", Total: intp(MaxShardSize + 1)}, nil, ErrTooLarge},
		{vecBad{Name: "reassembler of a negative size", Op: "reassembler", Total: intp(-1)}, nil, ErrTooLarge},
		{vecBad{Name: "fragment of another shard size", Op: "reassembler", Total: intp(11)}, frag, ErrRange},
		{vecBad{Name: "duplicate that differs", Op: "reassembler", Total: intp(10), Adds: []vecBlob{vecInline(frag)}},
			mutated(frag, func(b []byte) []byte { b[FragmentHeader+9] ^= 1; return b }), ErrConflict},

		// VerifyInit
		{vecBad{Name: "init segment for another channel", Op: "verify_init", Channel: "another-channel", Signature: v.Inits[1].Signature}, nil, ErrBadSignature},
		{vecBad{Name: "init segment byte flipped", Op: "verify_init", Signature: v.Inits[1].Signature}, nil, ErrBadSignature},
		{vecBad{Name: "init signature of 63 bytes", Op: "verify_init", Signature: v.Inits[1].Signature[:126]}, nil, ErrBadSignature},
		{vecBad{Name: "manifest signature over an init segment", Op: "verify_init", Signature: hex.EncodeToString(m85[sig:])}, nil, ErrBadSignature},
		{vecBad{Name: "init segment of another epoch", Op: "verify_init", Signature: v.Inits[1].Signature, Epoch: fmt.Sprint(v.Inits[1].Epoch + 1)}, nil, ErrBadSignature},

		// Manifest.VerifyEpoch
		{vecBad{Name: "manifest of an earlier epoch", Op: "verify_epoch", Manifest: intp(1), Epoch: fmt.Sprint(v.Manifests[1].Epoch + 1)}, nil, ErrOldEpoch},
		{vecBad{Name: "manifest of epoch 0 in a stream at 2^63", Op: "verify_epoch", Manifest: intp(2), Epoch: fmt.Sprint(uint64(1) << 63)}, nil, ErrOldEpoch},
	}
	init1, err := v.Inits[1].Init.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	var out []vecBad
	for _, b := range bad {
		vb := b.vecBad
		switch {
		case b.raw != nil:
			vb.Raw = inline(b.raw)
		case vb.Op == "verify_init" && vb.Name == "init segment byte flipped":
			vb.Raw = inline(mutated(init1, func(b []byte) []byte { b[600] ^= 2; return b }))
		case vb.Op == "verify_init":
			vb.Raw = inline(init1)
		}
		err := runBadVector(v, vb)
		if !errors.Is(err, b.want) {
			t.Fatalf("%s: got %v, want %v", vb.Name, err, b.want)
		}
		vb.Category, vb.Error = vecCategory(err), err.Error()
		out = append(out, vb)
	}
	return out
}

var errVectorPassed = errors.New("no error")

// runBadVector runs one bad vector's operation and returns its error
// (errVectorPassed if it gave none, another error if a step that must
// succeed failed).
func runBadVector(v *wireVectors, b vecBad) error {
	var raw []byte
	if b.Raw != nil {
		var err error
		if raw, err = b.Raw.Bytes(); err != nil {
			return fmt.Errorf("vector: %w", err)
		}
	}
	channel, key, epoch := v.Channel, v.PublicKey, uint64(0)
	if len(v.Inits) > 1 {
		epoch = v.Inits[1].Epoch
	}
	if b.Epoch != "" {
		var err error
		if epoch, err = strconv.ParseUint(b.Epoch, 10, 64); err != nil {
			return fmt.Errorf("vector: %w", err)
		}
	}
	if b.Channel != "" {
		channel = b.Channel
	}
	if b.Key != "" {
		key = b.Key
	}
	pub, err := hex.DecodeString(key)
	if err != nil {
		return fmt.Errorf("vector: %w", err)
	}
	manifest := func() (*Manifest, error) {
		if b.Manifest == nil || *b.Manifest >= len(v.Manifests) {
			return nil, errors.New("vector: no manifest")
		}
		mr, err := v.Manifests[*b.Manifest].Raw.Bytes()
		if err != nil {
			return nil, fmt.Errorf("vector: %w", err)
		}
		m, err := ParseManifest(mr)
		if err != nil {
			return nil, fmt.Errorf("vector: manifest: %w", err)
		}
		return &m, nil
	}
	pass := func(err error) error {
		if err == nil {
			return errVectorPassed
		}
		return err
	}
	switch b.Op {
	case "parse_fragment":
		_, err := ParseFragment(raw)
		return pass(err)
	case "parse_manifest":
		_, err := ParseManifest(raw)
		return pass(err)
	case "verify_manifest":
		m, err := ParseManifest(raw)
		if err != nil {
			return fmt.Errorf("vector: parse: %v", err)
		}
		return pass(m.Verify(pub, channel))
	case "verify_fragment":
		m, err := manifest()
		if err != nil {
			return err
		}
		f, err := ParseFragment(raw)
		if err != nil {
			return fmt.Errorf("vector: parse: %v", err)
		}
		return pass(m.VerifyFragment(f))
	case "verify_shard":
		m, err := manifest()
		if err != nil {
			return err
		}
		if b.Index == nil {
			return errors.New("vector: no index")
		}
		return pass(m.VerifyShard(*b.Index, raw))
	case "reassembler":
		if b.Total == nil {
			return errors.New("vector: no total")
		}
		r, err := NewReassembler(*b.Total)
		if err != nil || b.Raw == nil {
			return pass(err)
		}
		for _, a := range append(b.Adds, *b.Raw) {
			ab, err := a.Bytes()
			if err != nil {
				return fmt.Errorf("vector: %w", err)
			}
			f, err := ParseFragment(ab)
			if err != nil {
				return fmt.Errorf("vector: parse: %v", err)
			}
			if _, err := r.Add(f); err != nil {
				return err
			}
		}
		return errVectorPassed
	case "verify_init":
		sig, err := hex.DecodeString(b.Signature)
		if err != nil {
			return fmt.Errorf("vector: %w", err)
		}
		return pass(VerifyInit(pub, channel, epoch, raw, sig))
	case "verify_epoch":
		m, err := manifest()
		if err != nil {
			return err
		}
		return pass(m.VerifyEpoch(epoch))
	}
	return fmt.Errorf("vector: unknown op %q", b.Op)
}

// TestWireVectors fails when the Go code no longer produces the committed
// vectors byte for byte: a layout changed, in Go or in the file.
func TestWireVectors(t *testing.T) {
	got := buildWireVectors(t)
	golden.Check(t, wireVectorsPath, got, *update, 150_000, "update webclient/js/wire.js to match")
}

// TestWireVectorsReplay checks the Go code against every entry of the
// committed file, as webclient/test/wire.test.js does for the browser.
func TestWireVectorsReplay(t *testing.T) {
	data, err := os.ReadFile(wireVectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var v wireVectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	pub, _ := hex.DecodeString(v.PublicKey)
	seed, _ := hex.DecodeString(v.Seed)
	if !bytes.Equal(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey), pub) {
		t.Fatal("public key is not the seed's")
	}
	if len(v.Fragments) < 5 || len(v.Manifests) < 8 || len(v.Inits) < 3 || len(v.Bad) < 45 {
		t.Fatalf("only %d fragment, %d manifest, %d init and %d bad vectors", len(v.Fragments), len(v.Manifests), len(v.Inits), len(v.Bad))
	}
	for _, fv := range v.Fragments {
		data, err := fv.Data.Bytes()
		if err != nil {
			t.Fatalf("%s: %v", fv.Name, err)
		}
		var msgs [][]byte
		Fragments(fv.Seq, fv.Shard, data, func(m []byte) { msgs = append(msgs, m) })
		if len(msgs) != len(fv.Messages) {
			t.Fatalf("%s: %d messages, want %d", fv.Name, len(msgs), len(fv.Messages))
		}
		r, _ := NewReassembler(len(data))
		for i, mv := range fv.Messages {
			want, err := mv.Msg.Bytes()
			if err != nil || !bytes.Equal(msgs[i], want) {
				t.Fatalf("%s: message %d differs (%v)", fv.Name, i, err)
			}
			f, err := ParseFragment(want)
			if err != nil || f.Seq != fv.Seq || f.Shard != fv.Shard || f.Offset != mv.Offset || f.Total != mv.Total {
				t.Fatalf("%s: message %d parsed as %+v, %v", fv.Name, i, f, err)
			}
			if _, err := r.Add(f); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(r.Bytes(), data) {
			t.Fatalf("%s: reassembled shard differs", fv.Name)
		}
	}
	for _, mv := range v.Manifests {
		raw, err := mv.Raw.Bytes()
		if err != nil {
			t.Fatalf("%s: %v", mv.Name, err)
		}
		m, err := ParseManifest(raw)
		if err != nil {
			t.Fatalf("%s: %v", mv.Name, err)
		}
		if m.Seq != mv.Seq || m.Epoch != mv.Epoch || m.Timestamp != mv.Timestamp || m.DecodeTime != mv.Decode || m.Duration != mv.Duration ||
			m.Timescale != mv.Timescale || m.Length != mv.Length || m.Flags != mv.Flags || m.M != mv.M || m.K != mv.K ||
			m.ShardSize != mv.ShardSize || len(m.Hashes[0]) != mv.FragmentsPerShard {
			t.Fatalf("%s: parsed %+v", mv.Name, m)
		}
		if err := m.Verify(pub, v.Channel); err != nil {
			t.Fatalf("%s: %v", mv.Name, err)
		}
		if !mv.Signed.Matches(signedBytes(v.Channel, m.signed)) || hex.EncodeToString(m.signature) != mv.Signature {
			t.Fatalf("%s: signed bytes or signature differ", mv.Name)
		}
		shards := make([][]byte, len(mv.Shards))
		for i, sb := range mv.Shards {
			if shards[i], err = sb.Bytes(); err != nil {
				t.Fatalf("%s: %v", mv.Name, err)
			}
			if err := m.VerifyShard(i, shards[i]); err != nil {
				t.Fatalf("%s: shard %d: %v", mv.Name, i, err)
			}
		}
		var flat []byte
		for _, hs := range HashShards(shards) {
			for _, h := range hs {
				flat = append(flat, h[:]...)
			}
		}
		if !mv.Hashes.Matches(flat) {
			t.Fatalf("%s: hashes differ", mv.Name)
		}
		again := Manifest{Seq: mv.Seq, Timestamp: mv.Timestamp, DecodeTime: mv.Decode, Duration: mv.Duration, Timescale: mv.Timescale,
			Length: mv.Length, Flags: mv.Flags, M: mv.M, K: mv.K, ShardSize: mv.ShardSize, Epoch: mv.Epoch, Hashes: HashShards(shards)}
		resigned, err := SignManifest(ed25519.NewKeyFromSeed(seed), v.Channel, &again)
		if err != nil || !bytes.Equal(resigned, raw) {
			t.Fatalf("%s: signing the fields again gives other bytes (%v)", mv.Name, err)
		}
	}
	for _, iv := range v.Inits {
		init, err := iv.Init.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		sig, _ := hex.DecodeString(iv.Signature)
		if err := VerifyInit(pub, v.Channel, iv.Epoch, init, sig); err != nil || !iv.Signed.Matches(initMessage(v.Channel, iv.Epoch, init)) ||
			!bytes.Equal(SignInit(ed25519.NewKeyFromSeed(seed), v.Channel, iv.Epoch, init), sig) {
			t.Fatalf("%s: %v", iv.Name, err)
		}
	}
	for _, b := range v.Bad {
		err := runBadVector(&v, b)
		if err == nil || err.Error() != b.Error || vecCategory(err) != b.Category {
			t.Errorf("%s: got %q (%s), want %q (%s)", b.Name, err, vecCategory(err), b.Error, b.Category)
		}
	}
}
