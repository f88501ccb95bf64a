/**
 * The threads executor is work-conserving: while a thread is idle, no ready task waits
 * behind another thread's batch. The tasks here block on shared memory until other tasks
 * have run, so a computation that left work queued behind a busy thread could not finish;
 * every wait is bounded and reports that instead of hanging. No timing thresholds.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { get, ref, task, type Graph } from '../../src/index.js';
import { mulberry32 } from '../helpers/random.js';

const OPTIONS = { scheduler: 'threads', workers: 2 } as const;
// How long a task waits for the others before it gives up and says so.
const WAIT_MS = 20_000;

// Control words shared by the tasks of one computation.
const STARTED = 0;
const FINISHED = 1;
const THREADS = 2;

/**
 * Starts, then waits (bounded) until `others` tasks have started too; returns which thread
 * ran it (numbered per computation through `tag`), or 'alone' if no other task started.
 */
const meet = (ctl: Int32Array, tag: string, others: number): number | 'alone' => {
  const g = globalThis as unknown as Record<string, number | undefined>;
  const thread = (g[tag] ??= Atomics.add(ctl, 2, 1));
  Atomics.add(ctl, 0, 1);
  Atomics.notify(ctl, 0);
  const deadline = Date.now() + 20_000;
  for (let n = Atomics.load(ctl, 0); n < others + 1; n = Atomics.load(ctl, 0)) {
    if (Date.now() > deadline) return 'alone';
    Atomics.wait(ctl, 0, n, 100);
  }
  return thread;
};

/**
 * The first task to start waits (bounded) until all the others have finished; the others
 * just finish. Returns [i, the thread's number] or 'stuck' when the others never finished,
 * i.e. some were held behind the waiting task.
 */
const firstWaits = (ctl: Int32Array, tag: string, i: number, total: number): [number, number] | 'stuck' => {
  const g = globalThis as unknown as Record<string, number | undefined>;
  const thread = (g[tag] ??= Atomics.add(ctl, 2, 1));
  if (Atomics.add(ctl, 0, 1) === 0) {
    const deadline = Date.now() + 20_000;
    for (let n = Atomics.load(ctl, 1); n < total - 1; n = Atomics.load(ctl, 1)) {
      if (Date.now() > deadline) return 'stuck';
      Atomics.wait(ctl, 1, n, 100);
    }
  } else {
    Atomics.add(ctl, 1, 1);
    Atomics.notify(ctl, 1);
  }
  return [i, thread];
};

/** Waits (bounded) until `total - 1` tasks have finished; a leaf of the tree below. */
const leafWaits = (ctl: Int32Array, i: number, total: number): number | 'stuck' => {
  const deadline = Date.now() + 20_000;
  for (let n = Atomics.load(ctl, 1); n < total - 1; n = Atomics.load(ctl, 1)) {
    if (Date.now() > deadline) return 'stuck';
    Atomics.wait(ctl, 1, n, 100);
  }
  return i + 1;
};
const leaf = (ctl: Int32Array, i: number): number => {
  Atomics.add(ctl, 1, 1);
  Atomics.notify(ctl, 1);
  return i + 1;
};
const add = (a: unknown, b: unknown): unknown => (typeof a === 'number' && typeof b === 'number' ? a + b : 'stuck');

/**
 * A node of the random graphs: busy for about `ms` (uneven lengths make threads take work
 * from each other), then a hash of its inputs; some return a typed array, whose buffer the
 * executor may move to the thread of its last consumer.
 */
const busy = (id: number, ms: number, asArray: boolean, ...inputs: unknown[]): unknown => {
  const until = performance.now() + ms;
  let spins = 0;
  while (performance.now() < until) spins++;
  let h = 17 + id + (spins > -1 ? 0 : 1);
  for (const x of inputs) {
    const xs = x instanceof Float64Array ? Array.from(x) : [x as number];
    for (const v of xs) h = (h * 31 + v) % 1000003;
  }
  return asArray ? Float64Array.of(h, h % 7, id) : h;
};

function randomGraph(seed: number): { graph: Graph; keys: string[] } {
  const rnd = mulberry32(seed);
  const int = (n: number): number => Math.floor(rnd() * n);
  const graph: Record<string, unknown> = {};
  const n = 50 + int(350);
  for (let i = 0; i < n; i++) {
    const deps = new Set<number>();
    for (let d = i === 0 ? 0 : int(4); d > 0; d--) deps.add(int(i));
    const ms = rnd() < 0.1 ? 2 + int(8) : rnd() < 0.5 ? 0 : rnd();
    graph[`n${i}`] = task(busy, i, ms, rnd() < 0.2, ...[...deps].map((j) => ref(`n${j}`)));
  }
  const keys = Object.keys(graph).filter(() => rnd() < 0.3);
  return { graph, keys: keys.length > 0 ? keys : ['n0'] };
}

let tags = 0;
const freshTag = (): string => `__tesseraWorkConservingTest${tags++}`;
const control = (): Int32Array => new Int32Array(new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT));

void describe('threads: no ready task waits behind a busy thread while another is idle', { timeout: 4 * WAIT_MS }, () => {
  void test('eight independent tasks start on both threads at once', async () => {
    const ctl = control();
    const tag = freshTag();
    const graph: Record<string, unknown> = {};
    for (let i = 0; i < 8; i++) graph[`h${i}`] = task(meet, ctl, tag, 1);
    const threads = (await get(graph, Object.keys(graph), OPTIONS)) as (number | 'alone')[];
    assert.ok(!threads.includes('alone'), `a task started while no other could: ${JSON.stringify(threads)}`);
    assert.equal(new Set(threads).size, 2, `both threads ran tasks: ${JSON.stringify(threads)}`);
    assert.equal(Atomics.load(ctl, STARTED), 8);
  });

  void test('a task that waits for all the others does not hold back the rest of its batch', async () => {
    const ctl = control();
    const tag = freshTag();
    const graph: Record<string, unknown> = {};
    for (let i = 0; i < 8; i++) graph[`w${i}`] = task(firstWaits, ctl, tag, i, 8);
    const results = (await get(graph, Object.keys(graph), OPTIONS)) as ([number, number] | 'stuck')[];
    assert.ok(!results.includes('stuck'), `tasks were held behind the waiting one: ${JSON.stringify(results)}`);
    assert.deepStrictEqual(results.map((r) => (r === 'stuck' ? -1 : r[0])), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.equal(Atomics.load(ctl, FINISHED), 7);
    assert.equal(Atomics.load(ctl, THREADS), 2);
  });

  void test('once tasks are known to be tiny, a slow one in a large batch still lets the others go', async () => {
    // Thousands of tiny tasks make the batches large; one task past the first thousand
    // waits for all the others, so the tail of its batch must move to the other thread.
    const ctl = control();
    const n = 4000;
    const slow = 2500;
    const graph: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) graph[`t${String(i).padStart(4, '0')}`] = i === slow ? task(leafWaits, ctl, i, n) : task(leaf, ctl, i);
    const keys = Object.keys(graph);
    const results = (await get(graph, keys, OPTIONS)) as (number | 'stuck')[];
    assert.notEqual(results[slow], 'stuck', 'tasks were held behind the waiting one');
    assert.deepStrictEqual(results, keys.map((_, i) => i + 1));
    assert.equal(Atomics.load(ctl, FINISHED), n - 1);
  });

  void test('a tail with inputs from the head of its batch waits for them, and values stay right', async () => {
    // A binary tree of sums over 64 leaves; leaf 0 waits until every other leaf has run.
    // Its batch holds its siblings and their sums: the leaves move to the idle thread,
    // the sums that need leaf 0 wait for it.
    for (const fuse of [true, false]) {
      const ctl = control();
      const n = 64;
      const graph: Record<string, unknown> = { l0: task(leafWaits, ctl, 0, n) };
      for (let i = 1; i < n; i++) graph[`l${i}`] = task(leaf, ctl, i);
      let level = Array.from({ length: n }, (_, i) => `l${i}`);
      for (let depth = 0; level.length > 1; depth++) {
        const next: string[] = [];
        for (let i = 0; i < level.length; i += 2) {
          const key = `s${depth}-${i / 2}`;
          graph[key] = task(add, ref(level[i]!), ref(level[i + 1]!));
          next.push(key);
        }
        level = next;
      }
      const total = await get(graph, level[0]!, { ...OPTIONS, fuse });
      assert.equal(total, (n * (n + 1)) / 2, `fuse: ${fuse}`);
      assert.equal(Atomics.load(ctl, FINISHED), n - 1);
    }
  });

  void test('random graphs with tasks of uneven length agree with sync', async () => {
    for (let seed = 1; seed <= 20; seed++) {
      const { graph, keys } = randomGraph(seed);
      const expected = await get(graph, keys, { scheduler: 'sync' });
      for (const fuse of [true, false]) {
        assert.deepStrictEqual(await get(graph, keys, { ...OPTIONS, fuse }), expected, `seed ${seed}, fuse ${fuse}`);
      }
    }
  });
});
