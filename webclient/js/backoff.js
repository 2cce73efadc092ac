// The browser's reconnect policy for a lost tracker: the twin of
// internal/backoff.Backoff (jittered exponential backoff, equal jitter)
// and of the peer's policy in internal/swarm (reconnect in member.go):
// 250 ms doubling, half of each delay drawn at random, capped at 10 s
// before the tracker's first welcome and at two heartbeat intervals (the
// restarted tracker's restore window) after it, reset by a session that
// lasted, restarted once per outage by a "no-channel" answer.
// testdata/vectors/reconnect.json, written by the Go side, holds the
// schedules both must give for the same draws (docs/OPERATIONS.md,
// "Reconnects").
//
// Delays are in nanoseconds, as Go's time.Duration, so that both sides
// round the same way; the caller divides by 1e6 for setTimeout.

/** Backoff's first step's upper bound, ns (internal/backoff.DefaultMin). */
export const DEFAULT_MIN_NS = 250e6;
/** Backoff's cap, ns (internal/backoff.DefaultMax). */
export const DEFAULT_MAX_NS = 10e9;

/**
 * Jittered exponential backoff with equal jitter: the n-th delay (from 0)
 * is d/2 + rand·d/2 where d = min(max, min·2ⁿ).
 */
export class Backoff {
  /**
   * @param {{minNs?: number, maxNs?: number, lastedNs?: number, rand?: () => number}} [cfg]
   *   zero or absent fields are the defaults: 250 ms, 10 s, lasted = the cap, Math.random
   */
  constructor(cfg = {}) {
    this.minNs = cfg.minNs ?? 0;
    this.maxNs = cfg.maxNs ?? 0;
    this.lastedNs = cfg.lastedNs ?? 0;
    this.rand = cfg.rand ?? Math.random;
    this.n = 0; // delays handed out since the last reset
  }

  /** @returns {number} */
  first() {
    return this.minNs > 0 ? this.minNs : DEFAULT_MIN_NS;
  }

  /** @returns {number} */
  ceiling() {
    return Math.max(this.maxNs > 0 ? this.maxNs : DEFAULT_MAX_NS, this.first());
  }

  /** How long a session must last for done() to reset the schedule, ns. @returns {number} */
  lastedAfter() {
    return this.lastedNs > 0 ? this.lastedNs : this.ceiling();
  }

  /** The delay before the next attempt, ns; counts it. @returns {number} */
  next() {
    let d = this.ceiling();
    if (this.n < 62) {
      const s = this.first() * 2 ** this.n;
      if (s < d) d = s;
    }
    this.n++;
    let f = this.rand();
    if (!(f >= 0 && f < 1)) f = 0;
    const half = Math.trunc(d / 2);
    return half + Math.trunc(f * half);
  }

  /** A session that connected ended after lastedNs: one that lasted resets. @param {number} lastedNs */
  done(lastedNs) {
    if (lastedNs >= this.lastedAfter()) this.reset();
  }

  reset() {
    this.n = 0;
  }

  /** Delays handed out since the last reset. @returns {number} */
  attempts() {
    return this.n;
  }
}

/**
 * A peer's reconnect schedule (internal/swarm's reconnect for a peer):
 * the cap is the Backoff's default until the tracker welcomed us, then
 * two heartbeat intervals (at most the default); "no-channel" restarts
 * the schedule once per outage.
 */
export class Reconnect {
  /** @param {{rand?: () => number}} [cfg] */
  constructor(cfg = {}) {
    this.bo = new Backoff({ rand: cfg.rand });
    this.answered = false; // the tracker answered no-channel in this outage
  }

  /**
   * The delay before the next attempt after a session that ended, ns.
   * @param {boolean} noChannel the tracker answered "no-channel"
   * @param {number} lastedNs how long the session had been welcomed, ns (< 0: never)
   * @param {number} heartbeatNs the interval of the last welcome, ns (0: none)
   * @returns {number}
   */
  next(noChannel, lastedNs, heartbeatNs) {
    if (lastedNs >= 0) {
      this.bo.done(lastedNs);
      this.answered = false;
      if (heartbeatNs > 0) this.bo.maxNs = Math.min(DEFAULT_MAX_NS, 2 * heartbeatNs);
    }
    if (noChannel && !this.answered) {
      this.answered = true;
      this.bo.reset();
    }
    return this.bo.next();
  }
}
