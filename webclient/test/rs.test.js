// webclient/js/rs.js against the shared vectors Go produced
// (testdata/vectors/fec.json, checked on the Go side by
// internal/fec/vectors_test.go): the same shards as klauspost/reedsolomon
// for every (k, M) in the file, the same chunk and shards back from every
// erasure pattern (and from corrupt shards, where only the same choice of
// shards to decode from gives the same bytes), the same errors.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReedSolomon, FecError, MAX_SHARDS } from '../js/rs.js';
import { load, bytes, matches, pattern } from '../../testdata/vectors/vectors.js';

const V = load('fec.json');

/**
 * Asserts a shard equals the vector's: byte for byte when the vector holds
 * the bytes, else by length and SHA-256.
 * @param {import('../../testdata/vectors/vectors.js').Blob} want @param {Uint8Array|null|undefined} got @param {string} what
 */
function sameAs(want, got, what) {
  assert.ok(got instanceof Uint8Array, `${what}: no shard`);
  if (want.b64 !== undefined || want.seed !== undefined || want.len === 0) assert.deepEqual(got, bytes(want), what);
  else assert.ok(matches(want, got), `${what}: ${got.length} bytes that differ from Go's ${want.len}`);
}

/**
 * A copy of shards with byte 0 of those in corrupt XORed with 0x5a and
 * those in missing left out, as Go's erase.
 * @param {Uint8Array[]} shards @param {number[]} missing @param {number[]} [corrupt]
 * @returns {(Uint8Array|null)[]}
 */
function erase(shards, missing, corrupt = []) {
  /** @type {(Uint8Array|null)[]} */
  const out = shards.map((s) => s.slice());
  for (const i of corrupt) /** @type {Uint8Array} */ (out[i])[0] ^= 0x5a;
  for (const i of missing) out[i] = null;
  return out;
}

/**
 * Calls fn with every set of at most max indices out of m.
 * @param {number} m @param {number} max @param {(set: number[]) => void} fn
 */
function subsets(m, max, fn) {
  /** @param {number} from @param {number[]} set */
  const walk = (from, set) => {
    fn(set);
    if (set.length === max) return;
    for (let i = from; i < m; i++) walk(i + 1, [...set, i]);
  };
  walk(0, []);
}

/** @param {number} n @param {number} r @returns {number} n choose r */
function choose(n, r) {
  let x = 1;
  for (let i = 0; i < r; i++) x = (x * (n - i)) / (i + 1);
  return x;
}

test('encode gives Go\'s shards for every (k, M) in the vectors', () => {
  assert.ok(V.cases.length >= 15);
  assert.equal(MAX_SHARDS, V.max_shards);
  const seen = new Set();
  for (const c of V.cases) {
    const rs = new ReedSolomon(c.k, c.m);
    const chunk = bytes(c.chunk);
    assert.equal(rs.shardSize(chunk.length), c.shard_size, c.name);
    const shards = rs.encode(chunk);
    assert.equal(shards.length, c.m, c.name);
    shards.forEach((s, i) => {
      assert.equal(s.length, c.shard_size, `${c.name}: shard ${i}`);
      sameAs(c.shards[i], s, `${c.name}: shard ${i}`);
    });
    // Shards are fresh memory: the chunk is not kept.
    if (chunk.length) assert.notEqual(shards[0].buffer, chunk.buffer);
    seen.add(`${c.k}/${c.m}`);
  }
  for (const km of ['1/1', '4/4', '32/32', '3/4', '16/32', '1/32', '31/32']) assert.ok(seen.has(km), km);
});

test('reconstruct and regenerate give Go\'s bytes for the vectors\' erasures, corrupt shards included', () => {
  let corrupt = 0;
  for (const c of V.cases) {
    const rs = new ReedSolomon(c.k, c.m);
    const chunk = bytes(c.chunk);
    const shards = rs.encode(chunk);
    for (const e of c.erasures) {
      const what = `${c.name}, missing ${e.missing} corrupt ${e.corrupt ?? []}`;
      const out = rs.reconstruct(erase(shards, e.missing, e.corrupt), chunk.length);
      assert.ok(matches(e.chunk, out), `${what}: reconstruct differs from Go's`);
      if (!e.corrupt) assert.deepEqual(out, chunk, what);
      const all = erase(shards, e.missing, e.corrupt);
      rs.regenerate(all);
      all.forEach((s, i) => sameAs(e.shards[i], s, `${what}: shard ${i}`));
      if (e.corrupt) {
        corrupt++;
        assert.ok(!matches(c.chunk, out) || e.corrupt.every((/** @type {number} */ i) => i >= c.k), `${what}: corruption shows`);
      }
    }
  }
  assert.ok(corrupt >= 3, `${corrupt} corrupt cases`);
});

test('every erasure pattern of up to M − k shards rebuilds the chunk and every shard', () => {
  let patterns = 0;
  for (const c of V.cases) {
    let count = 0;
    for (let r = 0; r <= c.m - c.k; r++) count += choose(c.m, r);
    if (count > 5000) continue; // 16 of 32 and 31 of 32 missing: too many to walk
    const rs = new ReedSolomon(c.k, c.m);
    const chunk = bytes(c.chunk);
    const shards = rs.encode(chunk);
    subsets(c.m, c.m - c.k, (missing) => {
      const what = `${c.name}, missing ${missing}`;
      const got = erase(shards, missing);
      assert.deepEqual(rs.reconstruct(got, chunk.length), chunk, what);
      // Missing data shards are filled in as a side effect, as in Go.
      for (let i = 0; i < c.k; i++) if (c.shard_size > 0) assert.deepEqual(got[i], shards[i], `${what}: data shard ${i}`);
      const all = erase(shards, missing);
      rs.regenerate(all);
      assert.deepEqual(all, shards, what);
      patterns++;
    });
    // One more missing is one too many.
    const missing = Array.from({ length: c.m - c.k + 1 }, (_, i) => i);
    assert.throws(() => rs.reconstruct(erase(shards, missing), chunk.length), (/** @type {any} */ e) =>
      e instanceof FecError && e.code === 'ErrTooFewShards' && e.message === `fec: fewer than k shards present: have ${c.k - 1}, need ${c.k}`);
  }
  assert.ok(patterns > 300, `${patterns} patterns`);
});

test('bad input: the same error as Go, sentinel and text', () => {
  const ops = new Set();
  for (const b of V.bad) {
    ops.add(b.op);
    assert.throws(() => {
      const rs = new ReedSolomon(b.k, b.m);
      /** @type {(Uint8Array|null)[]} */
      const shards = (b.shards ?? []).map((/** @type {any} */ s) => (s ? bytes(s) : null));
      if (b.op === 'reconstruct') rs.reconstruct(shards, b.length ?? 0);
      if (b.op === 'regenerate') rs.regenerate(shards);
    }, (/** @type {any} */ e) => {
      assert.ok(e instanceof FecError, `${b.name}: ${e}`);
      assert.equal(e.code, b.category || 'ErrConfig', b.name);
      assert.equal(e.message, b.error, b.name);
      return true;
    }, b.name);
  }
  assert.deepEqual([...ops].sort(), ['new', 'reconstruct', 'regenerate']);
  for (const [k, m] of [[1.5, 4], [1, 2.5], [NaN, 4], [1, Infinity]]) assert.throws(() => new ReedSolomon(k, m), FecError);
});

test('decode matrices are cached per pattern and give the same result each time', () => {
  const rs = new ReedSolomon(5, 8);
  const chunk = pattern(3, 5000);
  const shards = rs.encode(chunk);
  for (let round = 0; round < 3; round++) {
    assert.deepEqual(rs.reconstruct(erase(shards, [0, 4]), chunk.length), chunk);
    assert.deepEqual(rs.reconstruct(erase(shards, [1, 2, 3]), chunk.length), chunk);
  }
  assert.equal(rs.decoders.size, 2);
  // Present shards are read, never written.
  const got = erase(shards, [2]);
  const before = got.map((s) => s && s.slice());
  rs.regenerate(got);
  got.forEach((s, i) => i !== 2 && assert.deepEqual(s, before[i]));
});

test('a 64 KiB chunk with k=3, M=4 rebuilds in well under a millisecond', (t) => {
  const rs = new ReedSolomon(3, 4);
  const chunk = pattern(9, 64 << 10);
  const shards = rs.encode(chunk);
  const times = [];
  for (let i = 0; i < 400; i++) {
    const w = shards.slice();
    /** @type {(Uint8Array|null)[]} */ (w)[i % 3] = null; // a data shard lost
    const t0 = performance.now();
    const out = rs.reconstruct(w, chunk.length);
    times.push(performance.now() - t0);
    if (i === 0) assert.deepEqual(out, chunk);
  }
  const warm = times.slice(100).sort((a, b) => a - b);
  const median = warm[warm.length >> 1];
  const t0 = performance.now();
  for (let i = 0; i < 100; i++) rs.encode(chunk);
  const encode = (performance.now() - t0) / 100;
  t.diagnostic(`64 KiB, k=3 M=4: reconstruct median ${(median * 1000).toFixed(0)} µs, encode ${(encode * 1000).toFixed(0)} µs`);
  assert.ok(median < 1, `median reconstruct ${median.toFixed(3)} ms`);
});
