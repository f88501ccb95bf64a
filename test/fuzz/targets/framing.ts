/**
 * Fuzz target: the packet reader (src/comm/framing.ts) and the batch index (batch.ts), fed
 * arbitrary bytes in arbitrary chunkings.
 *
 * Input: byte 0 picks the reader's size limit, byte 1 seeds how the rest is cut into chunks,
 * and the rest is the byte stream. Each input is read three ways — in one chunk, in the
 * seeded chunks, and (when short) byte by byte — and must hold that:
 * - the reader throws nothing but FrameTooLargeError or MalformedFrameError;
 * - how the stream is chunked changes nothing: the same packets, then the same error;
 * - the packets are the stream: written back with encodePacket they give its bytes again;
 * - no buffer is allocated larger than the size limit;
 * - unpackBatch splits a packet or throws MalformedFrameError, and its pieces cover it.
 */
import assert from 'node:assert/strict';
import { unpackBatch } from '../../../src/comm/batch.js';
import { FrameTooLargeError, MalformedFrameError } from '../../../src/comm/errors.js';
import { encodePacket, FrameReader } from '../../../src/comm/framing.js';
import { chunkSizes } from './chunks.js';

/** The handshake's limit among them; the minimum that connection options allow first. */
const LIMITS = [1024, 4096, 64 * 1024, 1024 * 1024] as const;
/** Byte-by-byte reading costs a call per byte, so only streams this short get it. */
const BYTEWISE_UP_TO = 512;

interface Outcome {
  readonly packets: Uint8Array[][];
  readonly error: Error | undefined;
  readonly idle: boolean;
}

// The reader allocates with Buffer.allocUnsafe; while it reads, no allocation may exceed its limit.
let allocationLimit = Infinity;
const allocUnsafe = Buffer.allocUnsafe.bind(Buffer);
Buffer.allocUnsafe = (size: number): Buffer<ArrayBuffer> => {
  if (size > allocationLimit) throw new assert.AssertionError({ message: `the reader allocated ${size} bytes with a limit of ${allocationLimit}` });
  return allocUnsafe(size);
};

function read(stream: Buffer, limit: number, sizes: readonly number[]): Outcome {
  const packets: Uint8Array[][] = [];
  // Frames may be views onto the pushed chunk; copy them as they come, as a consumer that
  // keeps them must not rely on the sender's chunk staying unchanged.
  const reader = new FrameReader(limit, (frames) => packets.push(frames.map((f) => Uint8Array.from(f))));
  allocationLimit = limit;
  let error: Error | undefined;
  try {
    let at = 0;
    for (const size of sizes) {
      // Each chunk in memory of its own, as sockets deliver them.
      reader.push(Buffer.from(stream.subarray(at, at + size)));
      at += size;
    }
  } catch (thrown) {
    if (thrown instanceof assert.AssertionError) throw thrown;
    if (!(thrown instanceof FrameTooLargeError || thrown instanceof MalformedFrameError)) throw thrown;
    error = thrown;
  } finally {
    allocationLimit = Infinity;
  }
  return { packets, error, idle: reader.idle };
}

function assertSame(a: Outcome, b: Outcome, how: string): void {
  assert.deepEqual(b.packets, a.packets, `${how}: other packets than in one chunk`);
  assert.equal(b.error?.constructor, a.error?.constructor, `${how}: another error than in one chunk`);
  assert.equal(b.error?.message, a.error?.message, `${how}: another error than in one chunk`);
  if (a.error === undefined) assert.equal(b.idle, a.idle, `${how}: the reader is idle in one case only`);
}

function checkBatch(frames: Uint8Array[]): void {
  let messages: Uint8Array[][];
  try {
    messages = unpackBatch(frames);
  } catch (error) {
    if (error instanceof MalformedFrameError) return;
    throw error;
  }
  assert.ok(messages.length > 0, 'a batch of no messages');
  const rejoined = [frames[0]!, ...messages.flat()];
  assert.equal(rejoined.length, frames.length, 'the messages do not cover the packet');
  rejoined.forEach((frame, i) => assert.equal(frame, frames[i], `frame ${i} moved`));
  for (const message of messages) assert.ok(message.length > 0, 'a message of no frames');
}

export function fuzz(data: Buffer): void {
  if (data.length < 2) return;
  const limit = LIMITS[data[0]! % LIMITS.length]!;
  const stream = data.subarray(2);

  const whole = read(stream, limit, [stream.length]);
  assertSame(whole, read(stream, limit, chunkSizes(stream.length, data[1]!)), 'in seeded chunks');
  if (stream.length <= BYTEWISE_UP_TO) assertSame(whole, read(stream, limit, new Array<number>(stream.length).fill(1)), 'byte by byte');

  const rewritten = Buffer.concat(whole.packets.flatMap((frames) => encodePacket(frames)));
  assert.ok(rewritten.length <= stream.length, 'the packets hold more bytes than arrived');
  assert.ok(rewritten.equals(stream.subarray(0, rewritten.length)), 'the packets written back differ from the stream');
  if (whole.error === undefined && whole.idle) assert.equal(rewritten.length, stream.length, 'an idle reader left bytes unread');
  if (whole.error === undefined && !whole.idle) assert.ok(rewritten.length < stream.length, 'a reader midway through a packet had no bytes of it');

  for (const frames of whole.packets) {
    assert.ok(frames.length > 0, 'a packet of no frames');
    checkBatch(frames);
  }
}
