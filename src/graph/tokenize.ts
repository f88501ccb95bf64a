import { createHash, type Hash, hash } from 'node:crypto';

/**
 * A deterministic token for a value, like dask.base.tokenize: equal inputs give equal
 * tokens, so identical pure calls share one key. `keyOf` maps lazy values to their keys.
 */
export function tokenize(parts: readonly unknown[], keyOf: (value: unknown) => string | undefined): string {
  const h = new Text();
  for (const part of parts) feed(h, part, keyOf, 0);
  return h.digest().slice(0, 16);
}

/**
 * A hash fed text in one piece: the pieces are joined here and hashed at once, in one call
 * and with no hash object at all unless bytes come too (binary values), since each call
 * into the hash costs more than the small piece it adds, and a hash object per task is
 * garbage the collector must finalize. The digest is the same as feeding every piece.
 */
class Text {
  #hash: Hash | null = null;
  #text = '';

  update(text: string): this {
    this.#text += text;
    return this;
  }

  bytes(bytes: Uint8Array): void {
    this.#hash ??= createHash(ALGORITHM);
    this.#flush(this.#hash);
    this.#hash.update(bytes);
  }

  digest(): string {
    if (this.#hash === null) return hash(ALGORITHM, this.#text, 'hex');
    this.#flush(this.#hash);
    return this.#hash.digest('hex');
  }

  #flush(to: Hash): void {
    if (this.#text === '') return;
    to.update(this.#text);
    this.#text = '';
  }
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
