/**
 * DataPeers over real sockets: answers reach the request that asked, one connection per
 * peer, and a peer that cannot be reached, closes mid-request or is closed by us answers
 * "missing" rather than failing the caller.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, describe, test } from 'node:test';
import { type Connection, listen, type Server } from '../../src/comm/index.js';
import type { PeerMessage } from '../../src/protocol/messages.js';
import { DataPeers } from '../../src/protocol/data-peers.js';

const servers: Server<PeerMessage>[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

/** A data port holding `data`; `hold` keys are never answered. */
async function dataPort(data: Record<string, unknown>, hold: readonly string[] = []): Promise<{ server: Server<PeerMessage>; connections: Connection<PeerMessage>[] }> {
  const connections: Connection<PeerMessage>[] = [];
  const server = await listen<PeerMessage>({
    token: 'secret',
    onConnection: (conn) => {
      connections.push(conn);
      conn.onMessage((m) => {
        if (m.op !== 'get-data' || m.keys.some((k) => hold.includes(k))) return;
        const here = m.keys.filter((k) => k in data);
        conn.send({ op: 'data', id: m.id, values: here.map((k) => [k, data[k]] as const), missing: m.keys.filter((k) => !(k in data)) });
      });
    },
  });
  servers.push(server);
  return { server, connections };
}

async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

void describe('DataPeers', () => {
  void test('routes each answer to its request, over one connection per peer', async () => {
    const a = await dataPort({ x: 1, y: [2, 3] });
    const b = await dataPort({ z: 'zed' });
    const peers = new DataPeers({ token: 'secret' });
    const [r1, r2, r3] = await Promise.all([peers.get(a.server.address, ['x', 'nope']), peers.get(a.server.address, ['y']), peers.get(b.server.address, ['z'])]);
    assert.deepEqual(r1.values, [['x', 1]]);
    assert.deepEqual(r1.missing, ['nope']);
    assert.deepEqual(r2.values, [['y', [2, 3]]]);
    assert.deepEqual(r3.values, [['z', 'zed']]);
    assert.equal(a.connections.length, 1);
    await peers.close();
  });

  void test('an unreachable peer, or one refusing our token, holds nothing', async () => {
    const errors: string[] = [];
    const peers = new DataPeers({ token: 'wrong', timeout: 2_000, onError: (address) => errors.push(address) });
    const down = `tcp://127.0.0.1:${await closedPort()}`;
    assert.deepEqual(await peers.get(down, ['x']), { op: 'data', id: 1, values: [], missing: ['x'] });
    const a = await dataPort({ x: 1 });
    const refused = await peers.get(a.server.address, ['x']);
    assert.deepEqual(refused.missing, ['x']);
    assert.deepEqual(errors, [down, a.server.address]);
    await peers.close();
  });

  void test('a peer closing mid-request, or our close(), answers what was waiting as missing', async () => {
    const a = await dataPort({ x: 1, slow: 2 }, ['slow']);
    const peers = new DataPeers({ token: 'secret' });
    assert.deepEqual((await peers.get(a.server.address, ['x'])).values, [['x', 1]]);
    const waiting = peers.get(a.server.address, ['slow', 'x']);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await a.connections[0]!.close();
    assert.deepEqual((await waiting).missing, ['slow', 'x']);
    // A new request dials again.
    assert.deepEqual((await peers.get(a.server.address, ['x'])).values, [['x', 1]]);
    const pending = peers.get(a.server.address, ['slow']);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await peers.close();
    assert.deepEqual((await pending).missing, ['slow']);
  });
});
