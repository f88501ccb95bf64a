/**
 * The executor's claims: a batch waiting behind another on a one-thread worker can be cut
 * for a steal, its thread then says it began only what it kept, and answers for those
 * alone; a batch its thread has begun keeps the task it is running. Each is said to begin
 * once, on an idle thread or following the batch ahead.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { task } from '../../src/graph/task.js';
import { wireStep } from '../../src/protocol/encode-task.js';
import { DataStore } from '../../src/worker/data-store.js';
import { Executor } from '../../src/worker/executor.js';
import type { ExecuteTask } from '../../src/worker/events.js';

const nap = (ms: number): number => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  return ms;
};

function execute(executor: Executor, key: string, ms: number): ExecuteTask {
  const t = task(nap, ms);
  executor.loadFns([t.ref]);
  return { key, spec: { node: { steps: [wireStep(t)], stepKeys: [key], out: true } }, fns: [t.ref.id], dependencies: [] };
}

void test('a batch queued behind another is cut for a steal; its thread begins, and answers for, what it kept', async () => {
  const executor = new Executor(1, new DataStore({ memoryTarget: Infinity }));
  try {
    const kept: number[][] = [[], []];
    const following: boolean[][] = [[], []];
    const first = executor.run(1, [execute(executor, 'slow', 300)], [], {}, (n, f) => (kept[0]!.push(n), following[0]!.push(f)));
    const second = executor.run(2, ['a', 'b', 'c'].map((k) => execute(executor, k, 1)), [], {}, (n, f) => (kept[1]!.push(n), following[1]!.push(f)));
    // The first is running (or about to): its only task is kept.
    assert.equal(executor.cut(1, 0), false);
    assert.equal(executor.cut(2, 1), true, 'queued behind the first: b and c can still be taken');
    assert.equal(executor.cut(2, 2), false, 'nothing left at 2 to take');
    const [a, b] = await Promise.all([first, second]);
    assert.equal(a.op, 'batch-done');
    assert.ok(b.op === 'batch-done', b.op);
    assert.deepEqual(b.values, [1], 'the thread ran a alone');
    assert.deepEqual(kept, [[1], [1]]);
    // The first began on an idle thread; the second as the first ended (said with its report).
    assert.deepEqual(following, [[false], [true]]);
  } finally {
    executor.destroy(new Error('test over'));
  }
});
