// webclient/js/playout.js against the shared vectors Go produced
// (testdata/vectors/playout.json, written by
// internal/playout/vectors_test.go): every scenario's events replayed,
// and at every step the same decisions, in the same order, and the same
// state as the Go rule, which the native peer and the simulator run.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rule, State } from '../js/playout.js';
import { load } from '../../testdata/vectors/vectors.js';

const V = load('playout.json');

test('the vectors cover what the rule must do', () => {
  const names = V.cases.map((/** @type {any} */ c) => c.name).join('\n');
  for (const want of ['two consecutive missing manifests', 'dead origin', 'origin alive with nothing newer', 'newer chunks than arrived', 'keyframe', 'start', 'end of stream']) {
    assert.ok(names.includes(want), `no scenario about ${want}`);
  }
});

for (const c of V.cases) {
  test(`same decisions as Go: ${c.name}`, () => {
    const r = new Rule({ delayUs: c.config.delay_us, leadUs: c.config.lead_us, window: c.config.window,
      intervalUs: c.config.interval_us, stopAfter: c.config.stop_after });
    const st = new State();
    st.media = c.media;
    /** @type {Map<number, import('../js/playout.js').Chunk>} */
    const chunks = new Map();
    const look = (/** @type {number} */ seq) => chunks.get(seq) ?? null;
    c.steps.forEach((/** @type {any} */ s, /** @type {number} */ i) => {
      const at = `step ${i} at +${(s.at - c.steps[0].at) / 1000} ms`;
      assert.ok(Number.isSafeInteger(s.at), `${at}: time not exact in a Number`);
      if (s.manifest) {
        const m = s.manifest;
        chunks.set(m.seq, { known: true, time: m.time, keyframe: m.keyframe, end: m.end, done: false, doneAt: 0 });
        r.manifest(st, s.at, m.seq, m.time, m.end);
      } else if (s.rebuilt !== undefined) {
        const ch = /** @type {import('../js/playout.js').Chunk} */ (chunks.get(s.rebuilt));
        ch.done = true;
        ch.doneAt = s.at;
      } else if (s.advance) {
        const got = r.advance(st, s.at, look).map((d) => (d.op === 'play' && d.onTime ? { op: d.op, seq: d.seq, on_time: true } : { op: d.op, seq: d.seq }));
        assert.deepEqual(got, s.advance.decisions, `${at}: decisions`);
        const w = s.advance.state;
        assert.deepEqual({
          next: st.next, started: st.started, newest: st.newest, offset_us: st.offset, interval_us: r.interval(st),
          played: st.played, on_time: st.onTime, missed: st.missed, need_keyframe: st.needKey, stopped: st.stopped, ended: st.ended,
        }, w, `${at}: state`);
      } else if (s.gaps) {
        assert.deepEqual(r.gaps(st, s.at, look, s.gaps.n), s.gaps.want ?? [], `${at}: gaps`);
        assert.equal(r.gapUrgent(st, s.at, look), s.gaps.urgent, `${at}: gap urgent`);
      } else if (s.origin) {
        assert.equal(r.overdue(st, s.at), s.origin.overdue, `${at}: overdue`);
        r.origin(st, s.at, s.origin.latest, s.origin.ok);
      } else {
        assert.fail(`${at}: unknown step ${JSON.stringify(s)}`);
      }
    });
  });
}
