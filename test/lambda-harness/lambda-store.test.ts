// Lambda workers with a Redis result store, through the local Lambda service and a real
// redis-server: results made on Lambda are written to Redis before the invocation returns
// and stay retrievable after every invocation ended; released keys leave Redis; a Redis
// restarted mid-graph costs a recomputation, never a hang; a duplicated delivery and a
// retried write leave one result per key.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createClient } from 'redis';
import type { Client, Future, LocalCluster, RedisStore } from '../../src/index.js';
import type { LambdaBackend, LambdaBackendOptions } from '../../src/deploy/lambda/backend.js';
import { encodeValue } from '../../src/store/index.js';
import type { LambdaService } from '../helpers/lambda/index.js';
import type { RedisServer } from '../helpers/redis.js';
import { sleep, until } from '../helpers/wait.js';
import { lambdaSuite, skipWithRedis } from './fixtures.js';

/** Holds its thread for `ms`, as computation would, then answers. Self-contained: travels as source. */
const slow = ({ x, ms }: { x: number; ms: number }): number => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  return x * x + 1;
};

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

// Reads Redis directly, without reconnecting: a test that restarts Redis reconnects on purpose.
const newRaw = (url: string) => createClient({ url, socket: { reconnectStrategy: false } });
type Raw = ReturnType<typeof newRaw>;

const storeHolder = (whoHas: readonly string[] | undefined): string | undefined => whoHas?.find((h) => h.startsWith('store:'));

void describe('Lambda workers with a Redis store', { skip: skipWithRedis }, () => {
  const suite = lambdaSuite({ redis: true });
  let service: LambdaService;
  let redis: RedisServer;
  let raw: Raw;

  before(async () => {
    service = suite.service;
    redis = suite.redis;
    raw = await connectRaw();
  });

  after(() => {
    if ((raw as Raw | undefined)?.isOpen === true) raw.destroy();
  });

  async function connectRaw(): Promise<Raw> {
    const client = newRaw(redis.url);
    client.on('error', () => undefined);
    await client.connect();
    return client;
  }

  const start = async (
    workers: number,
    prefix: string,
    options: Partial<LambdaBackendOptions> = {},
    log: false | ((line: string) => void) = false,
  ): Promise<{ cluster: LocalCluster; burst: LambdaBackend; client: Client; store: RedisStore }> => {
    const store = await suite.store(prefix);
    const { cluster, client } = await suite.cluster(workers, { store, log });
    return { cluster, burst: suite.burst(cluster, options), client, store };
  };

  const lambdaWorkers = (cluster: LocalCluster): string[] => [...cluster.scheduler.workerNames().values()].filter((n) => n.startsWith('lambda-'));
  const keysUnder = (prefix: string): Promise<string[]> => raw.keys(`${prefix}*`);

  void test('a burst drains through Lambda; its results are in Redis, retrievable after every invocation ended, and leave Redis when released', async () => {
    const prefix = 'burst:';
    const { cluster, burst, client, store } = await start(1, prefix, { concurrency: 6 });
    const { fn } = await burst.prepare();
    const adaptive = cluster.adapt({ minimum: 1, maximum: 7, burst, interval: 200, waitCount: 2, targetDuration: '1s' });
    const futures: Future<number>[] = client.map(slow, range(60).map((x) => ({ x, ms: 400 })));

    // While the burst runs: which results a Lambda worker made and wrote to the store.
    const onLambda = new Set<string>();
    let done = false;
    const all = client.wait(futures).finally(() => (done = true));
    while (!done) {
      for (const f of futures) {
        const whoHas = cluster.scheduler.taskInfo(f.key)?.whoHas ?? [];
        if (whoHas.some((w) => w.startsWith('relay://lambda-')) && storeHolder(whoHas) === `store:${store.address}`) onLambda.add(f.key);
      }
      await sleep(50);
    }
    await all;
    assert.ok(onLambda.size > 0, 'results made on Lambda workers were held by the store');
    const inRedis = await keysUnder(prefix);
    for (const key of onLambda) assert.ok(inRedis.includes(`${prefix}${key}`), `${key} is in Redis`);

    // Lambda back to zero: every invocation returned (none was cut off before its writes).
    await until(() => burst.requested === 0 && lambdaWorkers(cluster).length === 0, 'the burst is back to zero', 60_000, 100);
    await service.eventsDrained();
    const records = service.history.filter((r) => r.functionName === fn.name);
    assert.ok(records.length > 0 && records.every((r) => r.result === 'success'), 'every invocation returned');
    cluster.scheduler.stopAdapting();
    assert.ok(adaptive.history().decisions.some((d) => d.op === 'scale-up' && d.reason.startsWith('burst:')));

    // What Lambda made lives in the store now (and perhaps on the pool); every result is retrievable.
    for (const key of onLambda) assert.ok(storeHolder(cluster.scheduler.taskInfo(key)?.whoHas) !== undefined, `${key} is still held by the store`);
    assert.deepEqual(await client.gather(futures), range(60).map((x) => x * x + 1));
    for (const key of onLambda) assert.equal(await store.get([key]).then(([b]) => b !== undefined), true);

    // Released: the scheduler deletes the keys from Redis.
    for (const f of futures) f.release();
    await until(async () => (await keysUnder(prefix)).length === 0, 'the released keys left Redis', 10_000, 50);
  });

  void test('Redis restarted mid-graph: the graph completes with the right answer, recomputed, not hung', { timeout: 90_000 }, async () => {
    const prefix = 'restart:';
    const lines: string[] = [];
    // No pool yet: the first results are made on Lambda only.
    const { cluster, burst, client, store } = await start(0, prefix, { timeout: 60 }, (line) => lines.push(line));
    await burst.prepare();
    await burst.scaleUp(2);
    await until(() => lambdaWorkers(cluster).length === 2, 'two Lambda workers register', 30_000, 50);
    const firsts = client.map(slow, range(12).map((x) => ({ x, ms: 100 })));
    await client.wait(firsts);
    await until(() => firsts.every((f) => storeHolder(cluster.scheduler.taskInfo(f.key)?.whoHas) !== undefined), 'the results are in the store', 10_000, 20);

    // The invocations end; their results live in Redis only.
    burst.scaleDown(lambdaWorkers(cluster));
    await cluster.scheduler.retireWorkers([...cluster.scheduler.workerNames()].filter(([, n]) => n.startsWith('lambda-')).map(([id]) => id));
    await until(() => lambdaWorkers(cluster).length === 0, 'the Lambda workers leave', 30_000, 50);
    await service.eventsDrained();
    burst.observe([...cluster.scheduler.workerNames().values()], performance.now());
    for (const f of firsts) assert.deepEqual(cluster.scheduler.taskInfo(f.key)?.whoHas, [`store:${store.address}`], `${f.key} is held by the store only`);
    await cluster.scale(1);
    await until(() => cluster.scheduler.workers.length === 1, 'the pool worker joins', 30_000, 50);
    const pool = cluster.scheduler.workers;

    // Mid-graph, Redis restarts empty: what only it held is recomputed on the pool.
    const seconds = firsts.map((f) => client.submit((x: number) => {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
      return x * 2;
    }, f));
    await redis.kill();
    await redis.start();
    const started = performance.now();
    assert.deepEqual(await client.gather(seconds), range(12).map((x) => (x * x + 1) * 2));
    assert.ok(performance.now() - started < 30_000);
    assert.ok(lines.some((l) => l.includes('lost the result store')), lines.join('\n'));
    for (const f of firsts) assert.deepEqual(cluster.scheduler.taskInfo(f.key)?.whoHas, pool, `${f.key} was recomputed on the pool`);

    // The store is back: a Lambda worker's results go to the new Redis.
    raw.destroy();
    raw = await connectRaw();
    await burst.scaleUp(1);
    await until(() => lambdaWorkers(cluster).length === 1, 'a Lambda worker registers', 30_000, 50);
    const later = client.submitWith({ workers: lambdaWorkers(cluster), key: 'later' }, slow, { x: 100, ms: 10 });
    assert.equal(await later.result(), 10_001);
    await until(() => storeHolder(cluster.scheduler.taskInfo(later.key)?.whoHas) !== undefined, 'the later result is in the store', 30_000, 50);
    assert.equal(await raw.exists(`${prefix}${later.key}`), 1);
    await cluster.scheduler.retireWorkers([...cluster.scheduler.workerNames()].filter(([, n]) => n.startsWith('lambda-')).map(([id]) => id));
    await until(() => lambdaWorkers(cluster).length === 0, 'the Lambda worker leaves', 30_000, 50);
    await service.eventsDrained();
  });

  void test('the same invocation delivered twice: two workers, one result per key in Redis, and a write that lost adopts the first value', async () => {
    const prefix = 'twice:';
    const { cluster, burst, client, store } = await start(0, prefix, { timeout: 60 });
    const { fn } = await burst.prepare();
    service.setDuplicateEvents(({ functionName }) => functionName === fn.name);
    try {
      await burst.scaleUp(1);
      await until(() => lambdaWorkers(cluster).length === 2, 'both deliveries register', 30_000, 50);
      assert.equal(new Set(lambdaWorkers(cluster).map((n) => n.slice(0, n.lastIndexOf('.')))).size, 1, 'one invocation');
      const futures = client.map(slow, range(20).map((x) => ({ x, ms: 50 })));
      assert.deepEqual(await client.gather(futures), range(20).map((x) => x * x + 1));
      await until(() => futures.every((f) => storeHolder(cluster.scheduler.taskInfo(f.key)?.whoHas) !== undefined), 'every result is in the store', 10_000, 50);
      const keys = (await keysUnder(prefix)).sort();
      assert.deepEqual(keys, futures.map((f) => `${prefix}${f.key}`).sort(), 'one Redis key per result');

      // An earlier execution wrote this key, then died before it reported: a Lambda
      // worker's later write of a different value loses, and the worker adopts the first.
      await store.put([['written-first', encodeValue('the first write')]]);
      const [one] = lambdaWorkers(cluster);
      const again = client.submitWith({ key: 'written-first', workers: [one!] }, (s: string) => s, 'a later write');
      await again;
      await until(() => storeHolder(cluster.scheduler.taskInfo('written-first')?.whoHas) !== undefined, 'held by the store', 10_000, 50);
      assert.equal(await again.result(), 'the first write', 'the client reads the first write');
      // Whichever holder a reader is sent to: the worker that computed it holds the same value.
      const onWorker = client.submitWith({ workers: [one!] }, (s: string) => `read ${s}`, again);
      assert.equal(await onWorker.result(), 'read the first write', 'a task on the worker that computed it reads the first write');
      assert.equal((await keysUnder(prefix)).filter((k) => k.startsWith(`${prefix}written-first`)).length, 1);
    } finally {
      service.setDuplicateEvents(undefined);
    }
    await cluster.scheduler.retireWorkers([...cluster.scheduler.workerNames().keys()]);
    await until(() => lambdaWorkers(cluster).length === 0, 'both leave', 30_000, 50);
    await service.eventsDrained();
    assert.ok(service.history.filter((r) => r.functionName === fn.name).every((r) => r.result === 'success'), 'both deliveries returned');
  });
});
