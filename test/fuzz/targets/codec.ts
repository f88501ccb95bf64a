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
 *
 * A known bug is tolerated so that fuzzing goes on past it, unless TESSERA_FUZZ_KNOWN_BUGS
 * is 'fail' (as when the inputs under test/fuzz/known/codec/ are replayed): decode also accepts
 * msgpackr's own Error extension (type 0x65), which encode never produces (it sends Errors as
 * type 22). What that extension makes need not be a value the codec carries: an Error whose
 * name is a number or undefined, a boxed primitive (for the name 'constructor'), an
 * AggregateError. Such a message does not survive encode and decode, and breaks a receiver
 * that trusts an Error's name to be a string. Once decode refuses type 0x65, remove
 * madeByMsgpackrErrorExtension.
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

const KNOWN_BUGS_FAIL = process.env.TESSERA_FUZZ_KNOWN_BUGS === 'fail';

/** Whether a decoded value holds something only msgpackr's Error extension makes (see above). */
function madeByMsgpackrErrorExtension(value: unknown, limit = SURELY_ENCODABLE_DEPTH): boolean {
  if (typeof value !== 'object' || value === null || limit === 0) return false;
  if (value instanceof Number || value instanceof String || value instanceof Boolean || value instanceof BigInt) return true;
  if (value instanceof Error) {
    const { name, message } = value as { name: unknown; message: unknown };
    if (typeof name !== 'string' || typeof message !== 'string' || value instanceof AggregateError) return true;
  }
  return children(value).some((child) => madeByMsgpackrErrorExtension(child, limit - 1));
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
  try {
    assert.deepStrictEqual(back, message, 'a decoded message does not survive encode and decode');
  } catch (error) {
    if (!KNOWN_BUGS_FAIL && madeByMsgpackrErrorExtension(message)) return;
    throw error;
  }
}
