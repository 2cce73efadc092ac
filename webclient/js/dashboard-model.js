// The dashboard's arithmetic, without a DOM: checking the tracker's JSON,
// laying a tree of the forest out on depth rings, turning peers' byte
// counters into rates, and ranking contributions. dashboard.js draws what
// these return; test/dashboard.test.js checks them under node --test.

/**
 * @typedef {{relay_bytes: number, bytes_from_peers: number, bytes_from_origin: number, children: number,
 *   chunks_played: number, continuity: number, latency_ms: number, bad_shards: number}} Report
 * @typedef {{parent: number, depth: number, fallback?: boolean, pending?: boolean}} Edge
 * @typedef {{id: number, kind: string, slots: number, home: number, children: number, trees: Edge[], report?: Report}} ForestNode
 * @typedef {{channel: string, trees: number, k: number, nodes: ForestNode[]}} Forest
 * @typedef {{channel: string, origin_connected: boolean, trees: number, k: number, bitrate: number, peers: number,
 *   joins: number, leaves: number, repairs: number, max_depth: number[], fallback_peers: number, fallbacks: number[],
 *   origin_children: number[], relay_bytes: number, bytes_from_peers: number, bytes_from_origin: number,
 *   continuity: number, uptime_s: number, media?: {codecs: string, width?: number, height?: number}}} Stats
 */

/** Where a node hangs: under the origin, under a peer (its index), or nowhere. */
export const ORIGIN = -1;
export const NONE = -2;

/** @param {unknown} v @returns {v is Record<string, any>} */
const isObj = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
/** @param {unknown} v @returns {v is number} */
const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

/**
 * checkStats returns v as channel stats, or throws an Error saying what is
 * wrong with it. Missing optional numbers become 0 and missing arrays [].
 * @param {unknown} v
 * @returns {Stats}
 */
export function checkStats(v) {
  if (!isObj(v)) throw new Error('stats: not a JSON object');
  if (typeof v.channel !== 'string') throw new Error('stats: no channel id');
  if (!isNum(v.peers) || v.peers < 0) throw new Error('stats: no peer count');
  const s = /** @type {Stats} */ ({ ...v });
  for (const f of ['trees', 'k', 'bitrate', 'joins', 'leaves', 'repairs', 'fallback_peers', 'relay_bytes',
    'bytes_from_peers', 'bytes_from_origin', 'continuity', 'uptime_s']) {
    const x = /** @type {any} */ (v)[f];
    if (x !== undefined && !isNum(x)) throw new Error(`stats: ${f} is not a number`);
    /** @type {any} */ (s)[f] = x ?? 0;
  }
  for (const f of ['max_depth', 'fallbacks', 'origin_children']) {
    const x = /** @type {any} */ (v)[f];
    if (x != null && !(Array.isArray(x) && x.every(isNum))) throw new Error(`stats: ${f} is not a list of numbers`);
    /** @type {any} */ (s)[f] = x ?? [];
  }
  s.origin_connected = v.origin_connected === true;
  return s;
}

/**
 * checkChannels returns the list in a /api/v1/channels answer, or throws.
 * @param {unknown} v
 * @returns {Stats[]}
 */
export function checkChannels(v) {
  if (!isObj(v) || !Array.isArray(v.channels)) throw new Error('channels: no "channels" list');
  return v.channels.map(checkStats);
}

/**
 * checkForest returns v as a forest snapshot, or throws an Error naming
 * the first bad node. Every node must have one edge per tree.
 * @param {unknown} v
 * @returns {Forest}
 */
export function checkForest(v) {
  if (!isObj(v)) throw new Error('forest: not a JSON object');
  const m = v.trees;
  if (!Number.isInteger(m) || m < 1 || m > 64) throw new Error('forest: bad tree count');
  if (!Array.isArray(v.nodes)) throw new Error('forest: no node list');
  v.nodes.forEach((n, i) => {
    if (!isObj(n) || !isNum(n.id) || n.id <= 0) throw new Error(`forest: node ${i} has no id`);
    if (!Array.isArray(n.trees) || n.trees.length !== m) throw new Error(`forest: peer ${n.id} has not ${m} trees`);
    for (const e of n.trees) if (!isObj(e) || !isNum(e.parent) || !isNum(e.depth)) throw new Error(`forest: peer ${n.id} has a bad edge`);
    if (n.report != null && !isObj(n.report)) throw new Error(`forest: peer ${n.id} has a bad report`);
    if (!isNum(n.children)) n.children = 0;
    if (typeof n.kind !== 'string') n.kind = 'native';
  });
  return /** @type {Forest} */ (v);
}

/**
 * @typedef {{parent: number, depth: number, angle: number, x: number, y: number, kids: number,
 *   fallback: boolean, pending: boolean, detached: boolean}} Placed
 * @typedef {{placed: Placed[], rings: number, maxDepth: number, originKids: number,
 *   fallback: number, pending: number, detached: number}} TreeLayout
 * originKids counts the peers the origin feeds down the tree, not those
 * on HTTP fallback (fallback counts them).
 */

/**
 * layoutTree places every peer of one tree on depth rings around the
 * origin (a radial tidy tree): the origin at (0, 0), a peer at depth d on
 * the circle of radius d, each subtree in its own wedge sized by its
 * leaves, so wedges never overlap and siblings keep the order of the
 * nodes given (the tracker sorts them by id, so the picture is stable
 * from one poll to the next). Depth is counted along the edges given, not
 * read from the report. A peer on HTTP fallback hangs under the origin
 * (its stripe comes from it); a pending peer under the parent it reported.
 * Peers that lead nowhere (a parent not in the snapshot, a cycle) are
 * detached: spread on one ring outside the rest.
 * placed[i] belongs to nodes[i]; parent is an index into nodes, ORIGIN or
 * NONE. It runs in O(n).
 * @param {ForestNode[]} nodes
 * @param {number} tree
 * @returns {TreeLayout}
 */
export function layoutTree(nodes, tree) {
  const n = nodes.length;
  /** @type {Map<number, number>} */
  const index = new Map();
  nodes.forEach((nd, i) => index.set(nd.id, i));
  const parent = new Int32Array(n);
  let fallback = 0, pending = 0;
  // Children as linked lists in node order: head per node (+1 for the origin).
  const head = new Int32Array(n + 1).fill(-1), next = new Int32Array(n).fill(-1), tail = new Int32Array(n + 1).fill(-1);
  for (let i = 0; i < n; i++) {
    const e = nodes[i].trees[tree];
    let p = NONE;
    if (e.fallback) { p = ORIGIN; fallback++; }
    else if (e.parent === 0 && !e.pending) p = ORIGIN;
    else if (index.has(e.parent) && e.parent !== nodes[i].id) p = /** @type {number} */ (index.get(e.parent));
    if (e.pending) pending++;
    parent[i] = p;
    if (p === NONE) continue;
    const h = p + 1;
    if (head[h] < 0) head[h] = i; else next[tail[h]] = i;
    tail[h] = i;
  }
  // Breadth first from the origin: depth, and an order with parents first.
  const depth = new Int32Array(n).fill(-1), order = new Int32Array(n);
  let len = 0, originKids = 0;
  for (let c = head[0]; c >= 0; c = next[c]) { depth[c] = 1; order[len++] = c; if (!nodes[c].trees[tree].fallback) originKids++; }
  for (let q = 0; q < len; q++) {
    const v = order[q];
    for (let c = head[v + 1]; c >= 0; c = next[c]) if (depth[c] < 0) { depth[c] = depth[v] + 1; order[len++] = c; }
  }
  // Leaves under each node, children before parents.
  const leaves = new Float64Array(n), kids = new Int32Array(n);
  for (let q = len - 1; q >= 0; q--) {
    const v = order[q];
    if (leaves[v] === 0) leaves[v] = 1;
    const p = parent[v];
    if (p >= 0) { leaves[p] += leaves[v]; kids[p]++; }
  }
  let maxDepth = 0, total = 0;
  for (let c = head[0]; c >= 0; c = next[c]) total += leaves[c];
  // Wedges, parents first: each child gets a share of its parent's wedge.
  const start = new Float64Array(n), span = new Float64Array(n), angle = new Float64Array(n);
  const share = (/** @type {number} */ first, /** @type {number} */ from, /** @type {number} */ width, /** @type {number} */ sum) => {
    for (let c = first; c >= 0; c = next[c]) {
      start[c] = from; span[c] = sum > 0 ? width * leaves[c] / sum : 0;
      angle[c] = from + span[c] / 2; from += span[c];
    }
  };
  share(head[0], 0, 2 * Math.PI, total);
  for (let q = 0; q < len; q++) {
    const v = order[q];
    if (depth[v] > maxDepth) maxDepth = depth[v];
    if (kids[v] > 0) share(head[v + 1], start[v], span[v], leaves[v]);
  }
  const detached = n - len;
  const rings = maxDepth + (detached > 0 ? 1 : 0);
  /** @type {Placed[]} */
  const placed = new Array(n);
  let d = 0;
  for (let i = 0; i < n; i++) {
    const e = nodes[i].trees[tree];
    const lost = depth[i] < 0;
    const a = lost ? (2 * Math.PI * (d++ + 0.5)) / detached : angle[i];
    const r = lost ? rings : depth[i];
    // Angle 0 points up; angles grow clockwise (screen y grows downwards).
    placed[i] = {
      parent: lost ? NONE : parent[i], depth: lost ? 0 : depth[i], angle: a,
      x: r * Math.sin(a), y: -r * Math.cos(a), kids: kids[i],
      fallback: !!e.fallback, pending: !!e.pending, detached: lost,
    };
  }
  return { placed, rings, maxDepth, originKids, fallback, pending, detached };
}

/**
 * @typedef {{origin: number, peers: number, relay: number}} Bytes
 * @typedef {{t0: number, t1: number, origin: number, peers: number, relay: number}} Interval
 * @typedef {{t: number, last: Map<number, Bytes & {seen: number}>}} Counters
 */

/**
 * counterDelta is how much a byte counter moved from prev to cur. A
 * counter that went down was restarted from zero (a peer that rejoined
 * under the same id), so all of cur is new.
 * @param {number} prev
 * @param {number} cur
 * @returns {number}
 */
export function counterDelta(prev, cur) {
  return cur >= prev ? cur - prev : cur;
}

/**
 * advanceCounters takes the peers' reports seen at time t (ms) and returns
 * the bytes they moved since the previous sample, peer by peer: the
 * tracker's sums drop whenever a peer leaves (its report goes with it), so
 * differencing the sums would read every departure as negative traffic.
 * A peer not seen before counts all it reports (it joined since); one
 * missing for a while (a tracker restart) and back under its id counts
 * only what is new. The first sample only primes: interval is null.
 * Peers unseen for keepMs are forgotten.
 * @param {Counters|null} prev
 * @param {number} t
 * @param {ForestNode[]} nodes
 * @param {number} [keepMs]
 * @returns {{counters: Counters, interval: Interval|null}}
 */
export function advanceCounters(prev, t, nodes, keepMs = 300_000) {
  /** @type {Map<number, Bytes & {seen: number}>} */
  const last = new Map();
  const iv = prev ? { t0: prev.t, t1: t, origin: 0, peers: 0, relay: 0 } : null;
  for (const nd of nodes) {
    const r = nd.report;
    if (!r) continue;
    const cur = { origin: num(r.bytes_from_origin), peers: num(r.bytes_from_peers), relay: num(r.relay_bytes), seen: t };
    const was = prev && prev.last.get(nd.id);
    if (iv) {
      iv.origin += was ? counterDelta(was.origin, cur.origin) : cur.origin;
      iv.peers += was ? counterDelta(was.peers, cur.peers) : cur.peers;
      iv.relay += was ? counterDelta(was.relay, cur.relay) : cur.relay;
    }
    last.set(nd.id, cur);
  }
  if (prev) for (const [id, b] of prev.last) if (!last.has(id) && t - b.seen < keepMs) last.set(id, b);
  return { counters: { t, last }, interval: iv && iv.t1 > iv.t0 ? iv : null };
}

/** @param {unknown} x */
const num = (x) => (isNum(x) && x > 0 ? x : 0);

/**
 * @typedef {{t: number, egress: number, delivered: number, offload: number|null}} RatePoint
 */

/**
 * rateSeries turns intervals (in time order) into rates in bits/s, one
 * point per interval end, each averaged over the intervals ending within
 * windowMs before it (peers report every 2 s, so single intervals are
 * lumpy). egress is bytes from the origin, delivered bytes from the origin
 * and from peers; offload is the share that came from peers (null with
 * nothing delivered).
 * @param {Interval[]} intervals
 * @param {number} [windowMs]
 * @returns {RatePoint[]}
 */
export function rateSeries(intervals, windowMs = 10_000) {
  /** @type {RatePoint[]} */
  const out = [];
  let lo = 0, origin = 0, peers = 0;
  for (let i = 0; i < intervals.length; i++) {
    const v = intervals[i];
    origin += v.origin; peers += v.peers;
    while (lo < i && intervals[lo].t1 <= v.t1 - windowMs) { origin -= intervals[lo].origin; peers -= intervals[lo].peers; lo++; }
    const dt = (v.t1 - intervals[lo].t0) / 1000;
    if (dt <= 0) continue;
    const total = origin + peers;
    out.push({ t: v.t1, egress: (origin * 8) / dt, delivered: (total * 8) / dt, offload: total > 0 ? peers / total : null });
  }
  return out;
}

/**
 * offloadRatio is the share of the bytes viewers received that came from
 * other peers, or null before anyone received anything.
 * @param {number} fromPeers
 * @param {number} fromOrigin
 * @returns {number|null}
 */
export function offloadRatio(fromPeers, fromOrigin) {
  const t = fromPeers + fromOrigin;
  return t > 0 ? fromPeers / t : null;
}

/**
 * contributions ranks peers by the bytes they relayed (then by id, so the
 * order is stable), keeps the first limit, and finds the peer `you` (if
 * given) with its 1-based rank wherever it is.
 * @param {ForestNode[]} nodes
 * @param {number} limit
 * @param {number} [you]
 * @returns {{rows: ForestNode[], more: number, you: {node: ForestNode, rank: number}|null}}
 */
export function contributions(nodes, limit, you) {
  const relay = (/** @type {ForestNode} */ n) => num(n.report?.relay_bytes);
  const sorted = nodes.slice().sort((a, b) => relay(b) - relay(a) || a.id - b.id);
  const at = you ? sorted.findIndex((n) => n.id === you) : -1;
  return {
    rows: sorted.slice(0, limit), more: Math.max(0, sorted.length - limit),
    you: at >= 0 ? { node: sorted[at], rank: at + 1 } : null,
  };
}

/**
 * shapeKey hashes what the drawing of a forest depends on (ids, kinds and
 * every edge with its fallback and pending marks) and nothing else, so a
 * snapshot whose reports changed but whose trees did not needs no redraw.
 * @param {Forest} f
 * @returns {string}
 */
export function shapeKey(f) {
  let h = 2166136261 ^ f.trees;
  const mix = (/** @type {number} */ v) => { h = Math.imul(h ^ v, 16777619); };
  for (const nd of f.nodes) {
    mix(nd.id % 2147483647); mix(Math.floor(nd.id / 2147483647)); mix(nd.kind === 'browser' ? 1 : 2);
    for (const e of nd.trees) { mix(e.parent % 2147483647); mix(Math.floor(e.parent / 2147483647)); mix((e.fallback ? 1 : 0) | (e.pending ? 2 : 0)); }
  }
  return `${f.nodes.length}:${(h >>> 0).toString(36)}`;
}

/**
 * forestPeriod is how often to fetch the forest, in ms: every 2 s, every
 * 5 s from 2,000 peers, every 15 s from 10,000 (each fetch carries every
 * peer).
 * @param {number} peers
 * @returns {number}
 */
export function forestPeriod(peers) {
  return peers >= 10_000 ? 15_000 : peers >= 2000 ? 5000 : 2000;
}

/**
 * niceTicks returns 0 and evenly spaced round values (1, 2 or 5 × 10^k)
 * up to at least max, about count of them.
 * @param {number} max
 * @param {number} [count]
 * @returns {number[]}
 */
export function niceTicks(max, count = 4) {
  if (!(max > 0) || !Number.isFinite(max)) return [0, 1];
  const raw = max / count, p = 10 ** Math.floor(Math.log10(raw)), f = raw / p;
  const step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
  const out = [];
  for (let v = 0; v < max + step * 0.999; v += step) out.push(+v.toPrecision(12));
  return out;
}

/**
 * fmtBits writes a rate in bits/s with an SI prefix: "0 b/s", "850 kb/s",
 * "1.25 Mb/s".
 * @param {number} bps
 * @returns {string}
 */
export function fmtBits(bps) {
  if (!(bps > 0)) return '0 b/s';
  const u = ['b/s', 'kb/s', 'Mb/s', 'Gb/s', 'Tb/s'];
  let i = 0;
  while (bps >= 1000 && i < u.length - 1) { bps /= 1000; i++; }
  return `${bps >= 100 ? bps.toFixed(0) : bps >= 10 ? bps.toFixed(1) : bps.toFixed(2)} ${u[i]}`;
}

/**
 * fmtMB writes bytes as megabytes (10^6): "0.00", "12.3", "1,234".
 * @param {number} bytes
 * @returns {string}
 */
export function fmtMB(bytes) {
  const v = num(bytes) / 1e6;
  return v >= 1000 ? Math.round(v).toLocaleString('en-US') : v.toFixed(v >= 10 ? 1 : 2);
}
