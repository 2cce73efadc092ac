// webclient/js/cadence.js against the shared vectors Go produced
// (testdata/vectors/cadence.json, written by
// internal/cadence/vectors_test.go): in every case the same reasons, the
// same slack per tree and the same stall time as the Go rule, which the
// native peer runs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rule } from '../js/cadence.js';
import { load } from '../../testdata/vectors/vectors.js';

const V = load('cadence.json');

test('the vectors cover every reason', () => {
  const want = new Set(V.cases.flatMap((/** @type {any} */ c) => c.want));
  for (const r of ['', 'behind', 'silent', 'stuck', 'starved']) assert.ok(want.has(r), `no case judged ${JSON.stringify(r)}`);
});

for (const c of V.cases) {
  test(`same judgement as Go: ${c.name}`, () => {
    const r = new Rule({ silenceUs: c.config.silence_us, linkUs: c.config.link_us, minSlackUs: c.config.min_slack_us });
    const s = { intervalUs: c.stream.interval_us, newestAt: c.stream.newest_at, originAhead: c.stream.origin_ahead, due: c.stream.due, newsLagUs: c.stream.news_lag_us };
    const trees = c.trees.map((/** @type {any} */ t) => ({
      hasParent: t.has_parent, openSince: t.open_since, lastRx: t.last_rx, lagUs: t.lag_us, waiting: t.waiting, aheadOfNews: t.ahead_of_news,
    }));
    for (const t of trees) for (const k of ['openSince', 'lastRx', 'waiting']) assert.ok(Number.isSafeInteger(t[k]), `${k} not exact in a Number`);
    assert.deepEqual(r.judge(c.now, s, trees), c.want);
    assert.deepEqual(trees.map((/** @type {any} */ t) => r.slack(s, t)), c.slack_us);
    assert.equal(r.stallAfter(s), c.stall_after_us);
  });
}
