import { UnserializableError } from '../errors.js';
import type { BufferPool } from './buffer-pool.js';

const CLONEABLE_PROTOTYPES: ReadonlySet<unknown> = new Set<unknown>([
  Object.prototype, Array.prototype, Map.prototype, Set.prototype, Date.prototype, RegExp.prototype,
  ArrayBuffer.prototype, SharedArrayBuffer.prototype, DataView.prototype, Boolean.prototype,
  Number.prototype, String.prototype, BigInt.prototype, null,
]);

/**
 * Throws UnserializableError (naming `key` and the path inside the value) unless the value
 * survives structured clone intact: no functions or symbols, and no class instances, which
 * would arrive as plain objects and silently lose their methods.
 */
export function assertPortable(value: unknown, key: string): void {
  const problem = findProblem(value, '', new Set(), undefined);
  if (problem !== null) throw new UnserializableError(key, problem.path, `${problem.reason}; ${problem.reason.startsWith('is a Promise') ? 'return the awaited value instead' : 'return plain data'}`);
}

/**
 * Where a value would not survive structured clone intact, and why; null when it would.
 * `allow` lets a caller accept objects of its own classes (refs in a graph, say) as they are.
 */
export function portabilityProblem(value: unknown, allow?: (value: object) => boolean): { path: string; reason: string } | null {
  return findProblem(value, '', new Set(), allow);
}

function findProblem(value: unknown, path: string, seen: Set<object>, allow: ((value: object) => boolean) | undefined): { path: string; reason: string } | null {
  switch (typeof value) {
    case 'number': case 'string': case 'boolean': case 'undefined': case 'bigint':
      return null;
    case 'function':
      return { path, reason: `is a function (${value.name === '' ? 'anonymous' : value.name})` };
    case 'symbol':
      return { path, reason: `is a symbol (${value.toString()})` };
    case 'object':
      break;
  }
  if (value === null || ArrayBuffer.isView(value)) return null;
  if (seen.has(value) || allow?.(value) === true) return null;
  seen.add(value);
  const proto: unknown = Object.getPrototypeOf(value);
  if (value instanceof Error) {
    return null;
  }
  if (!CLONEABLE_PROTOTYPES.has(proto)) {
    const name = (proto as { constructor?: { name?: string } } | null)?.constructor?.name ?? 'unknown';
    if (value instanceof Promise) return { path, reason: 'is a Promise' };
    return { path, reason: `is an instance of class ${name}, which would arrive as a plain object without its methods` };
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (typeof item === 'number' || typeof item === 'string') continue;
      const p = findProblem(item, `${path}[${i}]`, seen, allow);
      if (p !== null) return p;
    }
    return null;
  }
  if (value instanceof Map) {
    for (const [k, v] of value) {
      const p = findProblem(k, `${path}<map key>`, seen, allow) ?? findProblem(v, `${path}.get(${describeKey(k)})`, seen, allow);
      if (p !== null) return p;
    }
    return null;
  }
  if (value instanceof Set) {
    for (const v of value) {
      const p = findProblem(v, `${path}<set member>`, seen, allow);
      if (p !== null) return p;
    }
    return null;
  }
  if (proto === Object.prototype || proto === null) {
    for (const k of Object.keys(value)) {
      const p = findProblem((value as Record<string, unknown>)[k], `${path}.${k}`, seen, allow);
      if (p !== null) return p;
    }
  }
  return null;
}

function describeKey(k: unknown): string {
  return typeof k === 'string' ? JSON.stringify(k) : String(k);
}

/**
 * ArrayBuffers inside a value that may be moved rather than copied to another thread: those
 * behind typed arrays, DataViews and bare ArrayBuffers, in the value itself or one level
 * down in an array or plain object. Deeper ones are copied; shared memory never moves.
 */
export function transferables(value: unknown, out: ArrayBuffer[] = []): ArrayBuffer[] {
  eachMovable(value, (item) => {
    addBuffer(item, out);
    return item;
  });
  return out;
}

/**
 * Calls `visit` where a buffer may move between threads: on the value, then, unless `visit`
 * replaced it, on each item of an array (whose first item is an object) or of a plain
 * object. Returns the value, rebuilt one level deep where `visit` replaced an item.
 */
function eachMovable(value: unknown, visit: (item: unknown) => unknown): unknown {
  const own = visit(value);
  if (own !== value) return own;
  if (Array.isArray(value)) {
    const first: unknown = value[0];
    if (typeof first !== 'object' || first === null) return value;
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const replaced = visit(item);
      if (replaced !== item) (out ??= value.slice())[i] = replaced;
    }
    return out ?? value;
  }
  if (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    let out: Record<string, unknown> | undefined;
    for (const [name, item] of Object.entries(value)) {
      const replaced = visit(item);
      if (replaced !== item) (out ??= { ...value })[name] = replaced;
    }
    return out ?? value;
  }
  return value;
}

/**
 * Calls `visit` on each ArrayBuffer reached from `values` — behind a view, or itself, at any
 * depth in arrays, plain objects, Maps and Sets — once per place it is reached; `visit`
 * returning false ends the walk. False when the walk would pass `budget` objects and array
 * items (it stops there, and the caller cannot know it saw every buffer), else true.
 */
export function eachBuffer(values: readonly unknown[], visit: (buffer: ArrayBufferLike) => boolean | undefined, budget = 100_000): boolean {
  const stack: unknown[] = [...values];
  const seen = new Set<object>();
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value !== 'object' || value === null || seen.has(value)) continue;
    if (--budget < 0) return false;
    seen.add(value);
    let buffer: ArrayBufferLike | undefined;
    if (ArrayBuffer.isView(value)) buffer = value.buffer;
    else if (value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) buffer = value;
    else if (Array.isArray(value)) {
      if ((budget -= value.length) < 0) return false;
      for (const item of value as unknown[]) if (typeof item === 'object' && item !== null) stack.push(item);
    } else if (value instanceof Map) {
      for (const [k, v] of value) stack.push(k, v);
    } else if (value instanceof Set) {
      for (const v of value) stack.push(v);
    } else {
      for (const v of Object.values(value)) stack.push(v);
    }
    if (buffer !== undefined && visit(buffer) === false) return true;
  }
  return true;
}

/**
 * Of `buffers`, those nothing in `values` refers to (as `eachBuffer` reaches them). An
 * empty list when the walk would pass `budget`: a value too large to search is taken to
 * refer to them all.
 */
export function unreferenced(buffers: readonly ArrayBuffer[], values: readonly unknown[], budget = 100_000): ArrayBuffer[] {
  const left = new Set<ArrayBufferLike>(buffers);
  const whole = eachBuffer(values, (buffer) => {
    left.delete(buffer);
    return left.size > 0;
  }, budget);
  return whole ? ([...left] as ArrayBuffer[]) : [];
}

// Small buffers are cheaper to copy than to detach and re-wrap.
const MIN_TRANSFER_BYTES = 64 * 1024;

/**
 * A value to post to another thread that keeps the original: what structured clone would
 * deliver, with each large buffer (as `transferables` finds them) copied here once and its
 * copy added to `transfer`. Cloning copies a buffer twice — into the message, then out of it
 * on the other side, each time into fresh memory — so for 64 MiB this halves the cost.
 * `copies` keeps one copy per buffer across the values of one message, so that values
 * sharing a buffer share one there too, as with cloning. A large view onto part of its
 * buffer (a value decoded in place from a received frame) arrives over a copy of its own
 * bytes, at offset 0: a clone would copy the rest of the buffer too.
 *
 * The copies are written into buffers from `pool` where it has one of the size.
 *
 *   const transfer: ArrayBuffer[] = [];
 *   port.postMessage(copiedForTransfer(value, transfer, new Map()), transfer);
 */
export function copiedForTransfer(value: unknown, transfer: ArrayBuffer[], copies: Map<ArrayBuffer, ArrayBuffer>, pool?: BufferPool): unknown {
  return eachMovable(value, (item) => copiedBuffer(item, transfer, copies, pool));
}

// Below this a clone (two copies, no detaching) costs no more than a copy and a transfer.
export const MIN_COPY_TRANSFER_BYTES = 256 * 1024;

type ViewConstructor = new (buffer: ArrayBuffer) => ArrayBufferView;

/**
 * The buffers inside `value` that `copiedForTransfer` copies (the rest a clone copies when
 * the message is posted, which may be later).
 */
export function copiedBuffers(value: unknown): Set<ArrayBuffer> {
  const out = new Set<ArrayBuffer>();
  eachMovable(value, (item) => {
    const buffer = copiedSource(item);
    if (buffer !== null) out.add(buffer);
    return item;
  });
  return out;
}

/** The buffer behind `value` when it is one `copiedForTransfer` copies: large, and not resizable. */
function copiedSource(value: unknown): ArrayBuffer | null {
  const view = ArrayBuffer.isView(value);
  const buffer: unknown = view ? value.buffer : value;
  if (!(buffer instanceof ArrayBuffer) || (buffer as { resizable?: boolean }).resizable === true) return null;
  return (view ? value.byteLength : buffer.byteLength) < MIN_COPY_TRANSFER_BYTES ? null : buffer;
}

function copiedBuffer(value: unknown, transfer: ArrayBuffer[], copies: Map<ArrayBuffer, ArrayBuffer>, pool: BufferPool | undefined): unknown {
  const buffer = copiedSource(value);
  if (buffer === null) return value;
  if (!ArrayBuffer.isView(value)) return copyOf(buffer, transfer, copies, pool);
  // A view onto part of a buffer (a value decoded in place from a received frame, say)
  // takes its own bytes only: a clone would copy the whole buffer, twice.
  const whole = value.byteOffset === 0 && value.byteLength === buffer.byteLength;
  let copy: ArrayBuffer;
  if (whole) {
    copy = copyOf(buffer, transfer, copies, pool);
  } else {
    copy = copyBytes(buffer, value.byteOffset, value.byteLength, pool);
    transfer.push(copy);
  }
  // The view's intrinsic type, as a clone delivers it (a Buffer arrives as a Uint8Array).
  if (value instanceof DataView) return new DataView(copy);
  const Type = (globalThis as unknown as Record<string, ViewConstructor>)[(value as Uint8Array)[Symbol.toStringTag]]!;
  return new Type(copy);
}

function copyOf(buffer: ArrayBuffer, transfer: ArrayBuffer[], copies: Map<ArrayBuffer, ArrayBuffer>, pool: BufferPool | undefined): ArrayBuffer {
  let copy = copies.get(buffer);
  if (copy === undefined) {
    copies.set(buffer, (copy = copyBytes(buffer, 0, buffer.byteLength, pool)));
    transfer.push(copy);
  }
  return copy;
}

function copyBytes(buffer: ArrayBuffer, offset: number, length: number, pool: BufferPool | undefined): ArrayBuffer {
  const reused = pool?.take(length);
  if (reused === undefined) return buffer.slice(offset, offset + length);
  new Uint8Array(reused).set(new Uint8Array(buffer, offset, length));
  return reused;
}

function addBuffer(value: unknown, out: ArrayBuffer[]): void {
  let buffer: unknown;
  if (ArrayBuffer.isView(value)) {
    // A view onto part of a larger buffer (a Buffer from Node's pool, say) must be copied.
    if (value.byteOffset !== 0 || value.byteLength !== value.buffer.byteLength) return;
    buffer = value.buffer;
  } else if (value instanceof ArrayBuffer) {
    buffer = value;
  }
  if (buffer instanceof ArrayBuffer && buffer.byteLength >= MIN_TRANSFER_BYTES && !out.includes(buffer)) out.push(buffer);
}
