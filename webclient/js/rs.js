// Reed–Solomon erasure coding, the byte-for-byte twin of internal/fec
// (github.com/klauspost/reedsolomon v1.14.2 with its default options):
// GF(2^8) with the polynomial 0x11d and generator 2; the coding matrix is
// an M×k Vandermonde matrix (row r, column c: r^c) multiplied by the
// inverse of its top k×k square, so shards 0..k−1 are the chunk itself,
// zero-padded to k × ceil(length / k) bytes, and shards k..M−1 parity.
// Any k shards rebuild the chunk; like klauspost, reconstruction decodes
// from the first k present shards in index order, so even inconsistent
// (corrupt) input gives the same bytes as the Go peer. Checked against
// testdata/vectors/fec.json by webclient/test/rs.test.js.

/** The most shards a chunk is cut into (fec.MaxShards). */
export const MAX_SHARDS = 32;

/**
 * Go's fec sentinel a FecError wraps: ErrTooFewShards, ErrShardSize,
 * ErrShardCount, ErrLength; ErrConfig for fec.New's (unnamed) errors.
 * @typedef {'ErrTooFewShards'|'ErrShardSize'|'ErrShardCount'|'ErrLength'|'ErrConfig'} FecErrorCode
 */

/** The text of Go's fec sentinels, by code. @type {Readonly<Record<Exclude<FecErrorCode, 'ErrConfig'>, string>>} */
export const FEC_ERRORS = Object.freeze({
  ErrTooFewShards: 'fec: fewer than k shards present',
  ErrShardSize: 'fec: shards differ in size',
  ErrShardCount: 'fec: wrong number of shards',
  ErrLength: 'fec: length does not fit the shards',
});

/** An error with the same text as Go's fec error, and its sentinel in `code`. */
export class FecError extends Error {
  /**
   * @param {FecErrorCode} code
   * @param {string} [detail] what follows the sentinel's text, as Go's fmt.Errorf("%w: ...") does
   */
  constructor(code, detail) {
    const base = code === 'ErrConfig' ? '' : FEC_ERRORS[code];
    super(code === 'ErrConfig' ? `fec: ${detail}` : detail === undefined ? base : `${base}: ${detail}`);
    this.name = 'FecError';
    /** @type {FecErrorCode} */
    this.code = code;
  }
}

// GF(2^8) tables: EXP[i] = 2^i (doubled so that EXP[LOG[a] + LOG[b]] needs
// no reduction), LOG its inverse, MUL the full 256×256 product table
// (MUL[a << 8 | b] = a·b) that the coding loops index.
const EXP = new Uint8Array(512);
const LOG = new Uint8Array(256);
{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = x;
    LOG[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= 0x11d;
  }
  for (let i = 255; i < 512; i++) EXP[i] = EXP[i - 255];
}
const MUL = new Uint8Array(65536);
for (let a = 1; a < 256; a++) {
  for (let b = 1; b < 256; b++) MUL[(a << 8) | b] = EXP[LOG[a] + LOG[b]];
}

/** @param {number} a @param {number} b @returns {number} a·b in GF(2^8) */
function gmul(a, b) {
  return MUL[(a << 8) | b];
}

/** @param {number} a nonzero @returns {number} 1/a in GF(2^8) */
function ginv(a) {
  return EXP[255 - LOG[a]];
}

/** @param {number} a @param {number} n @returns {number} a^n (0^0 = 1), as klauspost's galExp */
function gexp(a, n) {
  if (n === 0) return 1;
  if (a === 0) return 0;
  return EXP[(LOG[a] * n) % 255];
}

/**
 * Inverts a square matrix (rows of bytes) by Gauss–Jordan elimination.
 * @param {Uint8Array[]} m @returns {Uint8Array[]} a new matrix
 */
function invert(m) {
  const n = m.length;
  const w = m.map((row, r) => {
    const x = new Uint8Array(2 * n);
    x.set(row);
    x[n + r] = 1;
    return x;
  });
  for (let c = 0; c < n; c++) {
    if (w[c][c] === 0) {
      let r = c + 1;
      while (r < n && w[r][c] === 0) r++;
      if (r === n) throw new Error('rs: singular matrix'); // never for the Vandermonde-derived rows used here
      [w[c], w[r]] = [w[r], w[c]];
    }
    const row = w[c];
    if (row[c] !== 1) {
      const s = ginv(row[c]) << 8;
      for (let j = 0; j < 2 * n; j++) row[j] = MUL[s | row[j]];
    }
    for (let r = 0; r < n; r++) {
      const f = w[r][c];
      if (r === c || f === 0) continue;
      const s = f << 8;
      const dst = w[r];
      for (let j = 0; j < 2 * n; j++) dst[j] ^= MUL[s | row[j]];
    }
  }
  return w.map((row) => row.slice(n));
}

/**
 * out = Σ coefs[i]·inputs[i], byte by byte, over GF(2^8).
 * @param {Uint8Array} coefs @param {Uint8Array[]} inputs @param {Uint8Array} out
 */
function combine(coefs, inputs, out) {
  const n = out.length;
  let first = true;
  for (let i = 0; i < inputs.length; i++) {
    const c = coefs[i];
    if (c === 0) continue;
    const src = inputs[i];
    if (c === 1) {
      if (first) out.set(src.subarray(0, n));
      else for (let j = 0; j < n; j++) out[j] ^= src[j];
    } else {
      // Indexing MUL directly is faster on V8 than through a 256-byte subarray.
      const t = c << 8;
      if (first) for (let j = 0; j < n; j++) out[j] = MUL[t | src[j]];
      else for (let j = 0; j < n; j++) out[j] ^= MUL[t | src[j]];
    }
    first = false;
  }
  if (first) out.fill(0);
}

/** Decode matrices kept per coder, by the set of shards they decode from. */
const MAX_CACHED = 256;

/**
 * Erasure coder for one (k, M): any k of the M shards rebuild a chunk.
 * Mirrors internal/fec.Coder (New, ShardSize, Encode, Reconstruct,
 * Regenerate) and gives the same bytes.
 */
export class ReedSolomon {
  /**
   * @param {number} k shards that rebuild a chunk, 1 ≤ k ≤ m
   * @param {number} m shards a chunk is cut into, 1 ≤ m ≤ MAX_SHARDS
   * @throws {FecError} (code ErrConfig) with Go's text when k or m is out of range
   */
  constructor(k, m) {
    if (!Number.isInteger(m) || m < 1 || m > MAX_SHARDS) {
      throw new FecError('ErrConfig', `M (shards) must be in [1, ${MAX_SHARDS}], got ${m}`);
    }
    if (!Number.isInteger(k) || k < 1 || k > m) throw new FecError('ErrConfig', `k must be in [1, M=${m}], got ${k}`);
    /** @readonly */ this.k = k;
    /** @readonly */ this.m = m;
    // parity[p] is row k+p of the coding matrix: Vandermonde × inverse of its top square.
    /** @type {Uint8Array[]} */
    this.parity = [];
    if (k < m) {
      const vm = Array.from({ length: m }, (_, r) => Uint8Array.from({ length: k }, (_, c) => gexp(r, c)));
      const topInv = invert(vm.slice(0, k));
      for (let r = k; r < m; r++) this.parity.push(mulRow(vm[r], topInv));
    }
    /** @type {Map<number, Uint8Array[]>} decode matrix (inverse of the used rows) by bit mask of the rows used */
    this.decoders = new Map();
  }

  /**
   * Bytes in each shard of a chunk of length bytes: ceil(length / k).
   * @param {number} length @returns {number}
   */
  shardSize(length) {
    return Math.ceil(length / this.k);
  }

  /**
   * Cuts chunk into M shards of shardSize(chunk.length) bytes, each in its
   * own fresh buffer: k data shards (the chunk, zero-padded) then M − k
   * parity. An empty chunk gives M empty shards.
   * @param {Uint8Array} chunk @returns {Uint8Array[]}
   */
  encode(chunk) {
    const size = this.shardSize(chunk.length);
    /** @type {Uint8Array[]} */
    const shards = [];
    for (let i = 0; i < this.m; i++) shards.push(new Uint8Array(size));
    for (let i = 0; i < this.k; i++) {
      const off = i * size;
      if (off < chunk.length) shards[i].set(chunk.subarray(off, Math.min(off + size, chunk.length)));
    }
    if (size > 0) {
      const data = shards.slice(0, this.k);
      for (let p = 0; p < this.parity.length; p++) combine(this.parity[p], data, shards[this.k + p]);
    }
    return shards;
  }

  /**
   * Validates a shard set as fec's check does: M entries, at least k
   * present (not null or undefined), all of one size.
   * @param {(Uint8Array|null|undefined)[]} shards @returns {number} the shard size
   */
  check(shards) {
    if (shards.length !== this.m) throw new FecError('ErrShardCount', `got ${shards.length}, want ${this.m}`);
    let present = 0;
    let size = -1;
    for (const s of shards) {
      if (s == null) continue;
      present++;
      if (size >= 0 && s.length !== size) throw new FecError('ErrShardSize');
      size = s.length;
    }
    if (present < this.k) throw new FecError('ErrTooFewShards', `have ${present}, need ${this.k}`);
    return size;
  }

  /**
   * The decode matrix for the first k present shards (cached by which
   * they are), and those shards.
   * @param {(Uint8Array|null|undefined)[]} shards
   * @returns {{dec: Uint8Array[], rows: number[], inputs: Uint8Array[]}}
   */
  decoder(shards) {
    /** @type {number[]} */
    const rows = [];
    /** @type {Uint8Array[]} */
    const inputs = [];
    let mask = 0;
    for (let i = 0; i < this.m && rows.length < this.k; i++) {
      const s = shards[i];
      if (s == null) continue;
      rows.push(i);
      inputs.push(s);
      mask = (mask | (1 << i)) >>> 0;
    }
    let dec = this.decoders.get(mask);
    if (!dec) {
      dec = invert(rows.map((r) => this.row(r)));
      if (this.decoders.size >= MAX_CACHED) this.decoders.clear();
      this.decoders.set(mask, dec);
    }
    return { dec, rows, inputs };
  }

  /** @param {number} r @returns {Uint8Array} row r of the coding matrix */
  row(r) {
    if (r >= this.k) return this.parity[r - this.k];
    const x = new Uint8Array(this.k);
    x[r] = 1;
    return x;
  }

  /**
   * Rebuilds the chunk of length bytes from shards, in which missing ones
   * are null (any k suffice). Missing data shards are filled in shards as
   * a side effect, as Go's Reconstruct does.
   * @param {(Uint8Array|null|undefined)[]} shards
   * @param {number} length the chunk's length (the manifest's)
   * @returns {Uint8Array} the chunk, fresh memory
   * @throws {FecError} ErrShardCount, ErrShardSize, ErrTooFewShards or ErrLength, with Go's text
   */
  reconstruct(shards, length) {
    const size = this.check(shards);
    if (!Number.isInteger(length) || length < 0 || this.shardSize(length) !== size) {
      throw new FecError('ErrLength', `${length} bytes in ${this.k} shards of ${size}`);
    }
    const out = new Uint8Array(length);
    if (size === 0) return out;
    let missing = false;
    for (let i = 0; i < this.k; i++) if (shards[i] == null) missing = true;
    if (missing) {
      const { dec, inputs } = this.decoder(shards);
      for (let i = 0; i < this.k; i++) {
        if (shards[i] != null) continue;
        const s = new Uint8Array(size);
        combine(dec[i], inputs, s);
        shards[i] = s;
      }
    }
    for (let i = 0, off = 0; i < this.k && off < length; i++, off += size) {
      const s = /** @type {Uint8Array} */ (shards[i]);
      out.set(off + size <= length ? s : s.subarray(0, length - off), off);
    }
    return out;
  }

  /**
   * Fills every missing (null) shard in place, data and parity, from any k
   * present, so a relaying peer can forward a shard it never received.
   * @param {(Uint8Array|null|undefined)[]} shards
   * @returns {void}
   * @throws {FecError} ErrShardCount, ErrShardSize or ErrTooFewShards, with Go's text
   */
  regenerate(shards) {
    const size = this.check(shards);
    if (size === 0) {
      for (let i = 0; i < shards.length; i++) if (shards[i] == null) shards[i] = new Uint8Array(0);
      return;
    }
    if (this.k === this.m || !shards.some((s) => s == null)) return;
    const { dec, inputs } = this.decoder(shards);
    for (let i = 0; i < this.m; i++) {
      if (shards[i] != null) continue;
      // A data shard is its decode row; a parity shard its coding row
      // times the decode matrix, applied to the same k inputs.
      const coefs = i < this.k ? dec[i] : mulRow(this.parity[i - this.k], dec);
      const s = new Uint8Array(size);
      combine(coefs, inputs, s);
      shards[i] = s;
    }
  }
}

/**
 * row × matrix over GF(2^8).
 * @param {Uint8Array} row @param {Uint8Array[]} m @returns {Uint8Array}
 */
function mulRow(row, m) {
  const out = new Uint8Array(m[0].length);
  for (let c = 0; c < out.length; c++) {
    let x = 0;
    for (let i = 0; i < row.length; i++) x ^= gmul(row[i], m[i][c]);
    out[c] = x;
  }
  return out;
}
