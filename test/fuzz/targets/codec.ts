/**
 * Fuzz target: the message codec (src/comm/codec.ts) — msgpack header, extension types for
 * binary values, Maps and Errors, and out-of-band frames.
 *
 * Input: the frames of one message joined by FRAME_SEPARATOR, so that mutating a frame's
 * bytes keeps the others whole (a length table would be broken by most mutations). Must hold:
 * - decode throws nothing but MalformedFrameError;
 * - what it returns is an object with a string `op`;
 * - what it returns travels again: encode, then decode, gives an equal value (unless it nests
 *   deeper than the encoder's limit, which encode must then refuse with
 *   UnencodableMessageError);
 * - nothing carries over to the next message: msgpackr decodes with module-level state, so
 *   after every input a fixed message must still decode to itself.

 * Errors travel as extension 22 only: msgpackr's own Error extension (0x65), which could
 * make Errors whose name is not a string, is refused (a regression input keeps it so).
 */
import assert from 'node:assert/strict';
import { decode, encode } from '../../../src/comm/codec.js';
import { MalformedFrameError, UnencodableMessageError } from '../../../src/comm/errors.js';
import { splitFrames } from './separator.js';

/** codec.ts refuses to encode deeper than 1000 levels; well below that, encode must succeed. */
const SURELY_ENCODABLE_DEPTH = 900;

/** The values a decoded object holds. */
function children(value: object): unknown[] {
  const found: unknown[] =
    value instanceof Map ? [...value].flat() : value instanceof Set ? [...value] : ArrayBuffer.isView(value) ? [] : Object.values(value);
  if (value instanceof Error && 'cause' in value) found.push(value.cause);
  return found;
}

/** Nesting depth of a decoded value, counted no further than `limit`. */
function depth(value: unknown, limit: number): number {
  if (typeof value !== 'object' || value === null || limit === 0) return 0;
  let deepest = 0;
  for (const child of children(value)) {
    deepest = Math.max(deepest, depth(child, limit - 1));
    if (deepest >= limit - 1) break;
  }
  return 1 + deepest;
}

/**
 * An invalid Date travels as one, but deepStrictEqual compares Dates by time, and NaN is not
 * NaN; so before comparing, invalid Dates of both sides get the same (unlikely) time.
 */
function standInForInvalidDates(value: unknown, limit = SURELY_ENCODABLE_DEPTH): void {
  if (typeof value !== 'object' || value === null || limit === 0) return;
  if (value instanceof Date && Number.isNaN(value.getTime())) value.setTime(-8.64e15 + 0.5e15);
  for (const child of children(value)) standInForInvalidDates(child, limit - 1);
}

const CANARY = {
  op: 'canary',
  text: 'a string long enough for msgpackr to decode it in bulk, with ünïcode',
  numbers: [1, -2.5, 2 ** 40, 10n],
  map: new Map<unknown, unknown>([[1, 'one']]),
  set: new Set(['s']),
  bytes: new Uint8Array([1, 2, 3]),
  out: new Float64Array(200).fill(0.5),
  error: new RangeError('canary', { cause: 'why' }),
  when: new Date(0),
};
const CANARY_FRAMES = encode(CANARY);

export function fuzz(data: Buffer): void {
  check(data);
  assert.deepStrictEqual(decode(CANARY_FRAMES), CANARY, 'after this input, a well-formed message decodes differently');
}

function check(data: Buffer): void {
  const frames = splitFrames(data);
  let message: { op: string };
  try {
    message = decode(frames);
  } catch (error) {
    if (error instanceof MalformedFrameError) return;
    throw error;
  }
  assert.equal(typeof message.op, 'string', 'decode returned a message without a string op');

  let again: Uint8Array[];
  try {
    again = encode(message);
  } catch (error) {
    if (error instanceof UnencodableMessageError && depth(message, SURELY_ENCODABLE_DEPTH + 1) > SURELY_ENCODABLE_DEPTH) return;
    throw error;
  }
  const back = decode(again);
  standInForInvalidDates(back);
  standInForInvalidDates(message);
  assert.deepStrictEqual(back, message, 'a decoded message does not survive encode and decode');
}
