import net from 'node:net';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { CancelledError, InvalidArgumentError } from '../errors.js';
import { formatAddress, parseAddress, type Scheme } from './address.js';
import { type Connection, type ConnectionOptions, type Message, type ResolvedConnectionOptions, resolveConnectionOptions, retype, SocketConnection } from './connection.js';
import { DirectReads } from './direct-reads.js';
import { dialLocal } from './local.js';
import { ConnectError, InvalidAddressError } from './errors.js';
import { clientHandshake } from './handshake.js';
import { numberOption, stringOption } from './options.js';

export interface ClientTlsOptions {
  /** Trust these CAs (a self-signed server certificate, say) instead of the system's. */
  readonly ca?: string | Buffer;
  /** For servers that require client certificates. */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  /** The name to check the server's certificate against; default the host dialled. */
  readonly servername?: string;
  /** Default true. */
  readonly rejectUnauthorized?: boolean;
}

export interface ConnectOptions extends ConnectionOptions {
  /** What this peer is ('client', 'worker', …), for the server to decide what to do with it. */
  readonly role: string;
  readonly name?: string;
  readonly token?: string;
  /** Implied by a tls:// address; with a bare host:port it selects TLS. */
  readonly tls?: ClientTlsOptions;
  /** Milliseconds for everything: connecting, retrying, the handshake. Default 10 000. */
  readonly timeout?: number;
  /** Retry refused or unreachable connections with backoff until the timeout. Default true. */
  readonly retry?: boolean;
  readonly signal?: AbortSignal;
  /**
   * When a server listens at the address in this process, join it through memory rather
   * than a socket (local.ts): the same handshake, no encoding of plain messages, no system
   * calls. Default false.
   */
  readonly inProcess?: boolean;
}

// Errors that a server still starting (or a network still settling) gives.
const RETRYABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

const FIRST_BACKOFF = 25;
const MAX_BACKOFF = 1000;

/**
 * Dial `tcp://host:port`, `tls://host:port` or `host:port`, and complete the handshake.
 * Rejects with `InvalidAddressError`, `ConnectError` (refused or unreachable until the
 * timeout), a `HandshakeError` (`AuthenticationError`, `ProtocolVersionError`), or
 * `CancelledError` when the signal aborts.
 */
export async function connect<M extends Message = Message>(address: string, options: ConnectOptions): Promise<Connection<M>> {
  const parsed = parseAddress(address);
  if (parsed.port === 0) throw new InvalidAddressError(address, 'port 0 cannot be dialled');
  const role = stringOption('role', options.role, true) ?? '';
  const name = stringOption('name', options.name, false);
  const token = stringOption('token', options.token, false);
  const timeout = numberOption('timeout', options.timeout, 10_000, { min: 1, max: 2 ** 31 - 1 });
  const connectionOptions = resolveConnectionOptions(options);
  const retry = options.retry ?? true;
  const signal = options.signal;
  // A function, so that TypeScript does not assume the flag stays as last checked.
  const aborted = (): boolean => signal?.aborted === true;
  const scheme: Scheme = parsed.scheme ?? (options.tls === undefined ? 'tcp' : 'tls');
  if (scheme === 'tcp' && options.tls !== undefined) {
    throw new InvalidArgumentError(`options.tls was given but ${address} is a tcp:// address; dial tls:// instead`);
  }
  const target = formatAddress(scheme, parsed.host, parsed.port);
  const dial: Dial = { scheme, host: parsed.host, port: parsed.port, tls: options.tls ?? {}, connectionOptions };

  if (options.inProcess !== undefined && typeof options.inProcess !== 'boolean') throw new InvalidArgumentError('options.inProcess must be a boolean');

  const started = performance.now();
  const deadline = started + timeout;
  let backoff = FIRST_BACKOFF;
  let conn: Connection;
  for (let attempt = 1; ; attempt++) {
    if (aborted()) throw new CancelledError(`connecting to ${target} was cancelled`, { cause: signal?.reason });
    const local = options.inProcess === true && scheme === 'tcp' ? dialLocal(target, connectionOptions) : undefined;
    if (local !== undefined) {
      conn = local;
      break;
    }
    try {
      conn = await open(dial, Math.max(1, deadline - performance.now()), signal);
      break;
    } catch (error) {
      if (error instanceof CancelledError || !(error instanceof Error)) throw error;
      const left = deadline - performance.now();
      const code = (error as NodeJS.ErrnoException).code;
      if (!retry || code === undefined || !RETRYABLE.has(code) || left <= 0) {
        const spent = Math.round(performance.now() - started);
        const tries = attempt > 1 ? ` (gave up after ${attempt} attempts in ${spent} ms)` : '';
        throw new ConnectError(target, `${error.message}${tries}`, { cause: error });
      }
      try {
        await sleep(Math.min(backoff * (0.5 + Math.random()), left), undefined, signal === undefined ? {} : { signal });
      } catch (abort) {
        throw new CancelledError(`connecting to ${target} was cancelled`, { cause: abort });
      }
      backoff = Math.min(backoff * 2, MAX_BACKOFF);
    }
  }

  const onAbort = (): void => conn.destroy(new CancelledError(`connecting to ${target} was cancelled`));
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await clientHandshake(conn, { role, name, token, timeout: Math.max(1, deadline - performance.now()) });
  } catch (error) {
    conn.destroy();
    if (aborted()) throw new CancelledError(`connecting to ${target} was cancelled`, { cause: signal?.reason });
    throw error;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  return retype<M>(conn);
}

interface Dial {
  readonly scheme: Scheme;
  readonly host: string;
  readonly port: number;
  readonly tls: ClientTlsOptions;
  readonly connectionOptions: ResolvedConnectionOptions;
}

/** One attempt: a connected socket wrapped in a Connection, or the reason there is none. */
function open(dial: Dial, timeout: number, signal: AbortSignal | undefined): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const { scheme, host, port } = dial;
    const reads = new DirectReads();
    const socket =
      scheme === 'tls'
        ? tls.connect({
            host,
            port,
            ...dial.tls,
            // SNI takes names only; an IP address is checked against the certificate's IP entries.
            ...(dial.tls.servername === undefined && net.isIP(host) === 0 ? { servername: host } : {}),
          })
        : net.connect({ host, port, onread: reads.onread });
    const ready = scheme === 'tls' ? 'secureConnect' : 'connect';
    const timer = setTimeout(() => {
      fail(Object.assign(new Error(`no connection within ${Math.round(timeout)} ms`), { code: 'ETIMEDOUT' }));
    }, timeout);
    const onAbort = (): void => fail(new CancelledError(`connecting to ${formatAddress(scheme, host, port)} was cancelled`));
    signal?.addEventListener('abort', onAbort, { once: true });

    function cleanup(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.off('error', fail);
      socket.off(ready, succeed);
    }
    function fail(error: Error): void {
      cleanup();
      socket.destroy();
      reject(error);
    }
    function succeed(): void {
      cleanup();
      // At once, so that no socket error can arrive while nobody listens.
      resolve(new SocketConnection<Message>(socket, dial.connectionOptions, scheme === 'tls' ? undefined : reads));
    }
    socket.once('error', fail);
    socket.once(ready, succeed);
  });
}
