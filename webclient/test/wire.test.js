// webclient/js/wire.js against the shared vectors Go produced
// (testdata/vectors/wire.json, checked on the Go side by
// internal/wire/vectors_test.go): the same bytes both ways — Go's messages
// parse to the fields Go put in, and the fields build Go's messages,
// signatures included — and the same errors, text and all, for bad input.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as wire from '../js/wire.js';
import { load, bytes, matches, fromHex, sha256hex, pattern } from '../../testdata/vectors/vectors.js';

const V = load('wire.json');
const PUB = fromHex(V.public_key);

/** @returns {Promise<CryptoKey>} the vectors' private key, from its seed */
function privateKey() {
  // PKCS #8 for an Ed25519 seed: a fixed 16-byte prefix, then the seed.
  const pkcs8 = new Uint8Array([...fromHex('302e020100300506032b657004220420'), ...fromHex(V.seed)]);
  return crypto.subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, false, ['sign']);
}

/** @param {Uint8Array} a @param {Uint8Array} b @returns {Uint8Array} */
function cat(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/**
 * Asserts that f throws (or rejects with) a WireError of Go's code and text.
 * @param {() => unknown} f @param {string} code @param {string} message @param {string} [what]
 */
async function rejectsLikeGo(f, code, message, what = '') {
  await assert.rejects(async () => f(), (/** @type {any} */ e) => {
    assert.ok(e instanceof wire.WireError, `${what}: ${e} is not a WireError`);
    assert.equal(e.code, code, what);
    assert.equal(e.message, message, what);
    return true;
  });
}

test('constants are Go\'s', () => {
  for (const [name, value] of Object.entries(V.constants)) assert.equal(/** @type {any} */ (wire)[name], value, name);
  assert.equal(wire.INIT_SIGNATURE_HEADER, V.init_signature_header);
  assert.equal(wire.INIT_EPOCH_HEADER, V.init_epoch_header);
  assert.equal(wire.TICKET_HEADER, V.ticket_header);
  assert.equal(Object.keys(V.constants).length, 12);
});

test('fragments: the same messages as Go, which parse back to the shard', () => {
  assert.ok(V.fragments.length >= 5);
  for (const fv of V.fragments) {
    const data = bytes(fv.data);
    const msgs = wire.fragments(fv.seq, fv.shard, data);
    assert.equal(msgs.length, fv.messages.length, fv.name);
    assert.equal(msgs.length, wire.fragmentCount(data.length), fv.name);
    const r = new wire.Reassembler(data.length);
    /** @type {wire.Fragment[]} */
    const parsed = [];
    fv.messages.forEach((/** @type {any} */ mv, /** @type {number} */ i) => {
      const goMsg = bytes(mv.msg);
      assert.deepEqual(msgs[i], goMsg, `${fv.name}: message ${i} built`);
      assert.ok(goMsg.length <= wire.MAX_MESSAGE);
      const f = wire.parseFragment(goMsg);
      assert.deepEqual({ seq: f.seq, shard: f.shard, offset: f.offset, total: f.total },
        { seq: fv.seq, shard: fv.shard, offset: mv.offset, total: mv.total }, `${fv.name}: message ${i} parsed`);
      assert.deepEqual(f.payload, data.subarray(mv.offset, mv.offset + f.payload.length));
      assert.deepEqual(wire.encodeFragment(f), goMsg);
      assert.deepEqual(wire.appendFragment(new Uint8Array([9, 9]), f), cat(new Uint8Array([9, 9]), goMsg));
      parsed.push(f);
    });
    // Backwards, with a duplicate first: order does not matter.
    let complete = false;
    for (const f of [parsed[0], ...parsed].reverse()) complete = r.add(f);
    assert.ok(complete && r.complete, fv.name);
    assert.deepEqual(r.bytes(), data, fv.name);
  }
  // The vectors cover an empty shard, a full fragment, and a 1-byte last one.
  const lasts = V.fragments.map((/** @type {any} */ fv) => fv.messages.at(-1).msg.len - wire.FRAGMENT_HEADER);
  assert.ok(lasts.includes(0) && lasts.includes(1) && lasts.includes(wire.MAX_PAYLOAD), String(lasts));
});

test('manifests: parse Go\'s to its fields, verify, and build and sign to Go\'s bytes', async () => {
  const priv = await privateKey();
  const imported = await crypto.subtle.importKey('raw', PUB, { name: 'Ed25519' }, false, ['verify']);
  assert.ok(V.manifests.length >= 8);
  for (const mv of V.manifests) {
    const raw = bytes(mv.raw);
    const m = wire.parseManifest(raw);
    const ts = BigInt(mv.timestamp);
    const dec = BigInt(mv.decode);
    assert.deepEqual(
      { seq: m.seq, timestampBig: m.timestampBig, decodeBig: m.decodeBig, duration: m.duration, timescale: m.timescale,
        length: m.length, flags: m.flags, m: m.m, k: m.k, shardSize: m.shardSize, epochBig: m.epochBig, fragmentsPerShard: m.fragmentsPerShard },
      { seq: mv.seq, timestampBig: ts, decodeBig: dec, duration: mv.duration, timescale: mv.timescale,
        length: mv.length, flags: mv.flags, m: mv.m, k: mv.k, shardSize: mv.shard_size, epochBig: BigInt(mv.epoch), fragmentsPerShard: mv.fragments_per_shard },
      mv.name);
    assert.equal(m.timestamp, Number(ts), mv.name);
    assert.equal(m.decode, Number(dec), mv.name);
    assert.ok(matches(mv.hashes, m.hashes), `${mv.name}: hashes`);
    assert.equal(Buffer.from(m.signature).toString('hex'), mv.signature);
    assert.ok(matches(mv.signed, wire.manifestSignedBytes(V.channel, m.signed)), `${mv.name}: signed bytes`);
    assert.equal(await wire.verifyManifest(m, PUB, V.channel), true);
    assert.equal(await wire.verifyManifest(m, imported, V.channel), true);

    const shards = mv.shards.map(bytes);
    const hashes = await wire.hashShards(shards);
    assert.deepEqual(hashes, m.hashes, `${mv.name}: hashShards`);
    for (let i = 0; i < shards.length; i++) {
      assert.equal(await wire.verifyShard(m, i, shards[i]), true);
      for (const msg of wire.fragments(m.seq, i, shards[i])) assert.equal(await wire.verifyFragment(m, wire.parseFragment(msg)), true);
    }

    // Build: from the fields to Go's body, and signed to Go's whole message.
    const fields = {
      seq: mv.seq, timestamp: ts, decode: dec, duration: mv.duration, timescale: mv.timescale, length: mv.length,
      flags: mv.flags, m: mv.m, k: mv.k, shardSize: mv.shard_size, epoch: BigInt(mv.epoch), hashes,
    };
    assert.deepEqual(wire.encodeManifest(fields), raw.subarray(0, raw.length - wire.SIGNATURE_SIZE), `${mv.name}: body`);
    const signed = await wire.signManifest(priv, V.channel, fields);
    assert.deepEqual(signed.raw, raw, `${mv.name}: signed message`);
    assert.equal(signed.manifest.seq, mv.seq);
    // Numbers work too where they are exact.
    if (Number.isSafeInteger(Number(dec)) && Number.isSafeInteger(Number(ts)) && Number.isSafeInteger(m.epoch)) {
      assert.deepEqual(wire.encodeManifest({ ...fields, timestamp: m.timestamp, decode: m.decode, epoch: m.epoch }), m.signed);
    }
  }
  const flags = V.manifests.reduce((/** @type {number} */ f, /** @type {any} */ mv) => f | mv.flags, 0);
  assert.equal(flags, wire.FLAG_KEYFRAME | wire.FLAG_INIT | wire.FLAG_END, 'every flag is covered');
  assert.ok(V.manifests.some((/** @type {any} */ mv) => BigInt(mv.decode) > 2n ** 53n), 'a decode time past 2^53');
  assert.ok(V.manifests.some((/** @type {any} */ mv) => BigInt(mv.epoch) > 2n ** 53n), 'an epoch past 2^53');
});

test('init segments: verify Go\'s signatures, and sign to the same bytes', async () => {
  const priv = await privateKey();
  for (const iv of V.inits) {
    const init = bytes(iv.init);
    const sig = fromHex(iv.signature);
    const epoch = BigInt(iv.epoch);
    assert.ok(matches(iv.signed, wire.initSignedBytes(V.channel, epoch, init)), iv.name);
    assert.equal(await wire.verifyInit(init, sig, PUB, V.channel, epoch), true, iv.name);
    assert.deepEqual(await wire.signInit(priv, V.channel, epoch, init), sig, iv.name);
    if (Number.isSafeInteger(Number(epoch))) assert.equal(await wire.verifyInit(init, sig, PUB, V.channel, Number(epoch)), true, iv.name);
  }
});

/**
 * Runs one bad vector's operation the way internal/wire/vectors_test.go's
 * runBadVector does.
 * @param {any} b @returns {Promise<unknown>}
 */
async function runBad(b) {
  const raw = b.raw ? bytes(b.raw) : new Uint8Array(0);
  const channel = b.channel || V.channel;
  const key = b.key ? fromHex(b.key) : PUB;
  const epoch = BigInt(b.epoch ?? V.inits[1].epoch);
  const manifest = () => wire.parseManifest(bytes(V.manifests[b.manifest].raw));
  switch (b.op) {
    case 'parse_fragment':
      return wire.parseFragment(raw);
    case 'parse_manifest':
      return wire.parseManifest(raw);
    case 'verify_manifest':
      return wire.verifyManifest(wire.parseManifest(raw), key, channel);
    case 'verify_fragment':
      return wire.verifyFragment(manifest(), wire.parseFragment(raw));
    case 'verify_shard':
      return wire.verifyShard(manifest(), b.index, raw);
    case 'reassembler': {
      const r = new wire.Reassembler(b.total);
      if (!b.raw) return r;
      for (const a of b.adds ?? []) r.add(wire.parseFragment(bytes(a)));
      return r.add(wire.parseFragment(raw));
    }
    case 'verify_init':
      return wire.verifyInit(raw, fromHex(b.signature), key, channel, epoch);
    case 'verify_epoch':
      return wire.verifyEpoch(manifest(), epoch);
  }
  throw new Error(`unknown op ${b.op}`);
}

test('bad input: the same error as Go, sentinel and text', async () => {
  const ops = new Set();
  for (const b of V.bad) {
    ops.add(b.op);
    await rejectsLikeGo(() => runBad(b), b.category, b.error, `${b.op}: ${b.name}`);
  }
  assert.equal(ops.size, 8, [...ops].join());
  const codes = new Set(V.bad.map((/** @type {any} */ b) => b.category));
  assert.deepEqual([...codes].sort(), Object.keys(wire.WIRE_ERRORS).sort(), 'every sentinel is exercised');
});

test('parse never returns what does not re-encode to the same bytes', () => {
  // Go's FuzzParseFragment property, over mutations of Go's messages.
  const rand = pattern(77, 20000);
  let r = 0;
  let accepted = 0;
  const msgs = V.fragments.flatMap((/** @type {any} */ fv) => fv.messages.map((/** @type {any} */ mv) => bytes(mv.msg)));
  for (let n = 0; n < 2000; n++) {
    const base = msgs[n % msgs.length];
    let b = base.slice();
    const what = rand[r++ % rand.length] % 3;
    if (what === 0 && b.length) b[rand[r++ % rand.length] % Math.min(b.length, 20)] ^= 1 << (rand[r++ % rand.length] % 8);
    if (what === 1) b = b.subarray(0, rand[r++ % rand.length] % (b.length + 1));
    if (what === 2) b = cat(b, new Uint8Array([rand[r++ % rand.length]]));
    let f;
    try {
      f = wire.parseFragment(b);
    } catch (e) {
      assert.ok(e instanceof wire.WireError, String(e));
      continue;
    }
    accepted++;
    assert.deepEqual(wire.encodeFragment(f), b);
    assert.equal(new wire.Reassembler(f.total).add(f), f.total <= wire.MAX_PAYLOAD);
  }
  assert.ok(accepted > 0 && accepted < 2000, `${accepted} accepted`);
  // The same for manifests: a parsed body re-encodes to itself.
  const raw = bytes(V.manifests[1].raw);
  for (let i = 0; i < raw.length; i++) {
    const b = raw.slice();
    b[i] ^= 0x21;
    let m;
    try {
      m = wire.parseManifest(b);
    } catch (e) {
      assert.ok(e instanceof wire.WireError, String(e));
      continue;
    }
    assert.deepEqual(wire.encodeManifest({ ...m, timestamp: m.timestampBig, decode: m.decodeBig, epoch: m.epochBig }), m.signed);
  }
});

test('a flipped bit anywhere in a manifest fails its parse or its signature', async () => {
  const raw = bytes(V.manifests[6].raw);
  for (let i = 0; i < raw.length; i++) {
    const b = raw.slice();
    b[i] ^= 0x10;
    let m;
    try {
      m = wire.parseManifest(b);
    } catch {
      continue;
    }
    await rejectsLikeGo(() => wire.verifyManifest(m, PUB, V.channel), 'ErrBadSignature', 'wire: bad signature', `byte ${i}`);
  }
});

test('only a parsed or signed manifest verifies; keys of the wrong size do not', async () => {
  const m = wire.parseManifest(bytes(V.manifests[0].raw));
  const unsigned = /** @type {any} */ ({ ...m, signature: undefined });
  await rejectsLikeGo(() => wire.verifyManifest(unsigned, PUB, V.channel), 'ErrBadSignature', 'wire: bad signature');
  await rejectsLikeGo(() => wire.verifyManifest(m, PUB.subarray(1), V.channel), 'ErrBadSignature', 'wire: bad signature');
  await rejectsLikeGo(() => wire.verifyManifest(m, new Uint8Array(32), V.channel), 'ErrBadSignature', 'wire: bad signature');
  // The key cache holds one raw key: another key in between changes nothing.
  assert.equal(await wire.verifyManifest(m, PUB, V.channel), true);
});

test('building rejects values that do not fit, instead of writing other bytes', () => {
  const f = { seq: 1, shard: 0, offset: 0, total: 3, payload: new Uint8Array(3) };
  assert.throws(() => wire.encodeFragment({ ...f, seq: 2 ** 32 }), /wire: field out of range: fragment seq 4294967296/);
  assert.throws(() => wire.encodeFragment({ ...f, shard: 256 }), /wire: field out of range/);
  assert.throws(() => wire.encodeFragment({ ...f, offset: -1 }), /wire: field out of range/);
  assert.throws(() => wire.fragments(1, 0, new Uint8Array(wire.MAX_SHARD_SIZE + 1)), /wire: too large: shard of 1048577 bytes/);
  const m = wire.parseManifest(bytes(V.manifests[1].raw));
  const fields = { ...m, timestamp: m.timestampBig, decode: m.decodeBig };
  const code = (/** @type {() => unknown} */ fn) => {
    try {
      fn();
    } catch (e) {
      return e instanceof wire.WireError ? e.code : String(e);
    }
    return 'no error';
  };
  assert.equal(code(() => wire.encodeManifest({ ...fields, k: 9 })), 'ErrRange');
  assert.equal(code(() => wire.encodeManifest({ ...fields, m: 0 })), 'ErrRange');
  assert.equal(code(() => wire.encodeManifest({ ...fields, hashes: fields.hashes.subarray(1) })), 'ErrRange');
  assert.equal(code(() => wire.encodeManifest({ ...fields, shardSize: wire.MAX_SHARD_SIZE + 1 })), 'ErrTooLarge');
  assert.equal(code(() => wire.encodeManifest({ ...fields, decode: 2n ** 64n })), 'ErrRange');
  assert.equal(code(() => wire.encodeManifest({ ...fields, decode: -1n })), 'ErrRange');
  assert.equal(code(() => wire.encodeManifest({ ...fields, timestamp: 2n ** 63n })), 'ErrRange');
  assert.equal(code(() => wire.encodeManifest({ ...fields, timestamp: 2 ** 60 })), 'ErrRange', 'an inexact Number');
  assert.equal(code(() => wire.encodeManifest({ ...fields, seq: 1.5 })), 'ErrRange');
  assert.equal(code(() => wire.encodeManifest({ ...fields, flags: 256 })), 'ErrRange');
  assert.equal(code(() => wire.encodeManifest({ ...fields, epoch: 2n ** 64n })), 'ErrRange');
  assert.equal(code(() => wire.encodeManifest({ ...fields, epoch: -1 })), 'ErrRange');
  // 32 shards of 19 fragments: a manifest over 16 KiB.
  const wide = { ...fields, m: 32, k: 16, shardSize: 300_000, length: 16 * 300_000, hashes: new Uint8Array(32 * 19 * 32) };
  assert.throws(() => wire.encodeManifest(wide), /wire: too large: manifest of 19569 bytes; use smaller chunks or fewer trees/);
});

test('the reassembler ignores exact duplicates and rejects what does not fit', () => {
  const data = pattern(5, wire.MAX_PAYLOAD + 10);
  const [a, b] = wire.fragments(3, 1, data).map(wire.parseFragment);
  const r = new wire.Reassembler(data.length);
  assert.equal(r.add(b), false);
  assert.equal(r.add(b), false);
  assert.throws(() => r.add({ ...a, payload: a.payload.subarray(1) }), /wire: field out of range: fragment at 0 of 16368 bytes/);
  assert.throws(() => r.add({ ...a, offset: 2 * wire.MAX_PAYLOAD }), /wire: field out of range: fragment at 32738 of 16369 bytes/);
  assert.equal(r.add(a), true);
  assert.deepEqual(r.bytes(), data);
  assert.equal(sha256hex(r.bytes()), sha256hex(data));
  assert.throws(() => new wire.Reassembler(1.5), /wire: too large: shard of 1.5 bytes/);
});
