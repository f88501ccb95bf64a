// Task durations as the scheduler hears them: each task's own time in the thread that ran
// it, not a share of its batch's. Placement, stealing and adaptive scaling learn from them.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, type FinishedTask, Scheduler, Worker } from '../../src/index.js';

void describe('task durations', () => {
  let scheduler: Scheduler;
  let worker: Worker;
  let client: Client;
  const finished: FinishedTask[] = [];

  before(async () => {
    // No root-task queuing: every task reaches the worker at once, so they share batches.
    scheduler = await Scheduler.start({ port: 0, dashboard: false, state: { saturation: Infinity, workStealing: false }, log: () => undefined });
    scheduler.addPlugin({ taskFinished: (t) => finished.push(t) });
    worker = await Worker.start({ scheduler: scheduler.address, nthreads: 1, name: 'timed', metricsPort: false, log: () => undefined });
    client = await Client.connect(scheduler.address);
  });

  after(async () => {
    await (client as Client | undefined)?.close();
    await (worker as Worker | undefined)?.close();
    await (scheduler as Scheduler | undefined)?.close();
  });

  void test('a slow task among fast ones in one batch reports its own duration', async () => {
    const slowMs = 300;
    // Busy for 300 ms when x is 0, done at once otherwise: one function, so the tasks share batches.
    const work = (x: number): number => {
      if (x === 0) {
        const end = performance.now() + 300;
        while (performance.now() < end);
      }
      return x;
    };
    const n = 8;
    const futures = client.map(work, Array.from({ length: n }, (_, i) => i));
    assert.deepEqual(await client.gather(futures), Array.from({ length: n }, (_, i) => i));
    assert.equal(finished.length, n);
    const slowKey = futures[0]!.key;
    const slow = finished.find((t) => t.key === slowKey)!;
    const fast = finished.filter((t) => t.key !== slowKey);
    const duration = (t: FinishedTask): number => t.stop - t.start;
    assert.ok(duration(slow) >= slowMs, `the slow task reported ${duration(slow)} ms, less than the ${slowMs} ms it ran`);
    for (const t of fast) {
      assert.ok(duration(t) < slowMs / 2, `a fast task reported ${duration(t)} ms, a share of its batch's time`);
      assert.ok(duration(t) >= 0);
    }
    // Each task's interval lies within the run and they do not overlap on the one thread.
    const sorted = [...finished].sort((a, b) => a.start - b.start);
    for (let i = 1; i < sorted.length; i++) assert.ok(sorted[i]!.start >= sorted[i - 1]!.stop - 1e-6, 'intervals on one thread overlap');
  });
});
