/**
 * A packet carries a batch of one or more messages. Its frame 0 is the batch index — one
 * u32 BE per message, the number of frames that message uses (at least 1, its header) —
 * and the messages' frames follow in order. The receiver thus splits a packet back into
 * the messages that were sent, in the order they were sent.
 *
 * The last entry may instead announce a message too large for a packet: its index entry
 * is `LONG_MESSAGE | 1` and its one frame the announcement (see long-message.ts); the
 * message's bytes follow in the next packets.
 */
import { MalformedFrameError } from './errors.js';

/** Set in a batch index entry: the entry's one frame announces a long message. */
export const LONG_MESSAGE = 0x8000_0000;

export function packBatch(messages: readonly (readonly Uint8Array[])[], announcement?: Uint8Array): Uint8Array[] {
  const entries = messages.length + (announcement === undefined ? 0 : 1);
  const index = Buffer.allocUnsafe(4 * entries);
  const frames: Uint8Array[] = [index];
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i]!;
    index.writeUInt32BE(message.length, 4 * i);
    for (const frame of message) frames.push(frame);
  }
  if (announcement !== undefined) {
    index.writeUInt32BE((LONG_MESSAGE | 1) >>> 0, 4 * messages.length);
    frames.push(announcement);
  }
  return frames;
}

export interface Batch {
  /** The whole messages, in order. */
  readonly messages: Uint8Array[][];
  /** The announcement of a long message that follows the packet, if the batch ends with one. */
  readonly announcement: Uint8Array | null;
}

/** A packet's messages, and the announcement of a long message at its end, if any. */
export function splitBatch(frames: readonly Uint8Array[]): Batch {
  const index = frames[0];
  if (index === undefined || index.byteLength === 0 || index.byteLength % 4 !== 0) {
    throw new MalformedFrameError('a packet does not start with a batch index');
  }
  const view = new DataView(index.buffer, index.byteOffset, index.byteLength);
  const messages: Uint8Array[][] = [];
  let announcement: Uint8Array | null = null;
  let next = 1;
  for (let at = 0; at < index.byteLength; at += 4) {
    const entry = view.getUint32(at);
    if (entry === (LONG_MESSAGE | 1) >>> 0) {
      if (at + 4 !== index.byteLength || next + 1 !== frames.length) throw new MalformedFrameError('a long message is announced before the end of its packet');
      announcement = frames[next]!;
      next += 1;
      continue;
    }
    if (entry === 0 || next + entry > frames.length) throw new MalformedFrameError('a batch index does not match its frames');
    messages.push(frames.slice(next, next + entry));
    next += entry;
  }
  if (next !== frames.length) throw new MalformedFrameError('a batch index does not match its frames');
  return { messages, announcement };
}

/** The messages of a packet that holds whole messages only (no announcement). */
export function unpackBatch(frames: readonly Uint8Array[]): Uint8Array[][] {
  const { messages, announcement } = splitBatch(frames);
  if (announcement !== null) throw new MalformedFrameError('a long message is announced where none may be');
  return messages;
}
