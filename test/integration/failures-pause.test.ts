// A worker whose process memory is past its pause threshold for reasons it cannot act on
// (here: a limit below the runtime's own footprint) still runs tasks: it spills what it
// holds and, with nothing left to spill, does not stay paused.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Client, Scheduler, Worker } from '../../src/index.js';
import { until } from '../helpers/wait.js';

void describe('a paused worker never wedges', () => {
  void test('memory past the pause threshold with nothing to spill: tasks still run', { timeout: 90_000 }, async () => {
    const scheduler = await Scheduler.start({ port: 0, dashboard: false, log: false });
    // 40 MB is far below what any Node process occupies: always past the threshold.
    const worker = await Worker.start({
      scheduler: scheduler.address,
      nthreads: 1,
      name: 'tight',
      memoryLimit: 40e6,
      heartbeatInterval: 50,
      metricsPort: false,
      log: () => undefined,
    });
    try {
      const client = await Client.connect(scheduler.address);
      try {
        // Past a few heartbeats: a worker that paused for good would have done so by now.
        await new Promise((resolve) => setTimeout(resolve, 300));
        const results: number[] = [];
        const held: unknown[] = [];
        for (let i = 0; i < 10; i++) {
          const f = client.submitWith({ key: `step-${i}` }, (x: number) => x * 2, i);
          held.push(f);
          let timer: NodeJS.Timeout | undefined;
          const value = await Promise.race([f.result(), new Promise<string>((resolve) => (timer = setTimeout(() => resolve('hung'), 20_000)))]);
          clearTimeout(timer);
          assert.notEqual(value, 'hung', `task ${i} never ran: the worker stayed paused`);
          results.push(value as number);
        }
        assert.deepEqual(results, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
        // What it holds goes to disk, so that it can run again.
        await until(() => worker.memory.managed === 0 && worker.memory.spilled > 0, `results are spilled (${JSON.stringify(worker.memory)})`, 10_000);
        assert.equal(held.length, 10);
      } finally {
        await client.close();
      }
    } finally {
      await worker.close();
      await scheduler.close();
    }
  });
});
