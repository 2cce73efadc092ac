// Words for viewers: what the watch page's overlay says about where the
// stream comes from, without the trees' jargon (the per-tree detail is
// behind a toggle). test/words.test.js checks them under node --test.

/**
 * @typedef {{tree: number, peerId: number, kind: string, open: boolean}} ParentInfo
 */

/**
 * describeSources says where this viewer's stream comes from: "the origin
 * and 2 peers", "3 peers", plus "HTTP for 1 of 4 stripes" while some
 * stripes come over HTTP fallback; "connecting…" before any.
 * @param {ParentInfo[]} parents one entry per tree
 * @returns {string}
 */
export function describeSources(parents) {
  let origin = false;
  const peers = new Set();
  let http = 0;
  for (const p of parents) {
    if (p.kind === 'http') http++;
    else if (p.kind === 'origin' || (p.kind && p.peerId === 0)) origin = true;
    else if (p.kind) peers.add(p.peerId);
  }
  const parts = [];
  if (origin) parts.push('the origin');
  if (peers.size) parts.push(`${peers.size} peer${peers.size === 1 ? '' : 's'}`);
  let s = parts.join(' and ');
  if (http) s += `${s ? ', ' : ''}HTTP for ${http} of ${parents.length} stripe${parents.length === 1 ? '' : 's'}`;
  return s || 'connecting…';
}

/**
 * describeRelay says what this viewer gives: the bytes it relayed and
 * the peers it relays to now, counted as the dashboard counts children.
 * @param {number} bytes
 * @param {number} children
 * @returns {string}
 */
export function describeRelay(bytes, children) {
  return `you relayed ${(bytes / 1e6).toFixed(2)} MB; relaying to ${children} peer${children === 1 ? '' : 's'} now`;
}
