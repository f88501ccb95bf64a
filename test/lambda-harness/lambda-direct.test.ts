// Lambda in direct mode, through the local Lambda service and a real redis-server: batches
// of ready tasks go to synchronous invocations that write their results to Redis and
// return. A wide fan-out drains with every result retrievable after; a batch killed by its
// timeout reruns with the same answers; the same invocation delivered twice leaves one
// result per key; inputs over the payload limit travel through the store; no execution
// environment listens.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvokeCommand } from '@aws-sdk/client-lambda';
import type { Client, Future, LocalCluster, RedisStore } from '../../src/index.js';
import { lambdaBackend } from '../../src/deploy/lambda/backend.js';
import { lambdaDirectBackend, type LambdaDirectBackend, type LambdaDirectOptions } from '../../src/deploy/lambda/direct.js';
import { type DirectInvocationResult, fromBase64, parseDirectInvocation, toBase64 } from '../../src/deploy/lambda/direct-invocation.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { sleep, until } from '../helpers/wait.js';
import { clientFor, CREDENTIALS, lambdaSuite, listeningInodes, ROLE, skipWithRedis, socketInodes } from './fixtures.js';

/** Holds its thread for `ms`, as computation would, then answers. Self-contained: travels as source. */
const slow = ({ x, ms }: { x: number; ms: number }): number => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  return x * x + 1;
};

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

const storeHolder = (whoHas: readonly string[] | undefined): string | undefined => whoHas?.find((h) => h.startsWith('store:'));

void describe('Lambda in direct mode', { skip: skipWithRedis }, () => {
  const suite = lambdaSuite({ redis: true, service: { concurrency: 8 } });

  /** A direct backend on the suite's Lambda service: small functions, six invocations at a time. */
  const directOptions = (scheduler: string, store: RedisStore): LambdaDirectOptions => ({
    scheduler,
    store,
    role: ROLE,
    endpoint: suite.service.endpoint,
    region: suite.service.region,
    credentials: CREDENTIALS,
    memoryMB: 512,
    timeout: 60,
    concurrency: 6,
    invocationsPerWorker: 6,
    log: false,
  });

  const start = async (
    prefix: string,
    options: Partial<LambdaDirectOptions> = {},
  ): Promise<{ cluster: LocalCluster; client: Client; store: RedisStore; direct: LambdaDirectBackend }> => {
    const store = await suite.store(prefix);
    const { cluster, client } = await suite.cluster(0, { store });
    const direct = suite.track(lambdaDirectBackend({ ...directOptions(cluster.address, store), retry: { attempts: 20, baseMs: 50, maxMs: 500 }, ...options }));
    return { cluster, client, store, direct };
  };

  const directWorkers = (cluster: LocalCluster): string[] => [...cluster.scheduler.workerNames().values()].filter((n) => n.startsWith('lambda-direct-'));

  const startWorker = async (cluster: LocalCluster, direct: LambdaDirectBackend): Promise<string> => {
    await direct.scaleUp(1);
    await until(() => directWorkers(cluster).length === 1, 'the direct worker registers', 30_000, 50);
    return directWorkers(cluster)[0]!;
  };

  void test('a wide fan-out drains through direct invocations; every result is in Redis and retrievable after', async () => {
    const { cluster, client, store, direct } = await start('fan:');
    const { fn } = await direct.prepare();
    await startWorker(cluster, direct);
    const futures: Future<number>[] = client.map(slow, range(200).map((x) => ({ x, ms: 20 })));

    const listening: string[] = [];
    let done = false;
    const all = client.wait(futures).finally(() => (done = true));
    while (!done) {
      for (const env of suite.service.environments(fn.name)) {
        if (env.pid === undefined) continue;
        try {
          const mine = socketInodes(env.pid);
          for (const inode of listeningInodes(env.pid)) if (mine.has(inode)) listening.push(`${env.pid}:${inode}`);
        } catch {
          // the environment ended meanwhile
        }
      }
      await sleep(50);
    }
    await all;
    assert.deepEqual(listening, [], 'no execution environment listens on a port');

    // Every result is held by the store, and there in Redis.
    for (const f of futures) assert.equal(storeHolder(cluster.scheduler.taskInfo(f.key)?.whoHas), `store:${store.address}`, `${f.key} is held by the store`);
    const records = await store.get(futures.map((f) => f.key));
    assert.ok(records.every((r) => r !== undefined), 'every result is in Redis');
    const invocations = suite.service.history.filter((r) => r.functionName === fn.name);
    assert.ok(invocations.length >= 2 && invocations.length < 200, `batches, not tasks, were invoked (${invocations.length})`);
    assert.ok(invocations.every((r) => r.result === 'success'));

    // The direct worker leaves; the results stay retrievable from the store.
    await cluster.scheduler.retireWorkers([...cluster.scheduler.workerNames().keys()]);
    direct.scaleDown(directWorkers(cluster));
    await until(() => directWorkers(cluster).length === 0 && direct.requested === 0, 'the direct worker leaves', 30_000, 50);
    for (const f of futures) assert.deepEqual(cluster.scheduler.taskInfo(f.key)?.whoHas, [`store:${store.address}`], `${f.key} is held by the store only`);
    assert.deepEqual(await client.gather(futures), range(200).map((x) => x * x + 1));
    assert.ok(direct.stats.invocations >= 2);
  });

  void test('a batch killed by its timeout mid-task: its tasks rerun and the answers are the same', async () => {
    // Four 1.5 s tasks in one batch outlast a 3 s function; each alone does not.
    const { cluster, client, direct } = await start('timeout:', { timeout: 3, invocationsPerWorker: 1, tasksPerInvocation: 4, concurrency: 1 });
    const { fn } = await direct.prepare();
    await startWorker(cluster, direct);
    const futures = client.map(slow, range(4).map((x) => ({ x, ms: 1500 })));
    assert.deepEqual(await client.gather(futures), range(4).map((x) => x * x + 1));
    const records = suite.service.history.filter((r) => r.functionName === fn.name);
    assert.ok(records.some((r) => r.errorType === 'Sandbox.Timedout'), `a batch timed out (${records.map((r) => r.errorType ?? r.result).join(', ')})`);
    assert.ok(records.filter((r) => r.result === 'success').length >= 2, 'its tasks ran again, alone');
  });

  void test('the same invocation delivered twice: one result per key, and both answers carry it', async () => {
    const { store, direct } = await start('twice:');
    const { fn } = await direct.prepare();
    // A task whose every execution answers differently, run by two deliveries of one payload.
    const coin = { kind: 'source', id: 'coin-fn', name: 'coin', expr: '() => Math.random()' } as const;
    const node = { steps: [{ fn: coin.id, deps: [], args: [], argRefs: null, deepRefs: null }], stepKeys: ['coin-1'], out: true };
    const payload = { op: 'direct', store: store.address, batches: [toBase64({ nodes: [node], fns: [coin] })], inputs: [], stored: [], modules: [], inlineBytes: 1 << 20 };
    const lambda = clientFor(suite.service);
    try {
      const deliver = async (): Promise<DirectInvocationResult> => {
        const out = await lambda.send(new InvokeCommand({ FunctionName: fn.name, InvocationType: 'RequestResponse', Payload: Buffer.from(JSON.stringify(payload)) }));
        assert.equal(out.FunctionError, undefined);
        return JSON.parse(Buffer.from(out.Payload ?? new Uint8Array()).toString()) as DirectInvocationResult;
      };
      const answers = await Promise.all([deliver(), deliver()]);
      const values = answers.map((a) => {
        const batch = a.batches[0];
        assert.ok(batch?.status === 'done', JSON.stringify(a));
        return fromBase64(batch.values[0]!);
      });
      assert.equal(typeof values[0], 'number');
      assert.equal(values[0], values[1], 'both deliveries answer with the first value written');
      const [record] = await store.get(['coin-1']);
      assert.ok(record !== undefined);
      assert.equal(fromBase64(Buffer.from(record).toString('base64')), values[0], 'Redis holds that one value');
    } finally {
      lambda.destroy();
    }
  });

  void test('a task that kills its thread in an invocation fails alone; the tasks sent with it succeed', async () => {
    const { cluster, client, direct } = await start('dies:', { invocationsPerWorker: 1, tasksPerInvocation: 8, concurrency: 1 });
    await direct.prepare();
    await startWorker(cluster, direct);
    const futures = client.map((x: number) => {
      if (x === 3) process.exit(7);
      return x * 10;
    }, range(8));
    await client.wait(futures).catch(() => undefined);
    for (const [i, f] of futures.entries()) {
      if (i === 3) await assert.rejects(f.result(), /thread|lost/i);
      else assert.equal(await f.result(), i * 10);
    }
    assert.equal(direct.stats.functionErrors, 0, 'no invocation failed: only a thread in one died');
  });

  void test('inputs over the synchronous payload limit travel through the store, never an error', async () => {
    const { cluster, client, direct } = await start('big:', { invocationsPerWorker: 2, concurrency: 2 });
    await direct.prepare();
    const name = await startWorker(cluster, direct);
    // Four 3 MB inputs made on the direct worker, then a batch on it that needs all of them.
    const blocks = range(4).map((i) => client.submitWith({ workers: [name], key: `block-${i}` }, (n: number) => new Float64Array(375_000).fill(n), i));
    await client.wait(blocks);
    const sums = blocks.map((b) => client.submitWith({ workers: [name] }, (xs: Float64Array) => xs.reduce((a, x) => a + x, 0), b));
    assert.deepEqual(await client.gather(sums), range(4).map((i) => i * 375_000));
    const total = client.submitWith({ workers: [name] }, (...xs: Float64Array[]) => xs.reduce((a, v) => a + v.length, 0), ...blocks);
    assert.equal(await total.result(), 4 * 375_000);
    // Counts arrive from the direct worker's process twice a second.
    await until(() => direct.stats.storeBytesOut >= 8 * 3_000_000, `the inputs went through the store (${direct.stats.storeBytesOut} bytes so far)`, 10_000, 50);
    assert.equal(direct.stats.functionErrors, 0);
  });

  void test('batches whose tasks carry more than the payload limit are split across invocations', async () => {
    const { cluster, client, direct } = await start('split:', { invocationsPerWorker: 1, tasksPerInvocation: 64, concurrency: 1 });
    await direct.prepare();
    await startWorker(cluster, direct);
    // Forty tasks with 400 KB arguments of their own: 16 MB of tasks, waiting together.
    const args = range(40).map((i) => new Float64Array(50_000).fill(i));
    const sums = client.map((xs: Float64Array) => xs[0]! * xs.length, args);
    assert.deepEqual(await client.gather(sums), range(40).map((i) => i * 50_000));
    await until(() => direct.stats.splits > 0, `a payload was split (${JSON.stringify(direct.stats)})`, 10_000, 50);
    assert.equal(direct.stats.functionErrors, 0);
  });

  void test('adapt(): a pool bursts onto direct invocations, and the burst goes back to zero with every result retrievable', async () => {
    const store = await suite.store('adapt:');
    const { cluster, client } = await suite.cluster(1, { store });
    const burst = suite.track(lambdaBackend({ ...directOptions(cluster.address, store), mode: 'direct', tasksPerInvocation: 4 }));
    await burst.prepare();
    const adaptive = cluster.adapt({ minimum: 1, maximum: 2, burst, interval: 200, waitCount: 2, targetDuration: '1s' });
    const futures = client.map(slow, range(120).map((x) => ({ x, ms: 100 })));
    const makers = new Set<string>();
    let done = false;
    const all = client.wait(futures).finally(() => (done = true));
    while (!done) {
      for (const f of futures) for (const w of cluster.scheduler.taskInfo(f.key)?.whoHas ?? []) makers.add(w);
      await sleep(50);
    }
    await all;
    assert.ok([...makers].some((w) => w.startsWith('relay://lambda-direct-')), `results were made through direct invocations (${[...makers].join(', ')})`);
    await until(() => burst.requested === 0 && directWorkers(cluster).length === 0, 'the burst is back to zero', 60_000, 100);
    cluster.scheduler.stopAdapting();
    assert.ok(adaptive.history().decisions.some((d) => d.op === 'scale-up' && d.reason.startsWith('burst:')), 'the history shows the burst');
    for (const f of futures) assert.ok((cluster.scheduler.taskInfo(f.key)?.whoHas.length ?? 0) > 0, `${f.key} is held somewhere`);
    assert.deepEqual(await client.gather(futures), range(120).map((x) => x * x + 1));
    assert.ok(burst.stats.invocations > 0);
  });
});

void describe('direct invocation events', () => {
  const good = { op: 'direct', store: 'redis://cache:6379', batches: [toBase64({ nodes: [], fns: [] })], inputs: [['a', toBase64(1)]], stored: [], modules: [], inlineBytes: 1000 };

  void test('a well-formed event is taken as it is; a malformed one is refused at the door, naming what is wrong', () => {
    assert.deepEqual(parseDirectInvocation(good), good);
    assert.deepEqual(fromBase64(parseDirectInvocation(good).inputs[0]![1]), 1);
    const refused = (event: unknown, what: RegExp): void => {
      assert.throws(() => parseDirectInvocation(event), (error: unknown) => error instanceof InvalidArgumentError && what.test(error.message));
    };
    refused(null, /must be an object/);
    refused({ ...good, op: 'worker' }, /op must be 'direct'/);
    refused({ ...good, store: 'memory://x' }, /redis:\/\//);
    refused({ ...good, batches: [] }, /batches/);
    refused({ ...good, inputs: [['a']] }, /inputs/);
    refused({ ...good, modules: ['not-a-hash'] }, /bundle hashes/);
    refused({ ...good, inlineBytes: -1 }, /inlineBytes/);
  });
});
