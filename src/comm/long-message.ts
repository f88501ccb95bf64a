/**
 * Messages larger than a packet. Such a message is announced as the last entry of a
 * batch (see batch.ts) by a table of its frames' lengths:
 *
 *     u32 BE  m                  number of frames (at least 1)
 *     m × (u32 BE hi, u32 BE lo) length of each frame, hi × 2³² + lo
 *
 * and the packets that follow on the connection carry nothing but its frames' bytes, in
 * order, cut into pieces that each lie within one frame, until the last byte: packets keep
 * their limit, and a frame of any size (a 3 GiB Float64Array, a msgpack header larger than
 * a packet) travels without being copied on the sending side.
 *
 * The receiver checks the announced total against its own limit (`maxMessageSize`) before
 * anything else, allocates each frame once, at its exact size, when its first piece
 * arrives, and reads the pieces straight into it (`FrameReader`'s target): the frames it
 * decodes are whole buffers, aligned for any typed array, as a single packet's would be.
 */
import { FrameTooLargeError, MalformedFrameError } from './errors.js';
import { type FrameMemory, frameMemory, MAX_FRAME_SIZE, MAX_FRAMES_PER_PACKET } from './framing.js';

const EMPTY = new Uint8Array(0);

/** The announcement of a message whose frames have these lengths. */
export function announce(frames: readonly Uint8Array[]): Uint8Array {
  const table = Buffer.allocUnsafe(4 + 8 * frames.length);
  table.writeUInt32BE(frames.length, 0);
  for (let i = 0; i < frames.length; i++) {
    const length = frames[i]!.byteLength;
    table.writeUInt32BE(Math.floor(length / 2 ** 32), 4 + 8 * i);
    table.writeUInt32BE(length % 2 ** 32, 8 + 8 * i);
  }
  return table;
}

/**
 * The frame lengths an announcement gives, checked: throws `MalformedFrameError` for a
 * table that is not one, `FrameTooLargeError` when the message is past `limit` bytes.
 */
export function readAnnouncement(table: Uint8Array, limit: number): number[] {
  const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const count = table.byteLength >= 4 ? view.getUint32(0) : 0;
  if (count === 0 || count > MAX_FRAMES_PER_PACKET || table.byteLength !== 4 + 8 * count) {
    throw new MalformedFrameError(`an announcement of ${table.byteLength} bytes is not a table of frame lengths`);
  }
  const lengths: number[] = [];
  let total = 0;
  for (let i = 0; i < count; i++) {
    const length = view.getUint32(4 + 8 * i) * 2 ** 32 + view.getUint32(8 + 8 * i);
    if (length > MAX_FRAME_SIZE) throw new FrameTooLargeError(length, MAX_FRAME_SIZE, 'message');
    lengths.push(length);
    total += length;
  }
  if (lengths[0] === 0) throw new MalformedFrameError('an announced message has no header');
  if (total > limit) throw new FrameTooLargeError(total, limit, 'message');
  return lengths;
}

/**
 * The packets (each a list of frames) that carry `frames` after their announcement: each
 * at most `packetLimit` bytes as framing counts them (4 + 4 per piece + the pieces) and at
 * most `maxPieces` pieces. The pieces are views onto the frames, not copies.
 */
export function cutPackets(frames: readonly Uint8Array[], packetLimit: number, maxPieces: number): Uint8Array[][] {
  const packets: Uint8Array[][] = [];
  let packet: Uint8Array[] = [];
  let used = 4;
  for (const frame of frames) {
    let offset = 0;
    while (offset < frame.byteLength) {
      if (packet.length === maxPieces || used + 4 >= packetLimit) {
        packets.push(packet);
        packet = [];
        used = 4;
      }
      const take = Math.min(frame.byteLength - offset, packetLimit - used - 4);
      packet.push(frame.subarray(offset, offset + take));
      used += 4 + take;
      offset += take;
    }
  }
  if (packet.length > 0) packets.push(packet);
  return packets;
}

/**
 * A long message being received: hands out, piece by piece, the memory each piece is to be
 * read into, and holds the frames once every byte has arrived.
 */
export class IncomingMessage {
  readonly #lengths: readonly number[];
  readonly #frames: Uint8Array[];
  readonly #memory: FrameMemory | null;
  #index = 0;
  #offset = 0;

  /** `memory`, when given, is asked for each frame's memory first (see `FrameMemory`). */
  constructor(lengths: readonly number[], memory: FrameMemory | null = null) {
    this.#lengths = lengths;
    this.#memory = memory;
    this.#frames = lengths.map(() => EMPTY);
    this.#skipEmpty();
  }

  /** True once every byte has been handed out (and, at the end of its packet, read). */
  get done(): boolean {
    return this.#index === this.#lengths.length;
  }

  /** The frames, whole; only once `done`. */
  get frames(): Uint8Array[] {
    return this.#frames;
  }

  /** Memory for the next piece, of `length` bytes; a piece that does not fit its frame is malformed. */
  claim(length: number): Uint8Array {
    if (this.done) throw new MalformedFrameError('a packet goes on past the end of the long message it carries');
    const frameLength = this.#lengths[this.#index]!;
    if (length > frameLength - this.#offset) {
      throw new MalformedFrameError(`a piece of ${length} bytes runs past the end of frame ${this.#index} of a long message`);
    }
    if (this.#offset === 0) this.#frames[this.#index] = this.#memory === null ? allocate(frameLength) : frameMemory(this.#memory, frameLength, allocate);
    const piece = this.#frames[this.#index]!.subarray(this.#offset, this.#offset + length);
    this.#offset += length;
    if (this.#offset === frameLength) {
      this.#index++;
      this.#offset = 0;
      this.#skipEmpty();
    }
    return piece;
  }

  #skipEmpty(): void {
    while (this.#index < this.#lengths.length && this.#lengths[this.#index] === 0) this.#index++;
  }
}

/** A buffer of its own (offset 0, so aligned for any typed array), or a clear error when memory refuses. */
function allocate(length: number): Buffer {
  try {
    return Buffer.allocUnsafeSlow(length);
  } catch (error) {
    throw new RangeError(`cannot allocate ${length} bytes for a frame of a long message: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}
