// The overlay's words for viewers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeSources, describeRelay } from '../js/words.js';

const p = (/** @type {number} */ tree, /** @type {number} */ peerId, /** @type {string} */ kind) => ({ tree, peerId, kind, open: true });

test('sources are said in words: the origin, distinct peers, HTTP stripes', () => {
  assert.equal(describeSources([p(0, 0, 'origin'), p(1, 0, 'origin'), p(2, 0, 'origin'), p(3, 0, 'http')]), 'the origin, HTTP for 1 of 4 stripes');
  assert.equal(describeSources([p(0, 0, 'origin'), p(1, 7, 'browser'), p(2, 9, 'native'), p(3, 7, 'browser')]), 'the origin and 2 peers');
  assert.equal(describeSources([p(0, 7, 'browser')]), '1 peer');
  assert.equal(describeSources([p(0, 0, ''), p(1, 0, '')]), 'connecting…');
  assert.equal(describeSources([]), 'connecting…');
});

test('relaying counts the peers relayed to now, as the dashboard counts children', () => {
  assert.equal(describeRelay(930_000, 2), 'you relayed 0.93 MB; relaying to 2 peers now');
  assert.equal(describeRelay(0, 1), 'you relayed 0.00 MB; relaying to 1 peer now');
});
