// The browser peer's data plane, driven without a browser: a fake relay
// records what would go to children, a fake clock drives deadlines, and
// chunks are cut, coded and signed here the way the origin does.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Stream } from '../js/stream.js';
import { ReedSolomon } from '../js/rs.js';
import * as wire from '../js/wire.js';

const CHANNEL = 'demo';

/** @returns {Promise<{pub: Uint8Array, priv: CryptoKey}>} */
async function keys() {
  const kp = /** @type {CryptoKeyPair} */ (await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']));
  const pub = new Uint8Array(await crypto.subtle.exportKey('raw', kp.publicKey));
  return { pub, priv: kp.privateKey };
}

/**
 * Cuts data into M shards and builds its signed manifest, as the origin does.
 * @param {{priv: CryptoKey}} k @param {number} seq @param {Uint8Array} data
 * @param {{m?: number, k?: number, ts?: number, flags?: number, channel?: string, epoch?: number}} [o]
 */
async function cut(k, seq, data, o = {}) {
  const m = o.m ?? 4;
  const kk = o.k ?? 3;
  const rs = new ReedSolomon(kk, m);
  const shards = rs.encode(data);
  const size = rs.shardSize(data.byteLength);
  const hashes = await wire.hashShards(shards);
  const { raw: manifest } = await wire.signManifest(k.priv, o.channel ?? CHANNEL, {
    seq, timestamp: Math.round((o.ts ?? Date.now()) * 1000), decode: BigInt(seq) * 90000n, duration: 90000, timescale: 90000,
    length: data.byteLength, flags: o.flags ?? wire.FLAG_KEYFRAME, m, k: kk, shardSize: size, epoch: o.epoch ?? 0, hashes,
  });
  return { manifest, shards, fragments: shards.map((s, i) => wire.fragments(seq, i, s)) };
}

/** A relay that records what goes to children. */
function fakeRelay(m, children = []) {
  const trees = Array.from({ length: m }, (_, i) => ({
    tree: i, parent: 100 + i, hasParent: true, fallback: false, lostAt: 0, openSince: 1, children: children[i] ?? 0,
  }));
  return {
    trees: () => trees,
    /** @type {{tree: number, seq: number, msg: Uint8Array}[]} */ out: [],
    /** @type {{tree: number, reason: string, evidence?: any}[]} */ complaints: [],
    /** @type {{id: number, seq: number, msg: Uint8Array}[]} */ direct: [],
    fanout(tree, seq, msg) { this.out.push({ tree, seq, msg }); },
    sendTo(id, seq, msg) { this.direct.push({ id, seq, msg }); },
    complain(tree, reason, evidence) { this.complaints.push(evidence ? { tree, reason, evidence } : { tree, reason }); },
    accepts(tree, from) { return trees[tree].hasParent && trees[tree].parent === from; },
    acceptsAny(from) { return trees.some((t) => t.hasParent && t.parent === from); },
    /** @type {{tree: number, from: number}[]} */ deliveries: [],
    delivered(tree, from) { this.deliveries.push({ tree, from }); },
  };
}

function data(n, seed = 1) {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** @param {any} k @param {any} relay @param {object} [extra] */
function newStream(k, relay, extra = {}) {
  let now = Date.now();
  const s = new Stream({ channel: CHANNEL, m: 4, k: 3, key: k.pub, relay, media: true, now: () => now, ...extra });
  return { s, tick: (/** @type {number} */ ms) => { now += ms; }, at: () => now };
}

test('rebuilds a chunk from any k shards, forwards verified pieces and regenerates the missing stripe for children', async () => {
  const k = await keys();
  const relay = fakeRelay(4, [0, 0, 2, 0]);
  const { s } = newStream(k, relay);
  const chunk = data(40_000);
  const c = await cut(k, 7, chunk);
  await s.receive(100, c.manifest);
  for (const t of [0, 1, 3]) for (const f of c.fragments[t]) await s.receive(100 + t, f);
  const got = s.chunks.get(7);
  assert.ok(got && got.done, 'chunk rebuilt');
  assert.deepEqual(got.data, chunk);
  // The manifest went down every tree, each fragment down its own tree.
  assert.equal(relay.out.filter((o) => o.msg[1] === wire.TYPE_MANIFEST).length, 4);
  for (const t of [0, 1, 3]) assert.equal(relay.out.filter((o) => o.msg[1] === wire.TYPE_FRAGMENT && o.tree === t).length, c.fragments[t].length);
  // Tree 2 brought nothing, but this peer feeds children there: regenerated.
  const regen = relay.out.filter((o) => o.tree === 2 && o.msg[1] === wire.TYPE_FRAGMENT);
  assert.equal(regen.length, c.fragments[2].length);
  assert.deepEqual(regen.map((o) => o.msg), c.fragments[2]);
  assert.equal(s.st.regenerated, 1);
  assert.equal(s.st.bytesFromPeers > 40_000, true);
  assert.equal(s.st.badMessages, 0);
});

test('a corrupt fragment is dropped, counted, not forwarded, and its parent shown to the tracker with the evidence', async () => {
  const k = await keys();
  const relay = fakeRelay(4);
  const { s } = newStream(k, relay);
  const c = await cut(k, 1, data(20_000));
  await s.receive(100, c.manifest);
  const bad = c.fragments[1][0].slice();
  bad[bad.length - 1] ^= 1;
  await s.receive(101, bad);
  assert.equal(s.st.badMessages, 1);
  // The evidence: the signed manifest and the fragment that fails it.
  assert.deepEqual(relay.complaints, [{ tree: 1, reason: 'corrupt', evidence: { sender: 101, manifest: c.manifest, fragment: bad } }]);
  // Once per neighbour: a second bad fragment is counted, not complained of again.
  await s.receive(101, bad);
  assert.equal(s.st.badMessages, 2);
  assert.equal(relay.complaints.length, 1);
  assert.equal(relay.out.filter((o) => o.msg[1] === wire.TYPE_FRAGMENT).length, 0);
  // The good copy still counts.
  await s.receive(101, c.fragments[1][0]);
  assert.equal(relay.out.filter((o) => o.msg[1] === wire.TYPE_FRAGMENT).length, 1);
});

test('data is taken only from the parent of its tree: others are dropped, not verified, relayed or blamed', async () => {
  const k = await keys();
  const relay = fakeRelay(4);
  const { s } = newStream(k, relay);
  const c = await cut(k, 3, data(5000, 4));
  await s.receive(555, c.manifest); // not a parent at all
  assert.equal(s.chunks.get(3), undefined);
  for (const f of c.fragments[1]) await s.receive(555, f); // before the manifest, from a stranger
  assert.equal(s.chunks.size, 0, 'nothing held for a stranger');
  await s.receive(100, c.manifest);
  for (const f of c.fragments[1]) await s.receive(100, f); // tree 1's data from tree 0's parent
  assert.equal(s.chunks.get(3)?.shards[1], null);
  assert.equal(s.st.unasked, 1 + c.fragments[1].length * 2);
  assert.equal(s.st.badMessages, 0);
  assert.deepEqual(relay.complaints, []);
  assert.equal(relay.out.filter((o) => o.msg[1] === wire.TYPE_FRAGMENT).length, 0);
  for (const f of c.fragments[1]) await s.receive(101, f);
  assert.ok(s.chunks.get(3)?.shards[1], 'the parent of tree 1 is heard');
  assert.deepEqual(relay.deliveries.at(-1), { tree: 1, from: 101 });
});

test('a manifest of an earlier epoch (a replay from before the origin restarted) is dropped; a later epoch is taken', async () => {
  const k = await keys();
  const relay = fakeRelay(4);
  const { s } = newStream(k, relay, { epoch: 2000n });
  await s.receive(100, (await cut(k, 5, data(3000, 1), { epoch: 1999 })).manifest);
  assert.equal(s.chunks.get(5)?.man ?? null, null, 'old epoch refused');
  assert.equal(s.st.badMessages, 0, 'not blamed on the parent');
  await s.receive(100, (await cut(k, 6, data(3000, 2), { epoch: 2000 })).manifest);
  assert.ok(s.chunks.get(6)?.man, 'current epoch taken');
  await s.receive(100, (await cut(k, 7, data(3000, 3), { epoch: 3000 })).manifest);
  assert.ok(s.chunks.get(7)?.man, 'later epoch taken');
  assert.equal(s.epoch, 3000n);
  await s.receive(100, (await cut(k, 8, data(3000, 4), { epoch: 2000 })).manifest);
  assert.equal(s.chunks.get(8)?.man ?? null, null, 'the epoch before the restart is now refused');
});

test('a forged or foreign manifest is refused; fragments that came first wait for the real one', async () => {
  const k = await keys();
  const other = await keys();
  const relay = fakeRelay(4);
  const { s } = newStream(k, relay);
  const chunk = data(5000, 3);
  const c = await cut(k, 2, chunk);
  for (const f of c.fragments[0]) await s.receive(100, f); // before the manifest: held
  const forged = await cut(other, 2, chunk);
  await s.receive(100, forged.manifest);
  const foreign = await cut(k, 2, chunk, { channel: 'elsewhere' });
  await s.receive(100, foreign.manifest);
  assert.equal(s.st.badMessages, 2);
  assert.equal(s.chunks.get(2)?.man, null);
  await s.receive(101, c.manifest);
  assert.ok(s.chunks.get(2)?.man, 'real manifest taken');
  assert.ok(s.chunks.get(2)?.shards[0], 'held fragments applied');
  // A differing copy of a verified manifest is bad; an identical one is not.
  await s.receive(102, c.manifest);
  assert.equal(s.st.badMessages, 2);
  // The tracker was shown the forged manifest (once for its sender, though
  // it also sent one signed for another channel), as the evidence.
  assert.deepEqual(relay.complaints, [{ tree: 0, reason: 'corrupt', evidence: { sender: 100, manifest: forged.manifest } }]);
  // A forged copy of a manifest verified already is checked, and shown too.
  await s.receive(101, forged.manifest);
  assert.equal(s.st.badMessages, 3);
  assert.deepEqual(relay.complaints.at(-1), { tree: 1, reason: 'corrupt', evidence: { sender: 101, manifest: forged.manifest } });
});

test('garbage is counted, never complained of: it proves nothing the tracker could check', async () => {
  const k = await keys();
  const relay = fakeRelay(4);
  const { s } = newStream(k, relay);
  await s.receive(100, new Uint8Array([1]));
  await s.receive(100, new Uint8Array([1, 99, 0, 0]));
  await s.receive(100, new Uint8Array([1, wire.TYPE_MANIFEST, 0, 0, 0, 1]));
  assert.equal(s.st.badMessages, 3);
  assert.deepEqual(relay.complaints, []);
});

test('garbage never throws', async () => {
  const k = await keys();
  const { s } = newStream(k, fakeRelay(4));
  const c = await cut(k, 1, data(3000));
  await s.receive(100, c.manifest);
  for (let i = 0; i < 300; i++) {
    const b = data(i % 50 === 0 ? 0 : (i * 37) % 600, i);
    if (b.length > 1) b[1] = i % 3;
    await s.receive(100, b);
  }
  assert.ok(s.st.badMessages > 250);
});

test('plays in order, skips a late chunk and resumes at the next keyframe', async () => {
  const k = await keys();
  const { s, tick, at } = newStream(k, fakeRelay(4));
  const t0 = at();
  const cuts = [];
  for (let seq = 10; seq < 15; seq++) {
    // 10 and 13 are keyframes; each chunk is cut 1 s after the last.
    cuts.push(await cut(k, seq, data(2000, seq), { ts: t0 + (seq - 10) * 1000, flags: seq === 10 || seq === 13 ? wire.FLAG_KEYFRAME : 0 }));
  }
  const deliver = async (/** @type {number} */ i, /** @type {number[]} */ trees = [0, 1, 2]) => {
    await s.receive(100, cuts[i].manifest);
    for (const t of trees) for (const f of cuts[i].fragments[t]) await s.receive(100 + t, f);
  };
  await deliver(0);
  assert.deepEqual(s.due().map((p) => p.seq), [10]);
  tick(1000);
  await s.receive(100, cuts[1].manifest); // 11: manifest only, never completes
  tick(1000);
  await deliver(2); // 12 arrives, not a keyframe
  assert.deepEqual(s.due().map((p) => p.seq), []); // waits for 11
  tick(2100); // 11's deadline (2 s playout) passes
  await deliver(3); // 13: a keyframe
  const played = s.due().map((p) => p.seq);
  assert.deepEqual(played, [13], '11 missed, 12 skipped (no keyframe after the gap), 13 plays');
  assert.equal(s.st.missed, 2);
  assert.equal(s.st.played, 2);
  assert.ok(s.continuity() < 1);
});

test('two manifests that never arrive are skipped by their deadlines and playout goes on; a dead origin is said so', async () => {
  const k = await keys();
  const { s, tick, at } = newStream(k, fakeRelay(4), { media: false });
  const t0 = at();
  const cuts = new Map();
  for (let seq = 10; seq < 16; seq++) cuts.set(seq, await cut(k, seq, data(2000, seq), { ts: t0 + (seq - 10) * 1000, flags: 0 }));
  const deliver = async (/** @type {number} */ seq) => {
    await s.receive(100, cuts.get(seq).manifest);
    for (const t of [0, 1, 2]) for (const f of cuts.get(seq).fragments[t]) await s.receive(100 + t, f);
  };
  await deliver(10);
  assert.deepEqual(s.due().map((p) => p.seq), [10]);
  tick(1000);
  await deliver(11);
  assert.deepEqual(s.due().map((p) => p.seq), [11]);
  // 12 and 13: their fragments come, their manifests never do.
  tick(1000);
  for (const f of cuts.get(12).fragments[0]) await s.receive(100, f);
  tick(2000);
  await deliver(14);
  assert.deepEqual(s.due().map((p) => p.seq), [], "12's deadline (cut + 2 s) is now: not passed yet");
  assert.deepEqual(s.missingManifests(14), [12, 13], 'the poll asks for the gaps below the newest');
  tick(1);
  assert.deepEqual(s.due().map((p) => p.seq), [], '12 skipped by the wall clock; 13 not due yet');
  assert.deepEqual(s.missingManifests(14), [13]);
  tick(1000);
  await deliver(15);
  assert.deepEqual(s.due().map((p) => p.seq), [14, 15], '13 skipped, and 14 and 15 play on time');
  assert.equal(s.st.missed, 2);
  assert.equal(s.st.onTime, 4);
  assert.equal(s.stopped, false);
  // Then the origin dies: 16 is expected at 6 s; two intervals and a half
  // later the stream has stopped, and the chunks that never come count.
  tick(3498);
  s.due();
  assert.equal(s.stopped, false);
  tick(2);
  s.due();
  assert.equal(s.stopped, true);
  assert.equal(s.st.missed, 3, '16, due at 8 s, missed');
  assert.ok(s.continuity() < 0.6);
});

test('a dead origin: asked once the next manifest is half an interval overdue, and the stream stopped when it has nothing newer', async () => {
  const k = await keys();
  const { s, tick, at } = newStream(k, fakeRelay(4), { media: false });
  const t0 = at();
  const cuts = new Map();
  for (let seq = 10; seq < 13; seq++) cuts.set(seq, await cut(k, seq, data(2000, seq), { ts: t0 + (seq - 10) * 1000, flags: 0 }));
  const deliver = async (/** @type {number} */ seq) => {
    await s.receive(100, cuts.get(seq).manifest);
    for (const t of [0, 1, 2]) for (const f of cuts.get(seq).fragments[t]) await s.receive(100 + t, f);
  };
  await deliver(10);
  s.due();
  tick(1000);
  await deliver(11);
  s.due();
  const polls = () => s.fetchJobs().filter((j) => j.manifest).length;
  // 12 is expected at 2 s (1 s after 11 came); half an interval later, at
  // 2.5 s, it is overdue and the origin is asked.
  tick(1500);
  assert.equal(polls(), 0, 'not overdue yet');
  tick(1);
  assert.equal(polls(), 1, 'overdue: ask the origin');
  s.unmark({ seq: 0, shard: -1, whole: false, manifest: true, shards: [] });
  // It has 12: the gap is on the way, not a stop.
  s.originSaid(12, true);
  s.due();
  assert.equal(s.stopped, false);
  // It has nothing newer than 11 (or does not answer): stopped, an
  // interval and a half after the last chunk came, not three and a half.
  s.originSaid(11, true);
  s.due();
  assert.equal(s.stopped, true);
  await deliver(12);
  s.due();
  assert.equal(s.stopped, false, 'a newer manifest: resumed');
  tick(1501);
  s.originSaid(0, false);
  s.due();
  assert.equal(s.stopped, true, 'no answer while 13 is overdue: stopped');
});

test('every parent quiet and the origin ahead: each is complained about once the news is the slack past due, not before', async () => {
  const k = await keys();
  const relay = fakeRelay(4);
  const { s, tick, at } = newStream(k, relay, { media: false });
  const t0 = at();
  const cuts = new Map();
  for (let seq = 10; seq < 13; seq++) cuts.set(seq, await cut(k, seq, data(2000, seq), { ts: t0 + (seq - 10) * 500, flags: 0 }));
  const deliver = async (/** @type {number} */ seq) => {
    await s.receive(100, cuts.get(seq).manifest);
    for (const t of [0, 1, 2, 3]) for (const f of cuts.get(seq).fragments[t] ?? []) await s.receive(100 + t, f);
  };
  await deliver(10);
  tick(500);
  await deliver(11);
  s.watchParents();
  // 500 ms chunks: 12 was due at 1 s; every parent goes quiet. Half an
  // interval later (1.25 s) the origin, asked, has 12: the gap opens, but
  // the slack (300 ms) has not passed since 12 was due.
  tick(751);
  s.originAhead(12);
  assert.equal(relay.complaints.length, 0, 'not the slack past due yet');
  tick(50);
  s.watchParents();
  assert.deepEqual(relay.complaints.map((c) => c.tree).sort(), [0, 1, 2, 3], 'the slack past due: every quiet parent, once');
  tick(50);
  s.watchParents();
  assert.equal(relay.complaints.length, 4, 'no second complaint');
});

test('fetch jobs: a tree on fallback is fetched at once; two missing shards near the deadline make one whole-chunk fetch', async () => {
  const k = await keys();
  const relay = fakeRelay(4);
  relay.trees()[3].fallback = true;
  relay.trees()[3].hasParent = false;
  const { s, tick } = newStream(k, relay);
  const chunk = data(30_000, 9);
  const c = await cut(k, 5, chunk);
  await s.receive(100, c.manifest);
  for (const f of c.fragments[0]) await s.receive(100, f);
  let jobs = s.fetchJobs().filter((j) => !j.manifest);
  assert.deepEqual(jobs.map((j) => [j.seq, j.shard, j.whole]), [[5, 3, false]]);
  assert.deepEqual(s.fetchJobs().filter((j) => !j.manifest), [], 'a shard being fetched is not asked for twice');
  await s.onShard(5, 3, null); // that fetch failed
  tick(1500); // within the fallback lead of the 2 s deadline
  jobs = s.fetchJobs().filter((j) => !j.manifest);
  assert.equal(jobs.length, 1);
  assert.ok(jobs[0].whole, 'one whole-chunk fetch');
  // The origin's answer is checked against the manifest before use.
  const wrong = chunk.slice();
  wrong[5] ^= 0xff;
  await s.onWholeChunk(jobs[0], wrong);
  assert.equal(s.chunks.get(5)?.done, false);
  assert.equal(s.st.badMessages, 1);
  await s.onWholeChunk(jobs[0], chunk);
  assert.deepEqual(s.chunks.get(5)?.data, chunk);
  await s.onShard(5, 3, c.shards[3]); // late: ignored
  assert.equal(s.st.httpFetches, 1);
});

test('a child that becomes ready gets the chunk in flight', async () => {
  const k = await keys();
  const relay = fakeRelay(4);
  const { s } = newStream(k, relay);
  const c = await cut(k, 3, data(20_000, 4));
  await s.receive(100, c.manifest);
  for (const f of c.fragments[2]) await s.receive(102, f);
  s.childReady(555, 0b0100);
  assert.equal(relay.direct.length, 1 + c.fragments[2].length);
  assert.ok(relay.direct.every((d) => d.id === 555 && d.seq === 3));
});

test('a parent whose tree brings nothing of chunks the other trees brought is reported silent by the cadence; a lagging tree is not', async () => {
  const k = await keys();
  const relay = fakeRelay(4);
  const { s, tick, at } = newStream(k, relay);
  s.watchParents(); // learns the parents
  // 3 chunks and 1.2 s: well before the 1.5 s silence timeout, so only the cadence can tell.
  for (let seq = 1; seq <= 3; seq++) {
    tick(250);
    const c = await cut(k, seq, data(3000, seq), { ts: at() });
    await s.receive(100, c.manifest);
    for (const t of [0, 1]) for (const f of c.fragments[t]) await s.receive(100 + t, f);
    // Tree 2 runs 200 ms behind; tree 3 brings nothing.
    tick(200);
    for (const f of c.fragments[2]) await s.receive(102, f);
    tick(-200);
  }
  tick(450);
  s.watchParents();
  assert.deepEqual(relay.complaints, [{ tree: 3, reason: 'silent' }]);
  assert.ok(s.cadenceSlack(2) >= 400, `tree 2's slack ${s.cadenceSlack(2)} ms covers its lag`);
});

test('a parent whose copy comes after this peer regenerated its stripe still delivers; one that sends nothing is silent', async () => {
  const k = await keys();
  // Children in tree 3: once trees 0–2 bring k shards, tree 3's shard is
  // regenerated here, and the tree-3 parent's own copy comes after it.
  const relay = fakeRelay(4, [0, 0, 0, 2]);
  const { s, tick, at } = newStream(k, relay);
  const send = async (seq, trees) => {
    const c = await cut(k, seq, data(20_000, seq), { ts: at() });
    await s.receive(100, c.manifest);
    for (const t of trees) for (const f of c.fragments[t]) await s.receive(100 + t, f);
    return c;
  };
  for (let seq = 1; seq <= 6; seq++) {
    const c = await send(seq, [0, 1, 2]);
    assert.ok(s.chunks.get(seq).done && s.chunks.get(seq).shards[3], `chunk ${seq} rebuilt and tree 3 regenerated`);
    for (let ms = 0; ms < 100; ms += 50) {
      tick(50);
      s.watchParents();
    }
    for (const f of c.fragments[3]) await s.receive(103, f);
    for (let ms = 100; ms < 1000; ms += 50) {
      tick(50);
      s.watchParents();
    }
  }
  assert.deepEqual(relay.complaints, [], 'the tree-3 parent delivers, only later than the others');
  assert.ok(relay.deliveries.some((d) => d.tree === 3 && d.from === 103), 'its copies count as delivered (a move under way can end)');
  assert.equal(s.st.badMessages, 0);
  // From now on the tree-3 parent sends nothing: it is silent within one
  // interval.
  await send(7, [0, 1, 2]);
  for (let ms = 0; ms < 1000; ms += 50) {
    tick(50);
    s.watchParents();
  }
  assert.deepEqual(relay.complaints, [{ tree: 3, reason: 'silent' }]);
});
