// The playout rule, twin of internal/playout (the native peer and the
// load-test simulator run the Go one): which chunk plays next, which are
// skipped and counted missed, where playout starts, and whether the
// stream has stopped at the origin. Pure: no I/O, no timers, no clock;
// times are µs since the Unix epoch (a manifest's timestamp unit), and the
// caller says what time it is. testdata/vectors/playout.json, written by
// the Go tests, holds what the Go rule decides in every scenario;
// webclient/test/playout.test.js checks that this one decides the same.
//
// A chunk is due by the wall clock: its cut time (its manifest's
// timestamp, or for a chunk whose manifest never came, the newest
// manifest's plus the chunk interval per chunk since) plus the clock
// offset (the smallest arrival − timestamp seen) plus the playout delay.
// Past that deadline it is skipped, with every missing chunk after it
// whose deadline passed too; after a skip media resumes at a keyframe.
// When the next manifest is half an interval overdue (overdue), the
// caller asks the origin for its newest chunk and tells the rule what it
// said (origin): nothing newer, or no answer, and the stream has stopped
// at the origin. Without an answer, it counts as stopped with no manifest
// for stopAfter intervals (and the half interval's grace) past the time
// the next was expected. The chunks that never come keep counting as
// missed.

/** What a peer says, in words, while the rule reports the stream stopped. */
export const STOPPED_REASON = 'the stream has stopped at the origin';

/** A long stop with a short interval is passed over in several calls. */
const MAX_STEPS = 4096;

/**
 * What the rule needs to know of one chunk the caller holds; null for one
 * it has nothing verified of.
 * @typedef {{known: boolean, time: number, keyframe: boolean, end: boolean, done: boolean, doneAt: number}} Chunk
 * @typedef {(seq: number) => Chunk|null} Look
 * @typedef {'start'|'play'|'miss'|'drop'|'end'|'stop'|'resume'} Op
 * @typedef {{op: Op, seq: number, onTime: boolean}} Decision
 */

/** Signed difference a - b of two uint32 sequence numbers. @param {number} a @param {number} b */
function seqDiff(a, b) {
  return (a - b) | 0;
}

/** One viewer's playout state; a new State knows nothing yet. */
export class State {
  constructor() {
    this.newestTS = 0; // µs: the newest manifest's timestamp
    this.interval = 0; // µs between cuts, from the two newest manifests; 0: not known
    this.offset = 0; // µs: smallest arrival − timestamp seen
    this.played = 0;
    this.onTime = 0;
    this.missed = 0;
    this.newest = 0;
    this.next = 0;
    this.haveAny = false;
    this.started = false;
    this.needKey = false;
    this.stopped = false;
    this.ended = false;
    this.endSeen = false;
    /** Asked while the next manifest was overdue, the origin had nothing newer than newest. */
    this.originQuiet = false;
    /** The stream is media (an init segment came): start and resume at keyframes. */
    this.media = false;
  }

  /** @returns {number} chunks on time over chunks due; 1 before any is due */
  continuity() {
    const due = this.played + this.missed;
    return due === 0 ? 1 : this.onTime / due;
  }
}

export class Rule {
  /**
   * Zero or absent values are the defaults, as in Go's playout.Config.
   * @param {{delayUs?: number, leadUs?: number, window?: number, intervalUs?: number, stopAfter?: number}} [cfg]
   */
  constructor(cfg = {}) {
    this.delay = cfg.delayUs && cfg.delayUs > 0 ? cfg.delayUs : 2_000_000;
    this.lead = cfg.leadUs && cfg.leadUs > 0 ? cfg.leadUs : 600_000;
    this.window = cfg.window && cfg.window > 0 ? cfg.window : 64;
    this.intervalUs = cfg.intervalUs && cfg.intervalUs > 0 ? cfg.intervalUs : 0;
    this.stopAfter = cfg.stopAfter && cfg.stopAfter > 0 ? cfg.stopAfter : 2;
  }

  /** @param {State} st @returns {number} the chunk interval in use (µs): measured, or configured; 0 for neither */
  interval(st) {
    return st.interval > 0 ? st.interval : this.intervalUs;
  }

  /** @param {State} st @param {number} ts @returns {number} when a chunk cut at ts must be rebuilt to play on time (µs) */
  deadline(st, ts) {
    return ts + st.offset + this.delay;
  }

  /**
   * The event: chunk seq's manifest, timestamped ts, is known (verified) at now.
   * @param {State} st @param {number} now @param {number} seq @param {number} ts @param {boolean} end
   */
  manifest(st, now, seq, ts, end) {
    if (!st.haveAny || seqDiff(seq, st.newest) > 0) {
      if (st.haveAny && ts > st.newestTS) {
        let iv = Math.trunc((ts - st.newestTS) / ((seq - st.newest) >>> 0));
        // A burst of chunks cut back to back (an origin catching up) is no
        // cadence: a shorter interval is taken a quarter at a time.
        if (st.interval > 0) iv = Math.max(iv, Math.trunc((st.interval * 3) / 4));
        st.interval = iv;
      }
      st.newest = seq;
      st.newestTS = ts;
      st.endSeen = end;
      st.originQuiet = false;
    }
    // The smallest arrival − timestamp seen estimates the clock offset plus
    // the best one-way delay: deadlines then hold across clock skew.
    const off = now - ts;
    if (!st.haveAny || off < st.offset) st.offset = off;
    st.haveAny = true;
  }

  /**
   * When chunk seq is due, from its own timestamp or extrapolated from the
   * newest manifest's; null when nothing tells.
   * @param {State} st @param {number} seq @param {Chunk|null} c @returns {number|null}
   */
  due(st, seq, c) {
    if (c && c.known) return this.deadline(st, c.time);
    const iv = this.interval(st);
    if (!st.haveAny || iv === 0 || (st.endSeen && seqDiff(seq, st.newest) > 0)) return null;
    return this.deadline(st, st.newestTS + seqDiff(seq, st.newest) * iv);
  }

  /** @param {State} st @param {number} now @returns {boolean} the origin said it has nothing newer, or no manifest for stopAfter intervals (and half) past the next one's time */
  stale(st, now) {
    return st.originQuiet || this.lateBy(st, now, this.stopAfter);
  }

  /**
   * Whether the manifest after the newest is more than n intervals and a
   * half late; false with nothing to judge by, or after the end.
   * @param {State} st @param {number} now @param {number} n @returns {boolean}
   */
  lateBy(st, now, n) {
    const iv = this.interval(st);
    if (!st.haveAny || st.endSeen || st.ended || iv === 0) return false;
    return now > st.newestTS + st.offset + (1 + n) * iv + Math.floor(iv / 2);
  }

  /**
   * Whether the next manifest is half an interval late: time to ask the
   * origin for its newest chunk and tell the rule (origin).
   * @param {State} st @param {number} now @returns {boolean}
   */
  overdue(st, now) {
    return this.lateBy(st, now, 0);
  }

  /**
   * The event: asked at now, the origin said its newest chunk is latest
   * (ok), or had none or did not answer (!ok). Nothing newer than the
   * newest known while the next is overdue: the stream has stopped at the
   * origin (until a newer manifest comes). Report only answers to trust:
   * not a refusal or a rate limit.
   * @param {State} st @param {number} now @param {number} latest @param {boolean} ok
   */
  origin(st, now, latest, ok) {
    if (ok && (!st.haveAny || seqDiff(latest, st.newest) > 0)) {
      st.originQuiet = false;
      return;
    }
    st.originQuiet = this.overdue(st, now);
  }

  /**
   * Moves the playout position at now over what look shows, and returns the
   * decisions in order: start, chunks played, chunks skipped (missed) or
   * dropped for want of a keyframe, the end, a stop or resume.
   * @param {State} st @param {number} now @param {Look} look @returns {Decision[]}
   */
  advance(st, now, look) {
    /** @type {Decision[]} */
    const out = [];
    const stale = this.stale(st, now);
    if (stale !== st.stopped) {
      st.stopped = stale;
      out.push({ op: stale ? 'stop' : 'resume', seq: st.newest, onTime: false });
    }
    if (st.ended) return out;
    if (!st.started) {
      const first = this.start(st, now, look);
      if (first === null) return out;
      st.next = first;
      st.started = true;
      out.push({ op: 'start', seq: first, onTime: false });
    }
    for (let i = 0; i < MAX_STEPS; i++) {
      const seq = st.next;
      const c = look(seq);
      if (c && c.known && c.end) {
        st.ended = true;
        out.push({ op: 'end', seq, onTime: false });
        return out;
      } else if (c && c.known && c.done && st.needKey && !c.keyframe) {
        st.missed++;
        out.push({ op: 'drop', seq, onTime: false });
      } else if (c && c.known && c.done) {
        st.needKey = false;
        const onTime = c.doneAt <= this.deadline(st, c.time);
        if (onTime) st.onTime++;
        st.played++;
        out.push({ op: 'play', seq, onTime });
      } else {
        const dl = this.due(st, seq, c);
        if (dl === null || now <= dl) return out;
        st.missed++;
        st.needKey = st.media;
        out.push({ op: 'miss', seq, onTime: false });
      }
      st.next = (seq + 1) >>> 0;
    }
    return out;
  }

  /**
   * Where playout starts: the oldest chunk in the window that is rebuilt,
   * or whose deadline is far enough off for HTTP fallback to bring it; for
   * media, a keyframe (or the end of the stream).
   * @param {State} st @param {number} now @param {Look} look @returns {number|null}
   */
  start(st, now, look) {
    if (!st.haveAny) return null;
    let first = null;
    for (let i = 0; i < this.window; i++) {
      const seq = (st.newest - i) >>> 0;
      const c = look(seq);
      if (!c || !c.known || (!c.done && !c.end && now > this.deadline(st, c.time) - this.lead)) continue;
      if (st.media && !c.keyframe && !c.end) continue; // a decoder starts at a keyframe (or the stream is over)
      first = seq;
    }
    return first;
  }

  /**
   * The chunks between the playout position and the newest whose manifests
   * never came and whose deadlines have not passed, oldest first, at most
   * n: what a manifest poll asks the origin for besides what is newer.
   * @param {State} st @param {number} now @param {Look} look @param {number} n @returns {number[]}
   */
  gaps(st, now, look, n) {
    /** @type {number[]} */
    const out = [];
    if (!st.started || st.ended) return out;
    let seq = st.next;
    if (seqDiff(st.newest, seq) > this.window) seq = (st.newest - this.window) >>> 0;
    for (; seqDiff(st.newest, seq) > 0 && out.length < n; seq = (seq + 1) >>> 0) {
      const c = look(seq);
      if (c && c.known) continue;
      const dl = this.due(st, seq, c);
      if (dl !== null && now > dl) continue;
      out.push(seq);
    }
    return out;
  }

  /**
   * Whether the oldest chunk gaps() lists has its deadline within the
   * fallback lead (or no known deadline): the trees are not bringing its
   * manifest in time, so a manifest poll should ask the origin now.
   * @param {State} st @param {number} now @param {Look} look @returns {boolean}
   */
  gapUrgent(st, now, look) {
    const g = this.gaps(st, now, look, 1);
    if (g.length === 0) return false;
    const dl = this.due(st, g[0], look(g[0]));
    return dl === null || now >= dl - this.lead;
  }
}
