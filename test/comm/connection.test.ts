import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseAddress } from '../../src/comm/address.js';
import { packBatch, unpackBatch } from '../../src/comm/batch.js';
import { decode } from '../../src/comm/codec.js';
import { type Connection, SocketConnection, type CloseReason, resolveConnectionOptions } from '../../src/comm/connection.js';
import { ConnectionClosedError, FrameTooLargeError, MalformedFrameError } from '../../src/comm/errors.js';
import { encodePacket, FrameReader } from '../../src/comm/framing.js';
import { clientHandshake } from '../../src/comm/handshake.js';
import { announce } from '../../src/comm/long-message.js';
import { listen, type ListenOptions, type Server } from '../../src/comm/server.js';
import { receive, serverAndClient } from '../helpers/comm.js';

type Msg =
  | { op: 'data'; seq: number; payload?: unknown }
  | { op: 'echo'; value: unknown }
  | { op: 'echoed'; value: unknown };

const servers: Server<Msg>[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

/** A server whose connections are handed to the test, plus a client connected to it. */
function pair(
  serverOptions: Partial<ListenOptions<Msg>> = {},
  clientOptions: { maxMessageSize?: number; maxPacketSize?: number; batchInterval?: number } = {},
): Promise<{ server: Server<Msg>; client: Connection<Msg>; remote: Connection<Msg> }> {
  return serverAndClient(servers, serverOptions, clientOptions);
}

describe('connection', () => {
  it('carries every value kind, including a 64 MiB Float64Array, intact and typed', async () => {
    const { client, remote } = await pair();
    const big = new Float64Array(8 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = i * 0.5 - 1e6;
    const value = {
      big,
      ints: new Int32Array([1, -2, 3]),
      map: new Map<unknown, unknown>([[1, new Set([2n])]]),
      date: new Date(1_700_000_000_000),
      error: Object.assign(new TypeError('bad'), { code: 'E' }),
      nothing: undefined,
      none: null,
      nested: [{ a: [Buffer.from('buf')] }],
    };
    const arrived = receive(remote, 1);
    client.send({ op: 'echo', value });
    const [message] = await arrived;
    assert.equal(message?.op, 'echo');
    const got = (message as { value: typeof value }).value;
    assert.ok(got.big instanceof Float64Array);
    assert.equal(got.big.length, big.length);
    // A frame assembled from many chunks is its own memory: decoded without a further copy.
    assert.equal(got.big.buffer.byteLength, big.byteLength);
    assert.ok(Buffer.from(got.big.buffer).equals(Buffer.from(big.buffer)), 'the 64 MiB arrive unchanged');
    assert.deepEqual(got.ints, value.ints);
    assert.deepEqual(got.map, value.map);
    assert.deepEqual(got.date, value.date);
    assert.ok(got.error instanceof TypeError && (got.error as unknown as { code: string }).code === 'E');
    assert.ok('nothing' in got);
    assert.equal(got.nothing, undefined);
    assert.equal(got.none, null);
    assert.ok(Buffer.isBuffer((got.nested[0]!.a as unknown[])[0]));
    await client.close();
  });

  it('delivers many small messages in order, batched into few packets', async () => {
    // A raw peer that counts packets, so batching is observed on the wire.
    const packets: number[] = [];
    const decoded: Msg[] = [];
    const raw = net.createServer((socket) => {
      const reader = new FrameReader(1 << 30, (frames) => {
        const messages = unpackBatch(frames);
        packets.push(messages.length);
        for (const m of messages) decoded.push(decode(m) as Msg);
      });
      socket.on('data', (chunk: Buffer) => reader.push(chunk));
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    const port = (raw.address() as net.AddressInfo).port;
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const conn = new SocketConnection<Msg>(socket, { batchInterval: 5 });
    const n = 20_000;
    for (let seq = 0; seq < n; seq++) conn.send({ op: 'data', seq });
    await conn.close();
    await new Promise<void>((resolve) => raw.close(() => resolve()));
    assert.equal(decoded.length, n);
    decoded.forEach((m, i) => assert.equal((m as { seq: number }).seq, i));
    assert.ok(packets.length <= 2, `${n} messages sent in one tick went out in ${packets.length} packets`);
  });

  it('gathers sends from separate ticks within batchInterval', async () => {
    const batchInterval = 200;
    const { client, remote } = await pair({}, { batchInterval });
    await sleep(batchInterval + 20); // past the handshake's packet: the next send goes out at once
    // Messages of one packet are handed over in one turn of the event loop: number the turns.
    const turns: number[] = [];
    let turn = 0;
    let turnOpen = false;
    const arrived = new Promise<number[]>((resolve) => {
      remote.onMessage((message) => {
        if (!turnOpen) {
          turnOpen = true;
          turn++;
          setImmediate(() => (turnOpen = false));
        }
        turns[(message as { seq: number }).seq] = turn;
        if (Object.keys(turns).length === 10) resolve(turns);
      });
    });
    client.send({ op: 'data', seq: 0 });
    await sleep(5); // the first goes out at once, the rest gather
    for (let seq = 1; seq < 10; seq++) {
      client.send({ op: 'data', seq });
      await sleep(1);
    }
    const got = await arrived;
    assert.equal(got.length, 10);
    assert.notEqual(got[0], got[1], 'the first message went out alone, at once');
    assert.deepEqual(new Set(got.slice(1)).size, 1, `sends from separate ticks came in turns ${got.join(',')}`);
    await client.close();
  });

  it('delivers messages that arrive before a handler is set, in order', async () => {
    const { client, remote } = await pair({}, { batchInterval: 0 });
    remote.send({ op: 'data', seq: 1 });
    remote.send({ op: 'data', seq: 2 });
    await sleep(50);
    const got = await receive(client, 2);
    assert.deepEqual(
      got.map((m) => (m as { seq: number }).seq),
      [1, 2],
    );
    await client.close();
  });

  it('holds back under backpressure without blocking the event loop', async () => {
    // Packets of at most 1 MiB, so the receiver can stop reading between them.
    const { client, remote } = await pair({}, { maxMessageSize: 1 << 20 });
    // The server does not read at first: its inbox fills, the socket pauses, the kernel buffers fill.
    const chunk = 256 * 1024;
    const count = 160; // 40 MiB
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 1);
    for (let seq = 0; seq < count; seq++) client.send({ op: 'data', seq, payload: new Uint8Array(chunk).fill(seq & 0xff) });
    await sleep(300);
    assert.ok(client.bufferedBytes > 4 * chunk, `the sender keeps ${client.bufferedBytes} bytes queued`);
    assert.ok(ticks > 20, `the event loop kept turning (${ticks} ticks)`);
    const got = await receive(remote, count);
    clearInterval(ticker);
    got.forEach((m, seq) => {
      const data = m as { seq: number; payload: Uint8Array };
      assert.equal(data.seq, seq);
      assert.equal(data.payload.byteLength, chunk);
      assert.equal(data.payload[chunk - 1], seq & 0xff);
    });
    assert.equal(client.bufferedBytes, 0);
    await client.close();
  });

  it('close() flushes what is queued, and close()/destroy() are idempotent', async () => {
    const { client, remote } = await pair();
    const arrived = receive(remote, 3);
    const reasons: CloseReason[] = [];
    client.onClose((reason) => reasons.push(reason));
    client.send({ op: 'data', seq: 1 });
    client.send({ op: 'data', seq: 2 });
    client.send({ op: 'data', seq: 3 });
    const closing = client.close();
    assert.equal(client.state, 'closing');
    assert.throws(() => client.send({ op: 'data', seq: 4 }), ConnectionClosedError);
    const again = client.close();
    await Promise.all([closing, again]);
    client.destroy();
    client.destroy(new Error('late'));
    assert.equal((await arrived).length, 3);
    assert.equal(client.state, 'closed');
    assert.deepEqual(await client.closed, { kind: 'closed', by: 'local' });
    assert.deepEqual(await remote.closed, { kind: 'closed', by: 'remote' });
    assert.deepEqual(reasons, [{ kind: 'closed', by: 'local' }]);
    const late: CloseReason[] = [];
    client.onClose((reason) => late.push(reason));
    await sleep(0);
    assert.equal(late.length, 1, 'onClose after the fact is still called');
  });

  it('destroy(error) is abortive and reports the error', async () => {
    const { client, remote } = await pair();
    const boom = new Error('boom');
    client.send({ op: 'data', seq: 1 });
    client.destroy(boom);
    client.destroy();
    await client.close();
    assert.equal(client.state, 'closed');
    assert.deepEqual(await client.closed, { kind: 'error', error: boom });
    const remoteReason = await remote.closed;
    assert.ok(remoteReason.kind === 'closed' || remoteReason.kind === 'error');
  });

  it('drops a peer that sends a malformed message, without an uncaught exception', async () => {
    let handOver: (conn: Connection<Msg>) => void = () => {};
    const accepted = new Promise<Connection<Msg>>((resolve) => {
      handOver = resolve;
    });
    const server = await listen<Msg>({ port: 0, onConnection: (conn) => handOver(conn) });
    servers.push(server);
    // Handshake by hand, so that the test holds the raw socket.
    const { port } = parseAddress(server.address);
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const client = new SocketConnection(socket);
    await clientHandshake(client, { role: 'test', timeout: 2000 });
    const remote = await accepted;
    remote.onMessage(() => assert.fail('nothing valid was sent'));
    // A well-framed packet whose message header is not msgpack.
    socket.write(Buffer.concat(encodePacket(packBatch([[Buffer.from([0xc1, 0xc1, 0xc1])]]))));
    const reason = await remote.closed;
    assert.ok(reason.kind === 'error' && reason.error instanceof MalformedFrameError, `closed with ${JSON.stringify(reason)}`);
    await client.closed;
  });

  it('refuses to send a message larger than maxMessageSize, and drops a peer that does', async () => {
    const { client, remote } = await pair({ maxMessageSize: 64 * 1024 });
    assert.throws(() => remote.send({ op: 'data', seq: 0, payload: new Uint8Array(100_000) }), FrameTooLargeError);
    client.send({ op: 'data', seq: 0, payload: new Uint8Array(100_000) });
    const reason = await remote.closed;
    assert.ok(reason.kind === 'error' && reason.error instanceof FrameTooLargeError);
    await client.closed;
  });

  it('destroys the connection when a message handler throws', async () => {
    const { client, remote } = await pair();
    const bug = new Error('handler bug');
    remote.onMessage(() => {
      throw bug;
    });
    client.send({ op: 'data', seq: 1 });
    assert.deepEqual(await remote.closed, { kind: 'error', error: bug });
    await client.closed;
  });

  it('rejects invalid options, naming them', () => {
    const socket = new net.Socket();
    assert.throws(() => new SocketConnection(socket, { batchInterval: -1 }), /options\.batchInterval/);
    assert.throws(() => new SocketConnection(socket, { maxMessageSize: 1.5 }), /options\.maxMessageSize/);
    assert.throws(() => new SocketConnection(socket, { maxPacketSize: 2 ** 32 }), /options\.maxPacketSize/);
    const saved = process.env['TESSERA_MAX_PACKET_SIZE'];
    try {
      process.env['TESSERA_MAX_PACKET_SIZE'] = '64k';
      assert.throws(() => new SocketConnection(socket), /TESSERA_MAX_PACKET_SIZE must be a whole number of bytes/);
      process.env['TESSERA_MAX_PACKET_SIZE'] = String(64 * 1024);
      assert.equal(resolveConnectionOptions({}).maxPacketSize, 64 * 1024);
      assert.equal(resolveConnectionOptions({ maxPacketSize: 4096 }).maxPacketSize, 4096, 'an option wins over the environment');
    } finally {
      if (saved === undefined) delete process.env['TESSERA_MAX_PACKET_SIZE'];
      else process.env['TESSERA_MAX_PACKET_SIZE'] = saved;
    }
    socket.destroy();
  });
});

// The frame limit is made small (64 KiB) so that values several packets long stay cheap;
// the default is 512 MiB, and the code paths are the same.
describe('connection: messages larger than a packet', () => {
  const small = { maxPacketSize: 64 * 1024 };

  it('carries binary and plain data several packets long, between small messages, intact and in order', async () => {
    const { client, remote } = await pair(small, small);
    const big = new Float64Array(300_000); // 2.4 MB: 37 packets
    for (let i = 0; i < big.length; i++) big[i] = i / 3;
    const plain = Array.from({ length: 40_000 }, (_, i) => (i % 2 === 0 ? i * 1.5 : `s${i}`)); // a header larger than a packet
    const odd = Buffer.alloc(200_001, 7); // not a multiple of anything
    const arrived = receive(remote, 4);
    client.send({ op: 'data', seq: 0 });
    client.send({ op: 'echo', value: { big, plain, odd, tail: new Uint16Array([1, 2, 3]) } });
    client.send({ op: 'data', seq: 1 });
    client.send({ op: 'echo', value: plain });
    const got = await arrived;
    assert.deepEqual(got.map((m) => m.op), ['data', 'echo', 'data', 'echo']);
    assert.deepEqual([(got[0] as { seq: number }).seq, (got[2] as { seq: number }).seq], [0, 1]);
    const value = (got[1] as { value: { big: Float64Array; plain: unknown[]; odd: Buffer; tail: Uint16Array } }).value;
    assert.ok(value.big instanceof Float64Array && value.big.length === big.length);
    // Read into one buffer of its own as it arrived: decoded without a further copy.
    assert.equal(value.big.byteOffset, 0);
    assert.equal(value.big.buffer.byteLength, big.byteLength);
    assert.ok(Buffer.from(value.big.buffer).equals(Buffer.from(big.buffer)));
    assert.deepEqual(value.plain, plain);
    assert.ok(Buffer.isBuffer(value.odd) && value.odd.equals(odd));
    assert.deepEqual(value.tail, new Uint16Array([1, 2, 3]));
    assert.deepEqual((got[3] as { value: unknown }).value, plain);
    assert.equal(client.bufferedBytes, 0);
    await client.close();
  });

  it('reads large frames into the memory frameMemory gives, in one packet or several', async () => {
    for (const limits of [{}, small]) {
      const given: Uint8Array[] = [];
      const frameMemory = (length: number): Uint8Array | null => (length < 100_000 ? null : (given[given.length] = new Uint8Array(length)));
      const { client, remote } = await serverAndClient<Msg>(servers, limits, { ...limits, frameMemory });
      const big = Float64Array.from({ length: 100_000 }, (_, i) => i / 7);
      const arrived = receive(client, 1);
      remote.send({ op: 'echo', value: { big, other: new Uint8Array(50_000).fill(4) } });
      const [message] = await arrived;
      const got = (message as { value: { big: Float64Array; other: Uint8Array } }).value;
      assert.equal(given.length, 1, 'asked for the large frame only');
      assert.equal(got.big.buffer, given[0]!.buffer, 'decoded in place, in the memory given');
      assert.deepEqual(got.big, big);
      assert.deepEqual(got.other, new Uint8Array(50_000).fill(4));
      await client.close();
    }
    assert.throws(() => resolveConnectionOptions({ frameMemory: 5 as never }), /options\.frameMemory must be a function/);
  });

  it('holds back under backpressure while a long message is under way, and the other direction flows', async () => {
    const { client, remote } = await pair(small, small);
    // The receiver has no handler at first: the first message waits in its inbox, it stops
    // reading, and the long message's packets wait in the sender.
    const big = new Uint8Array(8 * 1024 * 1024).map((_, i) => i % 251);
    client.send({ op: 'data', seq: 1 });
    client.flush();
    await sleep(50);
    client.send({ op: 'echo', value: big });
    client.send({ op: 'data', seq: 2 });
    await sleep(200);
    assert.ok(client.bufferedBytes > 1024 * 1024, `the sender keeps ${client.bufferedBytes} bytes of the long message queued`);
    const back = receive(client, 1);
    remote.send({ op: 'data', seq: 9 });
    assert.equal(((await back)[0] as { seq: number }).seq, 9);
    const got = await receive(remote, 3);
    assert.equal((got[0] as { seq: number }).seq, 1);
    assert.ok(Buffer.from((got[1] as { value: Uint8Array }).value).equals(Buffer.from(big)));
    assert.equal((got[2] as { seq: number }).seq, 2);
    assert.equal(client.bufferedBytes, 0);
    await client.close();
  });

  it('refuses to send a message past maxMessageSize, and drops a peer that announces one, before allocating it', async () => {
    const { client, remote } = await pair({ ...small, maxMessageSize: 256 * 1024 }, small);
    assert.throws(() => remote.send({ op: 'echo', value: new Uint8Array(300_000) }), (error: unknown) => error instanceof FrameTooLargeError && /message of \d+ bytes exceeds maxMessageSize/.test(error.message));
    // Under the limit, several packets long: it travels.
    const arrived = receive(remote, 1);
    client.send({ op: 'echo', value: new Uint8Array(200_000).fill(1) });
    assert.equal(((await arrived)[0] as { value: Uint8Array }).value.byteLength, 200_000);
    // Past the receiver's limit: refused from the announcement, which says how large it is.
    client.send({ op: 'echo', value: new Uint8Array(300_000) });
    const reason = await remote.closed;
    assert.ok(reason.kind === 'error' && reason.error instanceof FrameTooLargeError, `closed with ${JSON.stringify(reason)}`);
    assert.equal(reason.error.limit, 256 * 1024);
    assert.ok(reason.error.size > 300_000);
    await client.closed;
  });

  /** A server connection, and a raw socket that has done the handshake with it. */
  async function rawPeer(options: Partial<ListenOptions<Msg>> = {}): Promise<{ socket: net.Socket; client: Connection; remote: Connection<Msg> }> {
    let handOver: (conn: Connection<Msg>) => void = () => {};
    const accepted = new Promise<Connection<Msg>>((resolve) => {
      handOver = resolve;
    });
    const server = await listen<Msg>({ port: 0, onConnection: (conn) => handOver(conn), ...options });
    servers.push(server);
    const { port } = parseAddress(server.address);
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const client = new SocketConnection(socket);
    await clientHandshake(client, { role: 'test', timeout: 2000 });
    return { socket, client, remote: await accepted };
  }

  it('drops a peer that announces more than the receiver allows, without allocating it', async () => {
    const { socket, client, remote } = await rawPeer({ maxMessageSize: 2 ** 30 });
    remote.onMessage(() => assert.fail('nothing whole was sent'));
    // Two frames of 1 GiB announced, and not one byte of them sent: refused at once.
    const gib = { byteLength: 2 ** 30 } as Uint8Array;
    socket.write(Buffer.concat(encodePacket(packBatch([], announce([new Uint8Array(8), gib, gib])))));
    const reason = await remote.closed;
    assert.ok(reason.kind === 'error' && reason.error instanceof FrameTooLargeError, `closed with ${JSON.stringify(reason)}`);
    assert.deepEqual([reason.error.size, reason.error.limit], [2 ** 31 + 8, 2 ** 30]);
    await client.closed;
  });

  it('drops a peer whose pieces do not match what it announced', async () => {
    const { socket, client, remote } = await rawPeer();
    remote.onMessage(() => assert.fail('nothing whole was sent'));
    // Announced: one frame of 10 bytes; sent: a piece of 11.
    socket.write(Buffer.concat(encodePacket(packBatch([], announce([new Uint8Array(10)])))));
    socket.write(Buffer.concat(encodePacket([new Uint8Array(11)])));
    const reason = await remote.closed;
    assert.ok(reason.kind === 'error' && reason.error instanceof MalformedFrameError, `closed with ${JSON.stringify(reason)}`);
    await client.closed;
  });
});

