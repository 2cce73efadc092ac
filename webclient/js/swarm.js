// The browser's side of the control plane and its links: one WebSocket to
// the tracker (docs/PROTOCOL.md, "Control plane") and one RTCPeerConnection
// with one data channel per neighbour, shared by every tree the pair
// shares. It mirrors internal/swarm (the native peer): the lower id offers,
// signals carry the link-attempt id, and every child has a bounded send
// queue in front of its data channel. A lost tracker is reconnected to
// with backoff.js's schedule, the native peer's.

/** @typedef {{tree: number, parent: number, hasParent: boolean, fallback: boolean, parentKind: string, lostAt: number, openSince: number, children: number}} TreeState */
/** @typedef {{peer_id: number, resume_token: string, trees: number, k: number, bitrate: number, stripe_bps: number, public_key: string, epoch?: number, fallback_url: string, ticket?: string, ice_servers?: RTCIceServer[], heartbeat_ms: number, home: number}} Welcome */

import { Reconnect } from './backoff.js';

const LABEL = 'coopcast';
/** While a data channel buffers less than this, messages go straight to it. */
export const HIGH_WATER = 256 << 10;
/** The channel tells us to pump again below this. */
export const LOW_WATER = 64 << 10;
/** Bytes a child's queue keeps beyond the channel's buffer before dropping its oldest chunk. */
export const MAX_QUEUED = 1 << 20;
/** A link to a former neighbour stays open this long: a repair often pairs the two again. */
const LINK_GRACE_MS = 5000;
// How long a former parent keeps feeding us after a make-before-break
// move whose new edge has not delivered (the tracker's handoffTimeout).
const DRAIN_MS = 6000;
/** A link that does not open within this is given up and tried again. */
const LINK_TIMEOUT_MS = 10000;
/** Non-trickle ICE: the offer or answer goes out with the candidates gathered by then. */
const GATHER_MS = 3000;
/** A tracker message over this is not one the protocol sends. */
const MAX_TRACKER_MESSAGE = 64 << 10;

/**
 * Bounded FIFO for one neighbour: straight to the channel while it buffers
 * little, else queued; past MAX_QUEUED the oldest chunk is dropped whole.
 */
export class SendQueue {
  /** @param {() => (RTCDataChannel|null)} channel */
  constructor(channel) {
    this.channel = channel;
    /** @type {{seq: number, msg: Uint8Array}[]} */
    this.items = [];
    this.bytes = 0;
    this.sentBytes = 0;
    this.droppedBytes = 0;
  }

  /** @param {number} seq @param {Uint8Array} msg */
  push(seq, msg) {
    this.items.push({ seq, msg });
    this.bytes += msg.byteLength;
    while (this.bytes > MAX_QUEUED && this.items.length > 0) {
      const old = this.items[0].seq;
      while (this.items.length > 0 && this.items[0].seq === old) {
        const it = /** @type {{seq: number, msg: Uint8Array}} */ (this.items.shift());
        this.bytes -= it.msg.byteLength;
        this.droppedBytes += it.msg.byteLength;
      }
    }
    this.pump();
  }

  /** Moves queued messages to the channel while it has room. */
  pump() {
    const dc = this.channel();
    if (!dc || dc.readyState !== 'open') return;
    while (this.items.length > 0 && dc.bufferedAmount < HIGH_WATER) {
      const it = /** @type {{seq: number, msg: Uint8Array}} */ (this.items.shift());
      this.bytes -= it.msg.byteLength;
      try {
        dc.send(/** @type {Uint8Array<ArrayBuffer>} */ (it.msg));
        this.sentBytes += it.msg.byteLength;
      } catch {
        this.droppedBytes += it.msg.byteLength;
      }
    }
  }
}

class Neighbour {
  /** @param {number} id @param {string} kind */
  constructor(id, kind) {
    this.id = id;
    this.kind = kind || 'native';
    this.parentOf = 0;
    this.childOf = 0;
    this.drainOf = 0; // trees where it is our former parent, still feeding us
    /** @type {RTCPeerConnection|null} */
    this.pc = null;
    /** @type {RTCDataChannel|null} */
    this.dc = null;
    this.openSince = 0;
    this.dialing = false;
    this.gen = 0; // our offer's attempt id
    this.accepted = 0; // the newest offer we answered
    this.queue = new SendQueue(() => this.dc);
  }
}

/**
 * Swarm is one peer's membership of a channel.
 */
export class Swarm {
  /**
   * @param {{trackerURL: string, channel: string, uploadKbps: number,
   *   onWelcome: (w: Welcome) => void, onData: (from: number, b: Uint8Array) => void,
   *   onChildReady: (child: number, trees: number) => void,
   *   onEvent?: (what: string, detail?: any) => void,
   *   report: () => object}} cfg
   */
  constructor(cfg) {
    this.cfg = cfg;
    this.uploadKbps = cfg.uploadKbps;
    this.id = 0;
    this.token = '';
    this.home = -1;
    this.m = 0;
    this.heartbeatMs = 2000;
    /** @type {RTCIceServer[]} */
    this.iceServers = [];
    this.fallbackURL = '';
    /** The newest fallback ticket from the tracker, sent with every fetch from the origin. */
    this.ticket = '';
    /** @type {Map<number, Neighbour>} */
    this.nbrs = new Map();
    /** @type {number[]} */ this.parents = [];
    /** @type {boolean[]} */ this.hasParent = [];
    /** @type {boolean[]} */ this.fallback = [];
    /** @type {number[]} */ this.lostAt = [];
    // Per tree, the former parent a make-before-break move keeps us taking
    // the tree from until the new parent delivers (-1: none).
    /** @type {number[]} */ this.drain = [];
    this.drainGen = 0;
    // Per tree: the parent's first data is not yet confirmed to the tracker (edge-open).
    /** @type {boolean[]} */ this.unconfirmed = [];
    /** @type {WebSocket|null} */
    this.ws = null;
    this.stopped = false;
    this.attempts = 0;
    this.retiredSent = 0;
    this.retiredDropped = 0;
    /** @type {Set<number>} */
    this.servedChildren = new Set();
    this.errors = { tracker: 0, badTracker: 0 };
    /** @type {ReturnType<typeof setInterval>|undefined} */
    this.heartbeat = undefined;
    /** @type {ReturnType<typeof setTimeout>|undefined} */
    this.retry = undefined;
    this.reconnect = new Reconnect();
    // This session's: when the tracker welcomed us (0: not yet), and
    // whether it answered no-channel (its origin not yet back).
    this.welcomedAt = 0;
    this.noChannel = false;
  }

  /** Connects to the tracker and joins; reconnects (resuming) until stop. */
  start() {
    this.connect();
  }

  /** @returns {string} */
  wsURL() {
    const u = new URL(this.cfg.trackerURL);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    u.pathname = u.pathname.replace(/\/?$/, '/ws');
    return u.toString();
  }

  connect() {
    if (this.stopped) return;
    const ws = new WebSocket(this.wsURL());
    this.ws = ws;
    this.welcomedAt = 0;
    this.noChannel = false;
    ws.onopen = () => {
      /** @type {Record<string, any>} */
      const join = { type: 'join', channel: this.cfg.channel, kind: 'browser', upload_kbps: this.uploadKbps };
      if (this.id) {
        join.resume = {
          peer_id: this.id, token: this.token, home: this.home,
          parents: this.parents.map((p, i) => (this.hasParent[i] ? p : 0)),
        };
      }
      ws.send(JSON.stringify(join));
    };
    ws.onmessage = (ev) => {
      if (ws !== this.ws) return; // a replaced connection: the tracker closes it
      this.onTracker(ev.data);
    };
    ws.onclose = (ev) => {
      if (ws !== this.ws || this.stopped) return;
      this.ws = null;
      clearInterval(this.heartbeat);
      const wait = this.retryDelayMs(Date.now());
      this.event('tracker-closed', { code: ev.code, reason: ev.reason, retry_ms: Math.round(wait) });
      this.retry = setTimeout(() => this.connect(), wait);
    };
  }

  /**
   * The delay before reconnecting, ms, after the session that just ended
   * at now (ms since the epoch).
   * @param {number} now @returns {number}
   */
  retryDelayMs(now) {
    const lasted = this.welcomedAt > 0 ? Math.max(0, now - this.welcomedAt) * 1e6 : -1;
    return this.reconnect.next(this.noChannel, lasted, this.heartbeatMs * 1e6) / 1e6;
  }

  /** @param {string} what @param {any} [detail] */
  event(what, detail) {
    if (this.cfg.onEvent) this.cfg.onEvent(what, detail);
  }

  /** @param {object} msg */
  send(msg) {
    const ws = this.ws;
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
  }

  /**
   * Takes one tracker message. Anything malformed is counted and dropped:
   * a bad message never throws out of here.
   * @param {any} data
   */
  onTracker(data) {
    let m;
    try {
      if (typeof data !== 'string' || data.length > MAX_TRACKER_MESSAGE) throw new Error('not a text message');
      m = JSON.parse(data);
      if (m === null || typeof m !== 'object' || typeof m.type !== 'string') throw new Error('not an object with a type');
      this.handle(m);
    } catch (e) {
      this.errors.badTracker++;
      this.event('bad-tracker-message', String(e));
    }
  }

  /** @param {any} m */
  handle(m) {
    switch (m.type) {
      case 'welcome':
        return this.welcome(m);
      case 'assign-parent':
      case 'remove-parent':
      case 'assign-child':
      case 'remove-child':
      case 'fallback':
        return this.assign(m);
      case 'signal':
        return this.signal(m);
      case 'ticket':
        if (typeof m.ticket === 'string') this.ticket = m.ticket;
        return;
      case 'error':
        this.errors.tracker++;
        if (m.code === 'no-channel') this.noChannel = true;
        this.event('tracker-error', m);
        return;
      default:
        throw new Error(`unknown message type ${JSON.stringify(m.type)}`);
    }
  }

  /** @param {any} w */
  welcome(w) {
    const int = (/** @type {any} */ v) => Number.isSafeInteger(v);
    if (!int(w.peer_id) || w.peer_id <= 0 || !int(w.trees) || w.trees < 1 || w.trees > 64 || !int(w.k) ||
      typeof w.public_key !== 'string') {
      throw new Error('welcome without a peer id, shape or key');
    }
    const first = this.id === 0 || this.m !== w.trees;
    this.id = w.peer_id;
    this.token = String(w.resume_token || '');
    this.home = int(w.home) ? w.home : -1;
    this.heartbeatMs = int(w.heartbeat_ms) && w.heartbeat_ms > 0 ? w.heartbeat_ms : 2000;
    this.iceServers = Array.isArray(w.ice_servers) ? w.ice_servers : [];
    this.fallbackURL = typeof w.fallback_url === 'string' ? w.fallback_url : '';
    this.ticket = typeof w.ticket === 'string' ? w.ticket : '';
    if (first) {
      this.m = w.trees;
      this.parents = new Array(this.m).fill(0);
      this.hasParent = new Array(this.m).fill(false);
      this.fallback = new Array(this.m).fill(false);
      this.lostAt = new Array(this.m).fill(0);
      this.drain = new Array(this.m).fill(-1);
      this.unconfirmed = new Array(this.m).fill(false);
    }
    this.welcomedAt = Date.now();
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => this.send({ type: 'heartbeat', stats: this.cfg.report() }), this.heartbeatMs);
    this.cfg.onWelcome(/** @type {Welcome} */ (w));
  }

  /** @param {any} m */
  assign(m) {
    const tree = m.tree;
    if (!Number.isInteger(tree) || tree < 0 || tree >= this.m) throw new Error(`${m.type} for tree ${tree}`);
    const bit = 2 ** tree;
    const now = Date.now();
    switch (m.type) {
      case 'assign-parent': {
        if (!Number.isSafeInteger(m.parent ?? 0)) throw new Error('assign-parent without a parent id');
        const p = m.parent ?? 0;
        if (this.hasParent[tree] && this.parents[tree] === p) return; // a confirmation
        const keep = Number.isSafeInteger(m.keep) ? m.keep : -1;
        this.event('assign-parent', { tree, parent: p, keep });
        if (keep >= 0 && this.hasParent[tree] && this.parents[tree] === keep) {
          // Make-before-break: the parent we have feeds us until the new one delivers.
          this.dropDrain(tree);
          this.startDrain(tree, keep);
          this.lostAt[tree] = 0;
        } else if (keep >= 0 && this.drain[tree] === keep) {
          this.dropParent(tree); // moved again before the new edge delivered: keep the drain
          this.lostAt[tree] = 0;
        } else {
          // Without keep, a new parent means the old one is gone: a repair.
          this.lostAt[tree] = keep < 0 && this.hasParent[tree] ? now : 0;
          this.dropDrain(tree);
          this.dropParent(tree);
        }
        this.parents[tree] = p;
        this.hasParent[tree] = true;
        this.fallback[tree] = false;
        this.unconfirmed[tree] = true; // a new edge: confirm its first data
        const n = this.neighbour(p, m.peer_kind);
        n.parentOf |= bit;
        this.ensureLink(n);
        return;
      }
      case 'remove-parent':
        if (this.hasParent[tree] && this.parents[tree] === (m.parent ?? 0)) this.dropParent(tree);
        else if (this.drain[tree] === (m.parent ?? 0)) this.dropDrain(tree);
        return;
      case 'fallback':
        this.dropDrain(tree);
        this.dropParent(tree);
        this.fallback[tree] = true;
        if (typeof m.url === 'string' && m.url) this.fallbackURL = m.url;
        return;
      case 'assign-child': {
        if (!Number.isSafeInteger(m.child) || m.child <= 0) throw new Error('assign-child without a child id');
        const n = this.neighbour(m.child, m.peer_kind);
        n.childOf |= bit;
        this.ensureLink(n);
        if (n.openSince) this.cfg.onChildReady(n.id, bit);
        return;
      }
      case 'remove-child': {
        const n = this.nbrs.get(m.child);
        if (n) {
          n.childOf &= ~bit;
          this.release(n);
        }
      }
    }
  }

  /**
   * Makes old the tree's drain: its data is still taken until the new
   * parent delivers (delivered) or DRAIN_MS passes. The parent we had
   * stops being the parent.
   * @param {number} tree @param {number} old
   */
  startDrain(tree, old) {
    const n = this.nbrs.get(old);
    this.hasParent[tree] = false;
    this.parents[tree] = 0;
    if (!n) return;
    n.parentOf &= ~(2 ** tree);
    n.drainOf |= 2 ** tree;
    this.drain[tree] = old;
    const gen = ++this.drainGen;
    setTimeout(() => {
      if (this.drainGen === gen && this.drain[tree] === old) this.dropDrain(tree);
    }, DRAIN_MS);
  }

  /** @param {number} tree */
  dropDrain(tree) {
    const old = this.drain[tree];
    if (old === undefined || old < 0) return;
    this.drain[tree] = -1;
    const n = this.nbrs.get(old);
    if (n) {
      n.drainOf &= ~(2 ** tree);
      this.release(n);
    }
  }

  /**
   * Whether data of tree may come from neighbour from: its parent in that
   * tree or the draining former parent. Anyone else's is unasked for.
   * @param {number} tree @param {number} from
   */
  accepts(tree, from) {
    return (this.hasParent[tree] === true && this.parents[tree] === from) || this.drain[tree] === from;
  }

  /** Whether from feeds us in any tree (manifests come down every tree). @param {number} from */
  acceptsAny(from) {
    for (let i = 0; i < this.m; i++) if (this.accepts(i, from)) return true;
    return false;
  }

  /**
   * Verified data of tree came from from. The first from a new parent is
   * confirmed to the tracker (edge-open): it counts for the parent's trust,
   * and ends a make-before-break move by releasing the former parent.
   * @param {number} tree @param {number} from
   */
  delivered(tree, from) {
    if (!this.unconfirmed[tree] || !this.hasParent[tree] || this.parents[tree] !== from) return;
    this.unconfirmed[tree] = false;
    this.dropDrain(tree);
    this.send({ type: 'edge-open', tree, parent: from });
  }

  /** @param {number} tree */
  dropParent(tree) {
    if (!this.hasParent[tree]) return;
    this.hasParent[tree] = false;
    const n = this.nbrs.get(this.parents[tree]);
    if (n) {
      n.parentOf &= ~(2 ** tree);
      this.release(n);
    }
    this.parents[tree] = 0;
  }

  /** @param {number} id @param {string} [kind] */
  neighbour(id, kind) {
    let n = this.nbrs.get(id);
    if (!n) {
      n = new Neighbour(id, kind || '');
      this.nbrs.set(id, n);
    }
    if (kind === 'browser' || kind === 'native') n.kind = kind;
    return n;
  }

  /** Closes the link to a peer we share no tree with, after a grace. @param {Neighbour} n */
  release(n) {
    if (n.parentOf || n.childOf || n.drainOf) return;
    setTimeout(() => {
      if (this.nbrs.get(n.id) !== n || n.parentOf || n.childOf || n.drainOf) return;
      this.nbrs.delete(n.id);
      this.retiredSent += n.queue.sentBytes;
      this.retiredDropped += n.queue.droppedBytes;
      this.closeLink(n);
    }, LINK_GRACE_MS);
  }

  /** @param {Neighbour} n */
  closeLink(n) {
    const pc = n.pc;
    n.pc = null;
    n.dc = null;
    n.openSince = 0;
    if (pc) pc.close();
  }

  /** The lower id offers (the origin, id 0, always does). @param {Neighbour} n */
  ensureLink(n) {
    if (this.stopped || n.pc || n.dialing || this.id >= n.id) return;
    n.dialing = true;
    this.dial(n).catch((e) => this.event('dial-failed', String(e))).finally(() => {
      n.dialing = false;
    });
  }

  /** A link-attempt id larger than any used before, below 2^53. */
  nextAttempt() {
    this.attempts = Math.max(this.attempts + 1, Date.now() * 1000);
    return this.attempts;
  }

  /** @param {Neighbour} n */
  async dial(n) {
    const gen = this.nextAttempt();
    n.gen = gen;
    const pc = this.newPC(n);
    const dc = pc.createDataChannel(LABEL, { ordered: false, maxPacketLifeTime: 1000 });
    this.attach(n, pc, dc);
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    if (n.pc !== pc) return;
    const sd = /** @type {RTCSessionDescription} */ (pc.localDescription);
    this.send({ type: 'signal', to: n.id, link: gen, sdp: { type: sd.type, sdp: sd.sdp } });
  }

  /** @param {Neighbour} n @returns {RTCPeerConnection} */
  newPC(n) {
    if (n.pc) this.closeLink(n);
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    n.pc = pc;
    n.openSince = 0;
    const timer = setTimeout(() => {
      if (n.pc === pc && !n.openSince) this.lost(n, pc);
    }, LINK_TIMEOUT_MS);
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'failed' || pc.connectionState === 'closed') {
        clearTimeout(timer);
        this.lost(n, pc);
      }
    };
    return pc;
  }

  /** @param {Neighbour} n @param {RTCPeerConnection} pc @param {RTCDataChannel} dc */
  attach(n, pc, dc) {
    if (n.pc !== pc) return;
    n.dc = dc;
    dc.binaryType = 'arraybuffer';
    dc.bufferedAmountLowThreshold = LOW_WATER;
    dc.onbufferedamountlow = () => n.queue.pump();
    dc.onopen = () => {
      if (n.pc !== pc) return;
      n.openSince = Date.now();
      n.queue.pump();
      this.event('link-open', { peer: n.id, kind: n.id === 0 ? 'origin' : n.kind });
      if (n.childOf) this.cfg.onChildReady(n.id, n.childOf);
    };
    dc.onclose = () => this.lost(n, pc);
    dc.onmessage = (ev) => {
      if (ev.data instanceof ArrayBuffer) this.cfg.onData(n.id, new Uint8Array(ev.data));
    };
  }

  /** @param {Neighbour} n @param {RTCPeerConnection} pc */
  lost(n, pc) {
    if (n.pc !== pc) return;
    this.closeLink(n);
    this.event('link-lost', { peer: n.id });
    if (this.nbrs.get(n.id) === n && (n.parentOf || n.childOf || n.drainOf)) {
      setTimeout(() => {
        if (this.nbrs.get(n.id) === n) this.ensureLink(n);
      }, 1000);
    }
  }

  /** @param {any} m */
  signal(m) {
    const from = m.from;
    const n = this.nbrs.get(from);
    if (!Number.isSafeInteger(from) || !n || !(n.parentOf | n.childOf | n.drainOf)) return; // stale or unpaired
    const attempt = Number.isSafeInteger(m.link) ? m.link : 0;
    if (m.sdp && m.sdp.type === 'offer' && typeof m.sdp.sdp === 'string') {
      if (attempt !== 0 && attempt < n.accepted) return;
      n.accepted = attempt;
      this.answer(n, m.sdp, attempt).catch((e) => this.event('answer-failed', String(e)));
    } else if (m.sdp && m.sdp.type === 'answer' && typeof m.sdp.sdp === 'string') {
      if (attempt !== n.gen || !n.pc) return;
      n.pc.setRemoteDescription(m.sdp).catch((e) => this.event('answer-failed', String(e)));
    } else if (m.candidate && n.pc) {
      n.pc.addIceCandidate(m.candidate).catch(() => {});
    }
  }

  /** @param {Neighbour} n @param {RTCSessionDescriptionInit} offer @param {number} attempt */
  async answer(n, offer, attempt) {
    const pc = this.newPC(n);
    pc.ondatachannel = (ev) => {
      if (ev.channel.label === LABEL) this.attach(n, pc, ev.channel);
    };
    await pc.setRemoteDescription(offer);
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc);
    if (n.pc !== pc || n.accepted !== attempt) return;
    const sd = /** @type {RTCSessionDescription} */ (pc.localDescription);
    this.send({ type: 'signal', to: n.id, link: attempt, sdp: { type: sd.type, sdp: sd.sdp } });
  }

  /**
   * Sends msg, part of chunk seq, to every child in tree.
   * @param {number} tree @param {number} seq @param {Uint8Array} msg
   */
  fanout(tree, seq, msg) {
    const bit = 2 ** tree;
    for (const n of this.nbrs.values()) {
      if (n.childOf & bit) {
        n.queue.push(seq, msg);
        this.servedChildren.add(n.id);
      }
    }
  }

  /** @param {number} id @param {number} seq @param {Uint8Array} msg */
  sendTo(id, seq, msg) {
    const n = this.nbrs.get(id);
    if (n) n.queue.push(seq, msg);
  }

  /** @returns {TreeState[]} */
  trees() {
    const out = [];
    for (let i = 0; i < this.m; i++) {
      const bit = 2 ** i;
      const p = this.hasParent[i] ? this.nbrs.get(this.parents[i]) : undefined;
      let children = 0;
      for (const n of this.nbrs.values()) if (n.childOf & bit) children++;
      out.push({
        tree: i, parent: this.parents[i], hasParent: this.hasParent[i], fallback: this.fallback[i],
        parentKind: !this.hasParent[i] ? '' : this.parents[i] === 0 ? 'origin' : (p ? p.kind : ''),
        lostAt: this.lostAt[i], openSince: p ? p.openSince : 0, children,
      });
    }
    return out;
  }

  /** Bytes relayed to children so far, and distinct children served. */
  relayStats() {
    let sent = this.retiredSent;
    let dropped = this.retiredDropped;
    let children = 0;
    for (const n of this.nbrs.values()) {
      sent += n.queue.sentBytes;
      dropped += n.queue.droppedBytes;
      if (n.childOf) children++;
    }
    return { sent, dropped, children, served: this.servedChildren.size };
  }

  /** @param {number} tree @param {'silent'|'corrupt'} reason */
  complain(tree, reason) {
    if (!this.hasParent[tree]) return;
    this.send({ type: 'complaint', tree, parent: this.parents[tree], reason });
    this.event('complaint', { tree, parent: this.parents[tree], reason });
  }

  /** @param {object} stats */
  report(stats) {
    this.send({ type: 'report', stats });
  }

  /**
   * Offers upload capacity for relaying, or none (a background tab, or the
   * viewer switched relaying off). The tracker learns it from a resuming
   * join on a new connection, which replaces the old one and moves our
   * children elsewhere when the capacity drops to zero.
   * @param {number} kbps
   */
  setUpload(kbps) {
    if (kbps === this.uploadKbps) return;
    this.uploadKbps = kbps;
    if (!this.id || !this.ws) return;
    const old = this.ws;
    this.ws = null; // the old connection's messages and close are ignored from now
    this.connect();
    setTimeout(() => old.close(1000, 'replaced'), 3000);
  }

  /** Says goodbye to the tracker and closes every link. */
  stop() {
    if (this.stopped) return;
    this.send({ type: 'leave' });
    this.stopped = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.retry);
    if (this.ws) this.ws.close(1000, 'bye');
    for (const n of this.nbrs.values()) this.closeLink(n);
    this.nbrs.clear();
  }
}

/**
 * Resolves once ICE gathering completes, or after GATHER_MS.
 * @param {RTCPeerConnection} pc
 */
function gathered(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(done, GATHER_MS);
    function done() {
      clearTimeout(t);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve(undefined);
    }
    function check() {
      if (pc.iceGatheringState === 'complete') done();
    }
    pc.addEventListener('icegatheringstatechange', check);
  });
}
