// The dashboard's model: forest layout, rates from byte counters, the
// contribution ranking and the checks on the tracker's JSON.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import {
  layoutTree, ORIGIN, NONE, advanceCounters, counterDelta, rateSeries, offloadRatio, contributions,
  checkForest, checkStats, checkChannels, niceTicks, fmtBits, fmtMB, forestPeriod, shapeKey,
} from '../js/dashboard-model.js';

/** @typedef {import('../js/dashboard-model.js').ForestNode} ForestNode */

/**
 * node makes a peer for a one-tree forest.
 * @param {number} id @param {number} parent @param {object} [extra]
 * @returns {ForestNode}
 */
function node(id, parent, extra = {}) {
  return { id, kind: 'browser', slots: 2, home: 0, children: 0, trees: [{ parent, depth: 0, ...extra }] };
}

const near = (/** @type {number} */ a, /** @type {number} */ b) => assert.ok(Math.abs(a - b) < 1e-9, `${a} != ${b}`);

test('a small forest lands on its depth rings, each subtree in a wedge sized by its leaves', () => {
  //   origin ─ 1 ─ 3
  //          │   └ 4
  //          └ 2 ─ 5
  const nodes = [node(1, 0), node(2, 0), node(3, 1), node(4, 1), node(5, 2)];
  const l = layoutTree(nodes, 0);
  assert.equal(l.maxDepth, 2);
  assert.equal(l.rings, 2);
  assert.equal(l.originKids, 2);
  assert.equal(l.detached, 0);
  assert.deepEqual(l.placed.map((p) => p.depth), [1, 1, 2, 2, 2]);
  assert.deepEqual(l.placed.map((p) => p.parent), [ORIGIN, ORIGIN, 0, 0, 1]);
  assert.deepEqual(l.placed.map((p) => p.kids), [2, 1, 0, 0, 0]);
  // Three leaves share the circle: 1 gets two thirds, 2 one third.
  const third = (2 * Math.PI) / 3;
  [third, 2.5 * third, third / 2, 1.5 * third, 2.5 * third].forEach((a, i) => near(l.placed[i].angle, a));
  // Angle 0 is up, clockwise: peer 3 at depth 2, 60° right of up.
  near(l.placed[2].x, 2 * Math.sin(Math.PI / 3));
  near(l.placed[2].y, -2 * Math.cos(Math.PI / 3));
  near(l.placed[1].x, Math.sin(2.5 * third));
  for (const p of l.placed) near(Math.hypot(p.x, p.y), p.depth);
});

test('depth comes from the edges; fallback peers hang under the origin, pending ones under their parent, lost ones outside', () => {
  const nodes = [
    node(1, 0),
    node(2, 0, { fallback: true, depth: 1 }), // stripe over HTTP: roots its own subtree
    node(3, 2, { depth: 7 }), // the depth given is ignored
    node(4, 1, { pending: true }), // restored, waiting for 1
    node(5, 999), // a parent not in the snapshot
    node(6, 7), node(7, 6), // a cycle
    node(8, 8), // its own parent
    node(9, 0, { pending: true }), // pending on a parent it cannot name
  ];
  const l = layoutTree(nodes, 0);
  const p = l.placed;
  assert.deepEqual([p[1].parent, p[1].depth, p[1].fallback], [ORIGIN, 1, true]);
  assert.deepEqual([p[2].parent, p[2].depth, p[2].fallback], [1, 2, false]);
  assert.deepEqual([p[3].parent, p[3].depth, p[3].pending], [0, 2, true]);
  assert.equal(l.fallback, 1);
  assert.equal(l.originKids, 1, 'the peer on fallback is not fed down the tree');
  assert.equal(l.pending, 2);
  assert.equal(l.maxDepth, 2);
  assert.equal(l.detached, 5);
  assert.equal(l.rings, 3);
  for (const i of [4, 5, 6, 7, 8]) {
    assert.equal(p[i].detached, true, `peer ${nodes[i].id}`);
    assert.equal(p[i].parent, NONE);
    near(Math.hypot(p[i].x, p[i].y), 3);
  }
  assert.equal(p[0].detached, false);
  // Detached peers are spread evenly, not piled on one spot.
  assert.equal(new Set(p.slice(4).map((q) => q.angle.toFixed(6))).size, 5);
});

test('an empty forest and a forest of one lay out', () => {
  assert.deepEqual(layoutTree([], 0), { placed: [], rings: 0, maxDepth: 0, originKids: 0, fallback: 0, pending: 0, detached: 0 });
  const l = layoutTree([node(1, 0)], 0);
  assert.equal(l.rings, 1);
  near(l.placed[0].x, 0);
  near(l.placed[0].y, 1); // the middle of its wedge, the whole circle: straight down
});

/**
 * synthetic builds a forest the way the tracker shapes one: each peer
 * with slots is interior in its home tree and a leaf in the others;
 * peers without slots are leaves everywhere; a few hang on fallback.
 * @param {number} n @param {number} m @param {number} seed
 * @returns {ForestNode[]}
 */
function synthetic(n, m, seed = 1) {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  /** @type {ForestNode[]} */
  const nodes = [];
  for (let i = 0; i < n; i++) {
    const slots = rnd() < 0.3 ? 0 : 2 + Math.floor(rnd() * 6);
    nodes.push({
      id: 1000 + i * 13, kind: rnd() < 0.7 ? 'browser' : 'native', slots, home: slots ? i % m : -1, children: 0,
      trees: [],
      report: { relay_bytes: Math.floor(rnd() * 1e8), bytes_from_peers: 1e6, bytes_from_origin: 1e5, children: 0, chunks_played: 10, continuity: 1, latency_ms: 300, bad_shards: 0 },
    });
  }
  for (let t = 0; t < m; t++) {
    /** @type {{id: number, depth: number, free: number}[]} */
    const open = [{ id: 0, depth: 0, free: 8 }];
    let q = 0;
    const attach = (/** @type {ForestNode} */ nd, /** @type {number} */ free) => {
      while (q < open.length && open[q].free === 0) q++;
      if (q === open.length) { nd.trees[t] = { parent: 0, depth: 1, fallback: true }; return; }
      const p = open[q];
      p.free--;
      nd.trees[t] = { parent: p.id, depth: p.depth + 1 };
      if (free) open.push({ id: nd.id, depth: p.depth + 1, free });
    };
    for (const nd of nodes) if (nd.home === t) attach(nd, nd.slots);
    for (const nd of nodes) if (nd.home !== t) attach(nd, 0);
  }
  return nodes;
}

test('2,000 peers in 4 trees: every one placed, nothing NaN, no crossing edges, in milliseconds', () => {
  const nodes = synthetic(2000, 4);
  checkForest({ channel: 'x', trees: 4, k: 3, nodes });
  const t0 = performance.now();
  const layouts = [0, 1, 2, 3].map((t) => layoutTree(nodes, t));
  const ms = performance.now() - t0;
  console.log(`# layout of 2,000 peers × 4 trees: ${ms.toFixed(1)} ms`);
  for (const [t, l] of layouts.entries()) {
    assert.equal(l.placed.length, 2000);
    assert.equal(l.detached, 0);
    let onFallback = 0;
    for (const [i, p] of l.placed.entries()) {
      assert.ok(Number.isFinite(p.x) && Number.isFinite(p.y) && Number.isFinite(p.angle), `tree ${t} peer ${i}`);
      assert.equal(p.depth, nodes[i].trees[t].depth, `tree ${t} peer ${nodes[i].id} depth`);
      near(Math.hypot(p.x, p.y), p.depth);
      if (p.fallback) onFallback++;
    }
    assert.equal(l.fallback, onFallback);
    assert.ok(l.maxDepth >= 3, `tree ${t} depth ${l.maxDepth}`);
    // Planarity: along each ring, parents come in the same order as their children.
    for (let d = 2; d <= l.maxDepth; d++) {
      const ring = l.placed.filter((p) => p.depth === d && p.parent >= 0).sort((a, b) => a.angle - b.angle);
      for (let i = 1; i < ring.length; i++) {
        assert.ok(l.placed[ring[i - 1].parent].angle <= l.placed[ring[i].parent].angle + 1e-12, `tree ${t} ring ${d} crosses`);
      }
    }
    // Positions are distinct: no two peers on one spot.
    assert.equal(new Set(l.placed.map((p) => `${p.x.toFixed(6)},${p.y.toFixed(6)}`)).size, 2000);
  }
  assert.ok(ms < 500, `layout took ${ms} ms`);
});

/**
 * peer returns a forest node carrying only a report.
 * @param {number} id @param {number} origin @param {number} peers @param {number} [relay]
 * @returns {ForestNode}
 */
function reporting(id, origin, peers, relay = 0) {
  return { id, kind: 'native', slots: 0, home: -1, children: 0, trees: [], report: { relay_bytes: relay, bytes_from_origin: origin, bytes_from_peers: peers, children: 0, chunks_played: 0, continuity: 1, latency_ms: 0, bad_shards: 0 } };
}

test('byte counters turn into per-interval bytes, peer by peer, through leaves, joins and resets', () => {
  assert.equal(counterDelta(10, 25), 15);
  assert.equal(counterDelta(25, 10), 10);
  let s = advanceCounters(null, 1000, [reporting(1, 100, 0), reporting(2, 50, 500)]);
  assert.equal(s.interval, null, 'the first sample only primes');
  // 1 moves 10 from the origin; 2 leaves (the tracker's sums would fall by 550); 3 joins with 30 + 70.
  s = advanceCounters(s.counters, 3000, [reporting(1, 110, 0, 5), reporting(3, 30, 70)]);
  assert.deepEqual(s.interval, { t0: 1000, t1: 3000, origin: 40, peers: 70, relay: 5 });
  // 3 restarts its counters under the same id: what it reports now is all new.
  s = advanceCounters(s.counters, 5000, [reporting(1, 110, 20, 5), reporting(3, 4, 6)]);
  assert.deepEqual(s.interval, { t0: 3000, t1: 5000, origin: 4, peers: 26, relay: 0 });
  // A tracker restart: nobody reports for a sample, then 1 is back with its old counters.
  s = advanceCounters(s.counters, 7000, []);
  assert.deepEqual(s.interval, { t0: 5000, t1: 7000, origin: 0, peers: 0, relay: 0 });
  s = advanceCounters(s.counters, 9000, [reporting(1, 115, 20, 5)]);
  assert.deepEqual(s.interval, { t0: 7000, t1: 9000, origin: 5, peers: 0, relay: 0 });
  // After keepMs a peer is forgotten: back again, everything counts.
  s = advanceCounters(s.counters, 20000, [], 5000);
  s = advanceCounters(s.counters, 22000, [reporting(1, 115, 20, 5)], 5000);
  assert.deepEqual(s.interval, { t0: 20000, t1: 22000, origin: 115, peers: 20, relay: 5 });
  // Peers without a report yet and garbage numbers count nothing.
  s = advanceCounters(s.counters, 24000, [{ ...reporting(4, 0, 0), report: undefined }, reporting(5, -3, NaN)]);
  assert.deepEqual(s.interval, { t0: 22000, t1: 24000, origin: 0, peers: 0, relay: 0 });
  // The clock not moving gives no interval.
  assert.equal(advanceCounters(s.counters, 24000, []).interval, null);
});

test('rates average the intervals in the window, in bits per second', () => {
  const iv = (/** @type {number} */ t0, /** @type {number} */ t1, /** @type {number} */ origin, /** @type {number} */ peers) => ({ t0, t1, origin, peers, relay: 0 });
  const r = rateSeries([iv(0, 2000, 1000, 0), iv(2000, 4000, 500, 1500), iv(4000, 6000, 0, 0), iv(6000, 8000, 250, 750)], 4000);
  assert.equal(r.length, 4);
  assert.deepEqual(r[0], { t: 2000, egress: 4000, delivered: 4000, offload: 0 });
  assert.deepEqual(r[1], { t: 4000, egress: (1500 * 8) / 4, delivered: (3000 * 8) / 4, offload: 0.5 });
  // The window at 6 s covers (2 s, 6 s]: the first interval has left it.
  assert.deepEqual(r[2], { t: 6000, egress: (500 * 8) / 4, delivered: (2000 * 8) / 4, offload: 0.75 });
  assert.deepEqual(r[3], { t: 8000, egress: (250 * 8) / 4, delivered: (1000 * 8) / 4, offload: 0.75 });
  // A gap (a failed poll) makes one long interval: its bytes spread over its length.
  const g = rateSeries([iv(0, 2000, 0, 0), iv(2000, 12000, 10000, 0)], 10000);
  assert.deepEqual(g[1], { t: 12000, egress: 8000, delivered: 8000, offload: 0 });
  assert.equal(g[0].offload, null);
  assert.deepEqual(rateSeries([]), []);
});

test('the offload ratio is the peers\' share of what viewers received', () => {
  assert.equal(offloadRatio(750, 250), 0.75);
  assert.equal(offloadRatio(0, 10), 0);
  assert.equal(offloadRatio(0, 0), null);
});

test('contributions rank by relayed bytes, stable on ties, and find the viewer anywhere', () => {
  const nodes = [reporting(5, 0, 0, 100), reporting(3, 0, 0, 300), reporting(4, 0, 0, 100), { ...reporting(9, 0, 0), report: undefined }, reporting(7, 0, 0, 50)];
  const c = contributions(nodes, 3, 7);
  assert.deepEqual(c.rows.map((n) => n.id), [3, 4, 5]);
  assert.equal(c.more, 2);
  assert.equal(c.you?.rank, 4);
  assert.equal(c.you?.node.id, 7);
  assert.equal(contributions(nodes, 10, 12345).you, null);
  assert.equal(contributions(nodes, 10).more, 0);
  assert.deepEqual(contributions(nodes, 10).rows.map((n) => n.id), [3, 4, 5, 7, 9]);
  assert.deepEqual(nodes.map((n) => n.id), [5, 3, 4, 9, 7], 'the input is left alone');
});

test('malformed answers are refused with a reason; sparse ones get defaults', () => {
  for (const [bad, why] of /** @type {[unknown, RegExp][]} */ ([
    [null, /not a JSON object/], [[], /not a JSON object/], [{ trees: 4 }, /no node list/], [{ trees: 0, nodes: [] }, /tree count/],
    [{ trees: 2, nodes: [{ id: 1, trees: [{ parent: 0, depth: 1 }] }] }, /peer 1 has not 2 trees/],
    [{ trees: 1, nodes: [{ id: 'x', trees: [] }] }, /node 0 has no id/],
    [{ trees: 1, nodes: [{ id: 2, trees: [{ parent: 'a', depth: 1 }] }] }, /peer 2 has a bad edge/],
    [{ trees: 1, nodes: [{ id: 2, trees: [{ parent: 0, depth: 1 }], report: 5 }] }, /bad report/],
  ])) assert.throws(() => checkForest(bad), why);
  const f = checkForest({ channel: 'c', trees: 1, k: 1, nodes: [{ id: 2, trees: [{ parent: 0, depth: 1 }] }] });
  assert.equal(f.nodes[0].kind, 'native');
  assert.equal(f.nodes[0].children, 0);

  assert.throws(() => checkStats('x'), /not a JSON object/);
  assert.throws(() => checkStats({ channel: 'c' }), /no peer count/);
  assert.throws(() => checkStats({ channel: 'c', peers: 1, repairs: '3' }), /repairs is not a number/);
  assert.throws(() => checkStats({ channel: 'c', peers: 1, max_depth: [1, 'x'] }), /max_depth/);
  const s = checkStats({ channel: 'c', peers: 2 });
  assert.equal(s.bytes_from_origin, 0);
  assert.deepEqual(s.max_depth, []);
  assert.equal(s.origin_connected, false);
  assert.throws(() => checkChannels({ channel: [] }), /no "channels" list/);
  assert.deepEqual(checkChannels({ channels: [{ channel: 'a', peers: 0 }] }).map((c) => c.channel), ['a']);
});

test('axis ticks, rates and sizes read well', () => {
  assert.deepEqual(niceTicks(9.3e6, 4), [0, 5e6, 1e7]);
  assert.deepEqual(niceTicks(3.9e6, 4), [0, 1e6, 2e6, 3e6, 4e6]);
  assert.deepEqual(niceTicks(1, 4), [0, 0.5, 1]);
  assert.deepEqual(niceTicks(0), [0, 1]);
  assert.deepEqual(niceTicks(NaN), [0, 1]);
  assert.equal(fmtBits(0), '0 b/s');
  assert.equal(fmtBits(850_000), '850 kb/s');
  assert.equal(fmtBits(1_254_000), '1.25 Mb/s');
  assert.equal(fmtBits(42.5e6), '42.5 Mb/s');
  assert.equal(fmtMB(1_234_000), '1.23');
  assert.equal(fmtMB(12_340_000), '12.3');
  assert.equal(fmtMB(4_321_000_000), '4,321');
  assert.equal(forestPeriod(500), 2000);
  assert.equal(forestPeriod(2000), 5000);
  assert.equal(forestPeriod(20000), 15000);
});

test('the shape key changes with the trees, not with the reports', () => {
  const nodes = synthetic(300, 4, 5);
  const f = { channel: 'c', trees: 4, k: 3, nodes };
  const key = shapeKey(f);
  const copy = () => ({ ...f, nodes: structuredClone(nodes) });
  const g = copy();
  for (const nd of g.nodes) if (nd.report) nd.report.relay_bytes += 12345;
  assert.equal(shapeKey(g), key, 'reports alone');
  const moves = [
    (/** @type {ForestNode[]} */ n) => { n[10].trees[2].parent = n[11].id; },
    (/** @type {ForestNode[]} */ n) => { n[10].trees[2].fallback = !n[10].trees[2].fallback; },
    (/** @type {ForestNode[]} */ n) => { n[10].trees[0].pending = true; },
    (/** @type {ForestNode[]} */ n) => { n[10].kind = n[10].kind === 'browser' ? 'native' : 'browser'; },
    (/** @type {ForestNode[]} */ n) => { n.pop(); },
    (/** @type {ForestNode[]} */ n) => { n[3].id += 2 ** 40; },
  ];
  for (const [i, move] of moves.entries()) {
    const h = copy();
    move(h.nodes);
    assert.notEqual(shapeKey(h), key, `move ${i}`);
  }
});
