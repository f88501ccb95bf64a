/**
 * Packets on a byte stream:
 *
 *     u32 BE  L        length of everything after this field
 *     u32 BE  n        number of frames (at least 1)
 *     n × u32 BE       length of each frame
 *     frame bytes, back to back
 *
 * so that L = 4 + 4n + Σ lengths.
 *
 * A message too large for one packet travels over several (see long-message.ts).
 */
import { constants } from 'node:buffer';
import { totalmem } from 'node:os';
import { FrameTooLargeError, MalformedFrameError } from './errors.js';
import { envBytes } from './options.js';

/**
 * The frame limit: the largest packet a connection sends or accepts, unless its options
 * or `TESSERA_MAX_PACKET_SIZE` say otherwise.
 */
export const DEFAULT_MAX_PACKET_SIZE = 512 * 1024 * 1024;
/**
 * The largest message a connection sends or accepts, by default: `TESSERA_MAX_MESSAGE_SIZE`
 * when set, else what memory allows, taken as half this machine's memory (and never less
 * than one packet). A message larger than a packet travels in several; the receiver
 * allocates what its sender announces, so this bounds what a peer can make it allocate
 * for one message.
 */
export const DEFAULT_MAX_MESSAGE_SIZE =
  envBytes('TESSERA_MAX_MESSAGE_SIZE') ?? Math.max(DEFAULT_MAX_PACKET_SIZE, Math.floor(totalmem() / 2 / 1024 / 1024) * 1024 * 1024);
/** L is a u32, so no packet can be larger than this whatever the options say. */
export const MAX_PACKET_SIZE = 0xffff_ffff;
/** The largest single buffer this process can allocate: no frame of a message can be larger. */
export const MAX_FRAME_SIZE = constants.MAX_LENGTH;
/** More frames than this in one packet is nonsense; senders stay well below it. */
export const MAX_FRAMES_PER_PACKET = 1 << 20;

/** Frames smaller than this are copied next to the packet header rather than written alone. */
const COALESCE_BELOW = 16 * 1024;

const EMPTY = Buffer.alloc(0);

/** The bytes of one packet: the header, with small frames coalesced into it, and large frames by reference. */
export function encodePacket(frames: readonly Uint8Array[]): Uint8Array[] {
  const n = frames.length;
  if (n === 0 || n > MAX_FRAMES_PER_PACKET) throw new RangeError(`a packet needs 1 to ${MAX_FRAMES_PER_PACKET} frames, not ${n}`);
  let length = 4 + 4 * n;
  for (const frame of frames) length += frame.byteLength;
  if (length > MAX_PACKET_SIZE) throw new FrameTooLargeError(length, MAX_PACKET_SIZE);

  const chunks: Uint8Array[] = [];
  let i = 0;
  // The header and any small frames right after it go out as one buffer.
  let runBytes = 8 + 4 * n;
  let end = i;
  while (end < n && frames[end]!.byteLength < COALESCE_BELOW) runBytes += frames[end++]!.byteLength;
  const head = Buffer.allocUnsafe(runBytes);
  head.writeUInt32BE(length, 0);
  head.writeUInt32BE(n, 4);
  let offset = 8;
  for (const frame of frames) {
    head.writeUInt32BE(frame.byteLength, offset);
    offset += 4;
  }
  for (; i < end; i++) {
    head.set(frames[i]!, offset);
    offset += frames[i]!.byteLength;
  }
  chunks.push(head);

  while (i < n) {
    const frame = frames[i]!;
    if (frame.byteLength >= COALESCE_BELOW) {
      chunks.push(frame);
      i++;
      continue;
    }
    runBytes = 0;
    end = i;
    while (end < n && frames[end]!.byteLength < COALESCE_BELOW) runBytes += frames[end++]!.byteLength;
    const run = Buffer.allocUnsafe(runBytes);
    for (offset = 0; i < end; i++) {
      run.set(frames[i]!, offset);
      offset += frames[i]!.byteLength;
    }
    chunks.push(run);
  }
  return chunks;
}

/** The part of a socket that writing needs. */
export interface PacketSink {
  cork(): void;
  uncork(): void;
  write(chunk: Uint8Array): boolean;
}

/**
 * Write one packet. Corking turns the chunks into a single writev, so large frames go to
 * the kernel straight from the caller's memory. Returns false when the socket wants a
 * 'drain' before more is written.
 */
export function writePacket(sink: PacketSink, frames: readonly Uint8Array[]): boolean {
  const chunks = encodePacket(frames);
  let ok = true;
  sink.cork();
  try {
    for (const chunk of chunks) ok = sink.write(chunk);
  } finally {
    sink.uncork();
  }
  return ok;
}

type Stage = 'length' | 'table' | 'frames';

/**
 * Where the bytes of a frame about to be read should go: a view of exactly `length` bytes
 * to read them into, or null to let the reader place them. Called once per frame of
 * non-zero length, as its first byte arrives; it may throw, and `push` throws that.
 */
export type FrameTarget = (length: number) => Uint8Array | null;

/**
 * Memory to read a frame of `length` bytes into, when the reader would allocate it: a view
 * of exactly `length` bytes that the frame then owns (offset 0 of its own buffer, so that
 * values decoded from it can find that buffer), or null for fresh memory. A receiver that
 * knows when its values are let go can so read frames into memory it has touched before.
 * Asked only for frames that span reads, the large ones; it may throw, and `push` throws that.
 */
export type FrameMemory = (length: number) => Uint8Array | null;

/**
 * Turns chunks of a byte stream into packets. Each byte is copied at most once: a piece that
 * lies within one chunk is a view onto it, and a piece that spans chunks is assembled in a
 * buffer of its exact size, allocated once — so a large frame starts at offset 0 of its
 * own memory, aligned for any typed array. A `target` may instead give the memory a frame
 * is read into (a part of a larger buffer being assembled); its bytes are then copied
 * there, once, from the chunks that hold them.
 *
 * `push` throws `FrameTooLargeError` or `MalformedFrameError`; after that the stream cannot
 * be resynchronised and the reader must be dropped.
 */
export class FrameReader {
  /** May be changed after the handshake; checked as each packet begins. */
  maxPacketSize: number;
  readonly #onPacket: (frames: Uint8Array[]) => void;
  readonly #target: FrameTarget | null;
  readonly #memory: FrameMemory | null;

  #stage: Stage = 'length';
  #need = 8;
  #partial: Buffer | null = null;
  #filled = 0;
  #lengths: number[] = [];
  #frames: Uint8Array[] = [];

  constructor(maxPacketSize: number, onPacket: (frames: Uint8Array[]) => void, target: FrameTarget | null = null, memory: FrameMemory | null = null) {
    this.maxPacketSize = maxPacketSize;
    this.#onPacket = onPacket;
    this.#target = target;
    this.#memory = memory;
  }

  /** True between packets: nothing of a next packet has arrived. */
  get idle(): boolean {
    return this.#stage === 'length' && this.#partial === null;
  }

  /**
   * Where the rest of a frame being assembled goes, when at least `min` bytes of it are
   * still to come: a socket can read them there itself (`filled` says how many it did),
   * and they are never copied. Null otherwise: read a chunk and `push` it.
   */
  rest(min: number): Uint8Array | null {
    const partial = this.#partial;
    if (partial === null || this.#need - this.#filled < min) return null;
    return partial.subarray(this.#filled, this.#need);
  }

  /** `bytes` were read into what `rest` gave, in place. */
  filled(bytes: number): void {
    const partial = this.#partial;
    if (partial === null || bytes <= 0 || this.#filled + bytes > this.#need) throw new RangeError(`${bytes} bytes read into a frame with ${partial === null ? 0 : this.#need - this.#filled} to come`);
    this.#filled += bytes;
    if (this.#filled < this.#need) return;
    this.#partial = null;
    this.#advance(partial);
    // Empty frames need no bytes: taken now, as push takes them, so a packet ending in one is delivered.
    while (this.#stage === 'frames' && this.#need === 0) this.#advance(EMPTY);
  }

  push(chunk: Buffer): void {
    let offset = 0;
    for (;;) {
      let piece: Buffer;
      const partial = this.#partial;
      if (partial !== null) {
        const take = Math.min(this.#need - this.#filled, chunk.length - offset);
        chunk.copy(partial, this.#filled, offset, offset + take);
        this.#filled += take;
        offset += take;
        if (this.#filled < this.#need) return;
        piece = partial;
        this.#partial = null;
      } else if (this.#need === 0) {
        piece = EMPTY;
      } else if (offset === chunk.length) {
        return;
      } else {
        const into = this.#stage === 'frames' && this.#target !== null ? this.#target(this.#need) : null;
        if (into !== null) {
          if (into.byteLength !== this.#need) throw new RangeError(`a frame target of ${into.byteLength} bytes for a frame of ${this.#need}`);
          const target = Buffer.from(into.buffer, into.byteOffset, into.byteLength);
          const take = Math.min(this.#need, chunk.length - offset);
          chunk.copy(target, 0, offset, offset + take);
          offset += take;
          if (take < this.#need) {
            this.#partial = target;
            this.#filled = take;
            return;
          }
          piece = target;
        } else if (chunk.length - offset >= this.#need) {
          piece = chunk.subarray(offset, offset + this.#need);
          offset += this.#need;
        } else {
          this.#partial = this.#stage === 'frames' && this.#memory !== null ? frameMemory(this.#memory, this.#need) : Buffer.allocUnsafe(this.#need);
          this.#filled = chunk.copy(this.#partial, 0, offset);
          return;
        }
      }
      this.#advance(piece);
    }
  }

  #advance(piece: Buffer): void {
    switch (this.#stage) {
      case 'length': {
        const length = piece.readUInt32BE(0);
        const count = piece.readUInt32BE(4);
        if (length > this.maxPacketSize) throw new FrameTooLargeError(length, this.maxPacketSize);
        if (count === 0 || count > MAX_FRAMES_PER_PACKET || 4 + 4 * count > length) {
          throw new MalformedFrameError(`a packet of ${length} bytes cannot hold ${count} frames`);
        }
        this.#stage = 'table';
        this.#need = 4 * count;
        this.#lengths = [length - 4 - 4 * count];
        return;
      }
      case 'table': {
        const expected = this.#lengths[0]!;
        const lengths: number[] = [];
        let sum = 0;
        for (let at = 0; at < piece.length; at += 4) {
          const frameLength = piece.readUInt32BE(at);
          lengths.push(frameLength);
          sum += frameLength;
        }
        if (sum !== expected) throw new MalformedFrameError(`frame lengths add up to ${sum} bytes, not ${expected}`);
        this.#lengths = lengths;
        this.#frames = [];
        this.#stage = 'frames';
        this.#need = lengths[0]!;
        return;
      }
      case 'frames': {
        const frames = this.#frames;
        frames.push(piece);
        if (frames.length < this.#lengths.length) {
          this.#need = this.#lengths[frames.length]!;
          return;
        }
        this.#stage = 'length';
        this.#need = 8;
        this.#frames = [];
        this.#lengths = [];
        this.#onPacket(frames);
        return;
      }
      default: {
        const never: never = this.#stage;
        throw new Error(`unreachable stage ${String(never)}`);
      }
    }
  }
}

/** Memory for a frame from `memory`, checked, as a Buffer; `fresh` memory when it has none. */
export function frameMemory(memory: FrameMemory, length: number, fresh: (length: number) => Buffer = (n) => Buffer.allocUnsafe(n)): Buffer {
  const given = memory(length);
  if (given === null) return fresh(length);
  if (given.byteLength !== length) throw new RangeError(`frame memory of ${given.byteLength} bytes for a frame of ${length}`);
  return Buffer.from(given.buffer, given.byteOffset, given.byteLength);
}
