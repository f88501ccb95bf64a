// Workers dying under a computation, and peers that do not speak the protocol.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import { AuthenticationError, SocketConnection, ProtocolVersionError, clientHandshake } from '../../src/comm/index.js';
import { Client, LocalCluster, Scheduler, Worker, WorkerLostError, ref, task } from '../../src/index.js';
import { until } from '../helpers/wait.js';

/** A task that takes a while without busy-waiting the thread's event loop away. */
const slowInc = (x: number): number => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 40);
  return x + 1;
};
const add = (a: number, b: number): number => a + b;

/** leaves slowInc(0..n-1), summed pairwise up to one root. */
function sumTree(n: number): { graph: Record<string, unknown>; root: string; expected: number } {
  const graph: Record<string, unknown> = {};
  let level: string[] = [];
  for (let i = 0; i < n; i++) {
    graph[`leaf-${i}`] = task(slowInc, i);
    level.push(`leaf-${i}`);
  }
  for (let depth = 0; level.length > 1; depth++) {
    const next: string[] = [];
    for (let i = 0; i < level.length; i += 2) {
      const key = `sum-${depth}-${i}`;
      graph[key] = i + 1 < level.length ? task(add, ref(level[i]!), ref(level[i + 1]!)) : task(add, ref(level[i]!), 0);
      next.push(key);
    }
    level = next;
  }
  return { graph, root: level[0]!, expected: (n * (n + 1)) / 2 };
}

void describe('fault tolerance', () => {
  void test('a worker SIGKILLed mid-graph: the graph still returns the right result', async () => {
    const cluster = await LocalCluster.start({ workers: 2, threadsPerWorker: 1 });
    try {
      const client = await Client.connect(cluster.address);
      try {
        const { graph, root, expected } = sumTree(60);
        const result = client.get(graph, [root]);
        await until(() => cluster.scheduler.tasksFinished >= 10, 'some tasks are done');
        const victim = cluster.processes[0]!;
        process.kill(victim.pid, 'SIGKILL');
        assert.deepStrictEqual(await result, [expected]);
        assert.equal(cluster.processes.length, 1);
      } finally {
        await client.close();
      }
    } finally {
      await cluster.close();
    }
  });

  void test('all workers killed and replaced: the graph still returns the right result', async () => {
    const cluster = await LocalCluster.start({ workers: 2, threadsPerWorker: 1 });
    try {
      const client = await Client.connect(cluster.address);
      try {
        const { graph, root, expected } = sumTree(40);
        const result = client.get(graph, [root]);
        await until(() => cluster.scheduler.tasksFinished >= 8, 'some tasks are done');
        for (const { pid } of cluster.processes) process.kill(pid, 'SIGKILL');
        await until(() => cluster.processes.length === 0 && cluster.scheduler.workers.length === 0, 'the workers are gone');
        await cluster.scale(2);
        assert.deepStrictEqual(await result, [expected]);
      } finally {
        await client.close();
      }
    } finally {
      await cluster.close();
    }
  });

  void test('a task that kills every worker it runs on errs with WorkerLostError', async () => {
    const cluster = await LocalCluster.start({ workers: 2, threadsPerWorker: 1, scheduler: { allowedFailures: 1 } });
    try {
      const client = await Client.connect(cluster.address);
      try {
        const deadly = client.submit(() => process.kill(process.pid, 'SIGKILL'));
        await assert.rejects(deadly.result(), WorkerLostError);
      } finally {
        await client.close();
      }
    } finally {
      await cluster.close();
    }
  });
});

void describe('liveness', () => {
  void test('a worker that stops answering (SIGSTOP) is removed after its heartbeats stop; work moves on', async () => {
    const cluster = await LocalCluster.start({ workers: 2, threadsPerWorker: 1, scheduler: { workerTtlMs: 1500 } });
    const frozen = cluster.processes[0]!;
    try {
      const client = await Client.connect(cluster.address);
      try {
        process.kill(frozen.pid, 'SIGSTOP');
        const { graph, root, expected } = sumTree(20);
        assert.deepStrictEqual(await client.get(graph, [root]), [expected]);
        await until(() => cluster.scheduler.workerCount === 1, 'the frozen worker is removed');
      } finally {
        await client.close();
      }
    } finally {
      process.kill(frozen.pid, 'SIGCONT');
      await cluster.close();
    }
  });

  void test('a client that disconnects has its futures released', async () => {
    const cluster = await LocalCluster.start({ workers: 1 });
    try {
      const client = await Client.connect(cluster.address);
      const f = client.submit((x: number) => x + 1, 1);
      assert.equal(await f.result(), 2);
      assert.notEqual(cluster.scheduler.taskInfo(f.key), undefined);
      await client.close();
      await until(() => cluster.scheduler.taskInfo(f.key) === undefined, 'the key is forgotten');
    } finally {
      await cluster.close();
    }
  });
});

void describe('the scheduler refuses bad peers and goes on serving', () => {
  void test('wrong token, wrong version, garbage, oversized frame, unknown message, malformed tickets', async () => {
    const logged: string[] = [];
    const scheduler = await Scheduler.start({ port: 0, token: 'right', log: (line) => logged.push(line) });
    const worker = await Worker.start({ scheduler: scheduler.address, token: 'right', nthreads: 1, name: 'w', log: () => {} });
    try {
      await assert.rejects(Client.connect(scheduler.address, { token: 'wrong' }), AuthenticationError);
      await assert.rejects(Client.connect(scheduler.address), AuthenticationError);

      const { port } = new URL(scheduler.address.replace('tcp://', 'http://'));
      const dial = (): Promise<net.Socket> =>
        new Promise((resolve, reject) => {
          const socket = net.connect({ host: '127.0.0.1', port: Number(port) }, () => resolve(socket));
          socket.once('error', reject);
        });
      const closes = (socket: net.Socket): Promise<void> =>
        new Promise((resolve) => {
          socket.on('error', () => {});
          socket.resume();
          socket.once('close', () => resolve());
        });

      // A version this scheduler does not speak.
      const old = new SocketConnection(await dial());
      await assert.rejects(clientHandshake(old, { role: 'client', token: 'right', timeout: 5000, protocol: 99 }), ProtocolVersionError);
      old.destroy();

      // Bytes that are not a packet at all.
      const garbage = await dial();
      const garbageClosed = closes(garbage);
      garbage.write(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
      await garbageClosed;

      // A frame that announces far more than the handshake may send.
      const huge = await dial();
      const hugeClosed = closes(huge);
      const prefix = Buffer.alloc(8);
      prefix.writeUInt32BE(0xfffffff0, 0);
      huge.write(prefix);
      await hugeClosed;

      // A good handshake, then a message nobody knows.
      const rogue = new SocketConnection<{ op: string }>(await dial());
      await clientHandshake(rogue, { role: 'client', token: 'right', timeout: 5000 });
      rogue.onMessage(() => {});
      rogue.send({ op: 'format-disk' });
      await rogue.closed;

      // A worker whose report names tasks by tickets that are no numbers.
      for (const op of ['tasks-started', 'tasks-finished']) {
        const fake = new SocketConnection<{ op: string }>(await dial());
        await clientHandshake(fake, { role: 'worker', token: 'right', timeout: 5000 });
        fake.onMessage(() => {});
        const register = { op: 'register', name: `fake-${op}`, nthreads: 1, memoryLimit: 1e9 };
        const report = op === 'tasks-started' ? { op, tickets: ['7'], startedAt: 0 } : { op, keys: ['k'], tickets: [0.5], nbytes: [8], startedAt: [0], finishedAt: [1], threads: [0] };
        fake.send(register);
        fake.send(report);
        await fake.closed;
        assert.ok(logged.some((line) => line.includes(`malformed ${op} message: tickets must be a list of integers`)), logged.join('\n'));
      }

      // Through all of it the scheduler serves a good client.
      const client = await Client.connect(scheduler.address, { token: 'right' });
      assert.equal(await client.submit((x: number) => x * 3, 14).result(), 42);
      await client.close();
      assert.ok(logged.some((line) => line.includes('wrong token')), logged.join('\n'));
    } finally {
      await worker.close();
      await scheduler.close();
      await scheduler.close();
    }
  });
});
