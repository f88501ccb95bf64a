/**
 * Values ⇄ the bytes a store holds, with the project's codec (comm/codec.ts): the msgpack
 * header and each large binary value's raw bytes, one after the other behind a small table
 * of lengths. Binary data is copied once into the record and comes back as views onto it —
 * never base64.
 *
 * Layout: u32 frame count n, n × u32 frame length, then the frames (all little-endian).
 */
import { decode, encode } from '../comm/codec.js';
import { MalformedFrameError } from '../comm/errors.js';
import type { PutOptions, PutOutcome, ResultStore } from './store.js';

const VALUE_OP = 'value';

/** One value as one record of bytes. */
export function encodeValue(value: unknown): Uint8Array {
  const frames = encode({ op: VALUE_OP, v: value });
  const headerBytes = 4 + 4 * frames.length;
  let total = headerBytes;
  for (const f of frames) total += f.byteLength;
  const out = Buffer.allocUnsafe(total);
  out.writeUInt32LE(frames.length, 0);
  let offset = headerBytes;
  for (let i = 0; i < frames.length; i++) {
    const f = frames[i]!;
    out.writeUInt32LE(f.byteLength, 4 + 4 * i);
    out.set(f, offset);
    offset += f.byteLength;
  }
  return out;
}

/** The value a record holds; throws MalformedFrameError when the bytes are not one. */
export function decodeValue(bytes: Uint8Array): unknown {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.byteLength < 4) throw new MalformedFrameError('a stored value is shorter than its header');
  const n = view.readUInt32LE(0);
  const headerBytes = 4 + 4 * n;
  if (n === 0 || headerBytes > view.byteLength) throw new MalformedFrameError(`a stored value claims ${n} frames`);
  const frames: Uint8Array[] = [];
  let offset = headerBytes;
  for (let i = 0; i < n; i++) {
    const length = view.readUInt32LE(4 + 4 * i);
    if (offset + length > view.byteLength) throw new MalformedFrameError('a stored value is shorter than its frames');
    frames.push(view.subarray(offset, offset + length));
    offset += length;
  }
  const message = decode(frames) as { op: string; v?: unknown };
  if (message.op !== VALUE_OP) throw new MalformedFrameError(`a stored value is a '${message.op}' message`);
  return message.v;
}

/** Encodes and writes values, first write wins; resolves, per item, whether this write won (see ResultStore.put). */
export function putValues(store: ResultStore, items: readonly (readonly [string, unknown])[], options?: PutOptions): Promise<PutOutcome[]> {
  return store.put(items.map(([key, value]) => [key, encodeValue(value)] as const), options);
}

/** Reads and decodes values: the values found, and the keys the store does not hold. */
export async function getValues(store: ResultStore, keys: readonly string[]): Promise<{ values: [string, unknown][]; missing: string[] }> {
  const found = await store.get(keys);
  const values: [string, unknown][] = [];
  const missing: string[] = [];
  for (let i = 0; i < keys.length; i++) {
    const bytes = found[i];
    if (bytes === undefined) missing.push(keys[i]!);
    else values.push([keys[i]!, decodeValue(bytes)]);
  }
  return { values, missing };
}
