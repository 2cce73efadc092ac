// webclient/js/backoff.js, the browser's tracker reconnect schedule,
// against the shared vectors Go produced (testdata/vectors/reconnect.json,
// written by internal/swarm/reconnect_vectors_test.go): the same delays, to
// the nanosecond, for the same draws. And the Swarm uses it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff, Reconnect } from '../js/backoff.js';
import { Swarm } from '../js/swarm.js';
import { load } from '../../testdata/vectors/vectors.js';

const V = load('reconnect.json');

test('the vectors cover what the policy must do', () => {
  const names = V.cases.map((/** @type {any} */ c) => c.name).join('\n');
  for (const want of ['never welcomed', 'heartbeat', 'does not reset', 'resets', 'no-channel']) {
    assert.ok(names.includes(want), `no case about ${want}`);
  }
});

for (const c of V.cases) {
  test(`same delays as Go: ${c.name}`, () => {
    let draw = 0;
    const r = new Reconnect({ rand: () => draw });
    c.steps.forEach((/** @type {any} */ s, /** @type {number} */ i) => {
      draw = s.rand;
      assert.equal(r.next(!!s.no_channel, s.lasted_ns, s.heartbeat_ns), s.delay_ns, `step ${i}`);
    });
  });
}

test('the default schedule: 250 ms doubling to 10 s, half of each step drawn at random', () => {
  const steps = [250, 500, 1000, 2000, 4000, 8000, 10000, 10000].map((ms) => ms * 1e6);
  for (let run = 0; run < 200; run++) {
    const b = new Backoff();
    for (const [i, d] of steps.entries()) {
      const got = b.next();
      assert.ok(got >= d / 2 && got <= d, `delay ${i} = ${got / 1e6} ms, want in [${d / 2e6}, ${d / 1e6}] ms`);
    }
    assert.equal(b.attempts(), steps.length);
  }
  // Equal jitter spreads clients that lost the tracker together: the
  // third delay covers most of [500 ms, 1 s].
  let lo = Infinity, hi = 0;
  for (let i = 0; i < 2000; i++) {
    const b = new Backoff();
    b.next(); b.next();
    const d = b.next();
    lo = Math.min(lo, d); hi = Math.max(hi, d);
  }
  assert.ok(lo < 550e6 && hi > 950e6, `third delays span [${lo / 1e6}, ${hi / 1e6}] ms`);
});

test('a draw out of range is taken as 0', () => {
  for (const f of [1, -1, NaN]) {
    assert.equal(new Backoff({ rand: () => f }).next(), 125e6);
  }
});

test('the Swarm reconnects on that schedule: capped at two heartbeats once welcomed', () => {
  const s = new Swarm({
    trackerURL: 'http://127.0.0.1:1', channel: 'demo', uploadKbps: 2000,
    onWelcome: () => {}, onData: () => {}, onChildReady: () => {}, report: () => ({}),
  });
  s.reconnect = new Reconnect({ rand: () => 0.999999 });
  // Never welcomed: the tracker is unreachable from the start.
  const cold = [250, 500, 1000, 2000, 4000, 8000, 10000, 10000].map(() => s.retryDelayMs(Date.now()));
  assert.deepEqual(cold.map(Math.round), [250, 500, 1000, 2000, 4000, 8000, 10000, 10000]);
  // Welcomed (heartbeat 2 s), and the session lasted 30 s: the schedule
  // starts again and stops growing at 4 s, the tracker's restore window.
  s.onTracker(JSON.stringify({ type: 'welcome', channel: 'demo', peer_id: 500, resume_token: 'x', trees: 4, k: 3,
    bitrate: 500000, stripe_bps: 166667, public_key: 'AAAA', fallback_url: '', heartbeat_ms: 2000, home: 1 }));
  clearInterval(s.heartbeat);
  const warm = [s.retryDelayMs(s.welcomedAt + 30000)];
  s.welcomedAt = 0; // the attempts that follow are never welcomed
  for (let i = 0; i < 6; i++) warm.push(s.retryDelayMs(Date.now()));
  assert.deepEqual(warm.map(Math.round), [250, 500, 1000, 2000, 4000, 4000, 4000]);
  // A tracker up again without its origin answers no-channel: the
  // schedule starts over, once in the outage.
  s.onTracker(JSON.stringify({ type: 'error', code: 'no-channel', error: 'no channel "demo"' }));
  assert.equal(Math.round(s.retryDelayMs(Date.now())), 250);
  assert.equal(Math.round(s.retryDelayMs(Date.now())), 500);
  s.stopped = true;
});
