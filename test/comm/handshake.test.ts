import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CancelledError } from '../../src/errors.js';
import { parseAddress } from '../../src/comm/address.js';
import { SocketConnection } from '../../src/comm/connection.js';
import { connect } from '../../src/comm/dial.js';
import {
  AuthenticationError,
  ConnectError,
  FrameTooLargeError,
  HandshakeError,
  InvalidAddressError,
  ListenError,
  MalformedFrameError,
  ProtocolVersionError,
} from '../../src/comm/errors.js';
import { encodePacket } from '../../src/comm/framing.js';
import { clientHandshake, type Hello, PROTOCOL_VERSION } from '../../src/comm/handshake.js';
import { listen, type RefusedInfo, type Server } from '../../src/comm/server.js';

type Msg = { op: 'ping'; n: number } | { op: 'pong'; n: number };

const servers: Server<Msg>[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

/** An echo server that records who it refused and whom it welcomed. */
async function echoServer(options: { token?: string; handshakeTimeout?: number; maxMessageSize?: number } = {}) {
  const refused: RefusedInfo[] = [];
  const hellos: Hello[] = [];
  let onRefused: () => void = () => {};
  const server = await listen<Msg>({
    port: 0,
    ...options,
    onConnection(conn, hello) {
      hellos.push(hello);
      conn.onMessage((message) => {
        if (message.op === 'ping') conn.send({ op: 'pong', n: message.n });
      });
    },
    onRefused(info) {
      refused.push(info);
      onRefused();
    },
  });
  servers.push(server);
  const nextRefusal = (): Promise<RefusedInfo> =>
    new Promise((resolve) => {
      const seen = refused.length;
      onRefused = () => {
        if (refused.length > seen) resolve(refused[seen]!);
      };
    });
  return { server, refused, hellos, nextRefusal };
}

/** The server still answers a well-behaved client. */
async function assertServes(address: string, token?: string): Promise<void> {
  const conn = await connect<Msg>(address, { role: 'client', ...(token === undefined ? {} : { token }), batchInterval: 0 });
  const pong = new Promise<Msg>((resolve) => conn.onMessage(resolve));
  conn.send({ op: 'ping', n: 42 });
  assert.deepEqual(await pong, { op: 'pong', n: 42 });
  await conn.close();
}

function rawSocket(address: string): Promise<net.Socket> {
  const { host, port } = parseAddress(address);
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, host);
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

function closedWithin(socket: net.Socket, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    if (socket.destroyed) {
      resolve();
      return;
    }
    const timer = setTimeout(() => reject(new Error(`socket still open after ${ms} ms`)), ms);
    socket.on('error', () => {});
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.resume();
  });
}

describe('handshake', () => {
  it('welcomes a client with the right token and passes its hello on', async () => {
    const { server, hellos } = await echoServer({ token: 's3cret' });
    assert.match(server.address, /^tcp:\/\/127\.0\.0\.1:\d+$/);
    const conn = await connect<Msg>(server.address, { role: 'worker', name: 'w-1', token: 's3cret' });
    assert.equal(conn.state, 'open');
    assert.equal(conn.remoteAddress, server.address);
    assert.match(conn.localAddress, /^tcp:\/\/127\.0\.0\.1:\d+$/);
    await conn.close();
    assert.equal(hellos.length, 1);
    assert.equal(hellos[0]!.role, 'worker');
    assert.equal(hellos[0]!.name, 'w-1');
  });

  it('refuses a wrong or missing token with AuthenticationError, and goes on serving', async () => {
    const { server, nextRefusal } = await echoServer({ token: 's3cret' });
    let refusal = nextRefusal();
    await assert.rejects(connect(server.address, { role: 'client', token: 'guess' }), AuthenticationError);
    assert.ok((await refusal).error instanceof AuthenticationError);
    refusal = nextRefusal();
    await assert.rejects(connect(server.address, { role: 'client' }), AuthenticationError);
    assert.ok((await refusal).error instanceof AuthenticationError);
    await assertServes(server.address, 's3cret');
  });

  it('refuses another protocol version with ProtocolVersionError on both sides', async () => {
    const { server, nextRefusal } = await echoServer();
    const refusal = nextRefusal();
    const conn = new SocketConnection(await rawSocket(server.address));
    const error = await clientHandshake(conn, { role: 'client', timeout: 2000, protocol: 999 }).then(
      () => assert.fail('welcomed'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof ProtocolVersionError);
    assert.equal(error.local, 999);
    assert.equal(error.remote, PROTOCOL_VERSION);
    assert.ok((await refusal).error instanceof ProtocolVersionError);
    await conn.closed;
    await assertServes(server.address);
  });

  it('drops a peer that sends garbage, and goes on serving', async () => {
    const { server, nextRefusal } = await echoServer();
    let refusal = nextRefusal();
    const http = await rawSocket(server.address);
    http.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await closedWithin(http, 2000);
    assert.ok((await refusal).error.cause instanceof FrameTooLargeError);

    // Well framed, but not msgpack.
    refusal = nextRefusal();
    const junk = await rawSocket(server.address);
    junk.write(Buffer.concat(encodePacket([Buffer.from([0, 0, 0, 1]), Buffer.from([0xc1, 0xff, 0x00])])));
    await closedWithin(junk, 2000);
    assert.ok((await refusal).error.cause instanceof MalformedFrameError);

    // Valid msgpack, but not a hello: this one gets an answer before the door closes.
    refusal = nextRefusal();
    const rude = new SocketConnection<Msg>(await rawSocket(server.address));
    rude.send({ op: 'ping', n: 1 });
    assert.ok((await refusal).error instanceof HandshakeError);
    await rude.closed;
    await assertServes(server.address);
  });

  it('drops a peer whose hello is oversized, and one whose later message is', async () => {
    const { server, nextRefusal } = await echoServer({ maxMessageSize: 100_000 });
    const refusal = nextRefusal();
    const big = new SocketConnection(await rawSocket(server.address));
    await assert.rejects(clientHandshake(big, { role: 'x'.repeat(70_000), timeout: 2000 }), HandshakeError);
    assert.ok((await refusal).error.cause instanceof FrameTooLargeError, 'a hello is capped far below maxMessageSize');

    const conn = await connect<Msg>(server.address, { role: 'client' });
    const payload = new Float64Array(50_000); // 400 kB, over the server's limit
    conn.send({ op: 'ping', n: payload.length, ...{ payload } });
    const reason = await conn.closed;
    assert.ok(reason.kind === 'closed' || reason.kind === 'error');
    await assertServes(server.address);
  });

  it('drops a silent peer after handshakeTimeout, and goes on serving', async () => {
    const { server, nextRefusal } = await echoServer({ handshakeTimeout: 200 });
    const refusal = nextRefusal();
    const silent = await rawSocket(server.address);
    const started = performance.now();
    await closedWithin(silent, 2000);
    const waited = performance.now() - started;
    assert.ok(waited >= 150 && waited < 1500, `dropped after ${Math.round(waited)} ms`);
    assert.ok((await refusal).error instanceof HandshakeError);
    await assertServes(server.address);
  });

  it('times out a client whose server never answers', async () => {
    const mute = net.createServer((socket) => socket.resume()); // reads, never answers
    await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve));
    const port = (mute.address() as net.AddressInfo).port;
    await assert.rejects(connect(`127.0.0.1:${port}`, { role: 'client', timeout: 200 }), HandshakeError);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(connect(`127.0.0.1:${port}`, { role: 'client', signal: controller.signal }), CancelledError);
    await new Promise<void>((resolve) => mute.close(() => resolve()));
  });
});

describe('dial', () => {
  it('parses tcp://, tls:// and bare addresses, and names a bad one', () => {
    assert.deepEqual(parseAddress('tcp://10.0.0.1:8786'), { scheme: 'tcp', host: '10.0.0.1', port: 8786 });
    assert.deepEqual(parseAddress('tls://scheduler.local:8786'), { scheme: 'tls', host: 'scheduler.local', port: 8786 });
    assert.deepEqual(parseAddress('localhost:1'), { scheme: undefined, host: 'localhost', port: 1 });
    assert.deepEqual(parseAddress('tcp://[::1]:80'), { scheme: 'tcp', host: '::1', port: 80 });
    for (const bad of ['', 'localhost', 'http://x:1', 'tcp://x:99999', 'tcp://x:port', 'tcp://:80', '::1:80', 'tcp://[nope]:1']) {
      assert.throws(
        () => parseAddress(bad),
        (e: unknown) => e instanceof InvalidAddressError && e.address === bad && e.message.includes(`'${bad}'`),
      );
    }
  });

  it('rejects a bad address before dialling', async () => {
    await assert.rejects(connect('tcp//nowhere', { role: 'client' }), InvalidAddressError);
    await assert.rejects(connect('tcp://127.0.0.1:0', { role: 'client' }), InvalidAddressError);
  });

  it('gives up on a refused port with ConnectError once the timeout passes', async () => {
    const port = await freePort();
    const started = performance.now();
    const error = await connect(`tcp://127.0.0.1:${port}`, { role: 'client', timeout: 300 }).then(
      () => assert.fail('connected'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof ConnectError);
    assert.equal(error.address, `tcp://127.0.0.1:${port}`);
    assert.equal((error.cause as NodeJS.ErrnoException).code, 'ECONNREFUSED');
    assert.ok(performance.now() - started >= 250, 'it retried until the timeout');
    await assert.rejects(connect(`tcp://127.0.0.1:${port}`, { role: 'client', retry: false }), ConnectError);
  });

  it('retries until a late server comes up', async () => {
    const port = await freePort();
    const dialing = connect<Msg>(`tcp://127.0.0.1:${port}`, { role: 'client', timeout: 5000 });
    await sleep(300);
    const server = await listen<Msg>({ port, onConnection: () => {} });
    servers.push(server);
    const conn = await dialing;
    assert.equal(conn.state, 'open');
    await conn.close();
  });

  it('stops when the signal aborts', async () => {
    const port = await freePort();
    const controller = new AbortController();
    const dialing = connect(`tcp://127.0.0.1:${port}`, { role: 'client', signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    await assert.rejects(dialing, CancelledError);
  });

  it('reports a port in use with ListenError', async () => {
    const { server } = await echoServer();
    const { port } = parseAddress(server.address);
    await assert.rejects(listen({ port, onConnection: () => {} }), ListenError);
  });

  it('closes the server and its connections, idempotently', async () => {
    const server = await listen<Msg>({ port: 0, onConnection: () => {} });
    const a = await connect<Msg>(server.address, { role: 'client' });
    const b = await connect<Msg>(server.address, { role: 'client' });
    const lingering = await rawSocket(server.address); // still in its handshake
    assert.equal(server.connectionCount, 3);
    await Promise.all([server.close(), server.close()]);
    await server.close();
    assert.equal(server.state, 'closed');
    assert.equal(server.connectionCount, 0);
    assert.deepEqual(await a.closed, { kind: 'closed', by: 'remote' });
    await b.closed;
    await closedWithin(lingering, 1000);
    await assert.rejects(connect(server.address, { role: 'client', retry: false }), ConnectError);
  });

  it('leaves no sockets, servers or timers behind once everything is closed', async () => {
    await Promise.all(servers.map((s) => s.close()));
    await sleep(10);
    const left = process.getActiveResourcesInfo().filter((r) => /TCP|TLS|Timeout|Immediate/.test(r));
    assert.deepEqual(left, []);
  });
});

async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
