/**
 * A message connection: ordered delivery to one handler and an explicit lifecycle
 * (open → closing → closed). `SocketConnection` speaks over a TCP or TLS socket, with
 * batched sends and backpressure; `LocalConnection` (local.ts) joins two ends in one
 * process.
 */
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { InvalidArgumentError } from '../errors.js';
import { formatAddress } from './address.js';
import { packBatch, splitBatch } from './batch.js';
import { decode, encode, encodePlain } from './codec.js';
import type { DirectReads } from './direct-reads.js';
import { ConnectionClosedError, FrameTooLargeError, UnencodableMessageError } from './errors.js';
import { DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_PACKET_SIZE, type FrameMemory, FrameReader, MAX_FRAMES_PER_PACKET, MAX_PACKET_SIZE, writePacket } from './framing.js';
import { announce, cutPackets, IncomingMessage, readAnnouncement } from './long-message.js';
import { envBytes, numberOption } from './options.js';

/** Every message on the wire is an object with a string `op`, a member of some union. */
export interface Message {
  readonly op: string;
}

export type ConnectionState = 'open' | 'closing' | 'closed';

export type CloseReason =
  /** A graceful close() on this side, or the peer ended the stream. */
  | { readonly kind: 'closed'; readonly by: 'local' | 'remote' }
  /** destroy() without an error. */
  | { readonly kind: 'destroyed' }
  /** destroy(error), a socket error, a malformed packet, or a message handler that threw. */
  | { readonly kind: 'error'; readonly error: Error };

export interface ConnectionOptions {
  /**
   * Milliseconds over which sent messages gather into one packet. The first message after
   * a quiet spell goes out at the end of the current tick; 0 means always so. Traffic
   * that waits on each reply wants 0. Default 2.
   */
  readonly batchInterval?: number;
  /**
   * The frame limit: largest packet sent or accepted, in bytes. A message larger than a
   * packet travels in several. Default `TESSERA_MAX_PACKET_SIZE` when set, else 512 MiB.
   */
  readonly maxPacketSize?: number;
  /**
   * Largest message sent or accepted, in bytes: what a peer may make this side allocate for
   * one message. Default `TESSERA_MAX_MESSAGE_SIZE` when set, else half this machine's
   * memory (at least 512 MiB).
   */
  readonly maxMessageSize?: number;
  /** Milliseconds a graceful close() may take before it becomes a destroy. Default 10 000. */
  readonly closeTimeout?: number;
  /**
   * Where large frames received are read: memory the receiver has used before, when it can
   * say when the values decoded from a frame are let go (see `FrameMemory`). Default: fresh
   * memory for each.
   */
  readonly frameMemory?: FrameMemory;
}

export type ResolvedConnectionOptions = Required<Omit<ConnectionOptions, 'frameMemory'>> & Pick<ConnectionOptions, 'frameMemory'>;

/** Validate connection options, naming the bad one, and fill in the defaults. */
export function resolveConnectionOptions(options: ConnectionOptions): ResolvedConnectionOptions {
  if (options.frameMemory !== undefined && typeof options.frameMemory !== 'function') {
    throw new InvalidArgumentError(`options.frameMemory must be a function (length) => Uint8Array | null, not ${typeof options.frameMemory}`);
  }
  return {
    ...(options.frameMemory === undefined ? {} : { frameMemory: options.frameMemory }),
    batchInterval: numberOption('batchInterval', options.batchInterval, 2, { min: 0, max: 60_000 }),
    maxPacketSize: numberOption('maxPacketSize', options.maxPacketSize, envBytes('TESSERA_MAX_PACKET_SIZE') ?? DEFAULT_MAX_PACKET_SIZE, {
      min: 1024,
      max: MAX_PACKET_SIZE,
      integer: true,
    }),
    maxMessageSize: numberOption('maxMessageSize', options.maxMessageSize, envBytes('TESSERA_MAX_MESSAGE_SIZE') ?? DEFAULT_MAX_MESSAGE_SIZE, {
      min: 1024,
      integer: true,
    }),
    closeTimeout: numberOption('closeTimeout', options.closeTimeout, 10_000, { min: 0, max: 2 ** 31 - 1 }),
  };
}

/**
 * @internal The same connection typed for another message union. The type is a promise
 * made at compile time (the wire carries any op): the handshake speaks its own union
 * before the application speaks its.
 */
export function retype<N extends Message>(conn: Connection): Connection<N> {
  return conn as unknown as Connection<N>;
}

/** @internal Lets the handshake keep packets small until the peer is known. */
export const kReadLimit = Symbol('tessera.comm.readLimit');

// Far below the reader's limit, so a batch of tiny messages never looks like nonsense.
const MAX_FRAMES_SENT = 1 << 16;
// The packet prefix and the batch index frame's slot in the length table; each message
// adds its own index entry and slots (see `send`).
const PACKET_OVERHEAD = 8 + 4;

/** Bytes a message's frames take in a batch: each frame, its length slot and its index entry. */
export function messageSize(frames: readonly Uint8Array[]): number {
  let size = 4 + 4 * frames.length;
  for (const frame of frames) size += frame.byteLength;
  return size;
}

/** One end of a message connection, whatever carries it. */
export interface Connection<M extends Message = Message> {
  readonly remoteAddress: string;
  readonly localAddress: string;
  /** Largest message sent or accepted, in bytes. */
  readonly maxMessageSize: number;
  /** The frame limit: no packet is larger (a message that is travels in several). */
  readonly maxPacketSize: number;
  /** Settles, never rejects, once the connection is fully closed. */
  readonly closed: Promise<CloseReason>;
  readonly state: ConnectionState;
  /** Bytes queued on this side, not yet handed on. */
  readonly bufferedBytes: number;
  /**
   * Queue a message. It is encoded now — so encoding errors throw here, and later changes
   * to the object do not travel — except large binary values, which are sent from the
   * caller's memory and must not change until written. One larger than `maxMessageSize`
   * throws `FrameTooLargeError`.
   */
  send(message: M): void;
  /**
   * `send` for a message of plain data only (null, booleans, numbers, strings, plain arrays
   * and objects), for the hot messages whose makers know their contents. Neither side
   * changes such a message once sent: an end in this process may hand over the object itself.
   */
  sendPlain(message: M): void;
  /** Write what is queued now instead of at the end of the batch interval. */
  flush(): void;
  /**
   * The one handler for incoming messages, called in order. Messages that arrive while
   * there is none wait until one is set. A handler that throws destroys the connection
   * with that error.
   */
  onMessage(handler: ((message: M) => void) | null): void;
  /** Called once, with the reason, when the connection has closed (at once if it has). */
  onClose(handler: (reason: CloseReason) => void): void;
  /** Lets the process exit while this connection is open. */
  unref(): this;
  /** Keeps the process alive while this connection is open (the default). */
  ref(): this;
  /** Deliver what is queued, end the connection, and resolve once it has closed. */
  close(): Promise<void>;
  /** Drop the connection now; queued messages are lost. */
  destroy(error?: Error): void;
  /** @internal The handshake's limit on what the peer may send before it is known. */
  [kReadLimit](bytes: number): void;
}

/**
 * What every kind of connection shares: the one handler and the messages waiting for it,
 * the close reason, `closed`, and the close handlers, told once.
 */
export abstract class BaseConnection<M extends Message = Message> implements Connection<M> {
  abstract readonly remoteAddress: string;
  abstract readonly localAddress: string;
  abstract readonly maxMessageSize: number;
  abstract readonly maxPacketSize: number;
  readonly closed: Promise<CloseReason>;

  protected handler: ((message: M) => void) | null = null;
  /** Messages that arrived while no handler was set, or behind one still waiting. */
  protected inbox: M[] = [];
  /** A drain of the inbox is due. */
  protected drainScheduled = false;
  /** Why it closed (or is closing); null while open. */
  protected reason: CloseReason | null = null;
  #finalized = false;
  #closeHandlers: ((reason: CloseReason) => void)[] = [];
  #resolveClosed: (reason: CloseReason) => void = () => {};

  constructor() {
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  abstract get state(): ConnectionState;
  abstract get bufferedBytes(): number;
  abstract send(message: M): void;
  abstract sendPlain(message: M): void;
  abstract flush(): void;
  abstract unref(): this;
  abstract ref(): this;
  abstract close(): Promise<void>;
  abstract destroy(error?: Error): void;
  abstract [kReadLimit](bytes: number): void;

  onMessage(handler: ((message: M) => void) | null): void {
    this.handler = handler;
    if (handler !== null && this.inbox.length > 0 && !this.drainScheduled) {
      this.drainScheduled = true;
      // Not synchronously: the caller may still be setting up around onMessage().
      process.nextTick(() => this.drainInbox());
    }
  }

  onClose(handler: (reason: CloseReason) => void): void {
    const reason = this.reason;
    if (this.#finalized && reason !== null) queueMicrotask(() => handler(reason));
    else this.#closeHandlers.push(handler);
  }

  /** Hands the waiting messages to the handler in order, while there is one and the connection is open. */
  protected drainInbox(): void {
    this.drainScheduled = false;
    const inbox = this.inbox;
    let delivered = 0;
    try {
      while (delivered < inbox.length && this.handler !== null && this.state === 'open') {
        this.handler(inbox[delivered++]!);
      }
    } catch (error) {
      this.destroy(error instanceof Error ? error : new Error(String(error)));
      return;
    } finally {
      inbox.splice(0, delivered);
    }
    this.drained();
  }

  /** What follows a drain: reading on, or closing behind a peer that has ended. */
  protected abstract drained(): void;

  /** Enter 'closed': nothing more is sent or delivered. */
  protected abstract shutDown(): void;

  /**
   * Closed for good: shut down, `closed` settled and every close handler told, once.
   * False when it already was.
   */
  protected finalize(): boolean {
    if (this.#finalized) return false;
    this.#finalized = true;
    this.shutDown();
    const reason = this.reason ?? { kind: 'closed', by: 'remote' };
    this.reason = reason;
    this.#resolveClosed(reason);
    const handlers = this.#closeHandlers;
    this.#closeHandlers = [];
    for (const handler of handlers) {
      try {
        handler(reason);
      } catch (error) {
        // Every handler runs; a failing one still surfaces, as an uncaught exception.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
    return true;
  }
}

export class SocketConnection<M extends Message = Message> extends BaseConnection<M> {
  readonly remoteAddress: string;
  readonly localAddress: string;
  readonly maxMessageSize: number;
  /** The frame limit: no packet is larger (a message that is travels in several). */
  readonly maxPacketSize: number;

  readonly #socket: Socket;
  readonly #reader: FrameReader;
  readonly #frameMemory: FrameMemory | null;
  readonly #batchInterval: number;
  readonly #closeTimeout: number;
  #state: ConnectionState = 'open';
  #ended = false;

  // Encoded messages waiting for the next packet, and their sizes on the wire.
  #outbox: Uint8Array[][] = [];
  #outboxSizes: number[] = [];
  #outboxBytes = 0;
  #flushScheduled = false;
  #flushTimer: NodeJS.Timeout | null = null;
  #lastFlush = -Infinity;
  #awaitingDrain = false;
  // The packets still to write of a long message under way, and their bytes; nothing else
  // is written until they are.
  #continuation: Uint8Array[][] = [];
  #continuationBytes = 0;

  // A long message being read, and the limit on the next one announced.
  #incoming: IncomingMessage | null = null;
  #readMessageLimit: number;

  #closeTimer: NodeJS.Timeout | null = null;

  /**
   * `reads`, when the socket was dialled with its `onread` (direct-reads.ts), lets the
   * socket read large frames straight into their memory; without it the socket's 'data'
   * events are read.
   */
  constructor(socket: Socket, options: ConnectionOptions = {}, reads?: DirectReads) {
    super();
    const resolved = resolveConnectionOptions(options);
    this.#batchInterval = resolved.batchInterval;
    this.maxMessageSize = resolved.maxMessageSize;
    // A packet holds whole messages or pieces of one: never more than a message may be.
    this.maxPacketSize = Math.min(resolved.maxPacketSize, resolved.maxMessageSize);
    this.#readMessageLimit = this.maxMessageSize;
    this.#closeTimeout = resolved.closeTimeout;
    this.#socket = socket;
    this.#reader = new FrameReader(
      this.maxPacketSize,
      (frames) => this.#onPacket(frames),
      (length) => (this.#incoming === null || this.#state !== 'open' ? null : this.#incoming.claim(length)),
      resolved.frameMemory ?? null,
    );
    this.#frameMemory = resolved.frameMemory ?? null;
    const scheme = socket instanceof TLSSocket ? 'tls' : 'tcp';
    this.remoteAddress = formatAddress(scheme, socket.remoteAddress ?? 'unknown', socket.remotePort ?? 0);
    this.localAddress = formatAddress(scheme, socket.localAddress ?? 'unknown', socket.localPort ?? 0);

    if (reads === undefined) {
      socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    } else {
      reads.attach({
        rest: (min) => (this.#state === 'open' ? this.#reader.rest(min) : null),
        filled: (bytes) => this.#onFilled(bytes),
        chunk: (chunk) => this.#onData(chunk),
      });
      // Flowing, so that the end of the stream is seen: no data events come in this mode.
      socket.resume();
    }
    socket.on('drain', () => this.#onDrain());
    socket.on('end', () => this.#onEnd());
    socket.on('error', (error: Error) => this.#onSocketError(error));
    socket.on('close', () => this.finalize());
    if (socket.destroyed) {
      this.#state = 'closed';
      this.reason = { kind: 'error', error: new ConnectionClosedError('the socket was already closed') };
      process.nextTick(() => this.finalize());
    } else {
      socket.setNoDelay(true);
    }
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** Bytes queued here and in the socket, not yet handed to the kernel. */
  get bufferedBytes(): number {
    return this.#outboxBytes + this.#continuationBytes + this.#socket.writableLength;
  }

  /**
   * Queue a message. It is encoded now — so encoding errors throw here, and later changes
   * to the object do not travel — except large binary values, which are sent from the
   * caller's memory and must not change until written. A message larger than a packet
   * travels in several; one larger than `maxMessageSize` throws `FrameTooLargeError`.
   */
  send(message: M): void {
    this.#queue(message, encode);
  }

  /**
   * `send` for a message of plain data only (codec.ts's `encodePlain`: null, booleans,
   * numbers, strings, plain arrays and objects): packed without the walk that looks for
   * binary values, errors and maps. For the hot messages whose makers know their contents.
   */
  sendPlain(message: M): void {
    this.#queue(message, encodePlain);
  }

  #queue(message: M, encoder: (message: M) => Uint8Array[]): void {
    if (this.#state !== 'open') {
      throw new ConnectionClosedError(`cannot send '${message.op}': the connection to ${this.remoteAddress} is ${this.#state}`);
    }
    const frames = encoder(message);
    const size = messageSize(frames);
    if (size + PACKET_OVERHEAD > this.maxMessageSize) throw new FrameTooLargeError(size + PACKET_OVERHEAD, this.maxMessageSize, 'message');
    if (this.#isLong(size, frames.length)) {
      // Announced by a table of its frame lengths, which must fit a packet of its own.
      if (frames.length > MAX_FRAMES_PER_PACKET) throw new UnencodableMessageError(`a message of ${frames.length} frames (binary values) is more than the ${MAX_FRAMES_PER_PACKET} one may have`);
      const announcement = PACKET_OVERHEAD + 4 + 4 + 8 * frames.length;
      if (announcement > this.maxPacketSize) throw new FrameTooLargeError(announcement, this.maxPacketSize);
    }
    this.#outbox.push(frames);
    this.#outboxSizes.push(size);
    this.#outboxBytes += size;
    this.#scheduleFlush();
  }

  /** Write what is queued now instead of at the end of the batch interval. */
  flush(): void {
    if (this.#flushTimer !== null) {
      clearTimeout(this.#flushTimer);
      this.#flushTimer = null;
      this.#flushScheduled = false;
    }
    this.#writeOut();
  }

  /** Lets the process exit while this connection is open (see the server's `keepAlive`). */
  unref(): this {
    this.#socket.unref();
    return this;
  }

  /** Keeps the process alive while this connection is open (the default). */
  ref(): this {
    this.#socket.ref();
    return this;
  }

  /** Flush what is queued, end the stream, and resolve once the socket has closed. */
  close(): Promise<void> {
    if (this.#state === 'open') {
      this.#state = 'closing';
      this.reason = { kind: 'closed', by: 'local' };
      this.inbox = [];
      // Keep reading, so that the peer's end arrives and the socket can close.
      this.#socket.resume();
      if (this.#closeTimeout > 0) {
        this.#closeTimer = setTimeout(() => {
          this.destroy(new ConnectionClosedError(`close() did not finish within ${this.#closeTimeout} ms`));
        }, this.#closeTimeout);
        this.#closeTimer.unref();
      }
      this.#writeOut();
    }
    return this.closed.then(() => undefined);
  }

  /** Drop the connection now; queued messages are lost. */
  destroy(error?: Error): void {
    if (this.#state === 'closed') return;
    // A graceful close that has to be cut short did not end gracefully.
    this.reason = error === undefined ? { kind: 'destroyed' } : { kind: 'error', error };
    this.shutDown();
    this.#socket.destroy();
  }

  /** @internal */
  [kReadLimit](bytes: number): void {
    this.#reader.maxPacketSize = Math.min(bytes, this.maxPacketSize);
    this.#readMessageLimit = Math.min(bytes, this.maxMessageSize);
  }

  // ---- sending ----

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#awaitingDrain) return;
    this.#flushScheduled = true;
    const wait = this.#batchInterval === 0 ? 0 : this.#lastFlush + this.#batchInterval - performance.now();
    if (wait <= 0) process.nextTick(this.#onFlushDue);
    else this.#flushTimer = setTimeout(this.#onFlushDue, wait);
  }

  readonly #onFlushDue = (): void => {
    this.#flushScheduled = false;
    this.#flushTimer = null;
    this.#writeOut();
  };

  #writeOut(): void {
    if (this.#state === 'closed' || this.#awaitingDrain) return;
    // Each packet may fill the socket's buffer; then stop and let 'drain' resume.
    while (this.#outbox.length > 0 || this.#continuation.length > 0) {
      this.#lastFlush = performance.now();
      let packet: Uint8Array[];
      if (this.#continuation.length > 0) {
        // The rest of a long message, before anything else.
        packet = this.#continuation.shift()!;
        for (const piece of packet) this.#continuationBytes -= piece.byteLength;
      } else {
        const { messages, long } = this.#takeBatch();
        if (long === null) {
          packet = packBatch(messages);
        } else {
          packet = packBatch(messages, announce(long));
          this.#continuation = cutPackets(long, this.maxPacketSize, MAX_FRAMES_SENT);
          for (const frame of long) this.#continuationBytes += frame.byteLength;
        }
      }
      if (!writePacket(this.#socket, packet)) {
        this.#awaitingDrain = true;
        return;
      }
    }
    if (this.#state === 'closing' && !this.#ended) {
      this.#ended = true;
      this.#socket.end();
    }
  }

  /**
   * The longest prefix of the outbox that fits one packet, and, when the message after it
   * is larger than a packet, that message, to be announced at the end of the batch.
   */
  #takeBatch(): { messages: Uint8Array[][]; long: Uint8Array[] | null } {
    const outbox = this.#outbox;
    const sizes = this.#outboxSizes;
    let bytes = PACKET_OVERHEAD;
    let frames = 1;
    let count = 0;
    let long: Uint8Array[] | null = null;
    while (count < outbox.length) {
      const size = sizes[count]!;
      const frameCount = outbox[count]!.length;
      if (this.#isLong(size, frameCount)) {
        // A long message: its announcement (4 + 8 per frame, plus its index slot) ends this batch.
        const announcement = 4 + 4 + 8 * frameCount;
        if (count === 0 || (bytes + announcement <= this.maxPacketSize && frames + 1 <= MAX_FRAMES_SENT)) {
          long = outbox[count]!;
          this.#outboxBytes -= size;
          count++;
        }
        break;
      }
      if (count > 0 && (bytes + size > this.maxPacketSize || frames + frameCount > MAX_FRAMES_SENT)) break;
      bytes += size;
      frames += frameCount;
      count++;
    }
    this.#outboxBytes -= bytes - PACKET_OVERHEAD;
    let taken: Uint8Array[][];
    if (count === outbox.length) {
      taken = outbox;
      this.#outbox = [];
      this.#outboxSizes = [];
    } else {
      taken = outbox.splice(0, count);
      sizes.splice(0, count);
    }
    return { messages: long === null ? taken : taken.slice(0, -1), long };
  }

  /** Whether a message of this size and number of frames travels as a long message. */
  #isLong(size: number, frameCount: number): boolean {
    return PACKET_OVERHEAD + size > this.maxPacketSize || 1 + frameCount > MAX_FRAMES_SENT;
  }

  #onDrain(): void {
    if (!this.#awaitingDrain) return;
    this.#awaitingDrain = false;
    this.#writeOut();
  }

  // ---- receiving ----

  #onData(chunk: Buffer): void {
    this.#read((reader) => reader.push(chunk));
  }

  #onFilled(bytes: number): void {
    this.#read((reader) => reader.filled(bytes));
  }

  /** Hands what was read to the reader while open. */
  #read(take: (reader: FrameReader) => void): void {
    if (this.#state !== 'open') return;
    try {
      take(this.#reader);
    } catch (error) {
      // A malformed or oversized packet, or a handler that threw: nothing can follow.
      this.destroy(error instanceof Error ? error : new Error(String(error)));
    }
  }

  #onPacket(frames: Uint8Array[]): void {
    if (this.#state !== 'open') return;
    const incoming = this.#incoming;
    if (incoming !== null) {
      // A packet of a long message's pieces, read into its frames already.
      if (!incoming.done) return;
      this.#incoming = null;
      this.#deliver(incoming.frames);
      return;
    }
    const { messages, announcement } = splitBatch(frames);
    for (const message of messages) {
      // Read through the getter: TypeScript keeps `#state` narrowed to 'open' from the check
      // above, but a handler called on an earlier turn of this loop may have closed us.
      if (this.state !== 'open') return;
      this.#deliver(message);
    }
    // Checked and set before the next packet, whose pieces it claims, is read.
    if (announcement !== null && this.state === 'open') this.#incoming = new IncomingMessage(readAnnouncement(announcement, this.#readMessageLimit), this.#frameMemory);
  }

  #deliver(frames: Uint8Array[]): void {
    const decoded = decode(frames) as M;
    const handler = this.handler;
    if (handler === null || this.inbox.length > 0) {
      // Waiting for a handler, or behind messages that wait: reading pauses meanwhile.
      this.inbox.push(decoded);
      this.#socket.pause();
    } else {
      handler(decoded);
    }
  }

  protected drained(): void {
    if (this.inbox.length === 0 && this.#state === 'open') this.#socket.resume();
  }

  // ---- closing ----

  #onEnd(): void {
    if (this.#state === 'open') {
      this.reason = { kind: 'closed', by: 'remote' };
      this.shutDown();
    }
    if (!this.#ended) {
      this.#ended = true;
      this.#socket.end();
    }
  }

  #onSocketError(error: Error): void {
    if (this.#state === 'closed') return;
    this.reason = { kind: 'error', error };
    this.shutDown();
  }

  /** Enter 'closed': nothing more is sent or delivered. The socket's 'close' finalizes. */
  protected shutDown(): void {
    this.#state = 'closed';
    this.#outbox = [];
    this.#outboxSizes = [];
    this.#outboxBytes = 0;
    this.#continuation = [];
    this.#continuationBytes = 0;
    this.inbox = [];
    this.#incoming = null;
    this.#clearTimers();
  }

  #clearTimers(): void {
    if (this.#flushTimer !== null) clearTimeout(this.#flushTimer);
    if (this.#closeTimer !== null) clearTimeout(this.#closeTimer);
    this.#flushTimer = null;
    this.#closeTimer = null;
  }
}
