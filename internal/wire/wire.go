package wire

// Byte layouts, all integers big-endian.
//
// Every message starts with:
//
//	0  version  uint8  = 2 (1 had no stream epoch in the manifest)
//	1  type     uint8  = 1 fragment, 2 manifest
//
// Fragment (type 1): a piece of one shard; a message is at most
// MaxMessage (16 KiB) bytes.
//
//	2  seq      uint32  chunk sequence number
//	6  shard    uint8   shard index = tree index
//	7  offset   uint32  byte offset of the payload in the shard, a multiple of MaxPayload
//	11 total    uint32  shard length
//	15 payload  ...     min(MaxPayload, total-offset) bytes
//
// Manifest (type 2): one per chunk, sent down every tree.
//
//	2  seq        uint32
//	6  timestamp  int64   when the origin cut the chunk, unix microseconds
//	14 decode     uint64  media decode time, in timescale units
//	22 duration   uint32  media duration, in timescale units
//	26 timescale  uint32
//	30 length     uint32  chunk length in bytes
//	34 flags      uint8   bit 0 keyframe, bit 1 init segment, bit 2 end of stream
//	35 m          uint8   shards (trees)
//	36 k          uint8   shards that rebuild the chunk
//	37 shardsize  uint32
//	41 epoch      uint64  the stream's epoch: unix microseconds when this run
//	              or push of the origin began, larger than any before it
//	49 hashes     m × ceil(shardsize/MaxPayload) × 32 bytes: SHA-256 of each
//	              fragment's payload, shard by shard, fragment by fragment
//	.. signature  64 bytes Ed25519 over "coopcast/manifest/v2\x00" ‖ channel id ‖
//	              every manifest byte before the signature
//
// The channel id in the signed bytes stops a manifest from one channel
// being replayed into another; the epoch, one from an earlier run or push
// of the same channel being replayed into this one (peers accept only the
// newest epoch they know).
//
// The init segment is signed over "coopcast/init/v2\x00" ‖ channel id ‖
// 0x00 ‖ epoch (uint64) ‖ init, so it is bound to one epoch too.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Layout constants.
const (
	Version        = 2
	TypeFragment   = 1
	TypeManifest   = 2
	MaxMessage     = 16384
	FragmentHeader = 15
	MaxPayload     = MaxMessage - FragmentHeader
	manifestFixed  = 49
	signatureSize  = ed25519.SignatureSize
	// MaxShardSize bounds a shard so that its manifest fits one message.
	MaxShardSize = 1 << 20
)

// Manifest flags.
const (
	FlagKeyframe uint8 = 1 << 0
	FlagInit     uint8 = 1 << 1
	FlagEnd      uint8 = 1 << 2
)

var signPrefix = []byte("coopcast/manifest/v2\x00")

// Fragment is one piece of a shard. Payload aliases the parsed message.
type Fragment struct {
	Seq     uint32
	Shard   uint8
	Offset  uint32
	Total   uint32
	Payload []byte
}

// AppendFragment appends f's message to dst.
func AppendFragment(dst []byte, f Fragment) []byte {
	dst = append(dst, Version, TypeFragment)
	dst = binary.BigEndian.AppendUint32(dst, f.Seq)
	dst = append(dst, f.Shard)
	dst = binary.BigEndian.AppendUint32(dst, f.Offset)
	dst = binary.BigEndian.AppendUint32(dst, f.Total)
	return append(dst, f.Payload...)
}

// ParseFragment reads a fragment message.
func ParseFragment(b []byte) (Fragment, error) {
	if err := header(b, TypeFragment); err != nil {
		return Fragment{}, err
	}
	if len(b) < FragmentHeader {
		return Fragment{}, fmt.Errorf("%w: fragment of %d bytes", ErrTruncated, len(b))
	}
	if len(b) > MaxMessage {
		return Fragment{}, fmt.Errorf("%w: fragment of %d bytes", ErrTooLarge, len(b))
	}
	f := Fragment{
		Seq:     binary.BigEndian.Uint32(b[2:]),
		Shard:   b[6],
		Offset:  binary.BigEndian.Uint32(b[7:]),
		Total:   binary.BigEndian.Uint32(b[11:]),
		Payload: b[FragmentHeader:],
	}
	if f.Total > MaxShardSize || f.Offset%MaxPayload != 0 || f.Offset >= max(f.Total, 1) ||
		uint32(len(f.Payload)) != min(MaxPayload, f.Total-min(f.Offset, f.Total)) {
		return Fragment{}, fmt.Errorf("%w: fragment offset %d, %d bytes, of shard %d", ErrRange, f.Offset, len(f.Payload), f.Total)
	}
	return f, nil
}

func header(b []byte, typ uint8) error {
	if len(b) < 2 {
		return ErrTruncated
	}
	if b[0] != Version {
		return fmt.Errorf("%w: %d", ErrVersion, b[0])
	}
	if b[1] != typ {
		return fmt.Errorf("%w: %d", ErrType, b[1])
	}
	return nil
}

// FragmentCount is how many fragments a shard of size bytes takes (at
// least one, so that an empty shard is still announced).
func FragmentCount(size int) int { return max(1, (size+MaxPayload-1)/MaxPayload) }

// Fragments cuts shard into messages and calls fn with each, a fresh
// slice fn may keep.
func Fragments(seq uint32, shard uint8, data []byte, fn func(msg []byte)) {
	for i := 0; i < FragmentCount(len(data)); i++ {
		off := i * MaxPayload
		end := min(off+MaxPayload, len(data))
		msg := make([]byte, 0, FragmentHeader+end-off)
		fn(AppendFragment(msg, Fragment{Seq: seq, Shard: shard, Offset: uint32(off), Total: uint32(len(data)), Payload: data[off:end]}))
	}
}

// Manifest describes one chunk; Verify and the Verify* methods check data
// against it.
type Manifest struct {
	Seq        uint32
	Timestamp  int64
	DecodeTime uint64
	Duration   uint32
	Timescale  uint32
	Length     uint32
	Flags      uint8
	M, K       uint8
	ShardSize  uint32
	// Epoch names the run (or push) of the origin that signed the
	// manifest: unix µs of its start, larger than any epoch before it.
	Epoch uint64
	// Hashes[i][j] is the SHA-256 of fragment j's payload of shard i.
	Hashes [][][32]byte

	signed    []byte // the bytes covered by the signature, after ParseManifest
	signature []byte
}

// Keyframe reports whether the chunk starts with a keyframe.
func (m *Manifest) Keyframe() bool { return m.Flags&FlagKeyframe != 0 }

// HashShards returns the per-fragment hashes of shards, for a Manifest.
func HashShards(shards [][]byte) [][][32]byte {
	out := make([][][32]byte, len(shards))
	for i, s := range shards {
		n := FragmentCount(len(s))
		out[i] = make([][32]byte, n)
		for j := 0; j < n; j++ {
			out[i][j] = sha256.Sum256(s[min(j*MaxPayload, len(s)):min((j+1)*MaxPayload, len(s))])
		}
	}
	return out
}

// SignManifest encodes m, signs it for channel, and returns the message.
func SignManifest(priv ed25519.PrivateKey, channel string, m *Manifest) ([]byte, error) {
	if m.M == 0 || m.K == 0 || m.K > m.M || len(m.Hashes) != int(m.M) {
		return nil, fmt.Errorf("%w: M=%d k=%d with %d hash lists", ErrRange, m.M, m.K, len(m.Hashes))
	}
	if m.ShardSize > MaxShardSize {
		return nil, fmt.Errorf("%w: shard of %d bytes; chunks must be cut smaller", ErrTooLarge, m.ShardSize)
	}
	n := FragmentCount(int(m.ShardSize))
	b := make([]byte, 0, manifestFixed+int(m.M)*n*32+signatureSize)
	b = append(b, Version, TypeManifest)
	b = binary.BigEndian.AppendUint32(b, m.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Timestamp))
	b = binary.BigEndian.AppendUint64(b, m.DecodeTime)
	b = binary.BigEndian.AppendUint32(b, m.Duration)
	b = binary.BigEndian.AppendUint32(b, m.Timescale)
	b = binary.BigEndian.AppendUint32(b, m.Length)
	b = append(b, m.Flags, m.M, m.K)
	b = binary.BigEndian.AppendUint32(b, m.ShardSize)
	b = binary.BigEndian.AppendUint64(b, m.Epoch)
	for i, hs := range m.Hashes {
		if len(hs) != n {
			return nil, fmt.Errorf("%w: shard %d has %d hashes, want %d", ErrRange, i, len(hs), n)
		}
		for _, h := range hs {
			b = append(b, h[:]...)
		}
	}
	if len(b)+signatureSize > MaxMessage {
		return nil, fmt.Errorf("%w: manifest of %d bytes; use smaller chunks or fewer trees", ErrTooLarge, len(b)+signatureSize)
	}
	sig := ed25519.Sign(priv, signedBytes(channel, b))
	b = append(b, sig...)
	m.signed, m.signature = b[:len(b)-signatureSize], b[len(b)-signatureSize:]
	return b, nil
}

func signedBytes(channel string, body []byte) []byte {
	s := make([]byte, 0, len(signPrefix)+len(channel)+len(body))
	s = append(s, signPrefix...)
	s = append(s, channel...)
	return append(s, body...)
}

// ParseManifest reads a manifest message. It does not check the
// signature: call Verify.
func ParseManifest(b []byte) (Manifest, error) {
	if err := header(b, TypeManifest); err != nil {
		return Manifest{}, err
	}
	if len(b) > MaxMessage {
		return Manifest{}, fmt.Errorf("%w: manifest of %d bytes", ErrTooLarge, len(b))
	}
	if len(b) < manifestFixed+signatureSize {
		return Manifest{}, fmt.Errorf("%w: manifest of %d bytes", ErrTruncated, len(b))
	}
	be := binary.BigEndian
	m := Manifest{
		Seq: be.Uint32(b[2:]), Timestamp: int64(be.Uint64(b[6:])), DecodeTime: be.Uint64(b[14:]),
		Duration: be.Uint32(b[22:]), Timescale: be.Uint32(b[26:]), Length: be.Uint32(b[30:]),
		Flags: b[34], M: b[35], K: b[36], ShardSize: be.Uint32(b[37:]), Epoch: be.Uint64(b[41:]),
	}
	if m.M == 0 || m.K == 0 || m.K > m.M || m.ShardSize > MaxShardSize {
		return Manifest{}, fmt.Errorf("%w: M=%d k=%d shard size %d", ErrRange, m.M, m.K, m.ShardSize)
	}
	if uint64(m.Length) > uint64(m.ShardSize)*uint64(m.K) || (m.Length > 0 && uint64(m.Length) <= uint64(m.ShardSize)*uint64(m.K-1)) {
		return Manifest{}, fmt.Errorf("%w: length %d does not fit %d shards of %d", ErrRange, m.Length, m.K, m.ShardSize)
	}
	n := FragmentCount(int(m.ShardSize))
	if len(b) != manifestFixed+int(m.M)*n*32+signatureSize {
		return Manifest{}, fmt.Errorf("%w: manifest of %d bytes for %d shards of %d fragments", ErrTruncated, len(b), m.M, n)
	}
	m.Hashes = make([][][32]byte, m.M)
	off := manifestFixed
	for i := range m.Hashes {
		m.Hashes[i] = make([][32]byte, n)
		for j := range m.Hashes[i] {
			copy(m.Hashes[i][j][:], b[off:])
			off += 32
		}
	}
	m.signed, m.signature = b[:off], b[off:]
	return m, nil
}

// Verify checks the manifest's signature by the channel's key. Only a
// manifest from ParseManifest or SignManifest can be verified.
func (m *Manifest) Verify(pub ed25519.PublicKey, channel string) error {
	if len(pub) != ed25519.PublicKeySize || m.signature == nil || !ed25519.Verify(pub, signedBytes(channel, m.signed), m.signature) {
		return ErrBadSignature
	}
	return nil
}

// VerifyEpoch checks the manifest's epoch against the newest one the
// receiver knows (from the tracker, the init segment or an earlier
// verified manifest): an earlier epoch is a replay from a previous run or
// push of the origin and is refused. A later one is the origin restarted:
// the receiver takes it as the newest from then on.
func (m *Manifest) VerifyEpoch(newest uint64) error {
	if m.Epoch < newest {
		return fmt.Errorf("%w: epoch %d, the stream is at %d", ErrOldEpoch, m.Epoch, newest)
	}
	return nil
}

// VerifyFragment checks a fragment against the manifest: same chunk, a
// shard it lists, the right place and size, and its hash.
func (m *Manifest) VerifyFragment(f Fragment) error {
	if f.Seq != m.Seq || f.Shard >= m.M || f.Total != m.ShardSize || f.Offset%MaxPayload != 0 {
		return fmt.Errorf("%w: fragment of chunk %d shard %d at %d/%d", ErrRange, f.Seq, f.Shard, f.Offset, f.Total)
	}
	j := int(f.Offset / MaxPayload)
	if j >= len(m.Hashes[f.Shard]) || sha256.Sum256(f.Payload) != m.Hashes[f.Shard][j] {
		return ErrHash
	}
	return nil
}

// VerifyShard checks a whole shard (fetched over HTTP, or regenerated).
func (m *Manifest) VerifyShard(i int, shard []byte) error {
	if i < 0 || i >= int(m.M) || len(shard) != int(m.ShardSize) {
		return fmt.Errorf("%w: shard %d of %d bytes", ErrRange, i, len(shard))
	}
	for j, h := range m.Hashes[i] {
		if sha256.Sum256(shard[min(j*MaxPayload, len(shard)):min((j+1)*MaxPayload, len(shard))]) != h {
			return ErrHash
		}
	}
	return nil
}

// Reassembler collects the fragments of one shard, in any order.
type Reassembler struct {
	buf  []byte
	got  []bool
	left int
}

// NewReassembler returns a Reassembler for a shard of total bytes.
func NewReassembler(total int) (*Reassembler, error) {
	if total < 0 || total > MaxShardSize {
		return nil, fmt.Errorf("%w: shard of %d bytes", ErrTooLarge, total)
	}
	n := FragmentCount(total)
	return &Reassembler{buf: make([]byte, total), got: make([]bool, n), left: n}, nil
}

// Add takes one fragment and reports whether the shard is complete. An
// exact duplicate is ignored; a fragment that does not fit, or that
// differs from the one already taken at its place, is an error.
func (r *Reassembler) Add(f Fragment) (complete bool, err error) {
	if int(f.Total) != len(r.buf) || f.Offset%MaxPayload != 0 {
		return r.left == 0, fmt.Errorf("%w: fragment at %d/%d for a shard of %d", ErrRange, f.Offset, f.Total, len(r.buf))
	}
	j := int(f.Offset / MaxPayload)
	end := min(int(f.Offset)+MaxPayload, len(r.buf))
	if j >= len(r.got) || len(f.Payload) != end-int(f.Offset) {
		return r.left == 0, fmt.Errorf("%w: fragment at %d of %d bytes", ErrRange, f.Offset, len(f.Payload))
	}
	if r.got[j] {
		if !bytes.Equal(r.buf[f.Offset:end], f.Payload) {
			return r.left == 0, ErrConflict
		}
		return r.left == 0, nil
	}
	copy(r.buf[f.Offset:end], f.Payload)
	r.got[j] = true
	r.left--
	return r.left == 0, nil
}

// Bytes returns the shard; complete only once Add reported so.
func (r *Reassembler) Bytes() []byte { return r.buf }

// InitSignatureHeader carries, base64, the channel key's signature of an
// init segment served over HTTP; InitEpochHeader, in decimal, the epoch
// the signature binds it to.
const (
	InitSignatureHeader = "X-Coopcast-Signature"
	InitEpochHeader     = "X-Coopcast-Epoch"
)

// TicketHeader carries a peer's fallback ticket (internal/ticket) on every
// HTTP fallback request.
const TicketHeader = "X-Coopcast-Ticket"

const initContext = "coopcast/init/v2\x00"

func initMessage(channel string, epoch uint64, init []byte) []byte {
	msg := make([]byte, 0, len(initContext)+len(channel)+1+8+len(init))
	msg = append(msg, initContext...)
	msg = append(msg, channel...)
	msg = append(msg, 0)
	msg = binary.BigEndian.AppendUint64(msg, epoch)
	return append(msg, init...)
}

// SignInit signs a channel's init segment (ftyp+moov) for one epoch of
// its stream.
func SignInit(priv ed25519.PrivateKey, channel string, epoch uint64, init []byte) []byte {
	return ed25519.Sign(priv, initMessage(channel, epoch, init))
}

// VerifyInit checks an init segment's signature, for epoch, with the
// channel's key.
func VerifyInit(pub ed25519.PublicKey, channel string, epoch uint64, init, sig []byte) error {
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, initMessage(channel, epoch, init), sig) {
		return ErrBadSignature
	}
	return nil
}
