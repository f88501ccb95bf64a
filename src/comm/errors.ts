import { TesseraError } from '../errors.js';

/**
 * A packet past the frame limit (`maxPacketSize`), or a message past `maxMessageSize`:
 * refused before it is sent, or, when a peer announces one, the connection is dropped.
 */
export class FrameTooLargeError extends TesseraError {
  readonly size: number;
  readonly limit: number;

  constructor(size: number, limit: number, what: 'packet' | 'message' = 'packet') {
    super(`a ${what} of ${size} bytes exceeds ${what === 'packet' ? 'the frame limit' : 'maxMessageSize'} (${limit} bytes)`, 'ERR_FRAME_TOO_LARGE');
    this.name = 'FrameTooLargeError';
    this.size = size;
    this.limit = limit;
  }
}

/** Bytes on the wire that are not a well-formed packet or message; the connection is dropped. */
export class MalformedFrameError extends TesseraError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 'ERR_MALFORMED_FRAME', options);
    this.name = 'MalformedFrameError';
  }
}

/** A message given to `send()` cannot be encoded (a cycle, say); nothing was sent. */
export class UnencodableMessageError extends TesseraError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 'ERR_UNENCODABLE_MESSAGE', options);
    this.name = 'UnencodableMessageError';
  }
}

/** The connection is closing or closed, so it cannot send. */
export class ConnectionClosedError extends TesseraError {
  constructor(message = 'the connection is closed', options?: ErrorOptions) {
    super(message, 'ERR_CONNECTION_CLOSED', options);
    this.name = 'ConnectionClosedError';
  }
}

/** The first exchange on a connection failed. Subclasses say why when the peer said why. */
export class HandshakeError extends TesseraError {
  constructor(message: string, code = 'ERR_HANDSHAKE', options?: ErrorOptions) {
    super(message, code, options);
    this.name = 'HandshakeError';
  }
}

/** The two sides speak different versions of the wire protocol. */
export class ProtocolVersionError extends HandshakeError {
  readonly local: number;
  readonly remote: number | undefined;

  constructor(local: number, remote: number | undefined, detail?: string) {
    super(
      `protocol version mismatch: this side speaks ${local}, the peer ${remote ?? 'an unknown version'}` +
        (detail === undefined ? '' : ` (${detail})`),
      'ERR_PROTOCOL_VERSION',
    );
    this.name = 'ProtocolVersionError';
    this.local = local;
    this.remote = remote;
  }
}

/** The server refused the token (or its absence). */
export class AuthenticationError extends HandshakeError {
  constructor(message: string) {
    super(message, 'ERR_AUTHENTICATION');
    this.name = 'AuthenticationError';
  }
}

/** An address string that is not `tcp://host:port`, `tls://host:port` or `host:port`. */
export class InvalidAddressError extends TesseraError {
  readonly address: string;

  constructor(address: string, reason: string) {
    super(`invalid address '${address}': ${reason}`, 'ERR_INVALID_ADDRESS');
    this.name = 'InvalidAddressError';
    this.address = address;
  }
}

/** No connection could be opened to the address (refused, unreachable, or out of time). */
export class ConnectError extends TesseraError {
  readonly address: string;

  constructor(address: string, message: string, options?: ErrorOptions) {
    super(`cannot connect to ${address}: ${message}`, 'ERR_CONNECT', options);
    this.name = 'ConnectError';
    this.address = address;
  }
}

/** A server could not start listening (the port is taken, say). */
export class ListenError extends TesseraError {
  readonly address: string;

  constructor(address: string, options?: ErrorOptions & { readonly hint?: string }) {
    const cause = options?.cause;
    super(options?.hint ?? `cannot listen on ${address}${cause instanceof Error ? `: ${cause.message}` : ''}`, 'ERR_LISTEN', options);
    this.name = 'ListenError';
    this.address = address;
  }
}
