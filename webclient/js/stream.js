// The browser peer's data plane: verifies what parents send, forwards it at
// once to children (cut-through), rebuilds chunks from any k of M shards,
// decides what to fetch from the origin over HTTP, and plays chunks out in
// order against their deadlines. It is the twin of the native peer
// (peer/chunk.go, peer/playout.go, peer/repair.go) with the same rules and
// measures; it does no I/O of its own, so node --test drives it directly.
// The playout rule itself is playout.js, twin of internal/playout, which
// the native peer and the simulator run.

import * as wire from './wire.js';
import { ReedSolomon } from './rs.js';
import { Rule, State } from './playout.js';
import { Rule as CadenceRule } from './cadence.js';

/** Chunks kept around the newest. */
export const WINDOW = 64;
/** Fragments held per chunk before its manifest came. */
const MAX_PENDING = 64;
/** Chunks held for fragments before the first manifest, when there is no live edge to measure a window from. */
const MAX_UNKNOWN = 8;
/** A new parent's link may take this long to open before its tree counts as stalled. */
const REPLACE_GRACE_MS = 1000;
/** A neighbour is shown to the tracker with evidence of bad data at most this often (Go: blameEvery). */
const BLAME_EVERY_MS = 10_000;

/**
 * @typedef {{sender: number, manifest: Uint8Array, fragment?: Uint8Array}} Evidence what a corrupt-data
 *   complaint shows the tracker: a manifest whose signature fails, or the verified manifest and a fragment
 *   that does not match it; sender is the neighbour that sent it
 * @typedef {{tree: number, parent: number, hasParent: boolean, fallback: boolean, lostAt: number, openSince: number, children: number}} TreeState
 * @typedef {{fanout(tree: number, seq: number, msg: Uint8Array): void, sendTo(id: number, seq: number, msg: Uint8Array): void,
 *   trees(): TreeState[], complain(tree: number, reason: 'silent'|'corrupt', evidence?: Evidence): void,
 *   accepts(tree: number, from: number): boolean, acceptsAny(from: number): boolean,
 *   delivered(tree: number, from: number): void}} Relay
 * @typedef {{seq: number, shard: number, whole: boolean, manifest: boolean, shards: number[]}} FetchJob
 * @typedef {{seq: number, data: Uint8Array, keyframe: boolean, end: boolean}} Playable
 */

class Chunk {
  /** @param {number} seq */
  constructor(seq) {
    this.seq = seq;
    /** @type {any} */ this.man = null;
    /** @type {Uint8Array|null} */ this.rawMan = null;
    this.manAt = 0; // when its manifest was verified here (ms)
    /** fragments that came before the manifest, with their sender @type {{from: number, raw: Uint8Array}[]} */ this.pending = [];
    /** @type {(Uint8Array|null)[]} */ this.shards = [];
    /** @type {(Uint8Array|null)[]} */ this.building = [];
    /** @type {Uint8Array[]} */ this.got = [];
    /** @type {number[]} */ this.gotCount = [];
    /** @type {boolean[]} */ this.fetching = [];
    this.have = 0;
    this.done = false;
    /** @type {Uint8Array|null} */ this.data = null;
    this.doneAt = 0;
  }
}

/**
 * Runs a check that may throw, resolve false or reject: true only when it
 * neither throws nor says false.
 * @param {() => any} check @returns {Promise<boolean>}
 */
async function passes(check) {
  try {
    return (await check()) !== false;
  } catch {
    return false;
  }
}

/** @param {Uint8Array} a @param {Uint8Array} b */
function equal(a, b) {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Signed difference a - b of two uint32 sequence numbers. @param {number} a @param {number} b */
export function seqDiff(a, b) {
  return ((a - b) | 0);
}

export class Stream {
  /**
   * @param {{channel: string, m: number, k: number, key: CryptoKey|Uint8Array, epoch?: bigint, relay: Relay, media: boolean,
   *   playoutMs?: number, fallbackLeadMs?: number, silenceMs?: number, now?: () => number,
   *   onChunk?: (seq: number) => void, onBad?: (why: string) => void}} cfg
   */
  constructor(cfg) {
    this.cfg = cfg;
    this.m = cfg.m;
    this.k = cfg.k;
    this.rs = new ReedSolomon(cfg.k, cfg.m);
    this.playoutMs = cfg.playoutMs ?? 2000;
    this.fallbackLeadMs = cfg.fallbackLeadMs ?? 600;
    this.silenceMs = cfg.silenceMs ?? 1500;
    this.now = cfg.now ?? (() => Date.now());
    /** @type {Map<number, Chunk>} */
    this.chunks = new Map();
    /** @type {Map<number, Promise<boolean>>} */
    this.verifying = new Map();
    /** @type {Map<number, number>} when each neighbour was last shown to the tracker with evidence */
    this.blamed = new Map();
    /** The newest epoch (origin run) known: manifests of earlier ones are replays. */
    this.epoch = cfg.epoch ?? 0n;
    this.newest = 0;
    this.newestAt = 0;
    this.haveAny = false;
    // The playout rule (playout.js) and this viewer's state in it: the
    // playout position, clock offset, chunk interval, played/on time/missed
    // and whether the stream stopped. It works in µs.
    this.rule = new Rule({ delayUs: this.playoutMs * 1000, leadUs: this.fallbackLeadMs * 1000, window: WINDOW });
    this.play = new State();
    // The cadence rule (cadence.js): when a parent counts as silent.
    this.cadence = new CadenceRule({ silenceUs: this.silenceMs * 1000 });
    this.play.media = !!cfg.media;
    this.polling = false;
    this.lastPoll = 0;
    this.startAt = this.now();
    this.lastRx = new Array(cfg.m).fill(0);
    /** per tree, when its parent was last judged silent, until it delivers again (ms; 0: not): stalled meanwhile @type {number[]} */
    this.complained = new Array(cfg.m).fill(0);
    /** how late manifests come by the trees, past the fastest (µs): a decaying maximum */
    this.newsLagUs = 0;
    /** what the last manifest poll found no tree had brought (peer.gap): chunks after from, the first due at due (µs) */
    this.gap = { open: false, from: 0, due: 0 };
    /** per tree, the newest chunk a fragment of that tree came for @type {number[]} */
    this.lastSeqRx = new Array(cfg.m).fill(0);
    /** per tree, a decaying maximum of how long after a chunk's manifest its first fragment comes (ms) @type {number[]} */
    this.treeLag = new Array(cfg.m).fill(0);
    this.switchAt = new Array(cfg.m).fill(0);
    this.switchFrom = new Array(cfg.m).fill(0);
    /** @type {Map<number, number>} */
    this.knownParents = new Map();
    this.st = {
      bytesFromOrigin: 0, bytesFromPeers: 0, badMessages: 0, rebuilt: 0, regenerated: 0,
      played: 0, onTime: 0, missed: 0, startupMs: -1, httpFetches: 0, complaints: 0, unasked: 0, evidence: 0,
      /** per tree, the most its first fragment of a chunk came after the chunk's manifest (ms) @type {number[]} */
      lagMax: new Array(cfg.m).fill(0),
      /** per tree, the chunks whose first fragment came more than the cadence slack after the manifest @type {number[]} */
      lagOver: new Array(cfg.m).fill(0),
      /** @type {number[]} */ latency: [], /** @type {number[]} */ repairs: [],
      /** bytes received per sender id (0: the origin, by tree or HTTP) @type {Map<number, number>} */ from: new Map(),
    };
  }

  /** @returns {number} the next chunk to play */
  get next() {
    return this.play.next;
  }

  /** @returns {boolean} whether playout started */
  get started() {
    return this.play.started;
  }

  /** @returns {boolean} whether the end of the stream was played */
  get ended() {
    return this.play.ended;
  }

  /** @returns {boolean} whether the stream has stopped at the origin (playout.js STOPPED_REASON) */
  get stopped() {
    return this.play.stopped;
  }

  /**
   * Tells the playout rule what the origin said when asked for its newest
   * chunk: latest (ok), or nothing or no answer (!ok). With nothing newer
   * than the newest manifest while the next is overdue, the stream has
   * stopped at the origin. As peer/repair.go fetchManifests. Call it only
   * for answers to trust: not a refusal or a rate limit.
   * @param {number} latest @param {boolean} ok
   */
  originSaid(latest, ok) {
    this.rule.origin(this.play, this.nowUs(), latest, ok);
  }

  /** @returns {number} the chunk interval the manifests show (ms); 0 before two */
  get intervalMs() {
    return this.rule.interval(this.play) / 1000;
  }

  /** @returns {number} now in µs, the playout rule's unit */
  nowUs() {
    return Math.round(this.now() * 1000);
  }

  /** @param {any} c @returns {number} when chunk c must be rebuilt to play on time (ms) */
  deadline(c) {
    return this.rule.deadline(this.play, c.man.timestamp) / 1000;
  }

  /**
   * Chunk seq as the playout rule sees it.
   * @param {number} seq @returns {import('./playout.js').Chunk|null}
   */
  look(seq) {
    const c = this.chunks.get(seq);
    if (!c || !c.man) return null;
    return { known: true, time: c.man.timestamp, keyframe: !!(c.man.flags & wire.FLAG_KEYFRAME), end: !!(c.man.flags & wire.FLAG_END),
      done: c.done, doneAt: Math.round(c.doneAt * 1000) };
  }

  /**
   * The state for seq, if seq is plausible. Before the first manifest only
   * MAX_UNKNOWN chunks are held for fragments; a verified manifest always
   * gets its chunk.
   * @param {number} seq @param {boolean} [verified] @returns {Chunk|null}
   */
  chunkFor(seq, verified = true) {
    const c = this.chunks.get(seq);
    if (c) return c;
    if (this.haveAny && Math.abs(seqDiff(seq, this.newest)) > WINDOW) return null;
    if (this.started && seqDiff(seq, this.next) < 0) return null;
    if (!this.haveAny && !verified && this.chunks.size >= MAX_UNKNOWN) return null;
    const n = new Chunk(seq);
    this.chunks.set(seq, n);
    return n;
  }

  /**
   * Takes one data-channel message (or a manifest fetched over HTTP).
   * Never throws: bad input is counted, and blamed on the parent that sent it.
   * @param {number} from sender id (0: the origin) @param {Uint8Array} b @param {boolean} [viaHTTP]
   */
  async receive(from, b, viaHTTP = false) {
    if (b.byteLength < 2) return this.bad(from, -1, 'short message');
    switch (b[1]) {
      case wire.TYPE_MANIFEST:
        if (!viaHTTP && !this.cfg.relay.acceptsAny(from)) return this.unasked(from);
        return this.onManifest(from, b, viaHTTP);
      case wire.TYPE_FRAGMENT:
        return this.onFragment(from, b);
      default:
        return this.bad(from, -1, 'unknown message type');
    }
  }

  /**
   * Drops data from a neighbour that does not feed us what it sent: only a
   * tree's parent (or the former parent of a move under way) may send that
   * tree's data, so no neighbour can make us hold, verify or relay what we
   * never asked for, nor make us blame an honest parent.
   * @param {number} from
   */
  unasked(from) {
    this.st.unasked++;
    if (this.cfg.onBad) this.cfg.onBad(`data from ${from}, who does not feed us`);
  }

  /**
   * Counts a message that failed checks. Garbage proves nothing anyone else
   * can check, so it is not complained of: a parent that sends only garbage
   * is silent, which the cadence rule catches.
   * @param {number} from @param {number} tree @param {string} why
   */
  bad(from, tree, why) {
    this.st.badMessages++;
    if (this.cfg.onBad) this.cfg.onBad(why);
  }

  /**
   * Drops data from a neighbour that fails against the channel's key and
   * shows the tracker the bytes (as the Go peer does), at most once per
   * neighbour per BLAME_EVERY_MS. tree is the fragment's, or -1 for a
   * manifest (then a tree the sender feeds us).
   * @param {number} from @param {number} tree @param {Uint8Array} manifest @param {Uint8Array|undefined} fragment @param {string} why
   */
  proven(from, tree, manifest, fragment, why) {
    this.bad(from, tree, why);
    if (from === 0) return;
    const now = this.now();
    const last = this.blamed.get(from);
    if (last !== undefined && now - last < BLAME_EVERY_MS) return;
    if (this.blamed.size > 256) this.blamed.clear();
    this.blamed.set(from, now);
    this.st.evidence++;
    if (tree < 0) {
      const t = this.cfg.relay.trees().find((x) => x.hasParent && x.parent === from);
      tree = t ? t.tree : 0;
    }
    /** @type {Evidence} */
    const ev = { sender: from, manifest: manifest.slice() };
    if (fragment) ev.fragment = fragment.slice();
    this.cfg.relay.complain(tree, 'corrupt', ev);
  }

  /**
   * A manifest that differs from the verified one for its chunk: forged
   * (then evidence), or validly signed (a straggler of another epoch).
   * @param {number} from @param {Uint8Array} raw
   */
  async otherManifest(from, raw) {
    let m;
    try {
      m = wire.parseManifest(raw);
    } catch (e) {
      return this.bad(from, -1, `manifest: ${e}`);
    }
    if (!(await passes(() => wire.verifyManifest(m, this.cfg.key, this.cfg.channel)))) this.proven(from, -1, raw, undefined, 'manifest: bad signature');
  }

  /** @param {number} from @param {Uint8Array} raw @param {boolean} viaHTTP */
  async onManifest(from, raw, viaHTTP) {
    const seq = raw.byteLength >= 6 ? new DataView(raw.buffer, raw.byteOffset, raw.byteLength).getUint32(2) : -1;
    const known = this.chunks.get(seq);
    if (known && known.man) {
      // Every parent sends every manifest: a copy costs a compare.
      if (!equal(/** @type {Uint8Array} */ (known.rawMan), raw) && !viaHTTP) await this.otherManifest(from, raw);
      return;
    }
    const inFlight = this.verifying.get(seq);
    if (inFlight) {
      await inFlight;
      const c = this.chunks.get(seq);
      if (c && c.man && !equal(/** @type {Uint8Array} */ (c.rawMan), raw) && !viaHTTP) await this.otherManifest(from, raw);
      if (c && c.man) return;
    }
    let m;
    try {
      m = wire.parseManifest(raw);
    } catch (e) {
      return this.bad(from, -1, `manifest: ${e}`);
    }
    const check = passes(() => wire.verifyManifest(m, this.cfg.key, this.cfg.channel));
    this.verifying.set(m.seq, check);
    const ok = await check;
    this.verifying.delete(m.seq);
    if (!ok) return viaHTTP ? this.bad(from, -1, 'manifest: bad signature') : this.proven(from, -1, raw, undefined, 'manifest: bad signature');
    if (m.m !== this.m || m.k !== this.k) return this.bad(from, -1, "manifest: M or k differ from the channel's");
    // An earlier run's manifest is dropped, not blamed on the parent (it may
    // be a straggler from before the origin restarted); a later one is the
    // origin restarted.
    if (m.epochBig < this.epoch) return;
    this.epoch = m.epochBig;
    const c = this.chunkFor(m.seq);
    if (!c || c.man) return;
    c.man = m;
    c.manAt = this.now();
    c.rawMan = raw.slice();
    if (m.flags & wire.FLAG_END) {
      c.done = true;
      c.doneAt = this.now();
    }
    c.shards = new Array(this.m).fill(null);
    c.building = new Array(this.m).fill(null);
    c.got = new Array(this.m);
    c.gotCount = new Array(this.m).fill(0);
    c.fetching = new Array(this.m).fill(false);
    const now = this.now();
    const fresh = !this.haveAny || seqDiff(m.seq, this.newest) > 0;
    this.rule.manifest(this.play, Math.round(now * 1000), m.seq, m.timestamp, !!(m.flags & wire.FLAG_END));
    if (!viaHTTP && fresh) {
      // How late the news comes here, past the fastest ever (µs): a decaying maximum.
      const late = Math.max(0, Math.round(now * 1000) - m.timestamp - this.play.offset);
      this.newsLagUs = Math.max(late, Math.trunc((this.newsLagUs * 15) / 16));
    }
    if (!this.haveAny || seqDiff(m.seq, this.newest) > 0) {
      this.newest = m.seq;
      this.haveAny = true;
      this.newestAt = now;
    }
    this.countRx(from, raw.byteLength, viaHTTP);
    const pend = c.pending;
    c.pending = [];
    this.evict();
    for (let i = 0; i < this.m; i++) this.cfg.relay.fanout(i, m.seq, c.rawMan);
    for (const f of pend) await this.onFragment(f.from, f.raw);
  }

  /** @param {number} from @param {Uint8Array} raw */
  async onFragment(from, raw) {
    let f;
    try {
      f = wire.parseFragment(raw);
    } catch (e) {
      return this.bad(from, -1, `fragment: ${e}`);
    }
    if (!this.cfg.relay.accepts(f.shard, from)) return this.unasked(from);
    const c = this.chunkFor(f.seq, false);
    if (!c) return;
    if (!c.man) {
      if (c.pending.length < MAX_PENDING) c.pending.push({ from, raw: raw.slice() });
      return;
    }
    const tree = f.shard;
    if (tree >= this.m) return this.bad(from, -1, 'fragment: shard index out of range');
    const idx = Math.floor(f.offset / wire.MAX_PAYLOAD);
    const held = c.shards[tree] ?? (c.got[tree] && c.got[tree][idx] ? c.building[tree] : null);
    if (held) {
      // A copy of what is held already: a shard this peer regenerated for
      // its children or fetched, or a fragment both the draining and the
      // new parent sent. No use as data, but it shows the parent delivers,
      // and parent silence (watchParents) and the end of a move
      // (delivered) are judged by that: a peer that regenerates a tree's
      // shard before its parent's copy comes must not call that parent
      // silent. Compared with the verified bytes instead of hashed again.
      if (equal(f.payload, held.subarray(f.offset, f.offset + f.payload.byteLength))) this.heard(c, tree, from);
      return;
    }
    try {
      await wire.verifyFragment(c.man, f);
    } catch (e) {
      if (e instanceof wire.WireError && e.code === 'ErrHash') return this.proven(from, tree, /** @type {Uint8Array} */ (c.rawMan), raw, `fragment: ${e.message}`);
      return this.bad(from, tree, `fragment: ${e}`);
    }
    if (!c.got[tree]) c.got[tree] = new Uint8Array(wire.fragmentCount(c.man.shardSize));
    if (c.shards[tree] || c.got[tree][idx]) return; // a copy verified meanwhile
    c.got[tree][idx] = 1;
    this.heard(c, tree, from);
    this.countRx(from, raw.byteLength, false);
    if (!c.building[tree]) c.building[tree] = new Uint8Array(c.man.shardSize);
    /** @type {Uint8Array} */ (c.building[tree]).set(f.payload, f.offset);
    c.gotCount[tree]++;
    // Cut-through: forward at once, verified, to this tree's children.
    this.cfg.relay.fanout(tree, f.seq, raw.slice());
    if (c.gotCount[tree] === c.got[tree].length) {
      c.shards[tree] = c.building[tree];
      c.building[tree] = null;
      c.have++;
      await this.rebuild(c);
    }
  }

  /**
   * Notes a verified fragment of chunk c from the tree's parent (or the
   * draining former parent): the tree delivers.
   * @param {Chunk} c @param {number} tree @param {number} from
   */
  heard(c, tree, from) {
    this.cfg.relay.delivered(tree, from);
    const now = this.now();
    this.lastRx[tree] = now;
    this.complained[tree] = 0;
    if (seqDiff(c.seq, this.lastSeqRx[tree]) > 0) {
      this.lastSeqRx[tree] = c.seq;
      // How far behind the chunk's manifest (its first copy, by any tree)
      // this tree's data began: what parent silence is judged against.
      const lag = now - c.manAt;
      this.st.lagMax[tree] = Math.max(this.st.lagMax[tree], lag);
      // A decaying maximum, so a deep or loaded tree is not mistaken for a silent one.
      this.treeLag[tree] = Math.max(lag, this.treeLag[tree] * 15 / 16);
      if (lag > this.cadenceSlack(tree)) this.st.lagOver[tree]++;
    }
    if (this.switchAt[tree] && from === this.switchFrom[tree]) {
      this.st.repairs.push(now - this.switchAt[tree]);
      this.switchAt[tree] = 0;
    }
  }

  /** @param {number} from @param {number} n @param {boolean} viaHTTP */
  countRx(from, n, viaHTTP) {
    if (from === 0 || viaHTTP) this.st.bytesFromOrigin += n;
    else this.st.bytesFromPeers += n;
    const who = viaHTTP ? 0 : from;
    this.st.from.set(who, (this.st.from.get(who) || 0) + n);
  }

  /**
   * Rebuilds c once k shards are in; regenerates the shards of trees this
   * peer feeds children in but got nothing of itself, so one broken link
   * does not starve a subtree.
   * @param {Chunk} c
   */
  async rebuild(c) {
    if (c.done || c.have < this.k) return;
    let data;
    try {
      data = this.rs.reconstruct(c.shards.slice(), c.man.length);
    } catch (e) {
      return this.bad(0, -1, `rebuild: ${e}`);
    }
    c.done = true;
    c.data = data;
    c.doneAt = this.now();
    this.st.rebuilt++;
    this.st.latency.push(c.doneAt - c.man.timestamp / 1000);
    if (this.cfg.onChunk) this.cfg.onChunk(c.seq);
    const trees = this.cfg.relay.trees();
    const want = c.shards.map((s, i) => !s && i < trees.length && trees[i].children > 0);
    if (!want.some(Boolean)) return;
    const all = c.shards.slice();
    try {
      this.rs.regenerate(all);
    } catch {
      return;
    }
    for (let i = 0; i < this.m; i++) {
      if (!want[i] || c.shards[i]) continue;
      const sh = /** @type {Uint8Array} */ (all[i]);
      if (!(await passes(() => wire.verifyShard(c.man, i, sh)))) continue;
      c.shards[i] = sh;
      this.st.regenerated++;
      for (const msg of wire.fragments(c.seq, i, sh)) this.cfg.relay.fanout(i, c.seq, msg);
    }
  }

  evict() {
    if (this.chunks.size <= 2 * WINDOW) return;
    for (const seq of this.chunks.keys()) {
      if (seqDiff(this.newest, seq) > WINDOW || (this.started && seqDiff(this.next, seq) > 8)) this.chunks.delete(seq);
    }
  }

  /**
   * A child that just became ready gets the newest chunk's manifest and
   * its shards of the trees in the mask, so it starts with the chunk in
   * flight.
   * @param {number} child @param {number} trees bit mask
   */
  childReady(child, trees) {
    const c = this.chunks.get(this.newest);
    if (!c || !c.man || this.now() >= this.deadline(c)) return;
    this.cfg.relay.sendTo(child, c.seq, /** @type {Uint8Array} */ (c.rawMan));
    for (let i = 0; i < this.m; i++) {
      const sh = c.shards[i];
      if (sh && trees & (2 ** i)) for (const msg of wire.fragments(c.seq, i, sh)) this.cfg.relay.sendTo(child, c.seq, msg);
    }
  }

  /**
   * Runs the playout rule (playout.js) now and returns the chunks to play,
   * in order. A chunk is due by the wall clock, its manifest come or not:
   * one whose deadline passed is skipped (and counted missed), and after a
   * skip video resumes at the next keyframe. Once the end is reached every
   * call returns it.
   * @returns {Playable[]}
   */
  due() {
    const now = this.now();
    const played = this.play.played;
    /** @type {Playable[]} */
    const out = [];
    for (const d of this.rule.advance(this.play, Math.round(now * 1000), (seq) => this.look(seq))) {
      const c = this.chunks.get(d.seq);
      if (d.op === 'play' && c) {
        out.push({ seq: c.seq, data: /** @type {Uint8Array} */ (c.data), keyframe: !!(c.man.flags & wire.FLAG_KEYFRAME), end: false });
        c.data = null;
      } else if (d.op === 'drop' && c) {
        c.data = null;
      }
    }
    if (this.play.ended) out.push({ seq: this.play.next, data: new Uint8Array(0), keyframe: false, end: true });
    this.st.played = this.play.played;
    this.st.onTime = this.play.onTime;
    this.st.missed = this.play.missed;
    if (played === 0 && this.play.played > 0) this.st.startupMs = now - this.startAt;
    return out;
  }

  /** @returns {number} how long a tree may carry nothing before it counts as stalled (ms; the cadence rule's) */
  stallAfter() {
    return this.cadence.stallAfter(this.cadenceStream()) / 1000;
  }

  /**
   * Picks what to fetch from the origin now (see peer/repair.go fetchJobs):
   * shards a chunk still needs near its deadline; at once, the shards of
   * trees on fallback or stalled when the working trees cannot bring k;
   * and manifests when none has come for a while.
   * @returns {FetchJob[]}
   */
  fetchJobs() {
    const now = this.now();
    const trees = this.cfg.relay.trees();
    const stallAfter = this.stallAfter();
    const stalled = [];
    let nStalled = 0;
    for (let i = 0; i < this.m; i++) {
      const t = trees[i];
      const s = !t || t.fallback || !t.hasParent ||
        (t.lostAt > 0 && !t.openSince && now - t.lostAt > REPLACE_GRACE_MS) ||
        (this.lastRx[i] > 0 && now - this.lastRx[i] > stallAfter) ||
        this.complained[i] > 0;
      stalled.push(s);
      if (s) nStalled++;
    }
    /** @type {FetchJob[]} */
    const jobs = [];
    for (const [seq, c] of this.chunks) {
      if (!c.man || c.done || (this.started && seqDiff(seq, this.next) < 0)) continue;
      const deadline = this.deadline(c);
      if (now >= deadline || (!this.started && this.st.played === 0 && seqDiff(this.newest, seq) > 2)) continue;
      const urgent = now >= deadline - this.fallbackLeadMs;
      let coming = c.have;
      let fetching = 0;
      for (let i = 0; i < this.m; i++) {
        if (c.fetching[i]) fetching++;
        if (!c.shards[i] && (c.fetching[i] || !stalled[i])) coming++;
      }
      let need = this.k - c.have - fetching;
      let early = this.k - coming;
      const want = [];
      for (let pass = 0; pass < 2; pass++) {
        for (let i = 0; i < this.m; i++) {
          if (c.shards[i] || c.fetching[i] || need <= 0) continue;
          const onFallback = !!trees[i] && trees[i].fallback;
          if (pass === 0 && onFallback) {
            // fetch
          } else if (pass === 0 && stalled[i] && early > 0) {
            early--;
          } else if (!(pass === 1 && urgent)) {
            continue;
          }
          c.fetching[i] = true;
          want.push(i);
          need--;
        }
      }
      if (want.length === 1) jobs.push({ seq, shard: want[0], whole: false, manifest: false, shards: want });
      else if (want.length > 1) jobs.push({ seq, shard: -1, whole: true, manifest: false, shards: want });
    }
    // The next manifest overdue (the origin's answer then also says
    // whether the stream stopped there), none yet, every tree stalled, or
    // one missing below the newest whose chunk is due within the fallback
    // lead: ask the origin.
    const quiet = this.rule.overdue(this.play, Math.round(now * 1000));
    const pollEvery = this.intervalMs > 0 ? this.intervalMs : 250;
    const hole = this.rule.gapUrgent(this.play, Math.round(now * 1000), (seq) => this.look(seq));
    if (!this.polling && now - this.lastPoll >= pollEvery && (quiet || hole || !this.haveAny || nStalled === this.m)) {
      this.polling = true;
      this.lastPoll = now;
      jobs.push({ seq: 0, shard: -1, whole: false, manifest: true, shards: [] });
    }
    return jobs;
  }

  /** Marks a job's shards as no longer being fetched. @param {FetchJob} j */
  unmark(j) {
    if (j.manifest) {
      this.polling = false;
      return;
    }
    const c = this.chunks.get(j.seq);
    if (c && c.fetching.length) for (const i of j.shards) c.fetching[i] = false;
  }

  /**
   * Takes a shard fetched from the origin: verified against the manifest,
   * then kept and forwarded to this tree's children.
   * @param {number} seq @param {number} i @param {Uint8Array|null} b null: the fetch failed
   */
  async onShard(seq, i, b) {
    const c = this.chunks.get(seq);
    if (!c || !c.man) return;
    c.fetching[i] = false;
    if (!b || c.shards[i]) return;
    if (!(await passes(() => wire.verifyShard(c.man, i, b)))) {
      this.st.badMessages++;
      return;
    }
    if (c.shards[i]) return;
    c.shards[i] = b;
    c.have++;
    this.st.bytesFromOrigin += b.byteLength;
    this.st.from.set(0, (this.st.from.get(0) || 0) + b.byteLength);
    this.st.httpFetches++;
    const trees = this.cfg.relay.trees();
    if (trees[i] && trees[i].children > 0) for (const msg of wire.fragments(seq, i, b)) this.cfg.relay.fanout(i, seq, msg);
    await this.rebuild(c);
  }

  /**
   * Takes a whole chunk fetched from the origin: re-encoded and every shard
   * checked against the signed manifest before it is used.
   * @param {FetchJob} j @param {Uint8Array|null} b
   */
  async onWholeChunk(j, b) {
    const c = this.chunks.get(j.seq);
    if (!c || !c.man) return;
    for (const i of j.shards) c.fetching[i] = false;
    if (!b || c.done) return;
    let shards;
    try {
      if (b.byteLength !== c.man.length) throw new Error(`chunk ${j.seq} is ${b.byteLength} bytes, the manifest says ${c.man.length}`);
      shards = this.rs.encode(b);
      for (let i = 0; i < shards.length; i++) if (!(await passes(() => wire.verifyShard(c.man, i, shards[i])))) throw new Error(`shard ${i} does not match`);
    } catch {
      this.st.badMessages++;
      return;
    }
    this.st.bytesFromOrigin += b.byteLength;
    this.st.from.set(0, (this.st.from.get(0) || 0) + b.byteLength);
    this.st.httpFetches++;
    const trees = this.cfg.relay.trees();
    for (let i = 0; i < shards.length; i++) {
      if (c.shards[i]) continue;
      c.shards[i] = shards[i];
      c.have++;
      if (trees[i] && trees[i].children > 0) for (const msg of wire.fragments(j.seq, i, shards[i])) this.cfg.relay.fanout(i, j.seq, msg);
    }
    await this.rebuild(c);
  }

  /**
   * The manifests to fetch after asking the origin for its newest chunk
   * (as peer/repair.go fetchManifests): those missing between the playout
   * position and the newest known that can still play, oldest first, then
   * those newer; 8 in all.
   * @param {number} latest @returns {number[]}
   */
  missingManifests(latest) {
    const max = 8;
    const want = this.rule.gaps(this.play, this.nowUs(), (seq) => this.look(seq), max);
    let from = latest;
    if (this.haveAny && seqDiff(latest, this.newest) > 0) from = (this.newest + 1) >>> 0;
    if (seqDiff(latest, from) >= max - want.length) from = (latest - (max - want.length) + 1) >>> 0;
    for (let seq = from; seqDiff(latest, seq) >= 0 && want.length < max; seq = (seq + 1) >>> 0) {
      const c = this.chunks.get(seq);
      if (!c || !c.man) want.push(seq);
    }
    return want;
  }

  /**
   * Complains about a parent that stopped delivering, by the cadence rule
   * (cadence.js): a chunk whose news came (by other trees) more than the
   * tree's slack ago with nothing of it from the parent; a parent that sent
   * nothing for the silence timeout while others deliver; a link that never
   * opened. The twin of peer.watchParents.
   */
  watchParents() {
    const now = this.now();
    const trees = this.cfg.relay.trees();
    for (const t of trees) {
      const i = t.tree;
      if (!t.hasParent) {
        this.knownParents.delete(i);
        continue;
      }
      const old = this.knownParents.get(i);
      if (old !== t.parent) {
        this.knownParents.set(i, t.parent);
        this.lastRx[i] = now; // a new parent gets a full timeout to deliver
        this.lastSeqRx[i] = this.newest;
        if (old !== undefined && t.lostAt > 0) {
          this.switchAt[i] = t.lostAt;
          this.switchFrom[i] = t.parent;
        }
      }
    }
    this.judge(now, trees);
  }

  /**
   * Asked while the next manifest was overdue, the origin said its newest
   * chunk is latest: if it is newer than any news here, no tree brought it,
   * and every parent that sent nothing is starved (every parent stopped at
   * once). As peer.starvedLocked.
   * @param {number} latest
   */
  originAhead(latest) {
    if (this.haveAny && seqDiff(latest, this.newest) > 0 && this.rule.overdue(this.play, this.nowUs())) {
      // The gap stays open, judged on every tick, until every tree brings
      // something after it (as peer.gap).
      const iv = this.rule.interval(this.play);
      if (iv > 0 && !(this.gap.open && this.gap.from === this.newest)) {
        this.gap = { open: true, from: this.newest, due: this.play.newestTS + this.play.offset + iv };
      }
      this.judge(this.now(), this.cfg.relay.trees());
    }
  }

  /**
   * Runs the cadence rule over the trees at now (ms) and complains about
   * every parent it finds silent.
   * @param {number} now @param {import('./swarm.js').TreeState[]} trees @param {boolean} originAhead
   */
  judge(now, trees) {
    const us = (/** @type {number} */ ms) => Math.round(ms * 1000);
    if (this.gap.open) {
      // Closed when every tree brought something after it, or after four intervals.
      let open = us(now) - this.gap.due <= 4 * this.rule.interval(this.play);
      if (open) open = trees.some((t) => t.hasParent && seqDiff(this.lastSeqRx[t.tree], this.gap.from) <= 0);
      this.gap.open = open;
    }
    const from = this.gap.open ? this.gap.from : this.newest;
    const ct = [];
    for (let i = 0; i < this.cfg.m; i++) {
      const t = trees.find((x) => x.tree === i);
      ct.push({
        hasParent: !!(t && t.hasParent), openSince: t && t.openSince > 0 ? us(t.openSince) : 0, lastRx: us(this.lastRx[i]),
        lagUs: us(this.treeLag[i]), waiting: 0, aheadOfNews: seqDiff(this.lastSeqRx[i], from) > 0,
      });
    }
    // The oldest chunk newer than each tree brought has its news waiting
    // since it came (the end of stream carries no stripes).
    for (const [seq, c] of this.chunks) {
      if (!c.man || c.man.flags & wire.FLAG_END) continue;
      const at = us(c.manAt);
      for (let i = 0; i < ct.length; i++) {
        if (seqDiff(seq, this.lastSeqRx[i]) > 0 && (ct[i].waiting === 0 || at < ct[i].waiting)) ct[i].waiting = at;
      }
    }
    const why = this.cadence.judge(us(now), this.cadenceStream(), ct);
    why.forEach((w, i) => {
      if (!w) return;
      this.lastRx[i] = now;
      this.complained[i] = now;
      this.lastSeqRx[i] = this.newest;
      this.st.complaints++;
      this.cfg.relay.complain(i, w === 'starved' ? 'starved' : 'silent'); // starved: the tracker pings the parent, no one moves if it answers
    });
  }

  /** @returns {import('./cadence.js').Stream} the stream as the cadence rule sees it, the origin ahead while a poll's gap is open */
  cadenceStream() {
    return {
      intervalUs: this.rule.interval(this.play), newestAt: this.haveAny ? Math.round(this.newestAt * 1000) : 0,
      originAhead: this.gap.open, due: this.gap.open ? this.gap.due : 0, newsLagUs: this.newsLagUs,
    };
  }

  /**
   * How long after a chunk's news tree may still have sent nothing of it
   * (ms): the cadence rule's slack.
   * @param {number} tree
   */
  cadenceSlack(tree) {
    return this.cadence.slack(this.cadenceStream(), { hasParent: true, openSince: 0, lastRx: 0, lagUs: Math.round(this.treeLag[tree] * 1000), waiting: 0, aheadOfNews: false }) / 1000;
  }

  /** @returns {number} chunks played on time over chunks due */
  continuity() {
    const due = this.st.played + this.st.missed;
    return due === 0 ? 1 : this.st.onTime / due;
  }
}
