/**
 * Whether a result can travel over the wire: the codec refuses values nested deeper than
 * it allows (a self-referencing object is infinitely deep), messages past the receiver's
 * limit (`maxMessageSize`: what memory allows), and plain data past what one msgpack
 * header can hold. Found when the task finishes, such a result fails its task once, naming
 * the key and the reason, instead of every request for it failing and being asked again
 * forever.
 *
 * The size is measured in the same walk, without encoding anything: binary data exactly
 * (it travels as it is, in frames of its own), everything else as an upper bound of what
 * msgpack writes for it — exact for numbers, a few bytes over for strings, containers and
 * keys. A value that passes can be sent; one refused is, at most by those few bytes per
 * item, larger than the limit.
 */
import { MAX_DEPTH, OUT_OF_BAND_THRESHOLD } from '../comm/codec.js';

// The value sits a few levels down in the message that carries it (the message, its
// list of values, the key-value pair): room for those.
const VALUE_DEPTH = MAX_DEPTH - 16;

/**
 * The most a message's msgpack header (everything but binary data of 1 KiB or more) may
 * hold: the encoder writes at most 4 GiB into one buffer; room left for the message around
 * the value.
 */
export const MAX_HEADER_BYTES = 2 ** 32 - 2 ** 20;

/**
 * Room left under the message limit for the message that carries the value (its key, the
 * framing): 64 KiB, or a sixteenth of a limit smaller than 1 MiB.
 */
const MESSAGE_ROOM = 64 * 1024;

export interface TravelProblem {
  /** Where in the value, as `.a[3].b` ('' for the value itself). */
  readonly path: string;
  readonly reason: string;
}

/** What a value, or an object below it, costs once encoded. */
interface Measure {
  /** While its contents are walked: reaching it again from inside is a cycle. */
  open: boolean;
  /** Levels of objects below it. */
  height: number;
  /** Bytes in the msgpack header (at most). */
  header: number;
  /** Bytes of binary data in frames of their own (exactly). */
  binary: number;
}

/**
 * Why `value` cannot travel in a message of at most `maxBytes`, or null when it can.
 * Walks the value once, in time linear in its size; objects it holds in several places are
 * walked once and counted in each place, as they would be written.
 */
export function travelProblem(value: unknown, maxBytes: number): TravelProblem | null {
  const size: Measure = { open: false, height: 0, header: 0, binary: 0 };
  if (typeof value === 'object' && value !== null) {
    const found = walk(value, 0, new Map(), size);
    if (found !== null) return found;
  } else {
    size.header = primitiveBytes(value);
  }
  return sizeProblem(size, maxBytes);
}

/** The bytes `value` takes once encoded, binary data included: at least what the codec writes (see above). */
export function encodedSizeBound(value: unknown): number {
  if (typeof value !== 'object' || value === null) return primitiveBytes(value);
  const size: Measure = { open: false, height: 0, header: 0, binary: 0 };
  walk(value, 0, new Map(), size);
  return size.header + size.binary;
}

function sizeProblem({ header, binary }: Measure, maxBytes: number): TravelProblem | null {
  const total = header + binary;
  const around = Math.min(MESSAGE_ROOM, Math.floor(maxBytes / 16));
  if (total + around > maxBytes) {
    const what = binary === 0 ? `about ${total} bytes` : header < 1024 ? `${binary} bytes of binary data` : `about ${total} bytes (${binary} of them binary data)`;
    const room = total > maxBytes ? ',' : `, with the ${around} bytes kept for the message around it,`;
    return { path: '', reason: `holds ${what} once encoded${room} more than the ${maxBytes}-byte limit of a message between processes (maxMessageSize)` };
  }
  if (header > MAX_HEADER_BYTES) {
    return {
      path: '',
      reason: `holds about ${header} bytes of data other than typed arrays and Buffers once encoded, more than the ${MAX_HEADER_BYTES} bytes one message can carry outside of binary data; keep large numeric data in typed arrays`,
    };
  }
  return null;
}

/** A problem found below the object being walked, its path built as the walk unwinds. */
interface Found {
  path: string;
  readonly reason: string;
}

/**
 * `known`: objects walked or being walked (`open`: on the path from the root, so that
 * reaching one again is a cycle), with their size. Adds the object's size to `into`.
 * Paths are built only for a problem, on the way back up.
 */
function walk(value: object, depth: number, known: Map<object, Measure>, into: Measure): Found | null {
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) {
    // Small ones travel inside the header; the rest as frames, referred to from it.
    if (value.byteLength < OUT_OF_BAND_THRESHOLD) into.header += value.byteLength + 12;
    else {
      into.header += 16;
      into.binary += value.byteLength;
    }
    return null;
  }
  if (value instanceof Date) {
    into.header += 15;
    return null;
  }
  const seen = known.get(value);
  if (seen !== undefined) {
    if (seen.open) return { path: '', reason: 'refers back to an object that contains it (a cycle), which cannot be written as a message' };
    if (depth + seen.height > VALUE_DEPTH) return tooDeep();
    into.header += seen.header;
    into.binary += seen.binary;
    return null;
  }
  if (depth > VALUE_DEPTH) return tooDeep();
  // A container's own header (and an extension's, for Map, Set, Error, RegExp).
  const own: Measure = { open: true, height: 0, header: 11, binary: 0 };
  known.set(value, own);
  let found: Found | null = null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      // The common case, inline: an array of numbers or strings.
      if (typeof item === 'number') own.header += numberBytes(item);
      else if (typeof item === 'string') own.header += stringBytes(item);
      else if ((found = visit(item, depth, known, own)) !== null) {
        found.path = `[${i}]${found.path}`;
        break;
      }
    }
  } else if (value instanceof Map) {
    for (const [k, v] of value) {
      if ((found = visit(k, depth, known, own)) !== null) {
        found.path = `<map key>${found.path}`;
        break;
      }
      if ((found = visit(v, depth, known, own)) !== null) {
        found.path = `.get(${typeof k === 'string' ? JSON.stringify(k) : String(k)})${found.path}`;
        break;
      }
    }
  } else if (value instanceof Set) {
    for (const v of value) {
      if ((found = visit(v, depth, known, own)) !== null) {
        found.path = `<set member>${found.path}`;
        break;
      }
    }
  } else if (value instanceof RegExp) {
    own.header += stringBytes(value.source) + stringBytes(value.flags);
  } else {
    if (value instanceof Error) {
      // Strings by convention only: anything can be assigned to an error's name or message.
      const { name, message } = value as { readonly name: unknown; readonly message: unknown };
      own.header += stringBytes(String(name)) + stringBytes(String(message)) + (typeof value.stack === 'string' ? stringBytes(value.stack) : 1);
      if (Object.hasOwn(value, 'cause') && (found = visit(value.cause, depth, known, own)) !== null) found.path = `.cause${found.path}`;
    }
    if (found === null) {
      for (const k of Object.keys(value)) {
        own.header += stringBytes(k);
        if ((found = visit((value as Record<string, unknown>)[k], depth, known, own)) !== null) {
          found.path = `.${k}${found.path}`;
          break;
        }
      }
    }
  }
  own.open = false;
  into.header += own.header;
  into.binary += own.binary;
  return found;
}

/** One child of an object at `depth`: its size added to the parent's, its height noted. */
function visit(child: unknown, depth: number, known: Map<object, Measure>, parent: Measure): Found | null {
  if (typeof child !== 'object' || child === null) {
    parent.header += primitiveBytes(child);
    return null;
  }
  const found = walk(child, depth + 1, known, parent);
  if (found === null) parent.height = Math.max(parent.height, 1 + (known.get(child)?.height ?? 0));
  return found;
}

function tooDeep(): Found {
  return { path: '', reason: `nests deeper than the ${VALUE_DEPTH} levels a message between processes may have` };
}

/** msgpack's integer forms by range; any other number is a float64. */
function numberBytes(n: number): number {
  if (!Number.isInteger(n)) return 9;
  if (n >= -32 && n <= 127) return 1;
  if (n >= -128 && n <= 255) return 2;
  if (n >= -32_768 && n <= 65_535) return 3;
  if (n >= -2_147_483_648 && n <= 4_294_967_295) return 5;
  return 9;
}

/** UTF-8 bytes (at most) and the longest string header. */
function stringBytes(s: string): number {
  if (s.length > 32) return Buffer.byteLength(s, 'utf8') + 5;
  // Short (keys, mostly): counted here, cheaper than a call into the runtime. A surrogate
  // pair counts 6 rather than 4.
  let bytes = 5;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    bytes += c < 0x80 ? 1 : c < 0x800 ? 2 : 3;
  }
  return bytes;
}

function primitiveBytes(value: unknown): number {
  switch (typeof value) {
    case 'number':
      return numberBytes(value);
    case 'string':
      return stringBytes(value);
    case 'bigint': {
      const magnitude = value < 0n ? -value : value;
      return 9 + Math.ceil(magnitude.toString(16).length / 2);
    }
    case 'undefined':
      return 3;
    default:
      return 1;
  }
}
