// The data plane's byte layouts, the twin of internal/wire (wire.go, and
// docs/PROTOCOL.md "Data plane"): stripe fragments, signed chunk manifests
// and the signed init segment. All integers are big-endian. Every message
// starts with version (2) and type (1 fragment, 2 manifest).
//
// Fragment: seq u32 @2, shard u8 @6, offset u32 @7 (a multiple of
// MAX_PAYLOAD), total u32 @11 (shard length), payload @15 of
// min(MAX_PAYLOAD, total − offset) bytes.
//
// Manifest: seq u32 @2, timestamp i64 @6 (unix µs), decode u64 @14,
// duration u32 @22, timescale u32 @26, length u32 @30, flags u8 @34, M u8
// @35, k u8 @36, shard size u32 @37, epoch u64 @41 (the origin run's, unix
// µs), then M × F × 32 bytes of SHA-256 (F = fragments a shard), then a
// 64-byte Ed25519 signature over "coopcast/manifest/v2\0" ‖ channel id ‖
// every byte before it. A manifest of an epoch older than the newest one
// known is a replay (verifyEpoch).
//
// Errors carry Go's exact text and, in `code`, the name of the Go sentinel
// they wrap. Checked against testdata/vectors/wire.json by
// webclient/test/wire.test.js. Only globalThis.crypto.subtle is used, so
// this runs unchanged in the browser and in Node.

export const VERSION = 2;
export const TYPE_FRAGMENT = 1;
export const TYPE_MANIFEST = 2;
/** The largest message, fragment or manifest. */
export const MAX_MESSAGE = 16384;
export const FRAGMENT_HEADER = 15;
/** The largest fragment payload; fragment offsets are multiples of it. */
export const MAX_PAYLOAD = MAX_MESSAGE - FRAGMENT_HEADER;
/** Bytes of a manifest before its hashes. */
export const MANIFEST_FIXED = 49;
export const SIGNATURE_SIZE = 64;
/** The largest shard, so that its manifest fits one message. */
export const MAX_SHARD_SIZE = 1 << 20;
/** Manifest flags. */
export const FLAG_KEYFRAME = 1 << 0;
export const FLAG_INIT = 1 << 1;
export const FLAG_END = 1 << 2;
/** The HTTP header carrying, base64, the signature of an init segment. */
export const INIT_SIGNATURE_HEADER = 'X-Coopcast-Signature';
/** The HTTP header carrying, in decimal, the epoch an init segment is signed for. */
export const INIT_EPOCH_HEADER = 'X-Coopcast-Epoch';
/** The HTTP header carrying the peer's fallback ticket on every fetch from the origin. */
export const TICKET_HEADER = 'X-Coopcast-Ticket';

const encoder = new TextEncoder();
const SIGN_PREFIX = encoder.encode('coopcast/manifest/v2\0');
const INIT_CONTEXT = encoder.encode('coopcast/init/v2\0');

/**
 * The Go sentinel an error wraps.
 * @typedef {'ErrTruncated'|'ErrVersion'|'ErrType'|'ErrTooLarge'|'ErrRange'|'ErrBadSignature'|'ErrHash'|'ErrConflict'|'ErrOldEpoch'} WireErrorCode
 */

/** The text of Go's wire sentinels, by code. @type {Readonly<Record<WireErrorCode, string>>} */
export const WIRE_ERRORS = Object.freeze({
  ErrTruncated: 'wire: message truncated',
  ErrVersion: 'wire: unknown version',
  ErrType: 'wire: unexpected message type',
  ErrTooLarge: 'wire: too large',
  ErrRange: 'wire: field out of range',
  ErrBadSignature: 'wire: bad signature',
  ErrHash: "wire: data does not match the manifest's hash",
  ErrConflict: 'wire: fragment differs from one already received',
  ErrOldEpoch: 'wire: manifest of an earlier epoch of the stream',
});

/** An error with the same text as Go's wire error, and its sentinel in `code`. */
export class WireError extends Error {
  /**
   * @param {WireErrorCode} code
   * @param {string} [detail] what follows the sentinel's text, as Go's fmt.Errorf("%w: ...") does
   */
  constructor(code, detail) {
    super(detail === undefined ? WIRE_ERRORS[code] : `${WIRE_ERRORS[code]}: ${detail}`);
    this.name = 'WireError';
    /** @type {WireErrorCode} */
    this.code = code;
  }
}

/**
 * One piece of a shard. After parseFragment, payload is a view of the
 * message's bytes (as Go's Fragment.Payload aliases the message).
 * @typedef {{seq: number, shard: number, offset: number, total: number, payload: Uint8Array}} Fragment
 */

/**
 * A manifest's fields, as signManifest and encodeManifest take them.
 * timestamp (int64, unix µs), decode and epoch (uint64) take a BigInt for
 * values a Number cannot hold exactly; epoch defaults to 0, as in Go.
 * hashes is every fragment's SHA-256, shard by shard, fragment by
 * fragment: m × fragmentCount(shardSize) × 32 bytes.
 * @typedef {{seq: number, timestamp: number|bigint, decode: number|bigint, duration: number, timescale: number,
 *   length: number, flags: number, m: number, k: number, shardSize: number, epoch?: number|bigint,
 *   hashes: Uint8Array}} ManifestFields
 */

/**
 * A parsed (or signed) manifest. timestamp, decode and epoch are Numbers
 * (exact up to 2^53), timestampBig, decodeBig and epochBig the exact
 * values; hashes, signed (the body the signature covers, without prefix
 * and channel) and signature are views of the message's bytes.
 * @typedef {{seq: number, timestamp: number, timestampBig: bigint, decode: number, decodeBig: bigint,
 *   duration: number, timescale: number, length: number, flags: number, m: number, k: number,
 *   shardSize: number, epoch: number, epochBig: bigint, fragmentsPerShard: number, hashes: Uint8Array, signed: Uint8Array,
 *   signature: Uint8Array}} Manifest
 */

/**
 * b as WebCrypto takes it: a view of an ArrayBuffer (a SharedArrayBuffer's
 * bytes are copied).
 * @param {Uint8Array} b @returns {Uint8Array<ArrayBuffer>}
 */
function bufferSource(b) {
  return b.buffer instanceof ArrayBuffer ? /** @type {Uint8Array<ArrayBuffer>} */ (b) : new Uint8Array(b);
}

/** @param {Uint8Array} b @returns {DataView} */
function view(b) {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * Checks version and type, as Go's header().
 * @param {Uint8Array} b @param {number} type
 */
function header(b, type) {
  if (b.length < 2) throw new WireError('ErrTruncated');
  if (b[0] !== VERSION) throw new WireError('ErrVersion', String(b[0]));
  if (b[1] !== type) throw new WireError('ErrType', String(b[1]));
}

/**
 * How many fragments a shard of size bytes takes: at least one, so that
 * an empty shard is still announced.
 * @param {number} size @returns {number}
 */
export function fragmentCount(size) {
  return Math.max(1, Math.ceil(size / MAX_PAYLOAD));
}

/**
 * @param {unknown} v @param {number} bits @returns {boolean} whether v is an integer in [0, 2^bits)
 */
function isUint(v, bits) {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 2 ** bits;
}

/**
 * Reads a fragment message.
 * @param {Uint8Array} b @returns {Fragment} (payload is a view of b)
 * @throws {WireError} ErrTruncated, ErrVersion, ErrType, ErrTooLarge or ErrRange, with Go's text
 */
export function parseFragment(b) {
  header(b, TYPE_FRAGMENT);
  if (b.length < FRAGMENT_HEADER) throw new WireError('ErrTruncated', `fragment of ${b.length} bytes`);
  if (b.length > MAX_MESSAGE) throw new WireError('ErrTooLarge', `fragment of ${b.length} bytes`);
  const dv = view(b);
  const f = {
    seq: dv.getUint32(2),
    shard: b[6],
    offset: dv.getUint32(7),
    total: dv.getUint32(11),
    payload: b.subarray(FRAGMENT_HEADER),
  };
  if (f.total > MAX_SHARD_SIZE || f.offset % MAX_PAYLOAD !== 0 || f.offset >= Math.max(f.total, 1) ||
      f.payload.length !== Math.min(MAX_PAYLOAD, f.total - Math.min(f.offset, f.total))) {
    throw new WireError('ErrRange', `fragment offset ${f.offset}, ${f.payload.length} bytes, of shard ${f.total}`);
  }
  return f;
}

/**
 * dst followed by f's message, in a new array (Go's AppendFragment). The
 * fields are written as they are, as Go does; only values that do not fit
 * their field throw.
 * @param {Uint8Array|null} dst bytes to put first (null: none)
 * @param {Fragment} f
 * @returns {Uint8Array}
 * @throws {WireError} ErrRange when a field does not fit its width
 */
export function appendFragment(dst, f) {
  if (!isUint(f.seq, 32) || !isUint(f.shard, 8) || !isUint(f.offset, 32) || !isUint(f.total, 32)) {
    throw new WireError('ErrRange', `fragment seq ${f.seq} shard ${f.shard} at ${f.offset}/${f.total}`);
  }
  const pre = dst ? dst.length : 0;
  const out = new Uint8Array(pre + FRAGMENT_HEADER + f.payload.length);
  if (dst) out.set(dst);
  const dv = view(out);
  out[pre] = VERSION;
  out[pre + 1] = TYPE_FRAGMENT;
  dv.setUint32(pre + 2, f.seq);
  out[pre + 6] = f.shard;
  dv.setUint32(pre + 7, f.offset);
  dv.setUint32(pre + 11, f.total);
  out.set(f.payload, pre + FRAGMENT_HEADER);
  return out;
}

/**
 * f's message.
 * @param {Fragment} f @returns {Uint8Array}
 * @throws {WireError} ErrRange when a field does not fit its width
 */
export function encodeFragment(f) {
  return appendFragment(null, f);
}

/**
 * Cuts a shard into its fragment messages (Go's Fragments), each a fresh
 * array; an empty shard gives one empty fragment.
 * @param {number} seq chunk sequence number @param {number} shard shard index
 * @param {Uint8Array} data the shard
 * @returns {Uint8Array[]}
 * @throws {WireError} ErrTooLarge for a shard over MAX_SHARD_SIZE, ErrRange for a bad seq or shard index
 */
export function fragments(seq, shard, data) {
  if (data.length > MAX_SHARD_SIZE) throw new WireError('ErrTooLarge', `shard of ${data.length} bytes`);
  const out = [];
  for (let i = 0; i < fragmentCount(data.length); i++) {
    const off = i * MAX_PAYLOAD;
    const end = Math.min(off + MAX_PAYLOAD, data.length);
    out.push(appendFragment(null, { seq, shard, offset: off, total: data.length, payload: data.subarray(off, end) }));
  }
  return out;
}

/**
 * Reads a manifest message. It does not check the signature: call
 * verifyManifest.
 * @param {Uint8Array} b @returns {Manifest} (hashes, signed and signature are views of b)
 * @throws {WireError} ErrTruncated, ErrVersion, ErrType, ErrTooLarge or ErrRange, with Go's text
 */
export function parseManifest(b) {
  header(b, TYPE_MANIFEST);
  if (b.length > MAX_MESSAGE) throw new WireError('ErrTooLarge', `manifest of ${b.length} bytes`);
  if (b.length < MANIFEST_FIXED + SIGNATURE_SIZE) throw new WireError('ErrTruncated', `manifest of ${b.length} bytes`);
  const dv = view(b);
  const timestampBig = dv.getBigInt64(6);
  const decodeBig = dv.getBigUint64(14);
  const seq = dv.getUint32(2);
  const duration = dv.getUint32(22);
  const timescale = dv.getUint32(26);
  const length = dv.getUint32(30);
  const flags = b[34];
  const m = b[35];
  const k = b[36];
  const shardSize = dv.getUint32(37);
  const epochBig = dv.getBigUint64(41);
  if (m === 0 || k === 0 || k > m || shardSize > MAX_SHARD_SIZE) {
    throw new WireError('ErrRange', `M=${m} k=${k} shard size ${shardSize}`);
  }
  if (length > shardSize * k || (length > 0 && length <= shardSize * (k - 1))) {
    throw new WireError('ErrRange', `length ${length} does not fit ${k} shards of ${shardSize}`);
  }
  const n = fragmentCount(shardSize);
  const end = MANIFEST_FIXED + m * n * 32;
  if (b.length !== end + SIGNATURE_SIZE) {
    throw new WireError('ErrTruncated', `manifest of ${b.length} bytes for ${m} shards of ${n} fragments`);
  }
  return {
    seq, timestamp: Number(timestampBig), timestampBig, decode: Number(decodeBig), decodeBig,
    duration, timescale, length, flags, m, k, shardSize, epoch: Number(epochBig), epochBig, fragmentsPerShard: n,
    hashes: b.subarray(MANIFEST_FIXED, end), signed: b.subarray(0, end), signature: b.subarray(end),
  };
}

/**
 * A manifest's body: every byte before the signature, as Go's
 * SignManifest lays it out, after the same checks.
 * @param {ManifestFields} f @returns {Uint8Array}
 * @throws {WireError} ErrRange (a field out of its range, M/k, the hashes' size) or ErrTooLarge (shard or manifest size)
 */
export function encodeManifest(f) {
  if (!isUint(f.m, 8) || !isUint(f.k, 8) || f.m === 0 || f.k === 0 || f.k > f.m) {
    throw new WireError('ErrRange', `M=${f.m} k=${f.k}`);
  }
  if (!isUint(f.shardSize, 32)) throw new WireError('ErrRange', `shard size ${f.shardSize}`);
  if (f.shardSize > MAX_SHARD_SIZE) throw new WireError('ErrTooLarge', `shard of ${f.shardSize} bytes; chunks must be cut smaller`);
  const n = fragmentCount(f.shardSize);
  if (f.hashes.length !== f.m * n * 32) {
    throw new WireError('ErrRange', `${f.hashes.length} bytes of hashes, want ${f.m} shards × ${n} fragments × 32`);
  }
  for (const [name, v, bits] of /** @type {[string, unknown, number][]} */ ([['seq', f.seq, 32], ['duration', f.duration, 32],
    ['timescale', f.timescale, 32], ['length', f.length, 32], ['flags', f.flags, 8]])) {
    if (!isUint(v, bits)) throw new WireError('ErrRange', `${name} ${v}`);
  }
  const ts = toBig(f.timestamp, 'timestamp');
  const dec = toBig(f.decode, 'decode');
  if (BigInt.asIntN(64, ts) !== ts) throw new WireError('ErrRange', `timestamp ${ts}`);
  if (BigInt.asUintN(64, dec) !== dec) throw new WireError('ErrRange', `decode ${dec}`);
  const epoch = toBig(f.epoch ?? 0, 'epoch');
  if (BigInt.asUintN(64, epoch) !== epoch) throw new WireError('ErrRange', `epoch ${epoch}`);
  const size = MANIFEST_FIXED + f.hashes.length;
  if (size + SIGNATURE_SIZE > MAX_MESSAGE) {
    throw new WireError('ErrTooLarge', `manifest of ${size + SIGNATURE_SIZE} bytes; use smaller chunks or fewer trees`);
  }
  const b = new Uint8Array(size);
  const dv = view(b);
  b[0] = VERSION;
  b[1] = TYPE_MANIFEST;
  dv.setUint32(2, f.seq);
  dv.setBigInt64(6, ts);
  dv.setBigUint64(14, dec);
  dv.setUint32(22, f.duration);
  dv.setUint32(26, f.timescale);
  dv.setUint32(30, f.length);
  b[34] = f.flags;
  b[35] = f.m;
  b[36] = f.k;
  dv.setUint32(37, f.shardSize);
  dv.setBigUint64(41, epoch);
  b.set(f.hashes, MANIFEST_FIXED);
  return b;
}

/**
 * @param {number|bigint} v @param {string} name @returns {bigint}
 */
function toBig(v, name) {
  if (typeof v === 'bigint') return v;
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new WireError('ErrRange', `${name} ${v}`);
  return BigInt(v);
}

/** @param {...Uint8Array} parts @returns {Uint8Array} */
function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * What a manifest's signature covers: "coopcast/manifest/v2\0" ‖ channel
 * id ‖ body, where body is every manifest byte before the signature
 * (Manifest.signed, or encodeManifest's result).
 * @param {string} channel @param {Uint8Array} body @returns {Uint8Array}
 */
export function manifestSignedBytes(channel, body) {
  return concat(SIGN_PREFIX, encoder.encode(channel), body);
}

/**
 * What an init segment's signature covers: "coopcast/init/v2\0" ‖
 * channel id ‖ 0x00 ‖ epoch (u64) ‖ init.
 * @param {string} channel @param {number|bigint} epoch @param {Uint8Array} init @returns {Uint8Array}
 * @throws {WireError} ErrRange for an epoch that is not a uint64
 */
export function initSignedBytes(channel, epoch, init) {
  const e = toBig(epoch, 'epoch');
  if (BigInt.asUintN(64, e) !== e) throw new WireError('ErrRange', `epoch ${e}`);
  const eb = new Uint8Array(8);
  view(eb).setBigUint64(0, e);
  return concat(INIT_CONTEXT, encoder.encode(channel), new Uint8Array(1), eb, init);
}

/**
 * Checks a manifest's epoch against the newest one known (Go's
 * VerifyEpoch): an earlier epoch is a replay from a previous run or push
 * of the origin. A later one means the origin restarted: take it as the
 * newest from then on.
 * @param {Manifest} manifest @param {number|bigint} newest
 * @throws {WireError} ErrOldEpoch, with Go's text
 */
export function verifyEpoch(manifest, newest) {
  const n = toBig(newest, 'epoch');
  if (manifest.epochBig < n) throw new WireError('ErrOldEpoch', `epoch ${manifest.epochBig}, the stream is at ${n}`);
}

/** @type {{raw: Uint8Array, key: Promise<CryptoKey>}|null} the last raw key imported */
let lastKey = null;

/**
 * An Ed25519 public key for verify, from a CryptoKey or its 32 raw bytes
 * (the last raw key is kept, so a channel's key is imported once).
 * @param {CryptoKey|Uint8Array} key @returns {Promise<CryptoKey>}
 */
async function publicKey(key) {
  if (!(key instanceof Uint8Array)) return key;
  if (key.length !== 32) throw new WireError('ErrBadSignature');
  if (lastKey && equalBytes(lastKey.raw, key)) return lastKey.key;
  const raw = new Uint8Array(key);
  const imported = crypto.subtle.importKey('raw', raw, { name: 'Ed25519' }, false, ['verify']);
  lastKey = { raw, key: imported };
  imported.catch(() => {
    if (lastKey && lastKey.key === imported) lastKey = null;
  });
  return imported;
}

/**
 * Ed25519 verification that settles true, or rejects with ErrBadSignature
 * (also for a key of the wrong size or that cannot be imported).
 * @param {CryptoKey|Uint8Array} key @param {Uint8Array} sig @param {Uint8Array} msg
 * @returns {Promise<true>}
 */
async function verifyEd25519(key, sig, msg) {
  let ok = false;
  try {
    ok = sig.length === SIGNATURE_SIZE && await crypto.subtle.verify({ name: 'Ed25519' }, await publicKey(key), bufferSource(sig), bufferSource(msg));
  } catch {
    ok = false;
  }
  if (!ok) throw new WireError('ErrBadSignature');
  return true;
}

/**
 * Checks a manifest's signature by the channel's key (Go's Verify). Only
 * a manifest from parseManifest or signManifest can be verified.
 * @param {Manifest} manifest
 * @param {CryptoKey|Uint8Array} key the channel's Ed25519 public key, imported for 'verify' or its 32 raw bytes
 * @param {string} channel the channel id
 * @returns {Promise<true>}
 * @throws {WireError} (rejects) ErrBadSignature
 */
export async function verifyManifest(manifest, key, channel) {
  if (!manifest || !(manifest.signed instanceof Uint8Array) || !(manifest.signature instanceof Uint8Array)) {
    throw new WireError('ErrBadSignature');
  }
  return verifyEd25519(key, manifest.signature, manifestSignedBytes(channel, manifest.signed));
}

/**
 * Encodes and signs a manifest for channel (Go's SignManifest): the
 * message, and the manifest as parseManifest would give it. Ed25519 is
 * deterministic, so the same key and fields give Go's bytes exactly.
 * @param {CryptoKey} privateKey the channel's Ed25519 private key, usable for 'sign'
 * @param {string} channel @param {ManifestFields} fields
 * @returns {Promise<{raw: Uint8Array, manifest: Manifest}>}
 * @throws {WireError} (rejects) as encodeManifest
 */
export async function signManifest(privateKey, channel, fields) {
  const body = encodeManifest(fields);
  const sig = new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, privateKey, bufferSource(manifestSignedBytes(channel, body))));
  const raw = concat(body, sig);
  return { raw, manifest: parseManifest(raw) };
}

/**
 * @param {Manifest} m @param {number} shard @param {number} j
 * @returns {Uint8Array} the hash of fragment j of shard
 */
function hashAt(m, shard, j) {
  const at = (shard * m.fragmentsPerShard + j) * 32;
  return m.hashes.subarray(at, at + 32);
}

/** @param {Uint8Array} a @param {Uint8Array} b @returns {boolean} */
function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** @param {Uint8Array} b @returns {Promise<Uint8Array>} SHA-256 of b */
async function sha256(b) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', bufferSource(b)));
}

/**
 * Checks a fragment against a manifest (Go's VerifyFragment): same chunk,
 * a shard it lists, the right place and size, and its hash.
 * @param {Manifest} manifest @param {Fragment} f
 * @returns {Promise<true>}
 * @throws {WireError} (rejects) ErrRange or ErrHash, with Go's text
 */
export async function verifyFragment(manifest, f) {
  if (f.seq !== manifest.seq || f.shard >= manifest.m || f.total !== manifest.shardSize || f.offset % MAX_PAYLOAD !== 0) {
    throw new WireError('ErrRange', `fragment of chunk ${f.seq} shard ${f.shard} at ${f.offset}/${f.total}`);
  }
  const j = f.offset / MAX_PAYLOAD;
  if (j >= manifest.fragmentsPerShard || !equalBytes(await sha256(f.payload), hashAt(manifest, f.shard, j))) {
    throw new WireError('ErrHash');
  }
  return true;
}

/**
 * Checks a whole shard (fetched over HTTP, or regenerated) against a
 * manifest (Go's VerifyShard).
 * @param {Manifest} manifest @param {number} i shard index @param {Uint8Array} shard
 * @returns {Promise<true>}
 * @throws {WireError} (rejects) ErrRange or ErrHash, with Go's text
 */
export async function verifyShard(manifest, i, shard) {
  if (!Number.isInteger(i) || i < 0 || i >= manifest.m || shard.length !== manifest.shardSize) {
    throw new WireError('ErrRange', `shard ${i} of ${shard.length} bytes`);
  }
  const n = shard.length;
  const sums = [];
  for (let j = 0; j < manifest.fragmentsPerShard; j++) {
    sums.push(sha256(shard.subarray(Math.min(j * MAX_PAYLOAD, n), Math.min((j + 1) * MAX_PAYLOAD, n))));
  }
  const got = await Promise.all(sums);
  for (let j = 0; j < got.length; j++) if (!equalBytes(got[j], hashAt(manifest, i, j))) throw new WireError('ErrHash');
  return true;
}

/**
 * Every fragment's SHA-256 of shards, shard by shard, fragment by fragment
 * (Go's HashShards, flattened as the manifest carries them).
 * @param {Uint8Array[]} shards @returns {Promise<Uint8Array>}
 */
export async function hashShards(shards) {
  const sums = [];
  for (const s of shards) {
    for (let j = 0; j < fragmentCount(s.length); j++) {
      sums.push(sha256(s.subarray(Math.min(j * MAX_PAYLOAD, s.length), Math.min((j + 1) * MAX_PAYLOAD, s.length))));
    }
  }
  return concat(...(await Promise.all(sums)));
}

/**
 * Checks an init segment's signature by the channel's key for one epoch
 * (Go's VerifyInit(pub, channel, epoch, init, sig); the order here is the
 * browser caller's).
 * @param {Uint8Array} init the init segment (ftyp+moov)
 * @param {Uint8Array} sig the signature (the INIT_SIGNATURE_HEADER, base64-decoded)
 * @param {CryptoKey|Uint8Array} key the channel's Ed25519 public key, imported for 'verify' or its 32 raw bytes
 * @param {string} channel
 * @param {number|bigint} epoch the epoch it is signed for (the INIT_EPOCH_HEADER)
 * @returns {Promise<true>}
 * @throws {WireError} (rejects) ErrBadSignature
 */
export async function verifyInit(init, sig, key, channel, epoch) {
  let msg;
  try {
    msg = initSignedBytes(channel, epoch, init);
  } catch {
    throw new WireError('ErrBadSignature');
  }
  return verifyEd25519(key, sig, msg);
}

/**
 * Signs a channel's init segment for one epoch (Go's SignInit).
 * @param {CryptoKey} privateKey @param {string} channel @param {number|bigint} epoch @param {Uint8Array} init
 * @returns {Promise<Uint8Array>} the 64-byte signature
 */
export async function signInit(privateKey, channel, epoch, init) {
  return new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, privateKey, bufferSource(initSignedBytes(channel, epoch, init))));
}

/** Collects the fragments of one shard, in any order (Go's Reassembler). */
export class Reassembler {
  /**
   * @param {number} total the shard's length
   * @throws {WireError} ErrTooLarge for a negative size or one over MAX_SHARD_SIZE, with Go's text
   */
  constructor(total) {
    if (!Number.isInteger(total) || total < 0 || total > MAX_SHARD_SIZE) throw new WireError('ErrTooLarge', `shard of ${total} bytes`);
    /** @private */ this.buf = new Uint8Array(total);
    /** @private */ this.got = new Uint8Array(fragmentCount(total));
    /** @private */ this.left = this.got.length;
  }

  /** @returns {boolean} whether every fragment is in */
  get complete() {
    return this.left === 0;
  }

  /**
   * Takes one fragment and reports whether the shard is complete. An exact
   * duplicate is ignored; a fragment that does not fit, or that differs
   * from the one already taken at its place, throws (and changes nothing).
   * @param {Fragment} f @returns {boolean}
   * @throws {WireError} ErrRange or ErrConflict, with Go's text
   */
  add(f) {
    if (f.total !== this.buf.length || f.offset % MAX_PAYLOAD !== 0) {
      throw new WireError('ErrRange', `fragment at ${f.offset}/${f.total} for a shard of ${this.buf.length}`);
    }
    const j = f.offset / MAX_PAYLOAD;
    const end = Math.min(f.offset + MAX_PAYLOAD, this.buf.length);
    if (j >= this.got.length || f.payload.length !== end - f.offset) {
      throw new WireError('ErrRange', `fragment at ${f.offset} of ${f.payload.length} bytes`);
    }
    if (this.got[j]) {
      if (!equalBytes(this.buf.subarray(f.offset, end), f.payload)) throw new WireError('ErrConflict');
      return this.left === 0;
    }
    this.buf.set(f.payload, f.offset);
    this.got[j] = 1;
    this.left--;
    return this.left === 0;
  }

  /** @returns {Uint8Array} the shard (a view of the buffer); whole only once add reported complete */
  bytes() {
    return this.buf;
  }
}
