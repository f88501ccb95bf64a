import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CloseReason, Connection } from '../../src/comm/connection.js';
import { connect } from '../../src/comm/dial.js';
import { AuthenticationError, ConnectError, ConnectionClosedError, FrameTooLargeError, UnencodableMessageError } from '../../src/comm/errors.js';
import { listen, type ListenOptions, type Server } from '../../src/comm/server.js';
import { receive, serverAndClient } from '../helpers/comm.js';

type Msg = { op: 'data'; seq: number; payload?: unknown } | { op: 'echo'; value: unknown };

const servers: Server<Msg>[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

/** A server in this process and a client joined to it through memory, with the server's end. */
function pair(
  serverOptions: Partial<ListenOptions<Msg>> = {},
  clientOptions: { token?: string; maxMessageSize?: number } = {},
): Promise<{ server: Server<Msg>; client: Connection<Msg>; remote: Connection<Msg> }> {
  return serverAndClient(servers, serverOptions, { inProcess: true, ...clientOptions });
}

describe('local connection', () => {
  it('joins a server in this process through memory, and a TCP one otherwise', async () => {
    const { server, client, remote } = await pair();
    assert.match(client.localAddress, /^inproc:\/\//);
    assert.equal(client.remoteAddress, server.address);
    assert.equal(remote.remoteAddress, client.localAddress);
    const overSocket = await connect<Msg>(server.address, { role: 'test' });
    assert.match(overSocket.localAddress, /^tcp:\/\//, 'without inProcess the socket is used');
    await Promise.all([client.close(), overSocket.close()]);
  });

  it('sends a copy that shares no memory with the sender, and sendPlain the object itself', async () => {
    const { client, remote } = await pair();
    const big = new Float64Array(1 << 16).fill(1.5);
    const value = { big, small: new Uint8Array([1, 2, 3]), map: new Map([[1, 'one']]), error: new TypeError('bad'), nothing: undefined };
    const plain = { op: 'echo' as const, value: { keys: ['a', 'b'] } };
    const arrived = receive(remote, 2);
    client.send({ op: 'echo', value });
    client.sendPlain(plain);
    // Changed after sending: the copy sent does not change with it.
    big[0] = -1;
    const [copied, handed] = await arrived;
    const got = (copied as { value: typeof value }).value;
    assert.ok(got.big instanceof Float64Array && got.big.length === big.length);
    assert.equal(got.big[0], 1.5);
    assert.notEqual(got.big.buffer, big.buffer);
    assert.deepEqual(got.small, value.small);
    assert.deepEqual(got.map, value.map);
    assert.ok(got.error instanceof TypeError && got.error.message === 'bad');
    assert.ok('nothing' in got);
    assert.equal(handed, plain, 'a plain message is handed over as it is');
    await client.close();
  });

  it('throws at send what cannot be encoded', async () => {
    const { client } = await pair();
    const cycle: { self?: unknown } = {};
    cycle.self = cycle;
    assert.throws(() => client.send({ op: 'echo', value: cycle }), UnencodableMessageError);
    assert.equal(client.state, 'open');
    await client.close();
  });

  it('delivers in order on a later turn, and holds messages until a handler is set', async () => {
    const { client, remote } = await pair();
    const n = 20_000;
    for (let seq = 0; seq < n; seq++) client.sendPlain({ op: 'data', seq });
    await sleep(10);
    const arrived = receive(remote, n + 1);
    client.send({ op: 'data', seq: n });
    assert.equal(remote.state, 'open');
    let early = false;
    client.onMessage(() => {
      early = true;
    });
    remote.sendPlain({ op: 'data', seq: 0 });
    assert.equal(early, false, 'nothing is delivered inside the sender’s call');
    const got = await arrived;
    got.forEach((m, i) => assert.equal((m as { seq: number }).seq, i));
    await client.close();
  });

  it('checks the token and the protocol as over a socket', async () => {
    const server = await listen<Msg>({ port: 0, token: 's3cret', onConnection: () => {} });
    servers.push(server);
    await assert.rejects(connect<Msg>(server.address, { role: 'test', inProcess: true }), AuthenticationError);
    await assert.rejects(connect<Msg>(server.address, { role: 'test', inProcess: true, token: 'wrong' }), AuthenticationError);
    const ok = await connect<Msg>(server.address, { role: 'test', inProcess: true, token: 's3cret' });
    assert.match(ok.localAddress, /^inproc:\/\//);
    await ok.close();
    await assert.rejects(connect<Msg>(server.address, { role: 'test', inProcess: 'yes' as unknown as boolean }), /options\.inProcess must be a boolean/);
  });

  it('is not offered by a server that has stopped', async () => {
    const { server, client } = await pair();
    const closed = client.closed;
    await server.close();
    assert.deepEqual(await closed, { kind: 'closed', by: 'remote' }, 'closing the server closes its local ends');
    await assert.rejects(connect<Msg>(server.address, { role: 'test', inProcess: true, retry: false }), ConnectError);
  });

  it('close() delivers what was sent, then both ends close; close() and destroy() are idempotent', async () => {
    const { client, remote } = await pair();
    const arrived = receive(remote, 3);
    const reasons: CloseReason[] = [];
    client.onClose((reason) => reasons.push(reason));
    for (let seq = 1; seq <= 3; seq++) client.send({ op: 'data', seq });
    const closing = client.close();
    assert.equal(client.state, 'closing');
    assert.throws(() => client.send({ op: 'data', seq: 4 }), ConnectionClosedError);
    assert.throws(() => client.sendPlain({ op: 'data', seq: 4 }), ConnectionClosedError);
    await Promise.all([closing, client.close()]);
    client.destroy();
    client.destroy(new Error('late'));
    assert.equal((await arrived).length, 3);
    assert.deepEqual(await client.closed, { kind: 'closed', by: 'local' });
    assert.deepEqual(await remote.closed, { kind: 'closed', by: 'remote' });
    assert.deepEqual(reasons, [{ kind: 'closed', by: 'local' }]);
    const late: CloseReason[] = [];
    client.onClose((reason) => late.push(reason));
    await sleep(0);
    assert.equal(late.length, 1, 'onClose after the fact is still called');
  });

  it('destroy(error) reports the error here and a close on the other end', async () => {
    const { client, remote } = await pair();
    const boom = new Error('boom');
    remote.destroy(boom);
    assert.deepEqual(await remote.closed, { kind: 'error', error: boom });
    assert.deepEqual(await client.closed, { kind: 'closed', by: 'remote' });
    assert.throws(() => client.sendPlain({ op: 'data', seq: 1 }), ConnectionClosedError);
  });

  it('destroys the end whose message handler throws', async () => {
    const { client, remote } = await pair();
    const bug = new Error('handler bug');
    remote.onMessage(() => {
      throw bug;
    });
    client.send({ op: 'data', seq: 1 });
    assert.deepEqual(await remote.closed, { kind: 'error', error: bug });
    assert.deepEqual(await client.closed, { kind: 'closed', by: 'remote' });
  });

  it('refuses to send past maxMessageSize, and the receiver drops a peer that sends past its own', async () => {
    const { client, remote } = await pair({ maxMessageSize: 64 * 1024 }, { maxMessageSize: 32 * 1024 });
    assert.throws(() => client.send({ op: 'data', seq: 0, payload: new Uint8Array(40_000) }), FrameTooLargeError);
    assert.equal(client.state, 'open');
    remote.send({ op: 'data', seq: 0, payload: new Uint8Array(40_000) });
    const reason = await client.closed;
    assert.ok(reason.kind === 'error' && reason.error instanceof FrameTooLargeError, `closed with ${JSON.stringify(reason)}`);
    assert.deepEqual(await remote.closed, { kind: 'closed', by: 'remote' });
  });

  it('keeps the process alive while ref’d, as a socket does, and not once unref’d', () => {
    const script = (unref: boolean): string => `
      import { listen } from './src/comm/server.ts';
      import { connect } from './src/comm/dial.ts';
      const server = await listen({ port: 0, keepAlive: false, onConnection: () => {} });
      const client = await connect(server.address, { role: 'test', inProcess: true });
      ${unref ? 'client.unref();' : ''}
      setTimeout(() => { console.log('alive'); void client.close(); }, 200).unref();
    `;
    const run = (unref: boolean): string =>
      spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(unref)], { encoding: 'utf8', timeout: 20_000 }).stdout.trim();
    assert.equal(run(false), 'alive');
    assert.equal(run(true), '');
  });
});
