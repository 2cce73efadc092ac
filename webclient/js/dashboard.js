// The swarm dashboard: polls the tracker's JSON API and draws the channel
// for everyone to see: summary cards, origin egress against delivered
// bytes over time, every tree of the forest on depth rings, and who relays
// how much. ?channel=ID picks the channel (default: the first live one),
// ?peer=ID highlights one peer (the watch page links here with its own).
// Plain DOM and inline SVG; the arithmetic is in dashboard-model.js.

import {
  checkChannels, checkStats, checkForest, layoutTree, advanceCounters, rateSeries, offloadRatio,
  contributions, forestPeriod, shapeKey, niceTicks, fmtBits, fmtMB, ORIGIN,
} from './dashboard-model.js';

/** @typedef {import('./dashboard-model.js').Stats} Stats */
/** @typedef {import('./dashboard-model.js').Forest} Forest */
/** @typedef {import('./dashboard-model.js').ForestNode} ForestNode */
/** @typedef {import('./dashboard-model.js').Interval} Interval */
/** @typedef {import('./dashboard-model.js').Counters} Counters */

const POLL_MS = 2000;
const CHANNELS_MS = 10_000;
const FETCH_TIMEOUT_MS = 5000;
const KEEP_MS = 10 * 60_000;
const TOP = 50;

/** @param {string} id @returns {HTMLElement} */
const el = (id) => /** @type {HTMLElement} */ (document.getElementById(id));
/** @param {string} id @param {string} text */
const set = (id, text) => { el(id).textContent = text; };
/** @param {unknown} s */
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
/** A share as a percentage; only a whole 1 reads 100%. @param {number|null|undefined} r */
const pct = (r) => (r == null || !Number.isFinite(r) ? '–' : r >= 1 || r <= 0 ? `${r > 0 ? 100 : 0}%` : `${Math.min(99.9, r * 100).toFixed(1)}%`);
/** @param {number} t */
const clock = (t) => new Date(t).toTimeString().slice(0, 8);

/** An HTTP answer other than 200, with the tracker's reason if it gave one. */
class HTTPError extends Error {
  /** @param {string} path @param {number} status @param {string} reason */
  constructor(path, status, reason) {
    super(reason || `HTTP ${status}`);
    this.path = path;
    this.status = status;
  }
}

/** A 200 answer that is not what the API documents. */
class Malformed extends Error {
  /** @param {string} path @param {string} why */
  constructor(path, why) {
    super(why);
    this.path = path;
  }
}

/**
 * getJSON fetches an API path and checks the answer with check.
 * @template T
 * @param {string} path
 * @param {(v: unknown) => T} check
 * @returns {Promise<T>}
 */
async function getJSON(path, check) {
  const r = await fetch(path, { cache: 'no-store', signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  const text = await r.text();
  /** @type {unknown} */
  let v;
  try {
    v = JSON.parse(text);
  } catch {
    if (!r.ok) throw new HTTPError(path, r.status, '');
    throw new Malformed(path, `not JSON (${text.slice(0, 40).replace(/\s+/g, ' ')}…)`);
  }
  if (!r.ok) throw new HTTPError(path, r.status, v && typeof v === 'object' && 'error' in v ? String(v.error) : '');
  try {
    return check(v);
  } catch (e) {
    throw new Malformed(path, e instanceof Error ? e.message : String(e));
  }
}

class Dashboard {
  /** @param {URLSearchParams} q */
  constructor(q) {
    this.asked = q.get('channel') || '';
    this.channel = this.asked;
    const you = Number(q.get('peer'));
    this.you = Number.isSafeInteger(you) && you > 0 ? you : 0;
    /** @type {Stats[]} */
    this.channels = [];
    this.nextChannels = 0;
    /** @type {Stats|null} */
    this.stats = null;
    /** @type {Forest|null} */
    this.forest = null;
    this.nextForest = 0;
    /** @type {Counters|null} */
    this.counters = null;
    /** @type {Interval[]} */
    this.intervals = [];
    this.failures = 0;
    this.pageErrors = 0;
    /** @type {number} tree drawn wide, -1 for none */
    this.wide = -1;
    this.timing = { layout: 0, draw: 0, peers: 0 };
    /** @type {import('./dashboard-model.js').TreeLayout[]|null} layouts drawn */
    this.layouts = null;
    /** what the drawing shows (shape, size), to skip redrawing the same */
    this.drawn = '';
    this.timer = 0;
    /** bumped on a channel switch: answers to an older poll are dropped */
    this.gen = 0;
  }

  start() {
    const pick = /** @type {HTMLSelectElement} */ (el('pick'));
    pick.onchange = () => this.switchTo(pick.value);
    const zoom = (/** @type {Event} */ ev) => {
      const fig = /** @type {Element} */ (ev.target).closest('figure');
      if (!fig) return;
      const t = Number(fig.getAttribute('data-tree'));
      this.wide = this.wide === t ? -1 : t;
      this.guard(() => this.drawForest());
      /** @type {HTMLElement|null} */ (el('trees').querySelector(`figure[data-tree="${t}"]`))?.focus();
    };
    el('trees').addEventListener('click', zoom);
    el('trees').addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); zoom(ev); } });
    el('trees').addEventListener('mousemove', (ev) => this.guard(() => this.tip(ev)));
    el('trees').addEventListener('mouseleave', () => { el('tip').hidden = true; });
    let resize = 0;
    addEventListener('resize', () => {
      clearTimeout(resize);
      resize = setTimeout(() => this.guard(() => { this.drawChart(); this.drawForest(); }), 200);
    });
    this.tick();
  }

  /** @param {string} id */
  switchTo(id) {
    if (id === this.channel) return;
    this.asked = id;
    this.channel = id;
    const u = new URL(location.href);
    u.searchParams.set('channel', id);
    history.replaceState(null, '', u);
    this.stats = null;
    this.forest = null;
    this.counters = null;
    this.intervals = [];
    this.nextForest = 0;
    el('trees').replaceChildren();
    this.drawn = '';
    this.gen++;
    clearTimeout(this.timer);
    this.tick();
  }

  /** @param {() => void} fn */
  guard(fn) {
    try {
      fn();
    } catch (e) {
      this.pageError(e);
    }
  }

  /** @param {unknown} e */
  pageError(e) {
    this.pageErrors++;
    const b = el('errs');
    b.hidden = false;
    b.textContent = `${this.pageErrors} page error${this.pageErrors > 1 ? 's' : ''}`;
    b.title = e instanceof Error ? `${e.message}\n${e.stack || ''}` : String(e);
  }

  async tick() {
    const now = Date.now(), gen = this.gen;
    try {
      if (!this.channel || now >= this.nextChannels) {
        const list = await getJSON('/api/v1/channels', checkChannels);
        if (gen !== this.gen) return;
        this.channels = list;
        this.nextChannels = now + CHANNELS_MS;
        if (!this.channel) {
          const live = this.channels.find((c) => c.origin_connected) || this.channels[0];
          this.channel = live ? live.channel : '';
        }
        this.drawPicker();
      }
      if (!this.channel) {
        this.failures = 0;
        this.message('No channel yet: waiting for an origin to publish one.', 'wait');
      } else {
        const base = `/api/v1/channels/${encodeURIComponent(this.channel)}`;
        const wantForest = now >= this.nextForest;
        const [st, fo] = await Promise.all([getJSON(`${base}/stats`, checkStats), wantForest ? getJSON(`${base}/forest`, checkForest) : null]);
        if (gen !== this.gen) return;
        this.stats = st;
        if (fo) this.take(fo, Date.now());
        this.failures = 0;
        this.message('', '');
        this.guard(() => this.draw(!!fo));
      }
    } catch (e) {
      if (gen !== this.gen) return;
      this.failures++;
      this.guard(() => this.failed(e));
    }
    const delay = this.failures ? Math.min(15_000, POLL_MS * 2 ** (this.failures - 1)) : POLL_MS;
    this.timer = setTimeout(() => this.tick(), delay);
  }

  /** @param {Forest} fo @param {number} t */
  take(fo, t) {
    this.forest = fo;
    this.nextForest = t + forestPeriod(fo.nodes.length) - 100;
    const a = advanceCounters(this.counters, t, fo.nodes);
    this.counters = a.counters;
    if (a.interval) this.intervals.push(a.interval);
    while (this.intervals.length && this.intervals[0].t1 < t - KEEP_MS - 15_000) this.intervals.shift();
  }

  /** @param {unknown} e */
  failed(e) {
    const retry = Math.round(Math.min(15_000, POLL_MS * 2 ** (this.failures - 1)) / 1000);
    const again = ` Retrying in ${retry} s.`;
    if (e instanceof HTTPError && e.status === 404 && e.path.startsWith('/api/v1/channels/')) {
      const others = this.channels.filter((c) => c.channel !== this.channel).map((c) => c.channel);
      this.message(`No such channel: “${this.channel}”.${others.length ? ` Live now: ${others.join(', ')} (pick one above).` : ' No other channel is live.'}${again}`, 'err');
      this.nextChannels = 0;
      if (!this.asked) this.channel = '';
      this.drawPicker();
    } else if (e instanceof HTTPError) {
      this.message(`The tracker answered ${e.status} to ${e.path}: ${e.message}.${again}`, 'err');
    } else if (e instanceof Malformed) {
      this.message(`The tracker sent a malformed answer to ${e.path}: ${e.message}.${again}`, 'err');
    } else if (e instanceof DOMException && (e.name === 'TimeoutError' || e.name === 'AbortError')) {
      this.message(`The tracker did not answer within ${FETCH_TIMEOUT_MS / 1000} s.${again}`, 'err');
    } else {
      this.message(`The tracker is unreachable (${e instanceof Error ? e.message : e}).${again}`, 'err');
    }
    set('live', e instanceof HTTPError && e.status === 404 ? '' : e instanceof HTTPError || e instanceof Malformed ? 'tracker error' : 'tracker unreachable');
    document.body.classList.toggle('stale', !!this.stats);
  }

  /** @param {string} text @param {string} kind */
  message(text, kind) {
    const m = el('msg');
    m.hidden = !text;
    m.textContent = text;
    m.className = `banner ${kind}`;
    if (!text) document.body.classList.remove('stale');
  }

  drawPicker() {
    const pick = /** @type {HTMLSelectElement} */ (el('pick'));
    const list = this.channels.map((c) => c.channel);
    if (this.channel && !list.includes(this.channel)) list.unshift(this.channel);
    pick.hidden = list.length < 2;
    const opts = list.map((id) => {
      const c = this.channels.find((x) => x.channel === id);
      const o = new Option(c ? `${id} · ${c.peers} peers${c.origin_connected ? '' : ' · no origin'}` : `${id} · gone`, id);
      o.selected = id === this.channel;
      return o;
    });
    pick.replaceChildren(...opts);
    set('channel', pick.hidden ? this.channel : '');
    const w = /** @type {HTMLAnchorElement} */ (el('watch'));
    w.href = this.channel ? `/?channel=${encodeURIComponent(this.channel)}` : '/';
    document.title = this.channel ? `${this.channel} · coopcast swarm` : 'coopcast swarm dashboard';
  }

  /** @param {boolean} newForest */
  draw(newForest) {
    this.drawCards();
    this.drawChart();
    if (newForest) {
      this.drawForest();
      this.drawTable();
    }
    const st = /** @type {Stats} */ (this.stats);
    set('live', st.origin_connected ? `live · up ${Math.round(st.uptime_s / 60)} min` : 'origin offline');
    const t = this.timing;
    set('foot', `Updated ${clock(Date.now())}. Forest of ${t.peers} peers: layout ${t.layout.toFixed(1)} ms, drawing ${t.draw.toFixed(1)} ms; next in ${Math.round(forestPeriod(t.peers) / 1000)} s, stats every ${POLL_MS / 1000} s.`);
  }

  drawCards() {
    const st = /** @type {Stats} */ (this.stats);
    const nodes = this.forest ? this.forest.nodes : [];
    const browsers = nodes.filter((n) => n.kind === 'browser').length;
    set('c-peers', String(st.peers));
    set('c-kinds', this.forest ? `${browsers} browser · ${nodes.length - browsers} native` : '');
    // One definition of offload, the chart's: the last point of its line
    // (10 s of the peers' reports), so the tile and the legend agree.
    const r = rateSeries(this.intervals).at(-1);
    set('c-offload', pct(r ? r.offload : null));
    set('c-offload-total', `${pct(offloadRatio(st.bytes_from_peers, st.bytes_from_origin))} since the start`);
    set('c-egress', r ? fmtBits(r.egress) : '–');
    set('c-copies', r && st.bitrate > 0 ? `${(r.egress / st.bitrate).toFixed(1)}× the ${fmtBits(st.bitrate)} stream` : '');
    set('c-delivered', r ? fmtBits(r.delivered) : '–');
    set('c-each', r && nodes.length ? `${fmtBits(r.delivered / nodes.length)} per peer` : '');
    set('c-reporting', this.forest ? `${nodes.filter((x) => x.report).length} peers reporting` : '');
    set('c-cont', st.peers ? pct(st.continuity) : '–');
    set('c-repairs', String(st.repairs));
    set('c-churn', `${st.joins} joins · ${st.leaves} leaves`);
    set('c-depth', String(Math.max(0, ...st.max_depth)));
    set('c-depths', st.max_depth.length > 1 ? `per tree ${st.max_depth.join(' · ')}` : '');
    set('c-fallback', String(st.fallback_peers));
    set('c-fallbacks', st.fallbacks.length > 1 ? `per tree ${st.fallbacks.join(' · ')}` : '');
    el('c-fallback').classList.toggle('warn', st.fallback_peers > 0);
    el('c-cont').classList.toggle('warn', st.peers > 0 && st.continuity < 0.99);
  }

  drawChart() {
    const box = el('chart');
    const W = Math.max(320, box.clientWidth || 1000), H = 260;
    const m = { l: 64, r: 46, t: 34, b: 26 };
    const pts = rateSeries(this.intervals);
    const now = Date.now();
    // From the first sample (at most KEEP_MS back), at least a minute wide: the lines grow rightwards.
    const tLast = pts.length ? pts[pts.length - 1].t : now;
    const tStart = pts.length ? Math.max(tLast - KEEP_MS, pts[0].t) : now;
    const tEnd = Math.max(tLast, tStart + 60_000);
    const shown = pts.filter((p) => p.t >= tStart);
    const yMax = Math.max(1, ...shown.map((p) => p.delivered), ...shown.map((p) => p.egress));
    const ticks = niceTicks(yMax, 4), top = ticks[ticks.length - 1];
    const x = (/** @type {number} */ t) => m.l + ((t - tStart) / (tEnd - tStart || 1)) * (W - m.l - m.r);
    const y = (/** @type {number} */ v) => H - m.b - (v / top) * (H - m.t - m.b);
    const yr = (/** @type {number} */ f) => H - m.b - f * (H - m.t - m.b);
    let s = `<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="origin egress and delivered bits per second over time">`;
    for (const v of ticks) s += `<line class="grid" x1="${m.l}" x2="${W - m.r}" y1="${y(v)}" y2="${y(v)}"/><text class="ax" x="${m.l - 6}" y="${y(v) + 4}" text-anchor="end">${fmtBits(v)}</text>`;
    for (const f of [0, 0.5, 1]) s += `<text class="ax off" x="${W - m.r + 6}" y="${yr(f) + 4}">${f * 100}%</text>`;
    const span = (tEnd - tStart) / 1000, got = (tLast - tStart) / 1000;
    const step = [10, 15, 30, 60, 120, 300, 600].find((v) => span / v <= 7) || 600;
    for (let t = Math.ceil(tStart / 1000 / step) * step * 1000; t <= tEnd; t += step * 1000) {
      s += `<line class="tick" x1="${x(t)}" x2="${x(t)}" y1="${H - m.b}" y2="${H - m.b + 4}"/><text class="ax" x="${x(t)}" y="${H - 6}" text-anchor="middle">${clock(t)}</text>`;
    }
    s += `<line class="axis" x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}"/>`;
    if (shown.length > 1) {
      const line = (/** @type {(p: import('./dashboard-model.js').RatePoint) => number} */ f) => shown.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)} ${f(p).toFixed(1)}`).join('');
      const d = line((p) => y(p.delivered));
      const de = line((p) => y(p.egress)), close = `L${x(tLast).toFixed(1)} ${H - m.b}L${x(shown[0].t).toFixed(1)} ${H - m.b}Z`;
      s += `<path class="area" d="${d}${close}"/><path class="area eg" d="${de}${close}"/>`;
      s += `<path class="ln delivered" d="${d}"/><path class="ln egress" d="${de}"/>`;
      // The latest values at the ends of the lines; egress below its line if the two are close.
      const p = shown[shown.length - 1], yd = y(p.delivered), ye = y(p.egress), xe = x(p.t) - 4;
      s += `<text class="end delivered" x="${xe}" y="${(yd - 6).toFixed(1)}" text-anchor="end">${fmtBits(p.delivered)}</text>`;
      s += `<text class="end egress" x="${xe}" y="${(ye - yd < 18 ? ye + 14 : ye - 6).toFixed(1)}" text-anchor="end">${fmtBits(p.egress)}</text>`;
      const off = shown.filter((p) => p.offload != null);
      if (off.length > 1) s += `<path class="ln offload" d="${off.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)} ${yr(/** @type {number} */ (p.offload)).toFixed(1)}`).join('')}"/>`;
    } else {
      s += `<text class="ax" x="${W / 2}" y="${H / 2}" text-anchor="middle">collecting samples: rates need two forest polls</text>`;
    }
    const last = shown[shown.length - 1];
    const legend = [['delivered', 'delivered to viewers', last && fmtBits(last.delivered)], ['egress', 'origin egress', last && fmtBits(last.egress)],
      ['offload', 'offload (right axis)', last && pct(last.offload)]];
    let lx = m.l;
    for (const [cls, name, v] of legend) {
      const label = `${name}${v ? `: ${v}` : ''}`;
      s += `<line class="ln ${cls}" x1="${lx}" x2="${lx + 18}" y1="8" y2="8"/><text class="lg" x="${lx + 24}" y="12">${label}</text>`;
      lx += label.length * 6.6 + 44;
    }
    box.innerHTML = `${s}</svg>`;
    set('chart-note', `bits/s, 10 s averages, since ${clock(tStart)} (${got < 90 ? `${Math.round(got)} s` : `${Math.round(got / 60)} min`}; kept ${KEEP_MS / 60_000} min)`);
  }

  /**
   * drawForest lays out and draws every tree, unless nothing it draws
   * changed since the last time (reports change every poll, the trees
   * seldom): hover tooltips read the latest reports anyway.
   */
  drawForest() {
    const fo = this.forest;
    const box = el('trees');
    if (!fo) return;
    const n = fo.nodes.length;
    // Few peers: small multiples side by side; many: fewer, bigger trees.
    const cols = Math.min(fo.trees, n <= 120 ? 4 : fo.trees <= 4 ? 2 : fo.trees <= 9 ? 3 : 4);
    const full = box.clientWidth || 1200;
    const key = `${shapeKey(fo)} ${cols} ${full} ${this.wide}`;
    if (key === this.drawn) return;
    const t0 = performance.now();
    const layouts = Array.from({ length: fo.trees }, (_, t) => layoutTree(fo.nodes, t));
    const t1 = performance.now();
    box.style.setProperty('--cols', String(cols));
    const each = Math.floor((full - 12 * (cols - 1)) / cols);
    const figs = layouts.map((l, t) => {
      const wide = this.wide === t;
      const fb = l.fallback ? ` · <span class="warn">${l.fallback} fallback</span>` : '';
      const lost = l.pending + l.detached ? ` · ${l.pending} pending, ${l.detached} detached` : '';
      return `<figure data-tree="${t}" class="${wide ? 'wide' : ''}" tabindex="0" aria-label="tree ${t}, ${wide ? 'enlarged' : 'press Enter to enlarge'}"><figcaption><b>tree ${t}</b> · depth ${l.maxDepth} · ${l.originKids} from origin${fb}${lost}</figcaption>${this.treeSVG(fo.nodes, l, t, wide ? Math.min(full, 1000) : each)}</figure>`;
    });
    box.innerHTML = figs.join('');
    this.layouts = layouts;
    this.drawn = key;
    this.timing = { layout: t1 - t0, draw: performance.now() - t1, peers: n };
    set('forest-note', `${fo.trees} trees (one per stripe, any ${fo.k} rebuild a chunk), ${n} peers in each`);
  }

  /**
   * treeSVG draws one tree: depth rings, edges (one path per kind of edge),
   * then a dot per peer (data-i: its index, for the tooltip); ids as labels
   * only when few.
   * @param {ForestNode[]} nodes
   * @param {import('./dashboard-model.js').TreeLayout} l
   * @param {number} t
   * @param {number} size
   * @returns {string}
   */
  treeSVG(nodes, l, t, size) {
    const n = nodes.length;
    const labels = n <= 30;
    const c = size / 2, R = c - (labels ? 44 : 12);
    const k = l.rings ? R / l.rings : R;
    const base = n <= 40 ? 6 : n <= 200 ? 4 : n <= 800 ? 2.8 : 2;
    const P = (/** @type {number} */ v) => (c + v * k).toFixed(1);
    let s = `<svg viewBox="0 0 ${size} ${size}" width="${size}" height="${size}" role="img" aria-label="tree ${t}: ${n} peers, depth ${l.maxDepth}">`;
    for (let d = 1; d <= l.rings; d++) {
      s += `<circle class="ring${d > l.maxDepth ? ' lost' : ''}" cx="${c}" cy="${c}" r="${(d * k).toFixed(1)}"/><text class="rl" x="${c + 3}" y="${(c - d * k + 11).toFixed(1)}">${d > l.maxDepth ? 'detached' : d}</text>`;
    }
    let e = '', ef = '', ep = '';
    for (const p of l.placed) {
      if (p.detached) continue;
      // A radial link: out of the parent along its angle, into the child along its own.
      let seg;
      if (p.parent === ORIGIN) seg = `M${c} ${c}L${P(p.x)} ${P(p.y)}`;
      else {
        const q = l.placed[p.parent], m = p.depth - 0.5;
        seg = `M${P(q.x)} ${P(q.y)}C${P(m * Math.sin(q.angle))} ${P(-m * Math.cos(q.angle))} ${P(m * Math.sin(p.angle))} ${P(-m * Math.cos(p.angle))} ${P(p.x)} ${P(p.y)}`;
      }
      if (p.fallback) ef += seg; else if (p.pending) ep += seg; else e += seg;
    }
    s += `<path class="e" d="${e}"/><path class="e fb" d="${ef}"/><path class="e pend" d="${ep}"/>`;
    /** @type {string[]} */
    const dots = [];
    let me = '';
    l.placed.forEach((p, i) => {
      const nd = nodes[i];
      const r = base + Math.min(7, 1.2 * Math.sqrt(p.kids));
      const cls = `n ${nd.kind === 'browser' ? 'browser' : 'native'}${p.fallback ? ' fb' : ''}${p.pending || p.detached ? ' pend' : ''}`;
      const dot = `<circle class="${cls}" cx="${P(p.x)}" cy="${P(p.y)}" r="${r.toFixed(1)}" data-i="${i}"/>`;
      if (nd.id === this.you) me = `<circle class="me" cx="${P(p.x)}" cy="${P(p.y)}" r="${(r + 4).toFixed(1)}"/>${dot}`;
      else dots.push(dot);
      if (labels) {
        const lx = c + (p.x * k) + Math.sin(p.angle) * (r + 3), ly = c + (p.y * k) - Math.cos(p.angle) * (r + 3) + 3;
        dots.push(`<text class="nl" x="${lx.toFixed(1)}" y="${ly.toFixed(1)}" text-anchor="${Math.sin(p.angle) < -0.2 ? 'end' : Math.sin(p.angle) > 0.2 ? 'start' : 'middle'}">${esc(String(nd.id).slice(-5))}</text>`);
      }
    });
    return `${s}${dots.join('')}${me}<circle class="n origin" cx="${c}" cy="${c}" r="${n <= 40 ? 9 : 7}" data-i="-1"/></svg>`;
  }

  /**
   * tip shows what is known of the peer under the pointer, from the
   * latest snapshot (the drawing may be older: same shape, older reports).
   * @param {MouseEvent} ev
   */
  tip(ev) {
    const box = el('tip');
    const dot = /** @type {Element} */ (ev.target).closest?.('circle[data-i]');
    const fig = dot && dot.closest('figure');
    const fo = this.forest;
    if (!dot || !fig || !fo || !this.layouts) { box.hidden = true; return; }
    const t = Number(fig.getAttribute('data-tree')), i = Number(dot.getAttribute('data-i'));
    const l = this.layouts[t];
    let html;
    if (i < 0) html = `<b>origin</b><br>feeds ${l.originKids} peer${l.originKids === 1 ? '' : 's'} in tree ${t}<br>${l.fallback} more over HTTP fallback`;
    else {
      const nd = fo.nodes[i], p = l.placed[i];
      if (!nd || !p) { box.hidden = true; return; }
      const r = nd.report;
      const where = p.detached ? 'detached: its parent is not in the forest' : p.fallback ? 'stripe over HTTP fallback' : `depth ${p.depth}${p.pending ? ', pending' : ''}`;
      html = `<b>peer ${nd.id}</b>${nd.id === this.you ? ' (you)' : ''}<br>${esc(nd.kind)} · ${nd.slots} slots${nd.home === t ? ' · home tree' : ''}<br>tree ${t}: ${where} · ${p.kids} children<br>children in all trees: ${nd.children}<br>` +
        (r ? `relayed ${fmtMB(r.relay_bytes)} MB · got ${fmtMB(r.bytes_from_peers)} MB from peers, ${fmtMB(r.bytes_from_origin)} MB from the origin<br>continuity ${pct(r.continuity)} · latency ${Math.round(r.latency_ms)} ms` : 'no report yet');
    }
    box.innerHTML = html;
    box.hidden = false;
    const x = Math.min(ev.clientX + 14, innerWidth - box.offsetWidth - 8), y = ev.clientY + 14 + box.offsetHeight > innerHeight ? ev.clientY - box.offsetHeight - 10 : ev.clientY + 14;
    box.style.left = `${Math.max(4, x)}px`;
    box.style.top = `${y}px`;
  }

  drawTable() {
    const fo = /** @type {Forest} */ (this.forest);
    const c = contributions(fo.nodes, TOP, this.you);
    const row = (/** @type {ForestNode} */ nd, /** @type {number} */ rank) => {
      const r = nd.report;
      const cells = r ? [fmtMB(r.relay_bytes), fmtMB(r.bytes_from_peers), fmtMB(r.bytes_from_origin), pct(r.continuity), `${Math.round(r.latency_ms)} ms`] : ['–', '–', '–', '–', '–'];
      return `<tr class="${nd.id === this.you ? 'me' : ''}"><td><span class="muted">${rank}.</span> ${nd.id}</td><td>${esc(nd.kind)}</td><td>${nd.children}</td>${cells.map((x) => `<td>${x}</td>`).join('')}</tr>`;
    };
    let s = c.rows.map((nd, i) => row(nd, i + 1)).join('');
    if (c.you && c.you.rank > TOP) s += `<tr class="gap"><td colspan="8">…</td></tr>${row(c.you.node, c.you.rank)}`;
    if (c.more) s += `<tr class="more"><td colspan="8">and ${c.more} more peer${c.more > 1 ? 's' : ''}</td></tr>`;
    if (!fo.nodes.length) s = '<tr class="more"><td colspan="8">no peers yet</td></tr>';
    const tb = /** @type {HTMLElement} */ (el('contrib').querySelector('tbody'));
    tb.innerHTML = s;
    this.drawYou(c.you, fo.nodes.length);
  }

  /**
   * drawYou tells the peer named by ?peer= what it gave and got.
   * @param {{node: ForestNode, rank: number}|null} you
   * @param {number} total
   */
  drawYou(you, total) {
    const box = el('you');
    box.hidden = !this.you;
    if (!this.you) return;
    if (!you) {
      box.innerHTML = `<b>Peer ${this.you}</b> <span class="muted">is not in this channel's forest (any more).</span>`;
      return;
    }
    const r = you.node.report;
    const got = r ? r.bytes_from_peers + r.bytes_from_origin : 0;
    box.innerHTML = `<b>You (peer ${you.node.id}, ${esc(you.node.kind)})</b> relayed <b>${r ? fmtMB(r.relay_bytes) : '0'} MB</b> to ` +
      `<b>${you.node.children}</b> peer${you.node.children === 1 ? '' : 's'}: #${you.rank} of ${total}. You received ${fmtMB(got)} MB, ` +
      `${pct(r ? offloadRatio(r.bytes_from_peers, r.bytes_from_origin) : null)} of it from other peers.`;
  }
}

const dash = new Dashboard(new URLSearchParams(location.search));
addEventListener('error', (ev) => dash.pageError(ev.error || ev.message));
addEventListener('unhandledrejection', (ev) => dash.pageError(ev.reason));
/** @type {any} */ (window).coopcastDashboard = dash;
dash.start();
