// scatter() resolves once every value is held and registered; a share on a worker that
// freezes and is then killed is placed again (or the futures err), never left pending.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Client, LocalCluster, ScatterError } from '../../src/index.js';
import { sleep } from '../helpers/wait.js';

void describe('scatter, answered once', () => {
  void test('a task submitted right after scatter finds its inputs, every time', { timeout: 120_000 }, async () => {
    const cluster = await LocalCluster.start({ workers: 2, threadsPerWorker: 1, dashboard: false, log: false });
    try {
      const client = await Client.connect(cluster.address);
      try {
        for (let i = 0; i < 30; i++) {
          const values = Array.from({ length: 6 }, (_, j) => i * 100 + j);
          const futures = client.scatter(values);
          const sum = client.submitWith({ pure: false }, (...xs: number[]) => xs.reduce((a, b) => a + b, 0), ...futures);
          assert.equal(await sum.result(), values.reduce((a, b) => a + b, 0), `round ${i}`);
          for (const f of futures) f.release();
        }
      } finally {
        await client.close();
      }
    } finally {
      await cluster.close();
    }
  });

  void test('a share on a frozen worker that is then killed goes to another worker', { timeout: 120_000 }, async () => {
    const cluster = await LocalCluster.start({ workers: 2, threadsPerWorker: 1, dashboard: false, log: false });
    const [frozen] = cluster.processes;
    let thawed = false;
    try {
      const client = await Client.connect(cluster.address);
      try {
        process.kill(frozen!.pid, 'SIGSTOP');
        const values = Array.from({ length: 8 }, (_, j) => `value-${j}`);
        const futures = client.scatter(values);
        const settled = Promise.allSettled(futures.map((f) => f.result()));
        // The frozen worker's share cannot be acknowledged; nothing resolves meanwhile.
        const early = await Promise.race([settled.then(() => 'settled'), sleep(1000).then(() => 'pending')]);
        assert.equal(early, 'pending', 'scatter does not answer before every share is held');
        process.kill(frozen!.pid, 'SIGKILL');
        thawed = true;
        let timer: NodeJS.Timeout | undefined;
        const outcome = await Promise.race([settled, new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), 60_000)))]);
        clearTimeout(timer);
        assert.ok(outcome !== null, 'the scattered futures settle after the frozen worker is killed');
        // Placed again on the surviving worker: every value is there.
        assert.deepEqual(
          outcome.map((o) => (o.status === 'fulfilled' ? o.value : `error: ${String(o.reason)}`)),
          values,
        );
        const joined = client.submit((...xs: string[]) => xs.join(','), ...futures);
        assert.equal(await joined.result(), values.join(','));
      } finally {
        await client.close();
      }
    } finally {
      if (!thawed) process.kill(frozen!.pid, 'SIGCONT');
      await cluster.close();
    }
  });

  void test('the only worker frozen, then killed: the scattered futures err, none stays pending', { timeout: 120_000 }, async () => {
    const cluster = await LocalCluster.start({ workers: 1, threadsPerWorker: 1, dashboard: false, log: false });
    const [frozen] = cluster.processes;
    let killed = false;
    try {
      const client = await Client.connect(cluster.address);
      try {
        process.kill(frozen!.pid, 'SIGSTOP');
        const futures = client.scatter([1, 2, 3]);
        const settled = Promise.allSettled(futures.map((f) => f.result()));
        await sleep(500);
        process.kill(frozen!.pid, 'SIGKILL');
        killed = true;
        let timer: NodeJS.Timeout | undefined;
        const outcome = await Promise.race([settled, new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), 60_000)))]);
        clearTimeout(timer);
        assert.ok(outcome !== null, 'the futures settle once the worker is gone');
        for (const o of outcome) {
          assert.equal(o.status, 'rejected');
          assert.ok(o.reason instanceof ScatterError, String(o.reason));
        }
      } finally {
        await client.close();
      }
    } finally {
      if (!killed) process.kill(frozen!.pid, 'SIGCONT');
      await cluster.close();
    }
  });
});
