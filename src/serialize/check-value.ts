import { UnserializableError } from '../errors.js';

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
 *   const transfer: ArrayBuffer[] = [];
 *   port.postMessage(copiedForTransfer(value, transfer, new Map()), transfer);
 */
export function copiedForTransfer(value: unknown, transfer: ArrayBuffer[], copies: Map<ArrayBuffer, ArrayBuffer>): unknown {
  return eachMovable(value, (item) => copiedBuffer(item, transfer, copies));
}

// Below this a clone (two copies, no detaching) costs no more than a copy and a transfer.
const MIN_COPY_TRANSFER_BYTES = 256 * 1024;

type ViewConstructor = new (buffer: ArrayBuffer) => ArrayBufferView;

function copiedBuffer(value: unknown, transfer: ArrayBuffer[], copies: Map<ArrayBuffer, ArrayBuffer>): unknown {
  const view = ArrayBuffer.isView(value);
  const buffer: unknown = view ? value.buffer : value;
  if (!(buffer instanceof ArrayBuffer) || (buffer as { resizable?: boolean }).resizable === true) return value;
  if (!view) {
    if (buffer.byteLength < MIN_COPY_TRANSFER_BYTES) return value;
    return copyOf(buffer, transfer, copies);
  }
  if (value.byteLength < MIN_COPY_TRANSFER_BYTES) return value;
  // A view onto part of a buffer (a value decoded in place from a received frame, say)
  // takes its own bytes only: a clone would copy the whole buffer, twice.
  const whole = value.byteOffset === 0 && value.byteLength === buffer.byteLength;
  const copy = whole ? copyOf(buffer, transfer, copies) : buffer.slice(value.byteOffset, value.byteOffset + value.byteLength);
  if (!whole) transfer.push(copy);
  // The view's intrinsic type, as a clone delivers it (a Buffer arrives as a Uint8Array).
  if (value instanceof DataView) return new DataView(copy);
  const Type = (globalThis as unknown as Record<string, ViewConstructor>)[(value as Uint8Array)[Symbol.toStringTag]]!;
  return new Type(copy);
}

function copyOf(buffer: ArrayBuffer, transfer: ArrayBuffer[], copies: Map<ArrayBuffer, ArrayBuffer>): ArrayBuffer {
  let copy = copies.get(buffer);
  if (copy === undefined) {
    copies.set(buffer, (copy = buffer.slice(0)));
    transfer.push(copy);
  }
  return copy;
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
