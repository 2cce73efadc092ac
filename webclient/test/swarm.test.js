// The browser peer's control plane without a network: tracker messages go
// straight into Swarm.onTracker, and the bounded send queue runs against a
// fake data channel.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Swarm, SendQueue, MAX_QUEUED, HIGH_WATER, base64 } from '../js/swarm.js';

function newSwarm() {
  /** @type {any[]} */
  const welcomes = [];
  /** @type {[number, number][]} */
  const ready = [];
  /** @type {string[]} */
  const events = [];
  const s = new Swarm({
    trackerURL: 'http://127.0.0.1:1', channel: 'demo', uploadKbps: 2000,
    onWelcome: (w) => welcomes.push(w), onData: () => {}, onChildReady: (c, t) => ready.push([c, t]),
    onEvent: (what) => events.push(what), report: () => ({}),
  });
  return { s, welcomes, ready, events };
}

const welcome = { type: 'welcome', channel: 'demo', peer_id: 500, resume_token: 'x', trees: 4, k: 3, bitrate: 500000,
  stripe_bps: 166667, public_key: 'AAAA', fallback_url: 'http://o/fallback/demo', heartbeat_ms: 2000, home: 1 };

test('malformed tracker messages are counted and dropped, never thrown', () => {
  const { s, welcomes } = newSwarm();
  s.onTracker(JSON.stringify(welcome));
  clearInterval(s.heartbeat);
  const bad = [
    'not json', '[]', 'null', '42', '{"type":7}', '{"type":"nonsense"}', '{"type":"assign-parent","tree":9,"parent":3}',
    '{"type":"assign-parent","tree":-1,"parent":3}', '{"type":"assign-child","tree":0}', '{"type":"assign-child","tree":0,"child":"x"}',
    '{"type":"welcome","peer_id":-1}', '{"type":"fallback"}', 'x'.repeat(70000),
  ];
  for (const b of bad) assert.doesNotThrow(() => s.onTracker(b));
  assert.doesNotThrow(() => s.onTracker(new ArrayBuffer(4)));
  assert.equal(s.errors.badTracker, bad.length + 1);
  assert.equal(welcomes.length, 1);
  // A signal from a peer we are not paired with is ignored.
  s.onTracker(JSON.stringify({ type: 'signal', from: 77, link: 5, sdp: { type: 'offer', sdp: 'v=0' } }));
  assert.equal(s.nbrs.size, 0);
  s.stopped = true;
});

test('assignments build the tree state the tracker holds', () => {
  const { s } = newSwarm();
  s.onTracker(JSON.stringify(welcome));
  clearInterval(s.heartbeat);
  s.stopped = true; // no links in this test: ensureLink does nothing
  s.onTracker(JSON.stringify({ type: 'assign-parent', tree: 0, parent: 0, peer_kind: 'native' }));
  s.onTracker(JSON.stringify({ type: 'assign-parent', tree: 1, parent: 900, peer_kind: 'browser' }));
  s.onTracker(JSON.stringify({ type: 'fallback', tree: 2, url: 'http://o2/fallback/demo' }));
  s.onTracker(JSON.stringify({ type: 'assign-child', tree: 1, child: 901, peer_kind: 'browser' }));
  s.onTracker(JSON.stringify({ type: 'assign-child', tree: 1, child: 902, peer_kind: 'native' }));
  let t = s.trees();
  assert.deepEqual(t.map((x) => [x.hasParent, x.parent, x.parentKind, x.fallback, x.children]), [
    [true, 0, 'origin', false, 0], [true, 900, 'browser', false, 2], [false, 0, '', true, 0], [false, 0, '', false, 0],
  ]);
  assert.equal(s.fallbackURL, 'http://o2/fallback/demo');
  // A repair: a new parent without remove-parent records when the old was lost.
  s.onTracker(JSON.stringify({ type: 'assign-parent', tree: 1, parent: 950, peer_kind: 'native' }));
  t = s.trees();
  assert.equal(t[1].parent, 950);
  assert.ok(t[1].lostAt > 0);
  // A confirmation of the same parent changes nothing.
  s.onTracker(JSON.stringify({ type: 'assign-parent', tree: 0, parent: 0 }));
  assert.equal(s.trees()[0].lostAt, 0);
  s.onTracker(JSON.stringify({ type: 'remove-child', tree: 1, child: 901 }));
  assert.equal(s.trees()[1].children, 1);
  s.onTracker(JSON.stringify({ type: 'remove-parent', tree: 1, parent: 950 }));
  assert.equal(s.trees()[1].hasParent, false);
});

test('a move with keep takes the tree from both parents until the new one delivers, then says edge-open', () => {
  const { s } = newSwarm();
  s.onTracker(JSON.stringify(welcome));
  clearInterval(s.heartbeat);
  s.stopped = true;
  /** @type {any[]} */
  const sent = [];
  s.send = (/** @type {any} */ m) => { sent.push(m); };
  s.onTracker(JSON.stringify({ type: 'assign-parent', tree: 2, parent: 0, peer_kind: 'native' }));
  assert.ok(s.accepts(2, 0));
  s.delivered(2, 0); // the first data on a new edge is confirmed
  assert.deepEqual(sent.splice(0), [{ type: 'edge-open', tree: 2, parent: 0 }]);
  assert.ok(!s.accepts(2, 700), 'a neighbour that is not the parent');
  assert.ok(!s.accepts(1, 0), 'the parent of another tree');
  // Moved under 700, keeping the origin meanwhile.
  s.onTracker(JSON.stringify({ type: 'assign-parent', tree: 2, parent: 700, keep: 0, peer_kind: 'browser' }));
  assert.ok(s.accepts(2, 0) && s.accepts(2, 700), 'both old and new parent feed tree 2');
  assert.equal(s.trees()[2].parent, 700);
  assert.equal(s.trees()[2].lostAt, 0, 'a move is not a loss');
  s.delivered(2, 0); // the old parent's data ends nothing
  assert.equal(sent.length, 0);
  s.delivered(2, 700);
  assert.deepEqual(sent, [{ type: 'edge-open', tree: 2, parent: 700 }]);
  assert.ok(!s.accepts(2, 0), 'the old parent is released');
  assert.ok(s.accepts(2, 700));
  s.delivered(2, 700);
  assert.equal(sent.length, 1, 'edge-open once');
  // A move without keep (the old parent is gone) keeps nothing.
  s.onTracker(JSON.stringify({ type: 'assign-parent', tree: 2, parent: 800, peer_kind: 'native' }));
  assert.ok(!s.accepts(2, 700) && s.accepts(2, 800));
  assert.ok(s.trees()[2].lostAt > 0);
  s.delivered(2, 800);
  assert.deepEqual(sent.at(-1), { type: 'edge-open', tree: 2, parent: 800 }, 'a repaired edge is confirmed too');
  // remove-parent of the drain drops it.
  s.onTracker(JSON.stringify({ type: 'assign-parent', tree: 2, parent: 900, keep: 800, peer_kind: 'native' }));
  assert.ok(s.accepts(2, 800));
  s.onTracker(JSON.stringify({ type: 'remove-parent', tree: 2, parent: 800 }));
  assert.ok(!s.accepts(2, 800) && s.accepts(2, 900));
});

/** A data channel that takes what fits under its buffer and drains on demand. */
function fakeChannel() {
  return {
    readyState: 'open', bufferedAmount: 0, /** @type {Uint8Array[]} */ sent: [],
    send(/** @type {Uint8Array} */ b) { this.sent.push(b); this.bufferedAmount += b.byteLength; },
  };
}

test('the send queue goes straight through while the channel has room, then queues, then drops whole old chunks', () => {
  const dc = fakeChannel();
  const q = new SendQueue(() => /** @type {any} */ (dc));
  const msg = (/** @type {number} */ n) => new Uint8Array(n);
  q.push(1, msg(1000));
  assert.equal(dc.sent.length, 1);
  dc.bufferedAmount = HIGH_WATER; // the link is slow
  for (let seq = 2; seq < 200; seq++) for (let i = 0; i < 4; i++) q.push(seq, msg(16000));
  assert.ok(q.bytes <= MAX_QUEUED, `queue holds ${q.bytes} bytes`);
  assert.ok(q.droppedBytes > 0);
  // What is left is whole chunks, the newest ones, in order.
  const seqs = q.items.map((it) => it.seq);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
  assert.equal(seqs.at(-1), 199);
  assert.equal(seqs.filter((x) => x === seqs[0]).length, 4, 'the oldest chunk kept is whole');
  dc.bufferedAmount = 0;
  q.pump();
  assert.ok(dc.sent.length > 1);
  assert.equal(q.sentBytes, dc.sent.reduce((n, b) => n + b.byteLength, 0));
});

test('the fallback ticket comes with welcome and is replaced by each ticket message', () => {
  const { s } = newSwarm();
  s.onTracker(JSON.stringify({ ...welcome, ticket: '500.1764040120.AAAA' }));
  clearInterval(s.heartbeat);
  s.stopped = true;
  assert.equal(s.ticket, '500.1764040120.AAAA');
  s.onTracker(JSON.stringify({ type: 'ticket', ticket: '500.1764040180.BBBB' }));
  assert.equal(s.ticket, '500.1764040180.BBBB');
  assert.equal(s.errors.badTracker, 0);
});

test('a corrupt-data complaint carries its evidence as the tracker reads it: standard base64 of the bytes', () => {
  const { s } = newSwarm();
  s.onTracker(JSON.stringify(welcome));
  clearInterval(s.heartbeat);
  s.stopped = true;
  /** @type {any[]} */
  const sent = [];
  s.send = (/** @type {any} */ m) => { sent.push(m); };
  s.onTracker(JSON.stringify({ type: 'assign-parent', tree: 1, parent: 700, peer_kind: 'native' }));
  const manifest = new Uint8Array(70_000).map((_, i) => (i * 7) & 0xff);
  const fragment = new Uint8Array([1, 2, 0xfb, 0xff]);
  s.complain(1, 'corrupt', { sender: 700, manifest, fragment });
  s.complain(1, 'corrupt', { sender: 700, manifest });
  assert.deepEqual(sent, [
    { type: 'complaint', tree: 1, parent: 700, reason: 'corrupt', manifest: Buffer.from(manifest).toString('base64'), fragment: 'AQL7/w==' },
    { type: 'complaint', tree: 1, parent: 700, reason: 'corrupt', manifest: Buffer.from(manifest).toString('base64') },
  ]);
  assert.equal(base64(new Uint8Array()), '');
});
