/**
 * Connections between two ends in one process, as Dask's `inproc://`: a client and the
 * scheduler of a LocalCluster it started share a process, and a message between them need
 * not be encoded, written to a socket, read back and decoded by that same process.
 *
 * A server listening on TCP is listed here by its address while it runs; `connect()` with
 * `inProcess` finds it and joins the two ends directly. Everything else stays as over a
 * socket: the same handshake (token and protocol version checked), delivery in order on a
 * later turn, the same lifecycle and close reasons. `send` still encodes — its errors throw
 * at the call, and the receiver gets its own copy, binary values included — while
 * `sendPlain` hands over the message object itself: the plain messages sent per task, which
 * neither side changes once sent.
 */
import { decode, encode } from './codec.js';
import { BaseConnection, type Connection, type ConnectionState, kReadLimit, type Message, messageSize } from './connection.js';
import { ConnectionClosedError, FrameTooLargeError } from './errors.js';

/** The sizes an end sends and accepts (those of a socket connection's options). */
export interface LocalLimits {
  readonly maxMessageSize: number;
  readonly maxPacketSize: number;
}

/** A listed server: how it takes a new end (as an accepted socket, handshake first), and its limits. */
interface LocalServer {
  readonly accept: (conn: Connection) => void;
  readonly limits: LocalLimits;
}

const servers = new Map<string, LocalServer>();
let nextEnd = 0;

/** @internal Lists a running server under its address (`tcp://host:port`). */
export function listLocalServer(address: string, limits: LocalLimits, accept: (conn: Connection) => void): void {
  servers.set(address, { accept, limits });
}

/** @internal Takes a stopping server off the list. */
export function unlistLocalServer(address: string): void {
  servers.delete(address);
}

/**
 * The dialling end of a new connection to the server listed at `address` in this process,
 * its other end handed to the server; undefined when no server there is listed.
 */
export function dialLocal(address: string, limits: LocalLimits): Connection | undefined {
  const server = servers.get(address);
  if (server === undefined) return undefined;
  const name = `inproc://${process.pid}/${nextEnd++}`;
  const dialling = new LocalConnection(address, name, limits);
  const accepted = new LocalConnection(name, address, server.limits);
  dialling.join(accepted);
  accepted.join(dialling);
  server.accept(accepted);
  return dialling;
}

// A timer that never fires: what keeps the process alive while a ref'd end is open, as a
// socket's handle does.
const HOLD = 2 ** 31 - 1;
const nothing = (): void => {};

export class LocalConnection<M extends Message = Message> extends BaseConnection<M> {
  readonly remoteAddress: string;
  readonly localAddress: string;
  readonly maxMessageSize: number;
  readonly maxPacketSize: number;

  #peer: LocalConnection<M> | null = null;
  #state: ConnectionState = 'open';
  // The peer has ended: what it sent before is delivered, then this end closes too.
  #peerEnded = false;
  #hold: NodeJS.Timeout | null = setInterval(nothing, HOLD);

  constructor(remoteAddress: string, localAddress: string, limits: LocalLimits) {
    super();
    this.remoteAddress = remoteAddress;
    this.localAddress = localAddress;
    this.maxMessageSize = limits.maxMessageSize;
    this.maxPacketSize = Math.min(limits.maxPacketSize, limits.maxMessageSize);
  }

  /** @internal Joins this end to its peer, once, before either is used. */
  join(peer: LocalConnection<M>): void {
    this.#peer = peer;
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** Nothing waits on this side: a message goes straight to the peer's inbox. */
  get bufferedBytes(): number {
    return 0;
  }

  send(message: M): void {
    this.#checkOpen(message);
    const frames = encode(message);
    const size = messageSize(frames);
    if (size > this.maxMessageSize) throw new FrameTooLargeError(size, this.maxMessageSize, 'message');
    const peer = this.#peer!;
    // A socket's receiver drops a peer that sends more than it accepts; so does this one.
    if (size > peer.maxMessageSize) {
      peer.destroy(new FrameTooLargeError(size, peer.maxMessageSize, 'message'));
      return;
    }
    // Copies, so that the receiver's values share no memory with the sender's (the header
    // is the encoder's own buffer, reused by the next message).
    for (let i = 0; i < frames.length; i++) frames[i] = frames[i]!.slice();
    peer.#receive(decode(frames) as M);
  }

  sendPlain(message: M): void {
    this.#checkOpen(message);
    this.#peer!.#receive(message);
  }

  flush(): void {}

  unref(): this {
    if (this.#hold !== null) clearInterval(this.#hold);
    this.#hold = null;
    return this;
  }

  ref(): this {
    if (this.#hold === null && this.#state !== 'closed') this.#hold = setInterval(nothing, HOLD);
    return this;
  }

  /** What was sent is delivered; the peer closes once it has taken it, then this end. */
  close(): Promise<void> {
    if (this.#state === 'open') {
      this.#state = 'closing';
      this.reason = { kind: 'closed', by: 'local' };
      this.inbox = [];
      if (this.#peerEnded) this.finalize();
      else this.#peer!.#onPeerEnded();
    }
    return this.closed.then(() => undefined);
  }

  destroy(error?: Error): void {
    if (this.#state === 'closed') return;
    this.reason = error === undefined ? { kind: 'destroyed' } : { kind: 'error', error };
    this.finalize();
  }

  /** No wire: what the peer may send is bounded by its own `maxMessageSize` checks. */
  [kReadLimit](): void {}

  #checkOpen(message: M): void {
    if (this.#state !== 'open') {
      throw new ConnectionClosedError(`cannot send '${message.op}': the connection to ${this.remoteAddress} is ${this.#state}`);
    }
  }

  #receive(message: M): void {
    if (this.#state !== 'open') return;
    this.inbox.push(message);
    this.#scheduleDrain();
  }

  #scheduleDrain(): void {
    if (this.drainScheduled) return;
    this.drainScheduled = true;
    // On a later turn, as a socket's data would come: never inside the sender's call.
    setImmediate(() => this.drainInbox());
  }

  protected drained(): void {
    if (this.#peerEnded && this.#state === 'open' && (this.inbox.length === 0 || this.handler === null)) {
      this.reason = { kind: 'closed', by: 'remote' };
      this.finalize();
    }
  }

  #onPeerEnded(): void {
    if (this.#state === 'closed') return;
    this.#peerEnded = true;
    // Closing already, this end only waited for the peer's end.
    if (this.#state === 'closing') this.finalize();
    else this.#scheduleDrain();
  }

  protected shutDown(): void {
    this.#state = 'closed';
    this.inbox = [];
    this.unref();
  }

  /** Closed for good, and then the peer told. */
  protected override finalize(): boolean {
    if (!super.finalize()) return false;
    if (this.#peer !== null) this.#peer.#onPeerEnded();
    return true;
  }
}
