// The watch page: joins the swarm, plays the stream, relays it to other
// peers, and shows the viewer what they get and give. window.coopcast
// exposes the same numbers as a plain object for tests and the curious.

import { Swarm } from './swarm.js';
import { Stream } from './stream.js';
import { STOPPED_REASON } from './playout.js';
import { Player } from './player.js';
import * as wire from './wire.js';
import { describeSources, describeRelay } from './words.js';

const DEFAULT_UPLOAD_KBPS = 2000;
const FETCH_TIMEOUT_MS = 5000;
const MAX_FETCHES = 4;

/** @param {string} b64 @returns {Uint8Array} */
function fromBase64(b64) {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** @param {string} url @returns {Promise<Response>} */
async function get(url) {
  const r = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), cache: 'no-store' });
  if (!r.ok) throw new Error(`GET ${url}: ${r.status}`);
  return r;
}

/** When (ms since the epoch) the origin's last 429 said fallback may be asked again. */
let backoffUntil = 0;

/**
 * Fetches from the origin's HTTP fallback with the tracker's ticket; on a
 * 429, nothing more until its Retry-After (1–60 s) has passed.
 * @param {string} url @param {string} ticket @returns {Promise<Response>}
 */
async function getFallback(url, ticket) {
  if (Date.now() < backoffUntil) throw new Error(`GET ${url}: backing off`);
  /** @type {Record<string, string>} */
  const headers = ticket ? { [wire.TICKET_HEADER]: ticket } : {};
  const r = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), cache: 'no-store', headers });
  if (r.status === 429) {
    const s = Number(r.headers.get('Retry-After'));
    backoffUntil = Date.now() + 1000 * (Number.isInteger(s) && s >= 1 ? Math.min(s, 60) : 1);
  }
  if (!r.ok) throw new FallbackError(`GET ${url}: ${r.status}`, r.status);
  return r;
}

/** A fallback request the origin answered with a status other than 200. */
class FallbackError extends Error {
  /** @param {string} message @param {number} status */
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

/**
 * Whether a failed request to /latest says what the origin has (as
 * peer/repair.go trusted): a 404 (nothing) or no answer at all do; a
 * refusal, a rate limit, or our own backing off do not.
 * @param {unknown} e
 */
function saysNothing(e) {
  if (e instanceof FallbackError) return e.status === 404;
  return !String(e).includes('backing off');
}


/** @param {string} id @returns {HTMLElement} */
function el(id) {
  return /** @type {HTMLElement} */ (document.getElementById(id));
}

class App {
  /** @param {URLSearchParams} q */
  constructor(q) {
    this.q = q;
    this.base = location.origin;
    this.channel = q.get('channel') || '';
    const up = Number(q.get('upload_kbps') ?? DEFAULT_UPLOAD_KBPS);
    this.uploadKbps = Number.isFinite(up) && up >= 0 ? Math.min(up, 10_000_000) : DEFAULT_UPLOAD_KBPS;
    this.relaying = q.get('relay') !== '0';
    /** @type {Stream|null} */
    this.stream = null;
    /** @type {Swarm|null} */
    this.swarm = null;
    this.player = new Player(/** @type {HTMLVideoElement} */ (el('video')), { onError: (w) => this.note(w) });
    this.fetches = 0;
    this.errors = { uncaught: 0, tracker: 0 };
    this.media = true;
    this.status = 'connecting';
    this.streamStopped = false;
    this.lastReport = 0;
    /** @type {string[]} */
    this.log = [];
  }

  /** @param {string} what */
  note(what) {
    this.log.push(`${new Date().toISOString().slice(11, 23)} ${what}`);
    if (this.log.length > 200) this.log.shift();
  }

  async start() {
    if (!this.channel) this.channel = await this.firstChannel();
    el('channel').textContent = this.channel;
    const relay = /** @type {HTMLInputElement} */ (el('relay'));
    relay.checked = this.relaying;
    relay.onchange = () => this.setRelaying(relay.checked);
    document.addEventListener('visibilitychange', () => this.applyUpload());
    addEventListener('pagehide', () => this.swarm && this.swarm.stop());
    this.swarm = new Swarm({
      trackerURL: this.base, channel: this.channel, uploadKbps: this.effectiveUpload(),
      onWelcome: (w) => this.welcome(w).catch((e) => this.note(`welcome: ${e}`)),
      onData: (from, b) => this.stream && this.stream.receive(from, b),
      onChildReady: (child, trees) => this.stream && this.stream.childReady(child, trees),
      onEvent: (what, d) => {
        if (what === 'tracker-error') this.errors.tracker++;
        this.note(`${what} ${d ? JSON.stringify(d) : ''}`);
      },
      report: () => this.trackerReport(),
    });
    this.swarm.start();
    setInterval(() => this.tick(), 50);
    setInterval(() => this.render(), 500);
  }

  /** @returns {Promise<string>} the first live channel, or "demo" */
  async firstChannel() {
    try {
      const r = await get(`${this.base}/api/v1/channels`);
      const j = await r.json();
      const live = (j.channels || []).find((/** @type {any} */ c) => c && typeof c.channel === 'string');
      if (live) return live.channel;
    } catch {
      // fall through
    }
    return 'demo';
  }

  effectiveUpload() {
    return this.relaying && document.visibilityState !== 'hidden' ? this.uploadKbps : 0;
  }

  /** @param {boolean} on */
  setRelaying(on) {
    this.relaying = on;
    this.applyUpload();
  }

  applyUpload() {
    if (this.swarm) this.swarm.setUpload(this.effectiveUpload());
  }

  /** @param {import('./swarm.js').Welcome} w */
  async welcome(w) {
    if (this.stream) return; // a reconnect: same channel, same stream
    const raw = fromBase64(w.public_key);
    const key = await crypto.subtle.importKey('raw', /** @type {Uint8Array<ArrayBuffer>} */ (raw), { name: 'Ed25519' }, false, ['verify']);
    const swarm = /** @type {Swarm} */ (this.swarm);
    let init = null;
    // The stream's epoch (the origin's run): the tracker's, or a newer one
    // the init segment is signed for; manifests of earlier runs are refused.
    let epoch = BigInt(w.epoch ?? 0);
    try {
      const r = await getFallback(`${w.fallback_url}/init`, w.ticket || '');
      const body = new Uint8Array(await r.arrayBuffer());
      const sig = fromBase64(r.headers.get(wire.INIT_SIGNATURE_HEADER) || '');
      const initEpoch = BigInt(r.headers.get(wire.INIT_EPOCH_HEADER) || '0');
      if (initEpoch < epoch) throw new Error('the init segment is of an earlier run of the stream');
      if (!(await wire.verifyInit(body, sig, raw, this.channel, initEpoch))) throw new Error('the init segment is not signed by the channel key');
      init = body;
      epoch = initEpoch;
    } catch (e) {
      if (String(e).includes(': 404')) this.media = false; // a synthetic stream
      else this.note(`init: ${e}`);
    }
    this.stream = new Stream({
      channel: this.channel, m: w.trees, k: w.k, key, epoch, relay: swarm, media: this.media,
      onBad: (why) => this.note(`dropped: ${why}`),
    });
    if (init) {
      const codecs = await this.codecs();
      await this.player.open(init, codecs).catch((e) => {
        this.media = false;
        this.note(`player: ${e}`);
      });
    }
    this.status = 'watching';
  }

  /** @returns {Promise<string>} the stream's codecs, from the tracker's stats */
  async codecs() {
    try {
      const r = await get(`${this.base}/api/v1/channels/${encodeURIComponent(this.channel)}/stats`);
      const j = await r.json();
      if (j.media && typeof j.media.codecs === 'string' && j.media.codecs) return j.media.codecs;
    } catch {
      // the default below
    }
    return 'avc1.42E01E,mp4a.40.2';
  }

  tick() {
    const s = this.stream;
    const swarm = this.swarm;
    if (!s || !swarm) return;
    const now = Date.now();
    for (const j of s.fetchJobs()) {
      if (!swarm.fallbackURL || this.fetches >= MAX_FETCHES || now < backoffUntil) {
        s.unmark(j);
        continue;
      }
      this.fetches++;
      this.fetch(swarm.fallbackURL, j).finally(() => this.fetches--);
    }
    s.watchParents();
    for (const p of s.due()) {
      if (p.end) {
        this.status = 'the stream ended';
        if (this.player.ms && this.player.ms.readyState === 'open' && this.player.sb && !this.player.sb.updating) this.player.ms.endOfStream();
        continue;
      }
      if (this.media) this.player.append(p.data, p.keyframe);
    }
    if (s.stopped !== this.streamStopped) {
      // Said once, in words, each time the playout rule sees the stream
      // stop (the next manifest overdue and the origin, asked, with nothing
      // newer; or no manifest for two intervals past the next one's time)
      // or come back.
      this.streamStopped = s.stopped;
      this.status = s.stopped ? STOPPED_REASON : 'watching';
      this.note(this.status);
      this.lastReport = 0; // and the tracker hears it now, not at the next 2 s report
    }
    this.player.tick(now);
    if (now - this.lastReport >= 2000) {
      this.lastReport = now;
      swarm.report(this.trackerReport());
    }
  }

  /** @param {string} base @param {import('./stream.js').FetchJob} j */
  async fetch(base, j) {
    const s = /** @type {Stream} */ (this.stream);
    const ticket = /** @type {Swarm} */ (this.swarm).ticket;
    const get = (/** @type {string} */ url) => getFallback(url, ticket);
    try {
      if (j.manifest) {
        let r;
        try {
          r = await get(`${base}/latest`);
        } catch (e) {
          // No answer, or nothing: the playout rule judges from it whether
          // the stream has stopped at the origin.
          if (saysNothing(e)) s.originSaid(0, false);
          throw e;
        }
        const { seq } = await r.json();
        if (!Number.isInteger(seq)) throw new Error('latest: no seq');
        s.originSaid(seq, true);
        s.originAhead(seq); // no tree brought what the origin has: every quiet parent is starved
        for (const want of s.missingManifests(seq)) {
          const m = await get(`${base}/manifest/${want}`);
          await s.receive(0, new Uint8Array(await m.arrayBuffer()), true);
        }
      } else if (j.whole) {
        const r = await get(`${base}/chunk/${j.seq}`);
        await s.onWholeChunk(j, new Uint8Array(await r.arrayBuffer()));
      } else {
        const r = await get(`${base}/shard/${j.seq}/${j.shard}`);
        await s.onShard(j.seq, j.shard, new Uint8Array(await r.arrayBuffer()));
      }
    } catch (e) {
      if (j.whole) await s.onWholeChunk(j, null);
      else if (!j.manifest) await s.onShard(j.seq, j.shard, null);
    } finally {
      if (j.manifest) s.unmark(j);
    }
  }

  trackerReport() {
    const st = this.stats();
    return {
      relay_bytes: st.relay_bytes, bytes_from_peers: st.bytes_from_peers, bytes_from_origin: st.bytes_from_origin,
      children: st.children, chunks_played: st.chunks_played, continuity: st.continuity, latency_ms: st.latency_ms,
      bad_shards: st.bad_messages, stream_stopped: st.stream_stopped,
    };
  }

  /** The viewer's numbers, as a plain object. */
  stats() {
    const s = this.stream;
    const sw = this.swarm;
    const relay = sw ? sw.relayStats() : { sent: 0, dropped: 0, children: 0, served: 0 };
    const lat = s ? s.st.latency.slice(-20).sort((a, b) => a - b) : [];
    const peers = sw ? [...sw.nbrs.values()].filter((n) => n.openSince > 0).length : 0;
    return {
      peerId: sw ? sw.id : 0,
      kind: 'browser',
      channel: this.channel,
      status: this.status,
      startup_ms: s ? s.st.startupMs : -1,
      continuity: s ? s.continuity() : 1,
      chunks_played: s ? s.st.played : 0,
      chunks_missed: s ? s.st.missed : 0,
      stream_stopped: s ? s.stopped : false,
      bytes_from_origin: s ? s.st.bytesFromOrigin : 0,
      bytes_from_peers: s ? s.st.bytesFromPeers : 0,
      relay_bytes: relay.sent,
      relay_dropped: relay.dropped,
      relayed_to: relay.served,
      children: relay.children,
      relaying: this.relaying,
      upload_kbps: sw ? sw.uploadKbps : 0,
      peers_connected: peers,
      parents: sw ? sw.trees().map((t) => ({ tree: t.tree, peerId: t.parent, kind: t.hasParent ? t.parentKind : (t.fallback ? 'http' : ''), open: t.openSince > 0 })) : [],
      latency_ms: lat.length ? Math.round(lat[Math.floor(lat.length / 2)]) : 0,
      bad_messages: s ? s.st.badMessages : 0,
      unasked_messages: s ? s.st.unasked : 0,
      http_fetches: s ? s.st.httpFetches : 0,
      complaints: s ? s.st.complaints : 0,
      tree_lag_max_ms: s ? s.st.lagMax.map(Math.round) : [],
      tree_lag_over: s ? s.st.lagOver.slice() : [],
      decode_errors: this.player.decodeErrors,
      stalls: this.player.stalls,
      stall_max_ms: Math.round(this.player.stallMaxMs),
      video_current_time: this.player.video.currentTime,
      tracker_errors: this.errors.tracker,
      bad_tracker_messages: sw ? sw.errors.badTracker : 0,
      uncaught_errors: this.errors.uncaught,
    };
  }

  render() {
    const st = this.stats();
    const total = st.bytes_from_peers + st.bytes_from_origin;
    el('status').textContent = st.status;
    el('peers').textContent = String(st.peers_connected);
    el('continuity').textContent = `${(st.continuity * 100).toFixed(1)}%`;
    el('latency').textContent = st.latency_ms ? `${st.latency_ms} ms` : '–';
    el('share').textContent = total ? `${Math.round((100 * st.bytes_from_peers) / total)}% peers · ${Math.round((100 * st.bytes_from_origin) / total)}% origin` : '–';
    el('sources').textContent = describeSources(st.parents);
    el('relayed').textContent = describeRelay(st.relay_bytes, st.children);
    el('parents').textContent = st.parents.map((p) => `stripe ${p.tree}: ${p.kind === 'http' ? 'HTTP' : p.kind === 'origin' ? 'origin' : p.kind ? `peer ${p.peerId}` : '…'}`).join(' · ');
    el('dropped').textContent = st.bad_messages || st.decode_errors ? `${st.bad_messages} bad messages, ${st.decode_errors} decode errors` : '';
  }
}

const app = new App(new URLSearchParams(location.search));
addEventListener('error', () => app.errors.uncaught++);
addEventListener('unhandledrejection', () => app.errors.uncaught++);
/** @type {any} */ (window).coopcast = {
  stats: () => app.stats(),
  setRelaying: (/** @type {boolean} */ on) => app.setRelaying(on),
  log: () => app.log.slice(),
  app,
};
app.start().catch((e) => app.note(`start: ${e}`));
