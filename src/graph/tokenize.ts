import { createHash, type Hash } from 'node:crypto';

/**
 * A deterministic token for a value, like dask.base.tokenize: equal inputs give equal
 * tokens, so identical pure calls share one key. `keyOf` maps lazy values to their keys.
 */
export function tokenize(parts: readonly unknown[], keyOf: (value: unknown) => string | undefined): string {
  const fast = new Text(null);
  for (const part of parts) feed(fast, part, keyOf, 0);
  if (!fast.sawBytes) return fast.digest();
  // Bytes among them: everything again through SHA-1, which reads them natively.
  const sha = new Text(createHash(ALGORITHM));
  for (const part of parts) feed(sha, part, keyOf, 0);
  return sha.digest();
}

/**
 * What a token is made of, hashed as it comes: text alone — what nearly every task's
 * arguments are — through `Hash64`, in this thread (a call into the crypto binding costs
 * more than the whole hash of a short text, and hashing piece by piece never builds the
 * joined text); or, given a hash, through it, bytes included. A Text without one only
 * notes that bytes came (`tokenize` then starts again with SHA-1).
 */
class Text {
  readonly #fast = new Hash64();
  readonly #hash: Hash | null;
  sawBytes = false;

  constructor(hash: Hash | null) {
    this.#hash = hash;
  }

  update(text: string): this {
    if (this.#hash === null) this.#fast.update(text);
    else this.#hash.update(text);
    return this;
  }

  bytes(bytes: Uint8Array): void {
    if (this.#hash === null) this.sawBytes = true;
    else this.#hash.update(bytes);
  }

  digest(): string {
    return this.#hash === null ? this.#fast.digest() : this.#hash.digest('hex').slice(0, 16);
  }
}

/**
 * 64 bits of text (its UTF-16 code units), as 16 hex digits: two lanes in the manner of
 * MurmurHash3 (x86), each taking two code units a round, mixed into each other at the end.
 * Fed in pieces, it hashes as the pieces joined. Not a cryptographic hash: tokens name the
 * results of calls a client makes itself, and 64 bits keep an accidental clash out of
 * reach (even odds only at some four billion tokens).
 */
export class Hash64 {
  // Seeds: the two halves of the 64-bit golden-ratio constant, as int32 (the lanes stay small integers).
  #h1 = 0x9e3779b9 | 0;
  #h2 = 0x7f4a7c15 | 0;
  #length = 0;
  /** A code unit waiting for the one after it, or -1. */
  #odd = -1;

  update(text: string): this {
    let h1 = this.#h1;
    let h2 = this.#h2;
    let i = 0;
    const n = text.length;
    if (this.#odd >= 0 && n > 0) {
      const k = this.#odd | (text.charCodeAt(0) << 16);
      h1 = round1(h1, k);
      h2 = round2(h2, k);
      this.#odd = -1;
      i = 1;
    }
    for (; i + 1 < n; i += 2) {
      const k = text.charCodeAt(i) | (text.charCodeAt(i + 1) << 16);
      h1 = round1(h1, k);
      h2 = round2(h2, k);
    }
    if (i < n) this.#odd = text.charCodeAt(i);
    this.#h1 = h1;
    this.#h2 = h2;
    this.#length += n;
    return this;
  }

  digest(): string {
    let h1 = this.#h1 ^ this.#length;
    let h2 = this.#h2 ^ this.#length;
    if (this.#odd >= 0) {
      h1 ^= Math.imul(rotl(Math.imul(this.#odd, C1), 15), C2);
      h2 ^= Math.imul(rotl(Math.imul(this.#odd, C3), 16), C4);
    }
    h1 = (h1 + h2) | 0;
    h2 = (h2 + h1) | 0;
    h1 = fmix(h1);
    h2 = fmix(h2);
    h1 = (h1 + h2) | 0;
    h2 = (h2 + h1) | 0;
    return hex16(h1, h2);
  }
}

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;
const C3 = 0x85ebca6b;
const C4 = 0xc2b2ae35;

function round1(h: number, k: number): number {
  h ^= Math.imul(rotl(Math.imul(k, C1), 15), C2);
  return (Math.imul(rotl(h, 13), 5) + 0xe6546b64) | 0;
}

function round2(h: number, k: number): number {
  h ^= Math.imul(rotl(Math.imul(k, C3), 16), C4);
  return (Math.imul(rotl(h, 17), 5) + 0x561ccd1b) | 0;
}

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

/** MurmurHash3's finalizer: every input bit reaches every output bit. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

const DIGITS = Array.from('0123456789abcdef', (c) => c.charCodeAt(0));

/** Two 32-bit words as 16 hex digits, in one flat string (`toString(16)` costs ten times more). */
function hex16(h1: number, h2: number): string {
  const d = DIGITS;
  return String.fromCharCode(
    d[h1 >>> 28]!, d[(h1 >>> 24) & 15]!, d[(h1 >>> 20) & 15]!, d[(h1 >>> 16) & 15]!, d[(h1 >>> 12) & 15]!, d[(h1 >>> 8) & 15]!, d[(h1 >>> 4) & 15]!, d[h1 & 15]!,
    d[h2 >>> 28]!, d[(h2 >>> 24) & 15]!, d[(h2 >>> 20) & 15]!, d[(h2 >>> 16) & 15]!, d[(h2 >>> 12) & 15]!, d[(h2 >>> 8) & 15]!, d[(h2 >>> 4) & 15]!, d[h2 & 15]!,
  );
}

const ALGORITHM = 'sha1';

function feed(h: Text, value: unknown, keyOf: (value: unknown) => string | undefined, depth: number): void {
  switch (typeof value) {
    case 'string':
      h.update(`s${value.length}:`).update(value);
      return;
    case 'number':
      h.update(`n${value};`);
      return;
    case 'bigint':
      h.update(`b${value};`);
      return;
    case 'boolean':
      h.update(value ? 'T' : 'F');
      return;
    case 'undefined':
      h.update('u');
      return;
    case 'function':
      h.update(`f${value.name}:`).update(Function.prototype.toString.call(value));
      return;
    case 'symbol':
      h.update(`y${value.toString()}`);
      return;
    case 'object':
      break;
  }
  if (value === null) {
    h.update('N');
    return;
  }
  const key = keyOf(value);
  if (key !== undefined) {
    h.update(`k${key.length}:`).update(key);
    return;
  }
  if (depth > 64) {
    h.update('…');
    return;
  }
  if (ArrayBuffer.isView(value)) {
    h.update(`v${value.constructor.name}${value.byteLength}:`).bytes(new Uint8Array(value.buffer, value.byteOffset, value.byteLength));
  } else if (value instanceof ArrayBuffer) {
    h.update(`a${value.byteLength}:`).bytes(new Uint8Array(value));
  } else if (Array.isArray(value)) {
    h.update(`[${value.length}`);
    for (const item of value as unknown[]) feed(h, item, keyOf, depth + 1);
    h.update(']');
  } else if (value instanceof Map) {
    h.update(`M${value.size}`);
    for (const [k, v] of value) {
      feed(h, k, keyOf, depth + 1);
      feed(h, v, keyOf, depth + 1);
    }
  } else if (value instanceof Set) {
    h.update(`S${value.size}`);
    for (const v of value) feed(h, v, keyOf, depth + 1);
  } else if (value instanceof Date) {
    h.update(`D${value.getTime()}`);
  } else {
    const entries = Object.keys(value).sort();
    h.update(`{${entries.length}`);
    for (const k of entries) {
      h.update(`${k.length}:`).update(k);
      feed(h, (value as Record<string, unknown>)[k], keyOf, depth + 1);
    }
    h.update('}');
  }
}
