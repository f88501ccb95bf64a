// LocalCluster.scale(n) counts what is real: a retirement given up keeps its worker and
// data, and workers killed a moment ago are not counted as workers.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Client, LocalCluster } from '../../src/index.js';
import { sleep, until } from '../helpers/wait.js';

void describe('LocalCluster.scale after failures', () => {
  void test('a retirement given up keeps the worker and its scattered data; scale(1) then keeps 1', async () => {
    const cluster = await LocalCluster.start({ workers: 1, threadsPerWorker: 1, dashboard: false, log: false });
    try {
      const client = await Client.connect(cluster.address);
      try {
        const values = client.scatter([1, 2, 3, 4]) as unknown as Promise<unknown>[];
        await Promise.all(values);
        // Nowhere to move the data: the retirement is given up and the worker stays.
        await cluster.scale(0);
        assert.equal(cluster.processes.length, 1, 'the worker holding the only copies stays');
        assert.equal(cluster.closing, 0, 'nothing is being stopped');
        await cluster.scale(1);
        // Long enough for a stop that should not happen to be under way.
        await sleep(1500);
        assert.equal(cluster.closing, 0);
        assert.equal(cluster.processes.length, 1);
        assert.equal(cluster.scheduler.workerCount, 1);
        assert.deepEqual(await client.gather(values), [1, 2, 3, 4]);
      } finally {
        await client.close();
      }
    } finally {
      await cluster.close();
    }
  });

  void test('scale(n) right after workers were SIGKILLed starts replacements once the dead are reaped', { timeout: 90_000 }, async () => {
    const cluster = await LocalCluster.start({ workers: 2, threadsPerWorker: 1, dashboard: false, log: false });
    try {
      const client = await Client.connect(cluster.address);
      try {
        for (const { pid } of cluster.processes) process.kill(pid, 'SIGKILL');
        // At once: the killed processes are not reaped yet.
        await cluster.scale(2);
        assert.equal(cluster.processes.length, 2);
        await until(() => cluster.scheduler.workerCount === 2, 'two workers are registered');
        const f = client.submit((x: number) => x * 2, 21);
        assert.equal(await f.result(), 42);
      } finally {
        await client.close();
      }
    } finally {
      await cluster.close();
    }
  });

  void test('a killed worker is not counted: scale(2) with one of two just killed starts one', { timeout: 90_000 }, async () => {
    const cluster = await LocalCluster.start({ workers: 2, threadsPerWorker: 1, dashboard: false, log: false });
    try {
      const [victim, survivor] = cluster.processes;
      process.kill(victim!.pid, 'SIGKILL');
      assert.equal(cluster.requested, 1, 'requested counts what is alive');
      await cluster.scale(2);
      const names = cluster.processes.map((p) => p.name);
      assert.equal(names.length, 2);
      assert.ok(names.includes(survivor!.name), 'the survivor is kept');
      assert.ok(!names.includes(victim!.name));
      await until(() => cluster.scheduler.workerCount === 2, 'two workers are registered');
    } finally {
      await cluster.close();
    }
  });
});
