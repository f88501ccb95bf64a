// The example, end to end: a LocalCluster of real worker processes and a Client.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import {
  CancelledError,
  Client,
  Future,
  LocalCluster,
  TaskError,
  delayed,
  ref,
  task,
  progress,
} from '../../src/index.js';
import { statementCount } from '../fixtures/ops.js';
import { isAlive, until } from '../helpers/wait.js';

const inc = (x: number): number => x + 1;
const add = (a: number, b: number): number => a + b;
const same = (x: number): number => x;

void describe('LocalCluster and Client', () => {
  let cluster: LocalCluster;
  let client: Client;

  before(async () => {
    cluster = await LocalCluster.start({ workers: 2, threadsPerWorker: 1 });
    client = await Client.connect(cluster.address);
  });

  after(async () => {
    // before() may have failed half-way.
    await (client as Client | undefined)?.close();
    await (cluster as LocalCluster | undefined)?.close();
  });

  void test('starts real worker processes', () => {
    assert.equal(cluster.processes.length, 2);
    for (const { pid } of cluster.processes) {
      assert.notEqual(pid, process.pid);
      assert.ok(isAlive(pid));
    }
    assert.equal(cluster.scheduler.workers.length, 2);
  });

  void test('submit → Future → result', async () => {
    const f = client.submit((x: number) => x + 1, 10);
    assert.ok(f instanceof Future);
    assert.equal(await f.result(), 11);
    assert.equal(f.status, 'finished');
  });

  void test('map and gather, in order', async () => {
    const fs = client.map((x: number) => x * 2, [1, 2, 3]);
    assert.deepStrictEqual(await client.gather(fs), [2, 4, 6]);
    const many = client.map(inc, Array.from({ length: 2000 }, (_, i) => i));
    const values = await client.gather(many);
    assert.equal(values.length, 2000);
    assert.ok(values.every((v, i) => v === i + 1));
  });

  void test('gather waits for every result and fails with the first error among them', async () => {
    const failAt = (x: number): number => {
      if (x === 150) throw new Error(`no ${x}`);
      return x;
    };
    const futures = client.map(failAt, Array.from({ length: 300 }, (_, i) => i));
    await assert.rejects(client.gather(futures), (error: unknown) => error instanceof TaskError && /no 150/.test(error.message));
    // Not pure: keys of their own, which no earlier future holds too.
    const good = client.mapWith({ pure: false }, inc, [1, 2, 3]);
    good[1]!.release();
    await assert.rejects(client.gather(good), CancelledError);
    assert.deepStrictEqual(await client.gather([good[0]!, good[2]!, good[0]!]), [2, 4, 2]);
  });

  void test('graphs larger than one message travel in parts and compute whole', async () => {
    // A sum tree of 2 × 20,000 tasks: each level's dependencies lie in earlier parts.
    const leaves = 20_000;
    const graph: Record<string, unknown> = {};
    let level = Array.from({ length: leaves }, (_, i) => {
      graph[`leaf-${i}`] = task(inc, i);
      return `leaf-${i}`;
    });
    for (let depth = 0; level.length > 1; depth++) {
      const next: string[] = [];
      for (let i = 0; i < level.length; i += 2) {
        const key = `sum-${depth}-${i / 2}`;
        graph[key] = i + 1 < level.length ? task(add, ref(level[i]!), ref(level[i + 1]!)) : task(same, ref(level[i]!));
        next.push(key);
      }
      level = next;
    }
    assert.deepStrictEqual(await client.get(graph, [level[0]!]), [(leaves * (leaves + 1)) / 2]);
    const many = client.map(inc, Array.from({ length: 20_000 }, (_, i) => i));
    const values = await client.gather(many);
    assert.ok(values.length === 20_000 && values.every((v, i) => v === i + 1));
    for (const f of many) f.release();
  });

  void test('futures as arguments chain on the cluster', async () => {
    const a = client.submit(inc, 1);
    const b = client.submit(add, a, 10);
    const c = client.submit((xs: number[]) => xs.reduce((s, x) => s + x, 0), [a, b, 100] as unknown as number[]);
    assert.equal(await c.result(), 2 + 12 + 100);
  });

  void test('get: raw graphs, literals and fused chains', async () => {
    const graph = {
      a: task(inc, 1),
      b: task(add, ref('a'), 10),
      c: 7,
      d: task(inc, ref('b')),
      e: task(inc, ref('d')),
      f: [ref('c'), ref('e')],
    };
    assert.deepStrictEqual(await client.get(graph, ['a', 'b']), [2, 12]);
    assert.deepStrictEqual(await client.get(graph, ['e', 'c', 'f']), [14, 7, [7, 14]]);
  });

  void test('get: a new graph reusing the key names of the last one gets its own results', async () => {
    assert.deepStrictEqual(await client.get({ a: task(inc, 1), b: task(inc, ref('a')) }, ['b']), [3]);
    assert.deepStrictEqual(await client.get({ a: task(inc, 10), b: task(inc, ref('a')) }, ['b']), [12]);
  });

  void test('delayed values compute on the cluster, and persist keeps them there', async () => {
    const dinc = delayed(inc);
    const dadd = delayed(add);
    const total = dadd(dinc(1), dinc(2));
    assert.equal(await total.compute({ client }), 5);
    const p = client.persist(total);
    assert.ok(p instanceof Future);
    assert.equal(p.key, total.key);
    assert.equal(await p.result(), 5);
    // The persisted result feeds later work without being recomputed.
    assert.equal(await client.submit(inc, p).result(), 6);
    p.release();
  });

  void test('asCompleted yields every future once', async () => {
    const fs = client.map(inc, [1, 2, 3, 4, 5]);
    const seen: string[] = [];
    for await (const done of client.asCompleted(fs)) {
      assert.equal(done.status, 'finished');
      seen.push(done.key);
    }
    assert.deepStrictEqual(seen.sort(), fs.map((f) => f.key).sort());
  });

  void test('a throwing task reaches the caller as TaskError with key and remote stack', async () => {
    const bad = client.submit(function explode(x: number): number {
      if (x > 0) throw new RangeError('too big');
      return x;
    }, 1);
    await assert.rejects(bad.result(), (error: unknown) => {
      assert.ok(error instanceof TaskError);
      assert.equal(error.key, bad.key);
      assert.equal(error.remoteName, 'RangeError');
      assert.match(error.remoteStack, /explode/);
      return true;
    });
    assert.equal(bad.status, 'error');
    // Dependents fail with it; the cluster goes on serving.
    const after = client.submit(inc, bad);
    await assert.rejects(after.result(), TaskError);
    assert.equal(await client.submit(inc, 1).result(), 2);
  });

  void test('progress draws a bar until every future is done', async () => {
    const fs = client.map(inc, [1, 2, 3]);
    const bad = client.submit(() => {
      throw new Error('nope');
    });
    let text = '';
    const stream = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        text += chunk.toString();
        callback();
      },
    });
    await client.progress([...fs, bad], { stream, label: 'test' });
    assert.match(text, /4\/4/);
    assert.equal(bad.status, 'error');
  });

  void test('progress(futures), the free function, follows the futures of their client', async () => {
    let text = '';
    const stream = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        text += chunk.toString();
        callback();
      },
    });
    await progress(client.map(inc, [10, 20]), { stream, label: 'free' });
    assert.match(text, /2\/2/);
    await assert.rejects(progress([1] as never), /takes a Future or an array of Futures/);
  });

  void test('retries: a task that fails once succeeds on its second try', async () => {
    const marker = join(mkdtempSync(join(tmpdir(), 'tessera-retry-')), 'tried');
    const flaky = (path: string): string => {
      const fs = process.getBuiltinModule('node:fs');
      if (!fs.existsSync(path)) {
        fs.writeFileSync(path, 'once');
        throw new Error('first try fails');
      }
      return fs.readFileSync(path, 'utf8');
    };
    assert.equal(await client.submitWith({ retries: 1 }, flaky, marker).result(), 'once');
    rmSync(marker);
    // pure: false, or the same call would share the first one's (successful) result.
    await assert.rejects(client.submitWith({ pure: false }, flaky, marker).result(), TaskError);
  });

  void test('cancel stops a future; result() rejects with CancelledError', async () => {
    const slow = client.submit((ms: number) => new Promise<number>((resolve) => setTimeout(() => resolve(ms), ms)), 5000);
    await slow.cancel();
    await assert.rejects(slow.result(), CancelledError);
    assert.equal(slow.status, 'cancelled');
    assert.equal(await client.submit(inc, 41).result(), 42);
  });

  void test('scatter puts data on workers; tasks use it', async () => {
    const [data] = client.scatter([new Float64Array([1, 2, 3])]);
    assert.ok(data !== undefined);
    const sum = client.submit((xs: Float64Array) => xs.reduce((s, x) => s + x, 0), data);
    assert.equal(await sum.result(), 6);
    assert.deepStrictEqual(await data.result(), new Float64Array([1, 2, 3]));
  });

  void test('a task that writes into a large input changes its own copy, not the value the worker holds', async () => {
    const [worker] = cluster.processes;
    assert.ok(worker !== undefined);
    const on = { workers: [worker.name] };
    const data = client.submitWith(on, (n: number) => new Float64Array(n).fill(1), 2 ** 18);
    const mutate = (xs: Float64Array): number => {
      xs.fill(0);
      return xs[0]!;
    };
    const written = client.submitWith(on, mutate, data);
    assert.equal(await written.result(), 0);
    const sum = client.submitWith(on, (xs: Float64Array) => xs.reduce((s, x) => s + x, 0), data);
    assert.equal(await sum.result(), 2 ** 18);
    for (const f of [data, written, sum]) f.release();
  });

  void test('inputs of one size, one after another, each reach their task whole: a reused copy holds the new bytes', async () => {
    const [worker] = cluster.processes;
    assert.ok(worker !== undefined);
    const on = { workers: [worker.name] };
    const n = 2 ** 18;
    const filled = (x: number, size: number): Float64Array => new Float64Array(size).fill(x);
    const total = (xs: Float64Array): number => xs.reduce((s, x) => s + x, 0);
    const same = (xs: Float64Array): Float64Array => xs;
    const arrays = [1, 2, 3].map((x) => client.submitWith(on, filled, x, n));
    for (let round = 0; round < 2; round++) {
      for (const [i, xs] of arrays.entries()) {
        const sum = client.submitWith({ ...on, pure: false }, total, xs);
        assert.equal(await sum.result(), (i + 1) * n);
        sum.release();
      }
    }
    const back = client.submitWith(on, same, arrays[1]!);
    const value = await back.result();
    assert.equal(value.length, n, 'a task returning its input returns it whole');
    assert.equal(total(value), 2 * n);
    const again = client.submitWith({ ...on, pure: false }, total, arrays[1]!);
    assert.equal(await again.result(), 2 * n);
    for (const f of [...arrays, back, again]) f.release();
  });

  void test('released futures are forgotten by the scheduler', async () => {
    // Its own key: a pure inc(99) may still be held by futures of an earlier test.
    const f = client.submitWith({ pure: false }, inc, 99);
    assert.equal(await f.result(), 100);
    assert.notEqual(cluster.scheduler.taskInfo(f.key), undefined);
    f.release();
    await until(() => cluster.scheduler.taskInfo(f.key) === undefined, 'the key is forgotten');
  });

  void test('module functions (npm imports, module state) run on workers', async () => {
    assert.equal(await client.submit(statementCount, 'let a = 1; a++; console.log(a);').result(), 3);
  });
});

void describe('LocalCluster lifecycle', () => {
  void test('scale up and down; close leaves no process behind', async () => {
    const cluster = await LocalCluster.start({ workers: 1, threadsPerWorker: 1 });
    try {
      const client = await Client.connect(cluster.address);
      try {
        await cluster.scale(3);
        assert.equal(cluster.processes.length, 3);
        assert.equal(cluster.scheduler.workers.length, 3);
        const fs = client.map(inc, Array.from({ length: 50 }, (_, i) => i));
        await cluster.scale(1);
        assert.equal(cluster.processes.length, 1);
        // Results held by the retired workers moved before they left.
        assert.deepStrictEqual(await client.gather(fs), Array.from({ length: 50 }, (_, i) => i + 1));
      } finally {
        await client.close();
      }
    } finally {
      const pids = cluster.processes.map((p) => p.pid);
      await cluster.close();
      await cluster.close();
      assert.equal(cluster.state, 'closed');
      assert.deepStrictEqual(cluster.processes, []);
      for (const pid of pids) assert.equal(isAlive(pid), false, `worker process ${pid} is still alive`);
    }
  });

  void test('with a token, clients without it are refused', async () => {
    const cluster = await LocalCluster.start({ workers: 1, token: 'sesame' });
    try {
      await assert.rejects(Client.connect(cluster.address, { token: 'wrong' }));
      const client = await Client.connect(cluster.address, { token: 'sesame' });
      assert.equal(await client.submit(inc, 1).result(), 2);
      await client.close();
    } finally {
      await cluster.close();
    }
  });
});

void describe('worker memory', () => {
  void test('results beyond the memory target spill to disk and come back intact', async () => {
    // 20 MB limit, 12 MB target; 30 results of 1 MiB each. Pausing is off: the process
    // itself is larger than 80% of so small a limit.
    const cluster = await LocalCluster.start({ workers: 1, memoryLimit: '20MB', memoryPause: false });
    try {
      const client = await Client.connect(cluster.address);
      try {
        const arrays = client.map((i: number) => new Float64Array(131_072).fill(i), Array.from({ length: 30 }, (_, i) => i));
        await client.wait(arrays);
        await until(() => (cluster.scheduler.snapshot().workers[0]?.memory.spilled ?? 0) > 0, 'a heartbeat reports spilled bytes');
        // Results still being written count as managed until their write ends: once the
        // writes under way have ended, what stays in memory is near the target.
        const managed = (): number => cluster.scheduler.snapshot().workers[0]?.memory.managed ?? Number.NaN;
        await until(() => managed() <= 13e6, () => `managed ${managed()} bytes should come down near the 12 MB target`, 10_000);
        // Spilled results feed tasks and travel to the client.
        const sums = await client.gather(client.map((xs: Float64Array) => xs.reduce((s, x) => s + x, 0), arrays));
        assert.deepStrictEqual(sums, Array.from({ length: 30 }, (_, i) => i * 131_072));
        const values = await client.gather(arrays);
        values.forEach((xs, i) => {
          assert.equal(xs.length, 131_072);
          assert.equal(xs[0], i);
          assert.equal(xs[131_071], i);
        });
      } finally {
        await client.close();
      }
    } finally {
      await cluster.close();
    }
  });
});

void describe('futures released by garbage collection', () => {
  /** A one-worker cluster, a client, and the collector, for `body`. */
  async function withCollector(body: (client: Client, cluster: LocalCluster, gc: () => void) => Promise<void>): Promise<void> {
    const { setFlagsFromString } = await import('node:v8');
    const { runInNewContext } = await import('node:vm');
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const cluster = await LocalCluster.start({ workers: 1 });
    try {
      const client = await Client.connect(cluster.address);
      try {
        await body(client, cluster, gc);
      } finally {
        await client.close();
      }
    } finally {
      await cluster.close();
    }
  }

  void test('a dropped Future lets the cluster forget its result', () =>
    withCollector(async (client, cluster, gc) => {
      const key = await (async () => {
        const dropped = client.submit(inc, 1);
        assert.equal(await dropped.result(), 2);
        return dropped.key;
      })();
      assert.notEqual(cluster.scheduler.taskInfo(key), undefined);
      await until(() => {
        gc();
        return cluster.scheduler.taskInfo(key) === undefined;
      }, 'the dropped future is collected and its key forgotten');
    }));

  void test('a Future released and then collected does not release the key again', () =>
    withCollector(async (client, cluster, gc) => {
      const kept = client.submit(inc, 41);
      await (async () => {
        // The same pure call: one key, held twice.
        const released = client.submit(inc, 41);
        assert.equal(released.key, kept.key);
        assert.equal(await released.result(), 42);
        released.release();
      })();
      // Its finalizer has every chance to run: the key must stay, held by `kept`.
      for (let i = 0; i < 5; i++) {
        gc();
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.notEqual(cluster.scheduler.taskInfo(kept.key), undefined);
      assert.equal(kept.status, 'finished');
      assert.equal(await kept.result(), 42);
    }));
});
