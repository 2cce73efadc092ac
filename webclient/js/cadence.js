// The rule by which a peer judges a parent silent, twin of
// internal/cadence (the native peer runs the Go one). Pure: no I/O, no
// timers, no clock; times are µs, and the caller says what time it is.
// testdata/vectors/cadence.json, written by the Go tests, holds what the
// Go rule judges in every case; webclient/test/cadence.test.js checks that
// this one judges the same.
//
// A chunk whose first news came more than the tree's slack ago (twice its
// recent lag, at least a quarter interval or the least slack), with
// nothing of it from the tree's parent: behind. Nothing from the parent
// for the stall time while other trees deliver: silent. A link not open
// within the link timeout: stuck. The origin ahead while no tree brought
// the next chunk's news for the slack past its expected time (or twice the
// news' usual lateness): every parent that sent nothing is starved.

/**
 * @typedef {{intervalUs: number, newestAt: number, originAhead: boolean, due: number, newsLagUs: number}} Stream
 * @typedef {{hasParent: boolean, openSince: number, lastRx: number, lagUs: number, waiting: number, aheadOfNews: boolean}} Tree
 * @typedef {''|'behind'|'silent'|'stuck'|'starved'} Reason
 */

export class Rule {
  /**
   * Zero or absent values are the defaults, as in Go's cadence.Config.
   * @param {{silenceUs?: number, linkUs?: number, minSlackUs?: number}} [cfg]
   */
  constructor(cfg = {}) {
    this.silence = cfg.silenceUs && cfg.silenceUs > 0 ? cfg.silenceUs : 1_500_000;
    this.link = cfg.linkUs && cfg.linkUs > 0 ? cfg.linkUs : 6_000_000;
    this.minSlack = cfg.minSlackUs && cfg.minSlackUs > 0 ? cfg.minSlackUs : 300_000;
  }

  /** @param {Stream} s @param {Tree} t @returns {number} how long after a chunk's news tree t may have brought nothing of it (µs) */
  slack(s, t) {
    return Math.max(this.minSlack, Math.trunc(s.intervalUs / 4), 2 * t.lagUs);
  }

  /** @param {Stream} s @returns {number} how long a tree may carry nothing before it counts as stalled (µs) */
  stallAfter(s) {
    return Math.max(this.silence, 2 * s.intervalUs);
  }

  /**
   * Per tree, why its parent counts as silent at now ('' if it does not).
   * @param {number} now @param {Stream} s @param {Tree[]} trees @returns {Reason[]}
   */
  judge(now, s, trees) {
    const quiet = this.stallAfter(s);
    const flowing = trees.some((t) => now - t.lastRx < Math.trunc(quiet / 2));
    const cadence = s.newestAt !== 0 && s.intervalUs > 0 && now - s.newestAt < 3 * s.intervalUs;
    return trees.map((t) => {
      if (!t.hasParent) return '';
      const open = t.openSince !== 0;
      const slack = this.slack(s, t);
      const settled = open && now - t.openSince > s.intervalUs + slack && now - t.lastRx > slack;
      if (cadence && settled && t.waiting !== 0 && now - t.waiting > slack) return 'behind';
      if (open && flowing && now - t.lastRx > quiet && now - t.openSince > quiet) return 'silent';
      if (!open && now - t.lastRx > this.link) return 'stuck';
      if (s.originAhead && s.due !== 0 && now - s.due > Math.max(slack, 2 * s.newsLagUs) && settled && !t.aheadOfNews) return 'starved';
      return '';
    });
  }
}
