/**
 * Connections to workers' data ports, one per address, opened on first use, and get-data
 * requests over them: how a worker fetches a task's inputs and how a client gathers
 * results. A request never rejects: a peer that cannot be reached, or closes before it
 * answers, counts as holding none of the keys, and the caller asks elsewhere (or tells the
 * scheduler).
 */
import { type ClientTlsOptions, type Connection, ConnectionClosedError, connect, type FrameMemory } from '../comm/index.js';
import { ProtocolError } from '../errors.js';
import { Resource } from '../lifecycle.js';
import { type DataReply, type PeerMessage, ROLE_PEER } from './messages.js';

export interface DataPeersOptions {
  /** Sent in the handshake, for the peer's logs. */
  readonly name?: string;
  readonly token?: string;
  /** For tls:// peers: the CA to trust, and a certificate when peers require one. */
  readonly tls?: ClientTlsOptions;
  /** Milliseconds to wait for a peer to accept. Default 10,000. */
  readonly timeout?: number;
  /** Whether connections to peers keep the process alive (default true). */
  readonly keepAlive?: boolean;
  /** Told when a peer could not be asked (the request is answered "missing" all the same). */
  readonly onError?: (address: string, error: unknown) => void;
  /** Where the large frames of replies are read (the connections' `frameMemory`). */
  readonly frameMemory?: FrameMemory;
}

interface Pending {
  readonly address: string;
  readonly keys: readonly string[];
  readonly resolve: (reply: DataReply) => void;
}

export class DataPeers extends Resource {
  readonly #options: DataPeersOptions;
  readonly #peers = new Map<string, Promise<Connection<PeerMessage>>>();
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;

  constructor(options: DataPeersOptions = {}) {
    super('the data connections');
    this.#options = options;
  }

  /** Asks `address` for `keys`; what it does not hold (or cannot send) comes back in `missing`. */
  get(address: string, keys: readonly string[]): Promise<DataReply> {
    const id = this.#nextId++;
    if (this.state !== 'running') return Promise.resolve({ op: 'data', id, values: [], missing: [...keys] });
    return new Promise<DataReply>((resolve) => {
      this.#pending.set(id, { address, keys, resolve });
      this.#connection(address)
        .then((conn) => {
          if (conn.state !== 'open') throw new ConnectionClosedError(`the connection to ${address} closed`);
          conn.send({ op: 'get-data', id, keys });
        })
        .catch((error: unknown) => {
          if (this.#missing(id)) this.#options.onError?.(address, error);
        });
    });
  }

  /** Closes every connection; requests still waiting are answered "missing". */
  protected async onClose(): Promise<void> {
    const closing = [...this.#peers.values()].map((peer) => peer.then((c) => c.close(), () => undefined));
    this.#peers.clear();
    for (const id of [...this.#pending.keys()]) this.#missing(id);
    await Promise.allSettled(closing);
  }

  /** Answers request `id` with all its keys missing; false if it was answered already. */
  #missing(id: number): boolean {
    const request = this.#pending.get(id);
    if (request === undefined) return false;
    this.#pending.delete(id);
    request.resolve({ op: 'data', id, values: [], missing: [...request.keys] });
    return true;
  }

  #connection(address: string): Promise<Connection<PeerMessage>> {
    const known = this.#peers.get(address);
    if (known !== undefined) return known;
    const { name, token, timeout, frameMemory } = this.#options;
    const opened = connect<PeerMessage>(address, {
      role: ROLE_PEER,
      retry: false,
      batchInterval: 0,
      ...(name === undefined ? {} : { name }),
      ...(token === undefined ? {} : { token }),
      ...(timeout === undefined ? {} : { timeout }),
      ...(frameMemory === undefined ? {} : { frameMemory }),
      ...(address.startsWith('tls://') ? { tls: peerTls(this.#options.tls) } : {}),
    });
    this.#peers.set(address, opened);
    opened.then(
      (conn) => {
        if (this.#options.keepAlive === false) conn.unref();
        conn.onMessage((message) => {
          if (message.op !== 'data') throw new ProtocolError(`a worker's data port answered with '${message.op}'`);
          const request = this.#pending.get(message.id);
          if (request === undefined) return;
          this.#pending.delete(message.id);
          request.resolve(message);
        });
        conn.onClose(() => {
          if (this.#peers.get(address) === opened) this.#peers.delete(address);
          // Whatever was asked of it and not answered is missing.
          for (const [id, request] of this.#pending) if (request.address === address) this.#missing(id);
        });
      },
      () => {
        if (this.#peers.get(address) === opened) this.#peers.delete(address);
      },
    );
    return opened;
  }
}

/** The parts of TLS options that apply to any peer (not a server name, which is per address). */
function peerTls(tls: ClientTlsOptions | undefined): ClientTlsOptions {
  if (tls === undefined) return {};
  const { ca, cert, key, rejectUnauthorized } = tls;
  return {
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
    ...(rejectUnauthorized === undefined ? {} : { rejectUnauthorized }),
  };
}
