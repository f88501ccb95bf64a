/**
 * A packet carries a batch of one or more messages. Its frame 0 is the batch index — one
 * u32 BE per message, the number of frames that message uses (at least 1, its header) —
 * and the messages' frames follow in order. The receiver thus splits a packet back into
 * the messages that were sent, in the order they were sent.
 */
import { MalformedFrameError } from './errors.js';

export function packBatch(messages: readonly (readonly Uint8Array[])[]): Uint8Array[] {
  const index = Buffer.allocUnsafe(4 * messages.length);
  const frames: Uint8Array[] = [index];
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i]!;
    index.writeUInt32BE(message.length, 4 * i);
    for (const frame of message) frames.push(frame);
  }
  return frames;
}

export function unpackBatch(frames: readonly Uint8Array[]): Uint8Array[][] {
  const index = frames[0];
  if (index === undefined || index.byteLength === 0 || index.byteLength % 4 !== 0) {
    throw new MalformedFrameError('a packet does not start with a batch index');
  }
  const view = new DataView(index.buffer, index.byteOffset, index.byteLength);
  const messages: Uint8Array[][] = [];
  let next = 1;
  for (let at = 0; at < index.byteLength; at += 4) {
    const count = view.getUint32(at);
    if (count === 0 || next + count > frames.length) throw new MalformedFrameError('a batch index does not match its frames');
    messages.push(frames.slice(next, next + count));
    next += count;
  }
  if (next !== frames.length) throw new MalformedFrameError('a batch index does not match its frames');
  return messages;
}
