// Tessera workers on Lambda, through the local Lambda service and the official SDK: a
// persistent pool that bursts onto Lambda and back to zero with every result on the pool;
// workers that never listen; a worker that leaves before its timeout and hands its data
// over; one killed by its timeout, whose task reruns with the same answer; a duplicated
// delivery; throttles waited out; function errors and oversized results named.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import { Client, type Future, LocalCluster } from '../../src/index.js';
import { type LambdaBackend, lambdaBackend, type LambdaBackendOptions } from '../../src/deploy/lambda/backend.js';
import { LambdaFunctionError, LambdaThrottledError } from '../../src/deploy/lambda/errors.js';
import { invokeWithRetry, resolveRetry } from '../../src/deploy/lambda/retry.js';
import { type LambdaService, startLambdaService } from '../helpers/lambda/index.js';
import { sleep, until } from '../helpers/wait.js';
import { clientFor, createTestFunction, CREDENTIALS, lambdaSuite, listeningInodes, ROLE, skip, socketInodes, uniqueName } from './fixtures.js';

/** Holds its thread for `ms`, as computation would, then answers. Self-contained: travels as source. */
const slow = ({ x, ms }: { x: number; ms: number }): number => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  return x * x + 1;
};

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

void describe('Tessera workers on Lambda', { skip }, () => {
  const suite = lambdaSuite();
  let service: LambdaService;

  before(() => {
    service = suite.service;
  });

  const start = async (workers: number, options: Partial<LambdaBackendOptions> = {}): Promise<{ cluster: LocalCluster; burst: LambdaBackend; client: Client }> => {
    const { cluster, client } = await suite.cluster(workers);
    return { cluster, burst: suite.burst(cluster, options), client };
  };

  const lambdaWorkers = (cluster: LocalCluster): string[] => [...cluster.scheduler.workerNames().values()].filter((n) => n.startsWith('lambda-'));

  void test('a persistent pool bursts onto Lambda, drains the queue, and Lambda goes back to zero with every result on the pool', async () => {
    const { cluster, burst, client } = await start(1, { concurrency: 6 });
    const { fn } = await burst.prepare();
    const adaptive = cluster.adapt({ minimum: 1, maximum: 7, burst, interval: 200, waitCount: 2, targetDuration: '1s' });
    const futures: Future<number>[] = client.map(slow, range(60).map((x) => ({ x, ms: 400 })));

    // While the burst runs: which workers made results, and whether any function listens.
    const makers = new Set<string>();
    const listening: string[] = [];
    let done = false;
    const all = client.wait(futures).finally(() => (done = true));
    while (!done) {
      for (const f of futures) for (const w of cluster.scheduler.taskInfo(f.key)?.whoHas ?? []) makers.add(w);
      for (const env of service.environments(fn.name)) {
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
    assert.deepEqual(await client.gather(futures), range(60).map((x) => x * x + 1));
    assert.deepEqual(listening, [], 'no execution environment listens on a port');
    assert.ok([...makers].some((w) => w.startsWith('relay://lambda-')), `results were made on Lambda workers (${[...makers].join(', ')})`);
    assert.ok(burst.stats.invoked >= 1);

    // Lambda back to zero; the pool keeps its worker, and every result lives there.
    await until(() => burst.requested === 0 && lambdaWorkers(cluster).length === 0, 'the burst is back to zero', 60_000, 100);
    await service.eventsDrained();
    const pool = [...cluster.scheduler.workerNames().keys()];
    assert.equal(pool.length, 1);
    for (const f of futures) assert.deepEqual(cluster.scheduler.taskInfo(f.key)?.whoHas, pool, f.key);
    assert.deepEqual(await client.gather(futures), range(60).map((x) => x * x + 1));
    const history = adaptive.history();
    assert.ok(history.decisions.some((d) => d.op === 'scale-up' && d.reason.startsWith('burst:')), 'the history shows the burst');
    assert.equal(burst.stats.lost, 0);
    assert.ok(service.history.filter((r) => r.functionName === fn.name).every((r) => r.result === 'success'), 'every invocation returned');
    cluster.scheduler.stopAdapting();
  });

  void test('a worker leaves before its timeout and hands over the results only it holds', async () => {
    const { cluster, burst, client } = await start(1, { timeout: 5, reserve: 3000 });
    const { fn } = await burst.prepare();
    await burst.scaleUp(1);
    await until(() => lambdaWorkers(cluster).length === 1, 'the Lambda worker registers', 30_000, 50);
    const name = lambdaWorkers(cluster)[0]!;
    const future = client.submitWith({ workers: [name], key: 'on-lambda' }, slow, { x: 7, ms: 10 });
    assert.equal(await future.result(), 50);
    const holder = cluster.scheduler.taskInfo('on-lambda')?.whoHas;
    assert.ok(holder?.length === 1 && holder[0]!.startsWith('relay://'), `held on the Lambda worker first (${String(holder)})`);
    await until(() => lambdaWorkers(cluster).length === 0, 'the Lambda worker leaves', 30_000, 50);
    await service.eventsDrained();
    const records = service.history.filter((r) => r.functionName === fn.name);
    assert.deepEqual(records.map((r) => r.result), ['success'], 'it returned before the timeout');
    const now = cluster.scheduler.taskInfo('on-lambda')?.whoHas ?? [];
    assert.ok(now.length === 1 && now[0]!.startsWith('tcp://'), `the result moved to the pool (${now.join(', ')})`);
    assert.equal(await future.result(), 50);
  });

  void test('an invocation killed by its timeout mid-task: the task reruns and the answer is the same', async () => {
    const { cluster, burst, client } = await start(0, { timeout: 2, reserve: 0 });
    const { fn } = await burst.prepare();
    await burst.scaleUp(1);
    await until(() => lambdaWorkers(cluster).length === 1, 'the Lambda worker registers', 30_000, 50);
    const future = client.submitWith({ key: 'outlives-the-function' }, slow, { x: 3, ms: 3000 });
    await until(() => service.history.some((r) => r.functionName === fn.name && r.errorType === 'Sandbox.Timedout'), 'the invocation times out', 30_000, 50);
    await until(() => lambdaWorkers(cluster).length === 0, 'the scheduler loses the worker', 30_000, 50);
    await cluster.scale(1);
    assert.equal(await future.result(), 10);
  });

  void test('the same invocation delivered twice: two workers, one result per key', async () => {
    const { cluster, burst, client } = await start(1, { timeout: 60 });
    const { fn } = await burst.prepare();
    service.setDuplicateEvents(({ functionName }) => functionName === fn.name);
    try {
      await burst.scaleUp(1);
      await until(() => lambdaWorkers(cluster).length === 2, 'both deliveries register', 30_000, 50);
      const bases = new Set(lambdaWorkers(cluster).map((n) => n.slice(0, n.lastIndexOf('.'))));
      assert.equal(bases.size, 1, 'one invocation');
      burst.observe([...cluster.scheduler.workerNames().values()], performance.now());
      assert.equal(burst.requested, 1);
      const futures = client.map(slow, range(20).map((x) => ({ x, ms: 50 })));
      assert.deepEqual(await client.gather(futures), range(20).map((x) => x * x + 1));
      for (const f of futures) assert.equal(cluster.scheduler.taskInfo(f.key)?.state, 'memory');
    } finally {
      service.setDuplicateEvents(undefined);
    }
    await cluster.scheduler.retireWorkers([...cluster.scheduler.workerNames()].filter(([, n]) => n.startsWith('lambda-')).map(([id]) => id));
    await until(() => lambdaWorkers(cluster).length === 0, 'both leave', 30_000, 50);
  });

  void test('throttled beyond the account\'s concurrency: retried with backoff, then reported, never hung', async () => {
    // A service of its own, with room for two environments only.
    const small = await startLambdaService({ concurrency: 2, idleTimeoutMs: 10_000 });
    const cluster = suite.track(await LocalCluster.start({ workers: 0, dashboard: false, log: false }));
    const burst = suite.track(lambdaBackend({
      scheduler: cluster.address,
      role: ROLE,
      endpoint: small.endpoint,
      region: small.region,
      credentials: CREDENTIALS,
      memoryMB: 256,
      timeout: 60,
      invocationType: 'RequestResponse',
      concurrency: 3,
      retry: { attempts: 3, baseMs: 50, maxMs: 100 },
      log: false,
    }));
    try {
      await burst.prepare();
      await burst.scaleUp(3);
      await until(() => burst.stats.failed === 1, 'the third invocation gives up', 30_000, 50);
      assert.ok(burst.stats.throttles >= 3, `${burst.stats.throttles} throttles waited out`);
      assert.match(burst.stats.lastError ?? '', /LambdaThrottledError/);
      await until(() => lambdaWorkers(cluster).length === 2, 'the two that fit register', 30_000, 50);
      // The next scale-up reports the backpressure, so the adaptive loop backs off.
      await assert.rejects(burst.scaleUp(3), LambdaThrottledError);
      // Retired, the workers leave and their invocations return.
      await cluster.scheduler.retireWorkers([...cluster.scheduler.workerNames().keys()]);
      await until(() => burst.requested === 0, 'both invocations returned', 30_000, 50);
      assert.equal(burst.stats.finished, 2);
    } finally {
      await burst.close();
      await small.close();
    }
  });

  void describe('invocations', () => {
    let lambda: LambdaClient;
    let name: string;

    before(async () => {
      lambda = clientFor(service);
      name = uniqueName('probe');
      await createTestFunction(lambda, name, { Timeout: 10 });
    });

    after(() => {
      (lambda as LambdaClient | undefined)?.destroy();
    });

    void test('a 429 is waited out with backoff; past the attempts it is a LambdaThrottledError', async () => {
      // Fill the account's concurrency with sleepers.
      const sleepers = range(8).map(() => invokeWithRetry(lambda, name, 'RequestResponse', { op: 'sleep', ms: 1500 }, resolveRetry({ attempts: 30, baseMs: 50, maxMs: 200 })));
      await sleep(300);
      await assert.rejects(invokeWithRetry(lambda, name, 'RequestResponse', { op: 'echo' }, resolveRetry({ attempts: 2, baseMs: 10, maxMs: 10 })), (error: unknown) => {
        assert.ok(error instanceof LambdaThrottledError);
        assert.equal(error.attempts, 2);
        return true;
      });
      const waited = await invokeWithRetry(lambda, name, 'RequestResponse', { op: 'echo' }, resolveRetry({ attempts: 50, baseMs: 50, maxMs: 400 }));
      assert.ok(waited.throttles > 0, 'it was throttled first');
      assert.equal(waited.output.StatusCode, 200);
      await Promise.all(sleepers);
    });

    void test('a function error and a result over the 6 MB response limit are clear errors', async () => {
      await assert.rejects(invokeWithRetry(lambda, name, 'RequestResponse', { op: 'throw', message: 'boom' }, resolveRetry()), (error: unknown) => {
        assert.ok(error instanceof LambdaFunctionError);
        assert.equal(error.errorType, 'TypeError');
        assert.match(error.message, /boom/);
        return true;
      });
      await assert.rejects(invokeWithRetry(lambda, name, 'RequestResponse', { op: 'big', bytes: 7_000_000 }, resolveRetry()), (error: unknown) => {
        assert.ok(error instanceof LambdaFunctionError);
        assert.equal(error.errorType, 'Function.ResponseSizeTooLarge');
        return true;
      });
    });
  });
});
