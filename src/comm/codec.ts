/**
 * One message ⇄ a list of frames. Frame 0 is the msgpack header; every binary value of at
 * least `OUT_OF_BAND_THRESHOLD` bytes travels as a frame of its own, by reference, so a
 * 64 MiB Float64Array is never copied into the header (and, on the receiving side, comes
 * back as a view onto the bytes that arrived when their alignment allows).
 *
 * msgpackr's extension registry is global to the process. So as not to change how anyone
 * else's Packr encodes typed arrays or errors, the message is first walked ("prepared"):
 * the values msgpackr cannot carry faithfully with our options (binary, Map, Error) are
 * replaced, copy-on-write, by instances of private box classes, and only those classes get
 * extensions. Extension type codes 20, 21 and 22 are taken by this module.
 */
import { Packr, addExtension } from 'msgpackr';
import { MalformedFrameError, UnencodableMessageError } from './errors.js';

/** Binary values this large or larger travel out of band, as frames of their own. */
export const OUT_OF_BAND_THRESHOLD = 1024;

const EXT_BINARY = 20;
const EXT_MAP = 21;
const EXT_ERROR = 22;

/** Deeper than this is almost surely a cycle, which msgpack cannot express. */
export const MAX_DEPTH = 1000;

type BinaryView = ArrayBufferView | ArrayBuffer | SharedArrayBuffer;

interface BinaryKind {
  readonly name: string;
  readonly elementSize: number;
  /** Builds the value over bytes already known to be suitably aligned. */
  readonly view: (buffer: ArrayBufferLike, byteOffset: number, byteLength: number) => unknown;
}

const typed = (
  name: string,
  Ctor: { new (buffer: ArrayBufferLike, byteOffset: number, length: number): unknown; readonly BYTES_PER_ELEMENT: number },
): BinaryKind => ({
  name,
  elementSize: Ctor.BYTES_PER_ELEMENT,
  view: (buffer, byteOffset, byteLength) => new Ctor(buffer, byteOffset, byteLength / Ctor.BYTES_PER_ELEMENT),
});

// The index in this table is what travels; append only.
const KINDS: readonly BinaryKind[] = [
  {
    name: 'ArrayBuffer',
    elementSize: 1,
    view: (buffer, byteOffset, byteLength) =>
      byteOffset === 0 && byteLength === buffer.byteLength && buffer instanceof ArrayBuffer
        ? buffer
        : copyBytes(buffer, byteOffset, byteLength).buffer,
  },
  { name: 'DataView', elementSize: 1, view: (buffer, byteOffset, byteLength) => new DataView(buffer, byteOffset, byteLength) },
  { name: 'Buffer', elementSize: 1, view: (buffer, byteOffset, byteLength) => Buffer.from(buffer, byteOffset, byteLength) },
  typed('Uint8Array', Uint8Array),
  typed('Uint8ClampedArray', Uint8ClampedArray),
  typed('Int8Array', Int8Array),
  typed('Uint16Array', Uint16Array),
  typed('Int16Array', Int16Array),
  typed('Uint32Array', Uint32Array),
  typed('Int32Array', Int32Array),
  typed('Float32Array', Float32Array),
  typed('Float64Array', Float64Array),
  typed('BigInt64Array', BigInt64Array),
  typed('BigUint64Array', BigUint64Array),
];

const KIND_BY_CONSTRUCTOR = new Map<unknown, number>([
  [ArrayBuffer, 0],
  [DataView, 1],
  [Buffer, 2],
  [Uint8Array, 3],
  [Uint8ClampedArray, 4],
  [Int8Array, 5],
  [Uint16Array, 6],
  [Int16Array, 7],
  [Uint32Array, 8],
  [Int32Array, 9],
  [Float32Array, 10],
  [Float64Array, 11],
  [BigInt64Array, 12],
  [BigUint64Array, 13],
]);

function kindOf(value: BinaryView): number {
  const direct = KIND_BY_CONSTRUCTOR.get(value.constructor);
  if (direct !== undefined) return direct;
  // A subclass (or a SharedArrayBuffer) travels as its nearest built-in ancestor.
  if (!ArrayBuffer.isView(value)) return 0;
  if (Buffer.isBuffer(value)) return 2;
  for (let proto: unknown = Object.getPrototypeOf(value); proto !== null; proto = Object.getPrototypeOf(proto)) {
    const kind = KIND_BY_CONSTRUCTOR.get((proto as { constructor: unknown }).constructor);
    if (kind !== undefined) return kind;
  }
  return 3;
}

function copyBytes(buffer: ArrayBufferLike, byteOffset: number, byteLength: number): Uint8Array<ArrayBuffer> {
  const copy = new Uint8Array(byteLength);
  copy.set(new Uint8Array(buffer, byteOffset, byteLength));
  return copy;
}

// ---- boxes: what the prepared message holds in place of values msgpackr would mangle ----

class BinaryBox {
  constructor(
    readonly kind: number,
    /** Index of the out-of-band frame, or -1 when `bytes` travel inline. */
    readonly frame: number,
    readonly bytes: Uint8Array,
  ) {}
}

class MapBox {
  /** Keys and values alternating, already prepared. */
  constructor(readonly entries: unknown[]) {}
}

class ErrorBox {
  constructor(
    readonly name: string,
    readonly message: string,
    readonly stack: string | undefined,
    readonly props: Record<string, unknown> | undefined,
    readonly hasCause: boolean,
    readonly cause: unknown,
  ) {}
}

// Set while one decode() runs: the extensions below resolve frame indices against it.
// decode is synchronous, so one slot suffices.
let decodingFrames: readonly Uint8Array[] | null = null;

addExtension({
  Class: BinaryBox,
  type: EXT_BINARY,
  write: (box: BinaryBox) => (box.frame >= 0 ? [box.kind, box.frame, box.bytes.byteLength] : [box.kind, asBuffer(box.bytes)]),
  read: (datum: unknown) => readBinary(datum),
});

addExtension({
  Class: MapBox,
  type: EXT_MAP,
  write: (box: MapBox) => box.entries,
  read: (datum: unknown) => {
    if (!Array.isArray(datum) || datum.length % 2 !== 0) throw new MalformedFrameError('a Map extension is not a list of entries');
    const map = new Map<unknown, unknown>();
    for (let i = 0; i < datum.length; i += 2) map.set(datum[i], datum[i + 1]);
    return map;
  },
});

addExtension({
  Class: ErrorBox,
  type: EXT_ERROR,
  write: (box: ErrorBox) => {
    const fields: unknown[] = [box.name, box.message, box.stack ?? null, box.props ?? null];
    if (box.hasCause) fields.push(box.cause);
    return fields;
  },
  read: (datum: unknown) => readError(datum),
});

// msgpackr decodes its own Error extension (0x65) by default, which our encoder never
// writes: through it a peer could hand over Errors whose name is not a string (or boxed
// primitives). Inside our decode() it is refused; elsewhere in the process (msgpackr is
// shared) it behaves as msgpackr's own.
const MSGPACKR_ERROR = 0x65;
const BUILTIN_ERRORS: Readonly<Record<string, ErrorConstructor>> = { Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError };
addExtension({
  type: MSGPACKR_ERROR,
  read: (datum: unknown) => {
    if (decodingFrames !== null) throw new MalformedFrameError('an error in msgpackr\'s own extension (0x65); Tessera sends errors as extension 22');
    const [name, message, cause] = Array.isArray(datum) ? (datum as unknown[]) : [];
    const Ctor = typeof name === 'string' ? BUILTIN_ERRORS[name] : undefined;
    if (Ctor !== undefined) return new Ctor(String(message), { cause });
    const error = new Error(String(message), { cause });
    error.name = String(name);
    return error;
  },
});

const packr = new Packr({
  structuredClone: false,
  // Records (shared structures) would tie a message to state kept by one peer's decoder.
  useRecords: false,
  moreTypes: true,
  mapsAsObjects: true,
});

function asBuffer(bytes: Uint8Array): Buffer {
  // msgpackr writes a Buffer as plain msgpack bin, which is what inline bytes should be.
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function readBinary(datum: unknown): unknown {
  if (!Array.isArray(datum)) throw new MalformedFrameError('a binary extension is not a list');
  const kind = typeof datum[0] === 'number' ? KINDS[datum[0]] : undefined;
  if (kind === undefined) throw new MalformedFrameError(`unknown binary kind ${String(datum[0])}`);
  if (datum.length === 2) {
    const bytes: unknown = datum[1];
    if (!(bytes instanceof Uint8Array) || bytes.byteLength % kind.elementSize !== 0) {
      throw new MalformedFrameError(`inline ${kind.name} has bad bytes`);
    }
    // Small: copy rather than pin the whole received header in memory.
    const copy = copyBytes(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return kind.view(copy.buffer, 0, copy.byteLength);
  }
  const [, index, byteLength] = datum as [number, unknown, unknown];
  const frame = typeof index === 'number' && index > 0 ? decodingFrames?.[index] : undefined;
  if (frame === undefined) throw new MalformedFrameError(`binary refers to missing frame ${String(index)}`);
  if (frame.byteLength !== byteLength || frame.byteLength % kind.elementSize !== 0) {
    throw new MalformedFrameError(`frame ${String(index)} holds ${frame.byteLength} bytes, not a ${kind.name} of ${String(byteLength)} bytes`);
  }
  if (frame.byteOffset % kind.elementSize === 0) return kind.view(frame.buffer, frame.byteOffset, frame.byteLength);
  const copy = copyBytes(frame.buffer, frame.byteOffset, frame.byteLength);
  return kind.view(copy.buffer, 0, copy.byteLength);
}

const ERROR_CONSTRUCTORS: Record<string, ErrorConstructor | undefined> = {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

function readError(datum: unknown): Error {
  if (!Array.isArray(datum) || datum.length < 4) throw new MalformedFrameError('an Error extension is malformed');
  const [name, message, stack, props] = datum as unknown[];
  const Ctor = (typeof name === 'string' && Object.hasOwn(ERROR_CONSTRUCTORS, name) ? ERROR_CONSTRUCTORS[name] : undefined) ?? Error;
  const error = datum.length > 4 ? new Ctor(String(message), { cause: datum[4] }) : new Ctor(String(message));
  if (typeof props === 'object' && props !== null) Object.assign(error, props);
  // Set after the copy so that a stray `name` among the props cannot override them.
  if (typeof name === 'string' && error.name !== name) error.name = name;
  if (typeof stack === 'string') error.stack = stack;
  return error;
}

// ---- prepare: copy-on-write walk replacing what needs a box ----

function prepare(value: unknown, frames: Uint8Array[], depth: number): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (depth > MAX_DEPTH) throw new UnencodableMessageError(`the message nests deeper than ${MAX_DEPTH} levels (does it contain a cycle?)`);
  if (Array.isArray(value)) return prepareArray(value, frames, depth + 1);
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === Object.prototype || proto === null) return prepareObject(value as Record<string, unknown>, frames, depth + 1);
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) return boxBinary(value, frames);
  if (value instanceof Map) {
    const entries: unknown[] = [];
    for (const [k, v] of value) entries.push(prepare(k, frames, depth + 1), prepare(v, frames, depth + 1));
    return new MapBox(entries);
  }
  if (value instanceof Set) {
    let changed = false;
    const items: unknown[] = [];
    for (const item of value) {
      const prepared = prepare(item, frames, depth + 1);
      changed ||= prepared !== item;
      items.push(prepared);
    }
    return changed ? new Set(items) : value;
  }
  if (value instanceof Error) return boxError(value, frames, depth + 1);
  if (value instanceof Date) return value;
  // Any other class instance travels as its own enumerable fields, as msgpackr would write it.
  return prepareObject(value as Record<string, unknown>, frames, depth + 1);
}

function prepareArray(array: readonly unknown[], frames: Uint8Array[], depth: number): readonly unknown[] {
  let copy: unknown[] | undefined;
  for (let i = 0; i < array.length; i++) {
    const item = array[i];
    if (typeof item !== 'object' || item === null) {
      if (copy !== undefined) copy[i] = item;
      continue;
    }
    const prepared = prepare(item, frames, depth);
    if (copy === undefined && prepared !== item) copy = array.slice(0, i);
    if (copy !== undefined) copy[i] = prepared;
  }
  return copy ?? array;
}

function prepareObject(object: Record<string, unknown>, frames: Uint8Array[], depth: number): Record<string, unknown> {
  let copy: Record<string, unknown> | undefined;
  for (const key in object) {
    const item = object[key];
    if (typeof item !== 'object' || item === null) {
      if (copy !== undefined) copy[key] = item;
      continue;
    }
    const prepared = prepare(item, frames, depth);
    if (copy === undefined && prepared !== item) {
      copy = {};
      for (const earlier in object) {
        if (earlier === key) break;
        copy[earlier] = object[earlier];
      }
    }
    if (copy !== undefined) copy[key] = prepared;
  }
  return copy ?? object;
}

function boxBinary(value: BinaryView, frames: Uint8Array[]): BinaryBox {
  const kind = kindOf(value);
  const bytes = ArrayBuffer.isView(value)
    ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
    : new Uint8Array(value);
  if (bytes.byteLength < OUT_OF_BAND_THRESHOLD) return new BinaryBox(kind, -1, bytes);
  return new BinaryBox(kind, frames.push(bytes) - 1, bytes);
}

function boxError(error: Error, frames: Uint8Array[], depth: number): ErrorBox {
  let props: Record<string, unknown> | undefined;
  for (const key of Object.keys(error)) {
    props ??= {};
    props[key] = prepare((error as unknown as Record<string, unknown>)[key], frames, depth);
  }
  const hasCause = Object.hasOwn(error, 'cause');
  // Strings by convention only: anything can be assigned to an error's name or message.
  const { name, message } = error as { readonly name: unknown; readonly message: unknown };
  return new ErrorBox(
    String(name),
    String(message),
    typeof error.stack === 'string' ? error.stack : undefined,
    props,
    hasCause,
    hasCause ? prepare(error.cause, frames, depth) : undefined,
  );
}

// ---- public ----

const PLACEHOLDER = new Uint8Array(0);

/**
 * Encode a message as frames: the msgpack header, then one frame per large binary value.
 * The binary frames are the caller's own memory, not copies: do not change them until the
 * message has been written.
 */
export function encode(message: unknown): Uint8Array[] {
  const frames: Uint8Array[] = [PLACEHOLDER];
  let prepared: unknown;
  try {
    prepared = prepare(message, frames, 0);
    frames[0] = packr.pack(prepared);
  } catch (error) {
    if (error instanceof UnencodableMessageError) throw error;
    throw new UnencodableMessageError(`cannot encode message: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  return frames;
}

/**
 * Encode a message known to hold only null, booleans, numbers, strings, and plain arrays
 * and objects of them — no binary value, Map, Set, Error, Date or class instance, no
 * cycle: it is packed as it is, without the walk that boxes those (one frame). The bytes
 * are what `encode` would write for it. A message the caller is not sure of goes to
 * `encode`.
 */
export function encodePlain(message: unknown): Uint8Array[] {
  try {
    return [packr.pack(message)];
  } catch (error) {
    throw new UnencodableMessageError(`cannot encode message: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

/**
 * Decode one value that is not a message (no `op` is asked for) from bytes that hold it
 * alone, as `decode` would decode it inside a message; a binary value it names by frame
 * finds none. Anything malformed is a `MalformedFrameError`.
 */
export function decodeValue(bytes: Uint8Array): unknown {
  if (bytes.byteLength === 0) throw new MalformedFrameError('no bytes to decode');
  decodingFrames = [bytes];
  try {
    return packr.unpack(asBuffer(bytes));
  } catch (error) {
    if (error instanceof MalformedFrameError) throw error;
    throw new MalformedFrameError(`cannot decode a value: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  } finally {
    decodingFrames = null;
  }
}

/**
 * Decode the frames of one message. Large typed arrays come back as views onto the frames
 * when their alignment allows, so the frames must not be reused afterwards.
 * Anything that is not a well-formed message (an object with a string `op`) is a
 * `MalformedFrameError`.
 */
export function decode(frames: readonly Uint8Array[]): { op: string } {
  const header = frames[0];
  if (header === undefined || header.byteLength === 0) throw new MalformedFrameError('a message has no header');
  let value: unknown;
  decodingFrames = frames;
  try {
    value = packr.unpack(asBuffer(header));
  } catch (error) {
    if (error instanceof MalformedFrameError) throw error;
    throw new MalformedFrameError(`cannot decode a message: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  } finally {
    decodingFrames = null;
  }
  if (typeof value !== 'object' || value === null || typeof (value as { op?: unknown }).op !== 'string') {
    throw new MalformedFrameError('a message is not an object with a string op');
  }
  return value as { op: string };
}
