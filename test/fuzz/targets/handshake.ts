/**
 * Fuzz target: the server side of the handshake (src/comm/handshake.ts) on a real server
 * (server.ts's listen(), with a token) over a real loopback socket, one connection per input.
 *
 * Input: byte 0 seeds how the rest is cut into writes (a turn of the event loop between
 * them); the rest is what a stranger sends before ending the stream. Must hold:
 * - the server process never throws, and `onError` is never called;
 * - each connection ends in exactly one verdict — `onConnection` or `onRefused` — and is
 *   closed by the server, and forgotten (connectionCount back to 0), within a bound;
 * - every refusal is a HandshakeError, of the subclass the reason calls for;
 * - the verdict is the one the protocol prescribes for the first message sent: welcome only
 *   for a valid hello of our protocol with the right token (never otherwise: no token,
 *   a wrong one, or any other message is refused), refused otherwise;
 * - what the server answers, if anything, is one well-formed welcome or refused packet.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { setImmediate as turn } from 'node:timers/promises';
import { unpackBatch } from '../../../src/comm/batch.js';
import { decode } from '../../../src/comm/codec.js';
import { AuthenticationError, HandshakeError, ProtocolVersionError } from '../../../src/comm/errors.js';
import { FrameReader } from '../../../src/comm/framing.js';
import { HANDSHAKE_MAX_MESSAGE_SIZE, type Hello, PROTOCOL_VERSION } from '../../../src/comm/handshake.js';
import { listen, type RefusedInfo, type Server } from '../../../src/comm/server.js';
import { chunkSizes } from './chunks.js';

export const TOKEN = 'fuzz-token';
/** Far longer than any input takes: reaching it means the server hangs on to a stranger. */
const BOUND_MS = 5_000;

let server: Server | undefined;
let port = 0;
// Counts and the latest of each, not every one: a long run sees hundreds of thousands.
let welcomed = 0;
let refused = 0;
let lastHello: Hello | undefined;
let lastRefusal: RefusedInfo | undefined;
const errors: Error[] = [];

export async function setUp(): Promise<void> {
  server = await listen({
    port: 0,
    token: TOKEN,
    handshakeTimeout: BOUND_MS,
    maxMessageSize: 1024 * 1024,
    onConnection(conn, hello) {
      welcomed++;
      lastHello = hello;
      conn.onMessage(() => {});
    },
    onRefused(info) {
      refused++;
      lastRefusal = info;
    },
    onError(error) {
      errors.push(error);
    },
  });
  port = Number(new URL(server.address).port);
}

/** Closes the server (the fuzzing process never does: libFuzzer ends it). */
export async function tearDown(): Promise<void> {
  await server?.close();
  server = undefined;
}

type Verdict = 'welcome' | 'protocol' | 'auth' | 'bad-hello' | 'closed';

/** What the protocol prescribes for this stream, worked out independently of the server. */
function prescribed(stream: Buffer): Verdict {
  let first: Uint8Array[] | undefined;
  const reader = new FrameReader(HANDSHAKE_MAX_MESSAGE_SIZE, (frames) => {
    first ??= frames;
  });
  let message: unknown;
  try {
    reader.push(stream);
  } catch {
    // Bad bytes after the first packet do not change its verdict.
  }
  if (first === undefined) return 'closed';
  try {
    message = decode(unpackBatch(first)[0]!);
  } catch {
    return 'closed';
  }
  const m = message as Record<string, unknown>;
  const valid =
    m.op === 'hello' &&
    typeof m.protocol === 'number' &&
    typeof m.role === 'string' &&
    m.role !== '' &&
    (m.token === undefined || typeof m.token === 'string') &&
    (m.name === undefined || typeof m.name === 'string');
  if (!valid) return 'bad-hello';
  if (m.protocol !== PROTOCOL_VERSION) return 'protocol';
  if (m.token !== TOKEN) return 'auth';
  return 'welcome';
}

/** The messages of the server's answer. */
function answers(received: Buffer): { op: string; [key: string]: unknown }[] {
  const messages: { op: string }[] = [];
  const reader = new FrameReader(HANDSHAKE_MAX_MESSAGE_SIZE, (frames) => {
    for (const message of unpackBatch(frames)) messages.push(decode(message));
  });
  reader.push(received);
  assert.ok(reader.idle, 'the server answered with part of a packet');
  return messages;
}

async function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new assert.AssertionError({ message: `${what} within ${BOUND_MS} ms` })), BOUND_MS);
  });
  try {
    return await Promise.race([promise, bound]);
  } finally {
    clearTimeout(timer);
  }
}

async function settled(verdicts: number): Promise<void> {
  for (;;) {
    if (server!.connectionCount === 0 && welcomed + refused >= verdicts) return;
    await turn();
  }
}

export async function fuzz(data: Buffer): Promise<void> {
  if (data.length < 1) return;
  const stream = data.subarray(1);
  const before = welcomed + refused;
  const welcomedBefore = welcomed;

  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  const received: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => received.push(chunk));
  // The server may reset the connection while we still write; that is a fine answer.
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  await within(
    new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    }),
    'no connection',
  );
  let at = 0;
  for (const size of chunkSizes(stream.length, data[0]!)) {
    if (socket.destroyed) break;
    socket.write(stream.subarray(at, at + size));
    at += size;
    await turn();
  }
  socket.end();
  await within(closed, 'the server did not close the connection');
  await within(settled(before + 1), 'the server did not settle the connection');

  assert.deepEqual(errors, [], 'the server reported an error');
  assert.equal(welcomed + refused, before + 1, 'one connection, more than one verdict');
  const verdict = prescribed(stream);
  const reply = answers(Buffer.concat(received));
  if (welcomed > welcomedBefore) {
    const hello = lastHello!;
    assert.equal(verdict, 'welcome', `the server welcomed a stream that calls for '${verdict}'`);
    assert.equal(hello.token, TOKEN);
    assert.equal(hello.protocol, PROTOCOL_VERSION);
    assert.ok(reply.length <= 1 && (reply[0] === undefined || reply[0].op === 'welcome'), 'the welcome is not what was sent');
    if (reply[0] !== undefined) assert.deepEqual(reply[0], { op: 'welcome', protocol: PROTOCOL_VERSION });
    return;
  }
  const { error } = lastRefusal!;
  assert.ok(error instanceof HandshakeError, `a refusal with ${String(error)}, not a HandshakeError`);
  assert.notEqual(verdict, 'welcome', `the server refused a valid hello: ${String(error)}`);
  assert.ok(reply.length <= 1, 'the server answered more than once');
  const answer = reply[0];
  if (answer === undefined) return;
  assert.equal(answer.op, 'refused', `the server answered '${answer.op}' and refused`);
  assert.equal(answer.code, verdict, `the server refused for '${String(answer.code)}', not '${verdict}'`);
  assert.equal(typeof answer.reason, 'string');
  assert.equal(answer.protocol, PROTOCOL_VERSION);
  const expected = { protocol: ProtocolVersionError, auth: AuthenticationError, 'bad-hello': HandshakeError }[verdict as string];
  assert.ok(expected !== undefined && error instanceof expected, `a '${verdict}' refusal with ${error.name}`);
  if (verdict === 'bad-hello') assert.ok(!(error instanceof AuthenticationError || error instanceof ProtocolVersionError));
}
