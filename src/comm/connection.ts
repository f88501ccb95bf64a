/**
 * A message connection over a TCP or TLS socket: batched sends, ordered delivery to one
 * handler, backpressure, and an explicit lifecycle (open → closing → closed).
 */
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { formatAddress } from './address.js';
import { packBatch, unpackBatch } from './batch.js';
import { decode, encode } from './codec.js';
import { ConnectionClosedError, FrameTooLargeError } from './errors.js';
import { DEFAULT_MAX_MESSAGE_SIZE, FrameReader, MAX_PACKET_SIZE, writePacket } from './framing.js';
import { numberOption } from './options.js';

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
  /** Largest packet accepted, and largest message sent, in bytes. Default 512 MiB. */
  readonly maxMessageSize?: number;
  /** Milliseconds a graceful close() may take before it becomes a destroy. Default 10 000. */
  readonly closeTimeout?: number;
}

/** Validate connection options, naming the bad one, and fill in the defaults. */
export function resolveConnectionOptions(options: ConnectionOptions): Required<ConnectionOptions> {
  return {
    batchInterval: numberOption('batchInterval', options.batchInterval, 2, { min: 0, max: 60_000 }),
    maxMessageSize: numberOption('maxMessageSize', options.maxMessageSize, DEFAULT_MAX_MESSAGE_SIZE, {
      min: 1024,
      max: MAX_PACKET_SIZE,
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

export class Connection<M extends Message = Message> {
  readonly remoteAddress: string;
  readonly localAddress: string;
  readonly maxMessageSize: number;
  /** Settles, never rejects, once the socket is fully closed. */
  readonly closed: Promise<CloseReason>;

  readonly #socket: Socket;
  readonly #reader: FrameReader;
  readonly #batchInterval: number;
  readonly #closeTimeout: number;
  #state: ConnectionState = 'open';
  #reason: CloseReason | null = null;
  #finalized = false;
  #ended = false;

  // Encoded messages waiting for the next packet, and their sizes on the wire.
  #outbox: Uint8Array[][] = [];
  #outboxSizes: number[] = [];
  #outboxBytes = 0;
  #flushScheduled = false;
  #flushTimer: NodeJS.Timeout | null = null;
  #lastFlush = -Infinity;
  #awaitingDrain = false;

  #handler: ((message: M) => void) | null = null;
  // Messages that arrived while no handler was set; the socket is paused meanwhile.
  #inbox: M[] = [];
  #inboxScheduled = false;

  #closeHandlers: ((reason: CloseReason) => void)[] = [];
  #closeTimer: NodeJS.Timeout | null = null;
  #resolveClosed: (reason: CloseReason) => void = () => {};

  constructor(socket: Socket, options: ConnectionOptions = {}) {
    const resolved = resolveConnectionOptions(options);
    this.#batchInterval = resolved.batchInterval;
    this.maxMessageSize = resolved.maxMessageSize;
    this.#closeTimeout = resolved.closeTimeout;
    this.#socket = socket;
    this.#reader = new FrameReader(this.maxMessageSize, (frames) => this.#onPacket(frames));
    const scheme = socket instanceof TLSSocket ? 'tls' : 'tcp';
    this.remoteAddress = formatAddress(scheme, socket.remoteAddress ?? 'unknown', socket.remotePort ?? 0);
    this.localAddress = formatAddress(scheme, socket.localAddress ?? 'unknown', socket.localPort ?? 0);
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });

    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('drain', () => this.#onDrain());
    socket.on('end', () => this.#onEnd());
    socket.on('error', (error: Error) => this.#onSocketError(error));
    socket.on('close', () => this.#finalize());
    if (socket.destroyed) {
      this.#state = 'closed';
      this.#reason = { kind: 'error', error: new ConnectionClosedError('the socket was already closed') };
      process.nextTick(() => this.#finalize());
    } else {
      socket.setNoDelay(true);
    }
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** Bytes queued here and in the socket, not yet handed to the kernel. */
  get bufferedBytes(): number {
    return this.#outboxBytes + this.#socket.writableLength;
  }

  /**
   * Queue a message. It is encoded now — so encoding errors throw here, and later changes
   * to the object do not travel — except large binary values, which are sent from the
   * caller's memory and must not change until written.
   */
  send(message: M): void {
    if (this.#state !== 'open') {
      throw new ConnectionClosedError(`cannot send '${message.op}': the connection to ${this.remoteAddress} is ${this.#state}`);
    }
    const frames = encode(message);
    let size = 4 + 4 * frames.length;
    for (const frame of frames) size += frame.byteLength;
    if (size + PACKET_OVERHEAD > this.maxMessageSize) throw new FrameTooLargeError(size + PACKET_OVERHEAD, this.maxMessageSize);
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

  /**
   * The one handler for incoming messages, called in order. Messages that arrive while
   * there is none wait (and reading pauses) until one is set. A handler that throws
   * destroys the connection with that error.
   */
  onMessage(handler: ((message: M) => void) | null): void {
    this.#handler = handler;
    if (handler !== null && this.#inbox.length > 0 && !this.#inboxScheduled) {
      this.#inboxScheduled = true;
      // Not synchronously: the caller may still be setting up around onMessage().
      process.nextTick(() => this.#drainInbox());
    }
  }

  /** Called once, with the reason, when the connection has closed (at once if it has). */
  onClose(handler: (reason: CloseReason) => void): void {
    const reason = this.#reason;
    if (this.#finalized && reason !== null) queueMicrotask(() => handler(reason));
    else this.#closeHandlers.push(handler);
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
      this.#reason = { kind: 'closed', by: 'local' };
      this.#inbox = [];
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
    this.#reason = error === undefined ? { kind: 'destroyed' } : { kind: 'error', error };
    this.#shutDown();
    this.#socket.destroy();
  }

  /** @internal */
  [kReadLimit](bytes: number): void {
    this.#reader.maxMessageSize = Math.min(bytes, this.maxMessageSize);
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
    while (this.#outbox.length > 0) {
      this.#lastFlush = performance.now();
      if (!writePacket(this.#socket, packBatch(this.#takeBatch()))) {
        this.#awaitingDrain = true;
        return;
      }
    }
    if (this.#state === 'closing' && !this.#ended) {
      this.#ended = true;
      this.#socket.end();
    }
  }

  /** The longest prefix of the outbox that fits one packet (at least one message). */
  #takeBatch(): Uint8Array[][] {
    const outbox = this.#outbox;
    const sizes = this.#outboxSizes;
    let bytes = PACKET_OVERHEAD + sizes[0]!;
    let frames = 1 + outbox[0]!.length;
    let count = 1;
    while (count < outbox.length) {
      const size = sizes[count]!;
      const frameCount = outbox[count]!.length;
      if (bytes + size > this.maxMessageSize || frames + frameCount > MAX_FRAMES_SENT) break;
      bytes += size;
      frames += frameCount;
      count++;
    }
    this.#outboxBytes -= bytes - PACKET_OVERHEAD;
    if (count === outbox.length) {
      this.#outbox = [];
      this.#outboxSizes = [];
      return outbox;
    }
    sizes.splice(0, count);
    return outbox.splice(0, count);
  }

  #onDrain(): void {
    if (!this.#awaitingDrain) return;
    this.#awaitingDrain = false;
    this.#writeOut();
  }

  // ---- receiving ----

  #onData(chunk: Buffer): void {
    if (this.#state !== 'open') return;
    try {
      this.#reader.push(chunk);
    } catch (error) {
      // A malformed or oversized packet, or a handler that threw: nothing can follow.
      this.destroy(error instanceof Error ? error : new Error(String(error)));
    }
  }

  #onPacket(frames: Uint8Array[]): void {
    if (this.#state !== 'open') return;
    for (const message of unpackBatch(frames)) {
      // Read through the getter: TypeScript keeps `#state` narrowed to 'open' from the check
      // above, but a handler called on an earlier turn of this loop may have closed us.
      if (this.state !== 'open') return;
      const decoded = decode(message) as M;
      const handler = this.#handler;
      if (handler === null || this.#inbox.length > 0) {
        this.#inbox.push(decoded);
        this.#socket.pause();
      } else {
        handler(decoded);
      }
    }
  }

  #drainInbox(): void {
    this.#inboxScheduled = false;
    const inbox = this.#inbox;
    let delivered = 0;
    try {
      while (delivered < inbox.length && this.#handler !== null && this.#state === 'open') {
        this.#handler(inbox[delivered++]!);
      }
    } catch (error) {
      this.destroy(error instanceof Error ? error : new Error(String(error)));
      return;
    } finally {
      inbox.splice(0, delivered);
    }
    if (inbox.length === 0 && this.#state === 'open') this.#socket.resume();
  }

  // ---- closing ----

  #onEnd(): void {
    if (this.#state === 'open') {
      this.#reason = { kind: 'closed', by: 'remote' };
      this.#shutDown();
    }
    if (!this.#ended) {
      this.#ended = true;
      this.#socket.end();
    }
  }

  #onSocketError(error: Error): void {
    if (this.#state === 'closed') return;
    this.#reason = { kind: 'error', error };
    this.#shutDown();
  }

  /** Enter 'closed': nothing more is sent or delivered. The socket's 'close' finalizes. */
  #shutDown(): void {
    this.#state = 'closed';
    this.#outbox = [];
    this.#outboxSizes = [];
    this.#outboxBytes = 0;
    this.#inbox = [];
    this.#clearTimers();
  }

  #clearTimers(): void {
    if (this.#flushTimer !== null) clearTimeout(this.#flushTimer);
    if (this.#closeTimer !== null) clearTimeout(this.#closeTimer);
    this.#flushTimer = null;
    this.#closeTimer = null;
  }

  #finalize(): void {
    if (this.#finalized) return;
    this.#finalized = true;
    this.#shutDown();
    const reason = this.#reason ?? { kind: 'closed', by: 'remote' };
    this.#reason = reason;
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
  }
}
