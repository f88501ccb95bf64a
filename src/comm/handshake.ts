/**
 * The first packet each way. The client says hello (protocol version, role, token); the
 * server answers welcome, or refused and closes. Until then packets are capped at
 * `HANDSHAKE_MAX_MESSAGE_SIZE`, so a stranger cannot make either side allocate much.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { type Connection, type Message, kReadLimit, retype } from './connection.js';
import { AuthenticationError, HandshakeError, ProtocolVersionError } from './errors.js';

/** Raised with every change to the messages' shapes: peers of different builds are refused at hello, not met with tasks they misread. */
export const PROTOCOL_VERSION = 4;
export const HANDSHAKE_MAX_MESSAGE_SIZE = 64 * 1024;

export interface Hello {
  readonly op: 'hello';
  readonly protocol: number;
  readonly role: string;
  readonly token?: string;
  readonly name?: string;
}

export interface Welcome {
  readonly op: 'welcome';
  readonly protocol: number;
}

export type RefusalCode = 'protocol' | 'auth' | 'bad-hello';

export interface Refused {
  readonly op: 'refused';
  readonly code: RefusalCode;
  readonly reason: string;
  /** The server's version, so that a client can say which it should speak. */
  readonly protocol: number;
}

export type HandshakeMessage = Hello | Welcome | Refused;

export interface ClientHandshakeOptions {
  readonly role: string;
  readonly token?: string | undefined;
  readonly name?: string | undefined;
  /** Milliseconds to wait for the answer. */
  readonly timeout: number;
  /** Only for tests and staged upgrades. */
  readonly protocol?: number;
}

export interface ServerHandshakeOptions {
  readonly token?: string | undefined;
  /** Milliseconds a peer has to say hello. */
  readonly timeout: number;
  readonly protocol?: number;
}

/**
 * Say hello and wait for the answer. On refusal the connection is destroyed and the
 * promise rejects with `AuthenticationError`, `ProtocolVersionError` or `HandshakeError`.
 */
export function clientHandshake(conn: Connection, options: ClientHandshakeOptions): Promise<Welcome> {
  const protocol = options.protocol ?? PROTOCOL_VERSION;
  const hs = retype<HandshakeMessage>(conn);
  hs[kReadLimit](HANDSHAKE_MAX_MESSAGE_SIZE);
  return new Promise<Welcome>((resolve, reject) => {
    const finish = exchange(hs, options.timeout, `no answer to hello from ${conn.remoteAddress}`, reject);
    hs.onMessage((message) => {
      switch (message.op) {
        case 'welcome':
          if (message.protocol !== protocol) {
            finish.fail(new ProtocolVersionError(protocol, message.protocol, 'the server welcomed another version'));
            return;
          }
          // Synchronously, before the next packet in this chunk is read.
          hs[kReadLimit](conn.maxMessageSize);
          finish.settle();
          resolve(message);
          return;
        case 'refused':
          finish.fail(refusalError(message, protocol));
          return;
        case 'hello':
          finish.fail(new HandshakeError(`${conn.remoteAddress} answered hello with hello`));
          return;
        default: {
          const never: never = message;
          finish.fail(new HandshakeError(`${conn.remoteAddress} answered hello with '${(never as Message).op}'`));
        }
      }
    });
    const hello: Hello = {
      op: 'hello',
      protocol,
      role: options.role,
      ...(options.token === undefined ? {} : { token: options.token }),
      ...(options.name === undefined ? {} : { name: options.name }),
    };
    try {
      hs.send(hello);
      hs.flush();
    } catch (error) {
      finish.fail(error instanceof Error ? error : new Error(String(error)));
    }
  });
}

/**
 * Wait for hello and answer it. Resolves with the hello once welcomed; otherwise sends
 * refused (when the peer deserves an answer), closes or destroys the connection, and rejects.
 */
export function serverHandshake(conn: Connection, options: ServerHandshakeOptions): Promise<Hello> {
  const protocol = options.protocol ?? PROTOCOL_VERSION;
  const hs = retype<HandshakeMessage>(conn);
  hs[kReadLimit](HANDSHAKE_MAX_MESSAGE_SIZE);
  const expected = options.token === undefined ? undefined : digest(options.token);
  return new Promise<Hello>((resolve, reject) => {
    const finish = exchange(hs, options.timeout, `${conn.remoteAddress} said no hello`, reject);
    const refuse = (code: RefusalCode, reason: string, error: HandshakeError): void => {
      finish.settle();
      hs.send({ op: 'refused', code, reason, protocol });
      void hs.close();
      reject(error);
    };
    hs.onMessage((message) => {
      if (message.op !== 'hello' || !isHello(message)) {
        refuse('bad-hello', 'the first message must be a valid hello', new HandshakeError(`${conn.remoteAddress} sent no valid hello`));
        return;
      }
      if (message.protocol !== protocol) {
        refuse(
          'protocol',
          `the server speaks protocol ${protocol}, the client ${message.protocol}`,
          new ProtocolVersionError(protocol, message.protocol, `client ${conn.remoteAddress}`),
        );
        return;
      }
      if (expected !== undefined && (message.token === undefined || !timingSafeEqual(expected, digest(message.token)))) {
        const what = message.token === undefined ? 'no token' : 'a wrong token';
        refuse('auth', `the client gave ${what}`, new AuthenticationError(`${conn.remoteAddress} gave ${what}`));
        return;
      }
      hs[kReadLimit](conn.maxMessageSize);
      finish.settle();
      hs.send({ op: 'welcome', protocol });
      // The welcome goes alone, ahead of anything the application sends in this tick.
      hs.flush();
      resolve(message);
    });
  });
}

interface Exchange {
  /** Stop waiting and detach the handler: later messages queue for the application's. */
  settle(): void;
  /** Stop waiting, destroy the connection, reject. */
  fail(error: Error): void;
}

/** The timer and close watch shared by both sides of the handshake. */
function exchange(conn: Connection<HandshakeMessage>, timeout: number, silence: string, reject: (error: Error) => void): Exchange {
  let done = false;
  const ex: Exchange = {
    settle() {
      done = true;
      clearTimeout(timer);
      conn.onMessage(null);
    },
    fail(error) {
      if (done) return;
      ex.settle();
      conn.destroy(error);
      reject(error);
    },
  };
  const timer = setTimeout(() => ex.fail(new HandshakeError(`${silence} within ${timeout} ms`)), timeout);
  conn.onClose((reason) => {
    if (done) return;
    const cause = reason.kind === 'error' ? reason.error : undefined;
    // A garbage or oversized packet closes the connection with that error: keep it.
    ex.fail(
      cause instanceof HandshakeError
        ? cause
        : new HandshakeError(`${conn.remoteAddress} closed the connection during the handshake`, 'ERR_HANDSHAKE', { cause }),
    );
  });
  return ex;
}

function refusalError(message: Refused, protocol: number): HandshakeError {
  switch (message.code) {
    case 'auth':
      return new AuthenticationError(`the server refused the connection: ${message.reason}`);
    case 'protocol':
      return new ProtocolVersionError(protocol, typeof message.protocol === 'number' ? message.protocol : undefined, message.reason);
    case 'bad-hello':
      return new HandshakeError(`the server refused the hello: ${message.reason}`);
    default:
      return new HandshakeError(`the server refused the connection (${String(message.code)}): ${message.reason}`);
  }
}

function isHello(message: HandshakeMessage): message is Hello {
  const m = message as Partial<Record<keyof Hello, unknown>>;
  return (
    typeof m.protocol === 'number' &&
    typeof m.role === 'string' &&
    m.role !== '' &&
    (m.token === undefined || typeof m.token === 'string') &&
    (m.name === undefined || typeof m.name === 'string')
  );
}

/** Equal-length digests, so timingSafeEqual can compare tokens of any length. */
function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
