// A long-lived scheduler sent fresh functions and fresh key prefixes holds only what its
// current work needs: shipped function sources and per-prefix records go when unused.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Client, LocalCluster } from '../../src/index.js';
import { until } from '../helpers/wait.js';

void describe('scheduler memory over many computations', () => {
  void test('function sources and prefix records of finished work are let go', { timeout: 120_000 }, async () => {
    const cluster = await LocalCluster.start({ workers: 1, threadsPerWorker: 1, dashboard: false, log: false, scheduler: { transitionLogLength: 1000 } });
    try {
      const client = await Client.connect(cluster.address);
      try {
        const server = cluster.scheduler.server;
        const runs = 300;
        for (let run = 0; run < runs; run++) {
          // A function of its own each run, as code generated per job would be.
          // eslint-disable-next-line @typescript-eslint/no-implied-eval
          const fresh = new Function('x', `return x + ${run};`) as (x: number) => number;
          const f = client.submitWith({ key: `leaf-${run}-B-0` }, fresh, 1);
          assert.equal(await f.result(), 1 + run);
          f.release();
        }
        await until(() => cluster.scheduler.taskCount === 0, 'every task is forgotten');
        // Sweeps come on ticks once the table has doubled: bounded, not growing with runs.
        await until(() => server.functionCount < 200, `function sources are let go (${server.functionCount} held)`, 10_000);
        assert.equal(server.prefixCount, 0, 'no per-prefix record outlives its tasks');
        // Work still runs, functions seen before included.
        assert.equal(await client.submit((x: number) => x * 2, 21).result(), 42);
      } finally {
        await client.close();
      }
    } finally {
      await cluster.close();
    }
  });
});
