import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect } from '../../src/comm/dial.js';
import { ConnectError, HandshakeError } from '../../src/comm/errors.js';
import { listen, type RefusedInfo, type Server, type ServerTlsOptions } from '../../src/comm/server.js';
import { selfSigned } from '../helpers/tls.js';

type Msg = { op: 'ping'; payload: Float64Array } | { op: 'pong'; payload: Float64Array };

const made = selfSigned();
const skip = typeof made === 'string' ? made : false;
const servers: Server<Msg>[] = [];

async function echo(tls: ServerTlsOptions, refused: RefusedInfo[] = []): Promise<Server<Msg>> {
  const server = await listen<Msg>({
    port: 0,
    token: 't',
    tls,
    onConnection(conn) {
      conn.onMessage((m) => conn.send({ op: 'pong', payload: m.payload }));
    },
    onRefused: (info) => refused.push(info),
  });
  servers.push(server);
  return server;
}

describe('tls', { skip }, () => {
  let cert: Buffer;
  let key: Buffer;
  before(() => {
    assert.ok(typeof made !== 'string');
    ({ cert, key } = made);
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  it('carries messages over TLS with a self-signed certificate the client trusts', async () => {
    const server = await echo({ cert, key });
    assert.match(server.address, /^tls:\/\/127\.0\.0\.1:\d+$/);
    const conn = await connect<Msg>(server.address, { role: 'client', token: 't', tls: { ca: cert } });
    assert.equal(conn.remoteAddress, server.address);
    const payload = new Float64Array(1 << 20).map((_, i) => i);
    const pong = new Promise<Msg>((resolve) => conn.onMessage(resolve));
    conn.send({ op: 'ping', payload });
    const got = await pong;
    assert.ok(got.payload instanceof Float64Array);
    assert.deepEqual(got.payload, payload);
    await conn.close();
  });

  it('also dials a bare host:port over TLS when tls options are given', async () => {
    const server = await echo({ cert, key });
    const conn = await connect<Msg>(server.address.replace('tls://', ''), { role: 'client', token: 't', tls: { ca: cert } });
    assert.match(conn.remoteAddress, /^tls:\/\//);
    await conn.close();
  });

  it('refuses an untrusted certificate without retrying', async () => {
    const server = await echo({ cert, key });
    const started = performance.now();
    await assert.rejects(connect(server.address, { role: 'client', token: 't' }), ConnectError);
    assert.ok(performance.now() - started < 2000);
  });

  it('drops a plain TCP client, and goes on serving', async () => {
    const refused: RefusedInfo[] = [];
    const server = await echo({ cert, key }, refused);
    await assert.rejects(
      connect(server.address.replace('tls://', 'tcp://'), { role: 'client', token: 't', timeout: 2000 }),
      HandshakeError,
    );
    assert.equal(refused.length, 1);
    const conn = await connect<Msg>(server.address, { role: 'client', token: 't', tls: { ca: cert } });
    await conn.close();
  });

  it('requires a client certificate when the server has a ca (mutual TLS)', async () => {
    const server = await echo({ cert, key, ca: cert });
    const conn = await connect<Msg>(server.address, { role: 'client', token: 't', tls: { ca: cert, cert, key } });
    await conn.close();
    const error = await connect(server.address, { role: 'client', token: 't', tls: { ca: cert }, timeout: 2000 }).then(
      () => assert.fail('connected without a client certificate'),
      (e: unknown) => e,
    );
    // TLS 1.3 lets the client believe it is connected until the server's verdict arrives,
    // which then cuts the Tessera handshake short.
    assert.ok(error instanceof HandshakeError, String(error));
  });
});
