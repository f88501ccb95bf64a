// Errors name what went wrong: a dependent's failure names the task that raised, and a
// client that leaves at once is not an error of the scheduler's.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import { SocketConnection, clientHandshake } from '../../src/comm/index.js';
import { Client, LocalCluster, Scheduler, TaskError, WorkerLostError, delayed } from '../../src/index.js';
import { sleep, until } from '../helpers/wait.js';

void describe('errors that name their cause', () => {
  void test('dependents of a failed task, submitted before or after it failed, name the root', async () => {
    const cluster = await LocalCluster.start({ workers: 1, threadsPerWorker: 1, dashboard: false, log: false });
    try {
      const client = await Client.connect(cluster.address);
      try {
        const bad = client.submitWith({ key: 'bad-root' }, (): number => {
          throw new RangeError('out of range');
        });
        const child = client.submitWith({ key: 'child-of-bad' }, (x: number) => x + 1, bad);
        const grandchild = client.submitWith({ key: 'grandchild-of-bad' }, (x: number) => x + 1, child);
        for (const f of [bad, child, grandchild]) {
          const error = await f.result().then(() => assert.fail('should have failed'), (e: unknown) => e);
          assert.ok(error instanceof TaskError, String(error));
          assert.equal(error.key, 'bad-root', `${f.key} names the root`);
          assert.equal(error.remoteName, 'RangeError');
        }
        // Submitted after the root failed: the same root.
        const late = client.submitWith({ key: 'late-child' }, (x: number) => x * 2, bad);
        const error = await late.result().then(() => assert.fail('should have failed'), (e: unknown) => e);
        assert.ok(error instanceof TaskError);
        assert.equal(error.key, 'bad-root');
        // A graph too.
        const root = delayed((): number => {
          throw new TypeError('bad graph');
        }, { name: 'graph-root' })();
        const leaf = delayed((x: number) => x + 1, { name: 'graph-leaf' })(root);
        const graphError = await client.compute(leaf).result().then(() => assert.fail('should have failed'), (e: unknown) => e);
        assert.ok(graphError instanceof TaskError);
        assert.match(graphError.key, /^graph-root-/);
      } finally {
        await client.close();
      }
    } finally {
      await cluster.close();
    }
  });

  void test('a worker killed by a task blames that task, not those queued behind it', { timeout: 120_000 }, async () => {
    const cluster = await LocalCluster.start({ workers: 1, threadsPerWorker: 1, dashboard: false, log: false, scheduler: { allowedFailures: 0 } });
    try {
      const client = await Client.connect(cluster.address);
      try {
        const deadly = client.submitWith({ key: 'deadly-1' }, () => {
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
          process.kill(process.pid, 'SIGKILL');
        });
        await until(() => cluster.scheduler.taskInfo('deadly-1')?.state === 'processing', 'the deadly task runs');
        await sleep(100);
        const innocent = Array.from({ length: 3 }, (_, i) => client.submitWith({ key: `innocent-${i}` }, (x: number) => x * 10, i));
        await until(() => cluster.scheduler.taskInfo('innocent-0')?.state === 'processing', 'an innocent task waits on the worker');
        assert.equal(cluster.scheduler.taskInfo('innocent-0')?.processingOn, cluster.scheduler.taskInfo('deadly-1')?.processingOn);
        await assert.rejects(deadly.result(), (e: unknown) => e instanceof WorkerLostError && e.key === 'deadly-1');
        await cluster.scale(1);
        assert.deepEqual(await Promise.all(innocent.map((f) => f.result())), [0, 10, 20]);
      } finally {
        await client.close();
      }
    } finally {
      await cluster.close();
    }
  });

  void test('a client that disconnects at once leaves no error in the scheduler log', async () => {
    const logged: string[] = [];
    const scheduler = await Scheduler.start({ port: 0, dashboard: false, log: (line) => logged.push(line) });
    try {
      const { port } = new URL(scheduler.address.replace('tcp://', 'http://'));
      for (let i = 0; i < 20; i++) {
        // Handshake, then gone before the welcome is read.
        const socket = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect({ host: '127.0.0.1', port: Number(port) }, () => resolve(s));
          s.once('error', reject);
        });
        socket.on('error', () => {});
        const conn = new SocketConnection(socket);
        const handshake = clientHandshake(conn, { role: 'client', timeout: 5000 }).catch(() => undefined);
        socket.destroy();
        await handshake;
        // And a real client that closes at once.
        const client = await Client.connect(scheduler.address);
        await client.close();
      }
      await sleep(300);
      assert.deepEqual(logged.filter((line) => /error/i.test(line)), []);
      // Still serving, and no client is left registered.
      const client = await Client.connect(scheduler.address);
      await client.close();
    } finally {
      await scheduler.close();
    }
  });
});
