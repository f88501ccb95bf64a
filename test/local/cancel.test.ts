/** Cancellation through an AbortSignal, and progress reports. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CancelledError, TesseraError, builtins, compile, get, ref, task, type Progress } from '../../src/index.js';

const SCHEDULERS = [{ scheduler: 'sync' }, { scheduler: 'threads', workers: 2 }] as const;

/** Records its start in a shared counter, then sleeps 50 ms. */
const sleepy = async (started: Int32Array, i: number): Promise<number> => {
  Atomics.add(started, 0, 1);
  await new Promise((resolve) => setTimeout(resolve, 50));
  return i;
};
const sleepyAfter = async (started: Int32Array, prev: number): Promise<number> => {
  Atomics.add(started, 0, 1);
  await new Promise((resolve) => setTimeout(resolve, 50));
  return prev + 1;
};
const spin = (started: Int32Array): number => {
  Atomics.add(started, 0, 1);
  let n = 0;
  while (true) n = (n + 1) % 1000;
};

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function wide(started: Int32Array, n: number): Record<string, unknown> {
  const graph: Record<string, unknown> = {};
  const refs = [];
  for (let i = 0; i < n; i++) {
    graph[`s${i}`] = task(sleepy, started, i);
    refs.push(ref(`s${i}`));
  }
  graph.all = task(builtins.list, ...refs);
  return graph;
}

function chain(started: Int32Array, n: number): { graph: Record<string, unknown>; last: string } {
  const graph: Record<string, unknown> = { c0: 0 };
  for (let i = 1; i <= n; i++) graph[`c${i}`] = task(sleepyAfter, started, ref(`c${i - 1}`));
  return { graph, last: `c${n}` };
}

async function expectCancelled(promise: Promise<unknown>, reason: unknown): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof CancelledError, String(e));
    assert.ok(e instanceof TesseraError);
    assert.equal(e.code, 'ERR_CANCELLED');
    assert.equal(e.cause, reason);
    return true;
  });
}

void describe('cancellation', () => {
  for (const options of SCHEDULERS) {
    void test(`abort mid-graph rejects with CancelledError and stops starting tasks (${options.scheduler})`, async () => {
      const started = new Int32Array(new SharedArrayBuffer(4));
      const controller = new AbortController();
      const reason = new Error('user gave up');
      const running = get(wide(started, 30), 'all', { ...options, signal: controller.signal });
      // Threads may take a while to start: abort 100 ms after the first task did.
      while (Atomics.load(started, 0) === 0) await pause(5);
      await pause(100);
      controller.abort(reason);
      await expectCancelled(running, reason);
      const atCancel = Atomics.load(started, 0);
      assert.ok(atCancel > 0, 'some tasks ran before the abort');
      assert.ok(atCancel < 30, `all ${atCancel} tasks started despite the abort`);
      await pause(200);
      assert.equal(Atomics.load(started, 0), atCancel, 'no task started after the cancellation');
    });

    void test(`abort inside a fused chain (${options.scheduler})`, async () => {
      const started = new Int32Array(new SharedArrayBuffer(4));
      const { graph, last } = chain(started, 30);
      assert.equal(compile(graph, [last]).size, 2, 'the chain is fused');
      const controller = new AbortController();
      const running = get(graph, last, { ...options, signal: controller.signal });
      while (Atomics.load(started, 0) === 0) await pause(5);
      await pause(100);
      controller.abort('stop');
      await expectCancelled(running, 'stop');
      const atCancel = Atomics.load(started, 0);
      await pause(200);
      assert.equal(Atomics.load(started, 0), atCancel, 'no step started after the cancellation');
      assert.ok(atCancel < 30, `all ${atCancel} steps ran despite the abort`);
    });

    void test(`an already-aborted signal runs nothing (${options.scheduler})`, async () => {
      const started = new Int32Array(new SharedArrayBuffer(4));
      const reason = new Error('before start');
      await expectCancelled(get(wide(started, 3), 'all', { ...options, signal: AbortSignal.abort(reason) }), reason);
      await pause(100);
      assert.equal(Atomics.load(started, 0), 0);
    });

    void test(`a signal that never fires changes nothing (${options.scheduler})`, async () => {
      const started = new Int32Array(new SharedArrayBuffer(4));
      const controller = new AbortController();
      assert.deepStrictEqual(await get(wide(started, 4), 'all', { ...options, signal: controller.signal }), [0, 1, 2, 3]);
      controller.abort();
    });
  }

  void test('a task stuck in an infinite loop is cancelled under threads, and the pool still works', { timeout: 60_000 }, async () => {
    const started = new Int32Array(new SharedArrayBuffer(4));
    const graph = { loop: task(spin, started), fine: task(builtins.add, 1, 2), both: task(builtins.list, ref('loop'), ref('fine')) };
    const controller = new AbortController();
    const running = get(graph, 'both', { workers: 2, signal: controller.signal });
    // Abort once the loop is surely spinning.
    while (Atomics.load(started, 0) === 0) await pause(10);
    await pause(50);
    controller.abort('enough');
    await expectCancelled(running, 'enough');
    // The same pool computes the next graph.
    const next = { a: task(builtins.add, 20, 1), b: task(builtins.mul, ref('a'), 2), c: task(builtins.sum, [1, 2, 3]) };
    assert.deepStrictEqual(await get(next, ['b', 'c'], { workers: 2 }), [42, 6]);
    const many: Record<string, unknown> = {};
    for (let i = 0; i < 100; i++) many[`k${i}`] = task(builtins.add, i, 1);
    const keys = Object.keys(many);
    assert.deepStrictEqual(await get(many, keys, { workers: 2 }), keys.map((_, i) => i + 1));
  });

  void test('two infinite loops on both threads are cancelled', { timeout: 60_000 }, async () => {
    const started = new Int32Array(new SharedArrayBuffer(4));
    const graph = { l1: task(spin, started), l2: task(spin, started), both: task(builtins.list, ref('l1'), ref('l2')) };
    const controller = new AbortController();
    const running = get(graph, 'both', { workers: 2, fuse: false, signal: controller.signal });
    while (Atomics.load(started, 0) === 0) await pause(10);
    await pause(50);
    controller.abort('enough');
    await expectCancelled(running, 'enough');
    assert.equal(await get({ x: task(builtins.add, 1, 1) }, 'x', { workers: 2 }), 2);
  });
});

void describe('progress', () => {
  for (const options of SCHEDULERS) {
    void test(`onProgress reports done/total, ending at total (${options.scheduler})`, async () => {
      const graph: Record<string, unknown> = { base: 1 };
      const leaves: string[] = [];
      for (let i = 0; i < 300; i++) {
        graph[`t${i}`] = task(builtins.add, ref(i === 0 ? 'base' : `t${i - 1}`), i % 2 === 0 ? ref('base') : 1);
        leaves.push(`t${i}`);
      }
      graph.total = task(builtins.sum, leaves.map((k) => ref(k)) as unknown as number[]);
      const reports: Progress[] = [];
      const expectedTotal = compile(graph, ['total']).size;
      const value = await get(graph, 'total', { ...options, onProgress: (p) => reports.push(p) });
      assert.equal(typeof value, 'number');
      assert.ok(reports.length > 0);
      const last = reports.at(-1)!;
      assert.deepStrictEqual({ ...last }, { done: expectedTotal, total: expectedTotal });
      for (let i = 0; i < reports.length; i++) {
        const r = reports[i]!;
        assert.equal(r.total, expectedTotal);
        assert.ok(r.done >= 0 && r.done <= r.total);
        if (i > 0) assert.ok(r.done >= reports[i - 1]!.done, 'done never goes back');
      }
    });
  }
});
