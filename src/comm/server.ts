import net from 'node:net';
import tls from 'node:tls';
import { InvalidArgumentError } from '../errors.js';
import { Resource } from '../lifecycle.js';
import { formatAddress, type Scheme } from './address.js';
import { type Connection, type ConnectionOptions, type Message, resolveConnectionOptions, retype, SocketConnection } from './connection.js';
import { ListenError } from './errors.js';
import { listLocalServer, unlistLocalServer } from './local.js';
import { type Hello, serverHandshake } from './handshake.js';
import { numberOption, stringOption } from './options.js';

export interface ServerTlsOptions {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  /** When given, clients must present a certificate signed by it (mutual TLS). */
  readonly ca?: string | Buffer;
}

/** A peer that was turned away: a failed handshake, or a failed TLS negotiation. */
export interface RefusedInfo {
  readonly remoteAddress: string;
  readonly error: Error;
}

export interface ListenOptions<M extends Message> extends ConnectionOptions {
  /** Default 127.0.0.1; pass 0.0.0.0 (or ::) to accept from other machines. */
  readonly host?: string;
  /** Default 0: any free port (read it back from `server.address`). */
  readonly port?: number;
  /** When set, clients must present it. */
  readonly token?: string;
  readonly tls?: ServerTlsOptions;
  /** Milliseconds a new peer has to complete the handshake. Default 10 000. */
  readonly handshakeTimeout?: number;
  /** A peer passed the handshake. Set `conn.onMessage` here; messages wait until then. */
  readonly onConnection: (conn: Connection<M>, hello: Hello) => void;
  /**
   * Whether the listening socket and its connections keep the process alive (default
   * true). An embedded server — a LocalCluster's scheduler in a user's script — passes
   * false, so the script ends when its own work does.
   */
  readonly keepAlive?: boolean;
  /** A peer was turned away; the server goes on serving. */
  readonly onRefused?: (info: RefusedInfo) => void;
  /** The listening socket failed after it started, or onConnection threw. */
  readonly onError?: (error: Error) => void;
}

/** A listening endpoint. Make one with `listen()`. */
// M is a phantom: it names the message type given to listen(), and other modules annotate
// with it (`Server<PeerMessage>`), so it cannot go although the class never uses it.
// eslint-disable-next-line @typescript-eslint/no-unused-vars
export class Server<M extends Message = Message> extends Resource {
  /** `tcp://host:port` or `tls://host:port`, with the port actually bound. */
  readonly address: string;
  readonly #server: net.Server;
  readonly #connections: ReadonlySet<Connection>;

  /** @internal */
  constructor(server: net.Server, address: string, connections: ReadonlySet<Connection>) {
    super(`the server on ${address}`);
    this.#server = server;
    this.address = address;
    this.#connections = connections;
  }

  /** Open connections, including those still in their handshake. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Stops accepting, closes every connection gracefully, resolves once all is closed. */
  protected async onClose(): Promise<void> {
    unlistLocalServer(this.address);
    const stopped = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    await Promise.allSettled([...this.#connections].map((conn) => conn.close()));
    await stopped;
  }

  /** Stops accepting and drops every connection at once. */
  protected override async onDestroy(error?: Error): Promise<void> {
    unlistLocalServer(this.address);
    const stopped = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const conn of this.#connections) conn.destroy(error);
    await Promise.allSettled([...this.#connections].map((conn) => conn.closed));
    await stopped;
  }
}

/** Listen for peers; each one that passes the handshake is handed to `onConnection`. */
export async function listen<M extends Message = Message>(options: ListenOptions<M>): Promise<Server<M>> {
  const host = stringOption('host', options.host, false) ?? '127.0.0.1';
  const port = numberOption('port', options.port, 0, { min: 0, max: 65535, integer: true });
  const token = stringOption('token', options.token, false);
  const timeout = numberOption('handshakeTimeout', options.handshakeTimeout, 10_000, { min: 1, max: 2 ** 31 - 1 });
  const connectionOptions = resolveConnectionOptions(options);
  if (typeof options.onConnection !== 'function') throw new InvalidArgumentError('options.onConnection must be a function');
  const { onConnection, onRefused, onError } = options;
  const keepAlive = options.keepAlive ?? true;
  if (typeof keepAlive !== 'boolean') throw new InvalidArgumentError('options.keepAlive must be a boolean');
  const tlsOptions = options.tls;
  if (tlsOptions !== undefined) {
    // Untyped callers may leave either out.
    const given: Partial<ServerTlsOptions> = tlsOptions;
    if (given.cert === undefined || given.key === undefined) throw new InvalidArgumentError('options.tls needs both cert and key');
  }
  const scheme: Scheme = tlsOptions === undefined ? 'tcp' : 'tls';

  // Assigned once, after listening starts; `accept` reads it (undefined) before then, which a
  // const would turn into a temporal-dead-zone ReferenceError.
  let server: Server<M> | undefined;
  const connections = new Set<Connection>();
  const accept = (socket: net.Socket): void => {
    if (server === undefined || server.state !== 'running') {
      socket.destroy();
      return;
    }
    adopt(server, new SocketConnection<Message>(socket, connectionOptions));
  };
  // A connection accepted from a socket, or an end joined in this process (local.ts).
  const adopt = (live: Server<M>, conn: Connection): void => {
    if (!keepAlive) conn.unref();
    connections.add(conn);
    conn.onClose(() => connections.delete(conn));
    void serverHandshake(conn, { token, timeout }).then(
      (hello) => {
        if (live.state !== 'running') {
          conn.destroy();
          return;
        }
        try {
          onConnection(retype<M>(conn), hello);
        } catch (error) {
          const failure = asError(error);
          conn.destroy(failure);
          report(onError, failure);
        }
      },
      (error: unknown) => {
        if (live.state === 'running') report(onRefused, { remoteAddress: conn.remoteAddress, error: asError(error) });
      },
    );
  };

  const raw =
    tlsOptions === undefined
      ? net.createServer(accept)
      : tls.createServer(
          {
            cert: tlsOptions.cert,
            key: tlsOptions.key,
            ...(tlsOptions.ca === undefined ? {} : { ca: tlsOptions.ca, requestCert: true, rejectUnauthorized: true }),
            handshakeTimeout: timeout,
          },
          accept,
        );
  if (raw instanceof tls.Server) {
    raw.on('tlsClientError', (error: Error, socket: tls.TLSSocket) => {
      report(onRefused, { remoteAddress: formatAddress('tls', socket.remoteAddress ?? 'unknown', socket.remotePort ?? 0), error });
    });
  }

  try {
    await new Promise<void>((resolve, reject) => {
      raw.once('error', reject);
      raw.listen(port, host, () => {
        raw.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    throw new ListenError(formatAddress(scheme, host, port), { cause: error });
  }
  raw.on('error', (error: Error) => report(onError, error));
  if (!keepAlive) raw.unref();
  const bound = raw.address() as net.AddressInfo;
  const live = (server = new Server<M>(raw, formatAddress(scheme, bound.address, bound.port), connections));
  // Over TLS a peer proves who it is with its certificate, which an end in this process has
  // none of: those servers are reached through their socket only.
  if (scheme === 'tcp') {
    listLocalServer(live.address, connectionOptions, (conn) => {
      if (live.state === 'running') adopt(live, conn);
      else conn.destroy();
    });
  }
  return live;
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * Call a user's callback from inside the server's own event handling. One that throws must
 * not take the server down with it; its error surfaces on the next turn instead.
 */
function report<T>(callback: ((value: T) => void) | undefined, value: T): void {
  try {
    callback?.(value);
  } catch (error) {
    process.nextTick(() => {
      throw error;
    });
  }
}
