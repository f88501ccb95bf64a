// A script written the way a Dask user writes one gets a right answer or a clear error.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  CapturedVariableError,
  CancelledError,
  Client,
  Future,
  InvalidArgumentError,
  LocalCluster,
  ScatterError,
  compute,
  computeWith,
  delayed,
  get,
  scoped,
  task,
} from '../../src/index.js';

const add = (a: number, b: number): number => a + b;

/** Asserts `fn` throws (or rejects with) InvalidArgumentError whose message matches. */
async function refuses(fn: () => unknown, message: RegExp): Promise<void> {
  await assert.rejects(
    async () => {
      await fn();
    },
    (e: unknown) => e instanceof InvalidArgumentError && message.test(e.message),
  );
}

void describe('misspelled options are errors naming them', () => {
  void test('local compute and get', async () => {
    const x = delayed((v: number) => v + 1)(1);
    await refuses(() => x.compute({ schedular: 'sync' } as never), /unknown option 'schedular' \(did you mean 'scheduler'\?\)/);
    await refuses(() => computeWith([x], { wokers: 2 } as never), /'wokers'.*'workers'/);
    await refuses(() => get({ x: task((v: number) => v, 1) }, 'x', { worker: 2 } as never), /unknown option 'worker' \(did you mean 'workers'\?\)/);
    await refuses(() => delayed(add, { nmae: 'plus' } as never), /'nmae'.*'name'/);
  });

  void test('LocalCluster.start takes Dask spellings as errors that say the Tessera one', async () => {
    await refuses(() => LocalCluster.start({ n_workers: 2 } as never), /unknown option 'n_workers' \(did you mean 'workers'\?\)/);
    await refuses(() => LocalCluster.start({ threads_per_worker: 2 } as never), /'threadsPerWorker'/);
  });
});

void describe('a Dask user on a cluster', () => {
  let cluster: LocalCluster;
  let client: Client;

  before(async () => {
    cluster = await LocalCluster.start({ workers: 2, dashboard: false, log: () => undefined });
    client = await Client.connect(cluster);
  });

  after(async () => {
    await (client as Client | undefined)?.close();
    await (cluster as LocalCluster | undefined)?.close();
  });

  void test('map takes several iterables, zipped, with options last or first', async () => {
    assert.deepEqual(await client.gather(client.map(add, [1, 2], [3, 4])), [4, 6]);
    assert.deepEqual(await client.gather(client.map(add, [1, 2], [3, 4], { priority: 1 })), [4, 6]);
    assert.deepEqual(await client.gather(client.mapWith({ retries: 1 }, add, [5], [6])), [11]);
    assert.deepEqual(await client.gather(client.map((x: number) => x * 2, new Set([1, 2, 3]))), [2, 4, 6]);
    await refuses(() => client.map(add, [1, 2], [3]), /different lengths \(2 and 1\)/);
    await refuses(() => client.map(add, [1, 2], { retires: 1 } as never), /'retires'.*'retries'/);
    await refuses(() => client.map(add), /at least one iterable/);
    await refuses(() => client.map(add, 'ab' as never), /iterable of arguments/);
  });

  void test('misspelled options of the cluster, client and calls are errors', async () => {
    await refuses(() => cluster.adapt({ maximun: 4 } as never), /unknown option 'maximun' \(did you mean 'maximum'\?\)/);
    await refuses(() => Client.connect(cluster.address, { tokn: 'x' } as never), /'tokn'.*'token'/);
    await refuses(() => client.submitWith({ retires: 2 } as never, add, 1, 2), /'retires'.*'retries'/);
    const fs = client.map((x: number) => x, [1]);
    await refuses(() => client.progress(fs, { lable: 'x' } as never), /'lable'.*'label'/);
    await refuses(() => delayed(add)(1, 2).compute({ client, scheduler: 'sync' }), /scheduler applies to local runs/);
  });

  void test('await future gives the value; pure calls share a key', async () => {
    const f = client.submit(add, 20, 22);
    assert.equal(await f, 42);
    const again = client.submit(add, 20, 22);
    assert.equal(again.key, f.key);
    assert.notEqual(client.submit(add, 1, 22).key, f.key);
    const impure = client.submitWith({ pure: false }, add, 20, 22);
    assert.notEqual(impure.key, f.key);
    assert.equal(await impure, 42);
    // persist and compute give Futures at once; awaiting one gives its value.
    const p = client.compute(delayed(add)(1, 2));
    assert.ok(p instanceof Future);
    assert.equal(await p, 3);
  });

  void test('gather takes arrays, objects and nested structures of futures', async () => {
    const a = client.submit(add, 1, 1);
    const b = client.submit(add, 2, 2);
    assert.equal(await client.gather(a), 2);
    assert.deepEqual(await client.gather({ a, rest: [b, { c: a }], plain: 7 }), { a: 2, rest: [4, { c: 2 }], plain: 7 });
  });

  void test('scatter takes a single value, a list or an object; tasks right after find the data', async () => {
    const one = client.scatter(new Float64Array([1, 2, 3]));
    assert.ok(one instanceof Future);
    const sum = client.submit((xs: Float64Array) => xs.reduce((s, v) => s + v, 0), one);
    assert.equal(await sum, 6);
    const [x, y] = client.scatter([10, 20]);
    assert.equal(await client.submit(add, x!, y!), 30);
    const named = client.scatter({ left: 1, right: 2 });
    assert.deepEqual(await client.gather(named), { left: 1, right: 2 });
  });

  void test('functions ship the values they capture, when named in scope', async () => {
    const scale = 3;
    const times = (x: number): number => x * scale;
    await assert.rejects(
      async () => client.submit(times, 2),
      (e: unknown) => e instanceof CapturedVariableError && e.message.includes('scope: { scale }'),
    );
    assert.equal(await client.submitWith({ scope: { scale } }, times, 2), 6);
    assert.equal(await delayed(times, { scope: { scale } })(5).compute({ client }), 15);
    assert.equal(await delayed(scoped(times, { scale }))(7).compute(), 21);
    // The values are copied when the graph is built: later changes do not reach it.
    const table = { factor: 2 };
    const lookup = (x: number): number => x * table.factor;
    const shipped = scoped(lookup, { table });
    table.factor = 100;
    assert.equal(await client.submit(shipped, 4), 8);
    await refuses(() => scoped(times, { scale, unused: 1 }), /'unused', which times does not use/);
    await refuses(() => scoped((x: number) => x * scale, { scale: new (class Meters { v = 1; })() }), /scope\.scale cannot travel/);
  });

  void test('an argument that would lose its prototype is refused when the graph is built', async () => {
    class Point {
      constructor(readonly x: number) {}
      norm(): number {
        return Math.abs(this.x);
      }
    }
    await refuses(() => client.submit((p: { x: number }) => p.x, new Point(3)), /argument 0 .*class Point/);
    await refuses(() => delayed((p: unknown) => p)({ at: new Point(1) }), /argument 0 at \.at .*class Point/);
  });

  void test('waitForWorkers, and Client.connect from the environment', async () => {
    await client.waitForWorkers(2);
    await assert.rejects(client.waitForWorkers(5, { timeout: 200 }), /2 of 5 workers connected/);
    const saved = process.env['TESSERA_SCHEDULER_ADDRESS'];
    process.env['TESSERA_SCHEDULER_ADDRESS'] = cluster.address;
    try {
      const fromEnv = await Client.connect();
      assert.equal(await fromEnv.submit(add, 2, 3), 5);
      await fromEnv.close();
    } finally {
      if (saved === undefined) delete process.env['TESSERA_SCHEDULER_ADDRESS'];
      else process.env['TESSERA_SCHEDULER_ADDRESS'] = saved;
    }
    delete process.env['TESSERA_SCHEDULER_ADDRESS'];
    await refuses(() => Client.connect(), /TESSERA_SCHEDULER_ADDRESS is not set/);
    if (saved !== undefined) process.env['TESSERA_SCHEDULER_ADDRESS'] = saved;
  });

  void test('restart cancels everything and the cluster works on', async () => {
    const slow = client.submitWith({ pure: false }, () => new Promise<number>((resolve) => setTimeout(() => resolve(1), 60_000)));
    const done = client.submit(add, 100, 1);
    assert.equal(await done, 101);
    await client.restart();
    await assert.rejects(slow.result(), (e: unknown) => e instanceof CancelledError);
    await assert.rejects(done.result(), (e: unknown) => e instanceof CancelledError);
    assert.equal(cluster.scheduler.taskCount, 0);
    assert.equal(await client.submit(add, 1, 1), 2);
  });

  void test('compute() of several values shares their work', async () => {
    const inc = delayed((x: number) => x + 1);
    const [a, b] = await compute(inc(1), inc(2));
    assert.deepEqual([a, b], [2, 3]);
  });
});

void describe('scatter with nowhere to go', () => {
  void test('fails each future with ScatterError instead of hanging', async () => {
    const cluster = await LocalCluster.start({ workers: 0, dashboard: false, log: () => undefined });
    try {
      const client = await Client.connect(cluster);
      const f = client.scatter(5);
      await assert.rejects(f.result(), (e: unknown) => e instanceof ScatterError && /no workers/.test(e.message));
      await client.close();
    } finally {
      await cluster.close();
    }
  });
});

void describe('the command and the cluster as a Dask user expects them', () => {
  void test('tessera --version, and a dashboard link that carries the token', async () => {
    const { spawn } = await import('node:child_process');
    const { fileURLToPath } = await import('node:url');
    const cli = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
    const version = await new Promise<string>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', cli, '--version'], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.on('close', () => resolve(out.trim()));
    });
    assert.match(version, /^\d+\.\d+\.\d+/);
    const child = spawn(process.execPath, ['--import', 'tsx', cli, 'scheduler', '--port', '0', '--dashboard-port', '0', '--token', 'open-sesame'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const link = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => {
          out += d;
          const line = out.split('\n').find((l) => l.startsWith('dashboard: '));
          if (line !== undefined) resolve(line.slice('dashboard: '.length));
        });
        child.on('close', () => reject(new Error(`no dashboard line in ${out}`)));
      });
      assert.equal(new URL(link).searchParams.get('token'), 'open-sesame');
      // Opening it once lets the page in (a cookie) and takes the token out of the address.
      const page = await fetch(link, { redirect: 'manual' });
      assert.equal(page.status, 303);
      assert.match(page.headers.get('set-cookie') ?? '', /tessera_dashboard_token=/);
    } finally {
      child.kill('SIGTERM');
    }
  });

  void test("a LocalCluster's workers share the machine's memory by their share of the cores", async () => {
    const { availableParallelism, totalmem } = await import('node:os');
    await using cluster = await LocalCluster.start({ workers: 1, threadsPerWorker: 1, dashboard: false, log: false });
    const expected = Math.floor(totalmem() * Math.min(1, 1 / availableParallelism()));
    const limit = cluster.scheduler.snapshot().workers[0]?.memoryLimit ?? 0;
    assert.ok(Math.abs(limit - expected) < 1024 * 1024, `memory limit ${limit}, expected about ${expected}`);
  });
});
