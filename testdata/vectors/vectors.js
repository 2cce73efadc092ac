// Reads the shared vectors (wire.json, fec.json, playout.json, reconnect.json, cadence.json) for the JavaScript tests:
// the same blob format and data generator as the Go side
// (internal/wire/vectors_test.go, internal/fec/vectors_test.go). See
// README.md here.

import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';

/**
 * A byte string in the vectors: always its length and SHA-256 (hex); the
 * bytes base64 then `pad` zero bytes (inline), or the seed of pattern()
 * that makes them (generated), or neither (digest only).
 * @typedef {{len: number, sha256: string, b64?: string, pad?: number, seed?: number}} Blob
 */

/**
 * Parses one of the vector files next to this module.
 * @param {'wire.json'|'fec.json'|'playout.json'|'reconnect.json'|'cadence.json'} name @returns {any} the parsed JSON
 */
export function load(name) {
  return JSON.parse(readFileSync(new URL(name, import.meta.url), 'utf8'));
}

/**
 * The vectors' deterministic data: xorshift32 from seed ^ 0x9e3779b9, one
 * byte (the top eight bits) per step.
 * @param {number} seed uint32 @param {number} n @returns {Uint8Array}
 */
export function pattern(seed, n) {
  let x = (seed ^ 0x9e3779b9) >>> 0;
  if (x === 0) x = 1;
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** @param {Uint8Array} b @returns {string} SHA-256 of b, hex */
export function sha256hex(b) {
  return createHash('sha256').update(b).digest('hex');
}

/** @param {string} s @returns {Uint8Array<ArrayBuffer>} a plain Uint8Array (not a Buffer) */
export function fromHex(s) {
  return new Uint8Array(Buffer.from(s, 'hex'));
}

/**
 * A blob's bytes, checked against its length and hash.
 * @param {Blob} v @returns {Uint8Array}
 */
export function bytes(v) {
  let b;
  if (v.seed !== undefined) {
    b = pattern(v.seed, v.len);
  } else if (v.b64 !== undefined || v.len === (v.pad ?? 0)) {
    const head = Buffer.from(v.b64 ?? '', 'base64');
    b = new Uint8Array(head.length + (v.pad ?? 0));
    b.set(head);
  } else {
    throw new Error(`blob of ${v.len} bytes is a digest only`);
  }
  if (!matches(v, b)) throw new Error(`blob of ${v.len} bytes: got ${b.length} bytes with SHA-256 ${sha256hex(b)}, want ${v.sha256}`);
  return b;
}

/**
 * Whether b is the blob's bytes (same length and SHA-256).
 * @param {Blob} v @param {Uint8Array} b @returns {boolean}
 */
export function matches(v, b) {
  return b.length === v.len && sha256hex(b) === v.sha256;
}
