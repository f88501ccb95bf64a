/**
 * Tessera's wire: length-prefixed packets of msgpack headers and out-of-band binary
 * frames over TCP or TLS, batched sends, and a versioned, authenticated handshake.
 *
 * @example
 * ```ts
 * import { listen, connect } from './comm/index.js';
 *
 * type Msg = { op: 'ping'; n: number } | { op: 'pong'; n: number };
 * const server = await listen<Msg>({
 *   port: 0,
 *   token: 'secret',
 *   onConnection(conn) {
 *     conn.onMessage((m) => { if (m.op === 'ping') conn.send({ op: 'pong', n: m.n }); });
 *   },
 * });
 * const conn = await connect<Msg>(server.address, { role: 'client', token: 'secret' });
 * conn.onMessage((m) => console.log(m));
 * conn.send({ op: 'ping', n: 1 });
 * ```
 */
export { formatAddress, parseAddress, type Address, type Scheme } from './address.js';
export { decode, encode, OUT_OF_BAND_THRESHOLD } from './codec.js';
export {
  type Connection,
  SocketConnection,
  type CloseReason,
  type ConnectionOptions,
  type ConnectionState,
  type Message,
} from './connection.js';
export { connect, type ClientTlsOptions, type ConnectOptions } from './dial.js';
export {
  AuthenticationError,
  ConnectError,
  ConnectionClosedError,
  FrameTooLargeError,
  HandshakeError,
  InvalidAddressError,
  ListenError,
  MalformedFrameError,
  ProtocolVersionError,
  UnencodableMessageError,
} from './errors.js';
export { DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_PACKET_SIZE, FrameReader, encodePacket, writePacket, type FrameMemory } from './framing.js';
export {
  clientHandshake,
  HANDSHAKE_MAX_MESSAGE_SIZE,
  PROTOCOL_VERSION,
  serverHandshake,
  type Hello,
  type HandshakeMessage,
  type Refused,
  type RefusalCode,
  type Welcome,
} from './handshake.js';
export { listen, Server, type ListenOptions, type RefusedInfo, type ServerTlsOptions } from './server.js';
