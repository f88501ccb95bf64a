/**
 * Workers on Lambda (docs/lambda.md), through the local Lambda service: a pool of one that
 * bursts onto `--lambdas` invocations, against a fixed pool of the same concurrency
 * (1 + lambdas local worker processes), on sleep-burst and map-N; then a simulation at AWS's
 * published scaling rate. Prints JSON lines.
 *
 *   npm run build && npm run bench -- lambda [--tasks 200] [--sleep 1] [--lambdas 8] [--map 10000]
 *       [--store redis|none] [--sim-tasks 100000] [--sim-concurrency 1000] [--no-live] [--no-sim]
 *       [--direct-only] [--tasks-per-invocation 64]
 *
 * Live figures: time to first result, total time, invocations made, results retrievable
 * after Lambda is back to zero (must be all), and bytes through the store. With `--store
 * redis` (the default when redis-server is installed) the cluster has a Redis store on a
 * redis-server of its own: Lambda workers write their results there and readers read them
 * from there; the bytes are Redis's own count of what came in and went out over the run
 * (commands included). With `--store none` results travel through the scheduler's relay and
 * move to the pool on retirement, and no bytes go through a store.
 *
 * With a Redis store, map-N runs once more in direct mode (no pool: one direct worker
 * whose batches go to `--lambdas` synchronous invocations at a time, `--tasks-per-invocation`
 * tasks each at most): time, invocations, the bytes of payloads and answers, and the bytes
 * through Redis. `--direct-only` runs that row alone.
 *
 * The simulation: 100,000 one-second tasks on Lambda at its published scaling rate (each
 * function gains up to 1,000 execution environments every 10 s, within the account's
 * concurrency, 1,000 by default) with a cold start per environment, against a fixed pool of
 * the same concurrency already running: total time, and GB-seconds billed (Lambda bills each
 * environment's busy time, cold start included; the pool is counted for the job's duration
 * only, which flatters it — a real pool is paid while idle too).
 */
import { parseArgs } from 'node:util';
import { createClient } from 'redis';
import { Client, type Future, lambdaBackend, LocalCluster, RedisStore } from 'tessera';
import { startLambdaService } from '../test/helpers/lambda/index.js';
import { runtimeClientMissing } from '../test/helpers/lambda/runtime-client.js';
import { findRedisServer, type RedisServer, startRedis } from '../test/helpers/redis.js';

const { values: args } = parseArgs({
  options: {
    tasks: { type: 'string', default: '200' },
    sleep: { type: 'string', default: '1' },
    lambdas: { type: 'string', default: '8' },
    map: { type: 'string', default: '10000' },
    'sim-tasks': { type: 'string', default: '100000' },
    'sim-concurrency': { type: 'string', default: '1000' },
    'cold-start': { type: 'string', default: '0.3' },
    'memory-mb': { type: 'string', default: '1769' },
    store: { type: 'string' },
    'no-live': { type: 'boolean', default: false },
    'no-sim': { type: 'boolean', default: false },
    'direct-only': { type: 'boolean', default: false },
    'tasks-per-invocation': { type: 'string', default: '64' },
  },
});
const tasks = Number(args.tasks);
const sleepMs = Number(args.sleep) * 1000;
const lambdas = Number(args.lambdas);
const mapN = Number(args.map);
const storeKind = args.store ?? (findRedisServer() === undefined ? 'none' : 'redis');
if (storeKind !== 'redis' && storeKind !== 'none') throw new Error(`--store must be redis or none, got ${storeKind}`);

const emit = (line: Record<string, unknown>): void => console.log(JSON.stringify({ bench: 'lambda', ...line }));

const slowMaths = ({ i, ms }: { i: number; ms: number }): number => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  return ((i * i) % 97) + 1;
};
const inc = (x: number): number => x + 1;

interface Run {
  readonly firstResultS: number;
  readonly totalS: number;
}

/** Submits, times the first result and the last. */
async function timed<T>(client: Client, submit: () => Future<T>[]): Promise<Run & { futures: Future<T>[] }> {
  const start = performance.now();
  const futures = submit();
  let first = -1;
  for await (const f of client.asCompleted(futures)) {
    if (first < 0 && f.status === 'finished') first = performance.now();
  }
  return { firstResultS: (first - start) / 1000, totalS: (performance.now() - start) / 1000, futures };
}

async function live(): Promise<void> {
  if (runtimeClientMissing !== false) {
    emit({ skipped: runtimeClientMissing });
    return;
  }
  const service = await startLambdaService({ concurrency: lambdas, idleTimeoutMs: 120_000 });
  const redis = storeKind === 'redis' ? await startRedis() : undefined;
  try {
    const workloads: { name: string; n: number; submit: (c: Client) => Future<number>[] }[] = [
      { name: 'sleep-burst', n: tasks, submit: (c) => c.map(slowMaths, Array.from({ length: tasks }, (_, i) => ({ i, ms: sleepMs }))) },
      { name: `map-${mapN}`, n: mapN, submit: (c) => c.map(inc, Array.from({ length: mapN }, (_, i) => i)) },
    ];
    for (const w of args['direct-only'] ? [] : workloads) {
      // The hybrid: one pool worker, the rest on Lambda.
      const store = redis === undefined ? undefined : await RedisStore.connect(redis.url, { prefix: `${w.name}:` });
      const cluster = await LocalCluster.start({ workers: 1, dashboard: false, log: false, ...(store === undefined ? {} : { store }) });
      const burst = lambdaBackend({
        scheduler: cluster.address,
        role: 'arn:aws:iam::123456789012:role/tessera-bench',
        endpoint: service.endpoint,
        region: service.region,
        credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
        memoryMB: 512,
        timeout: 600,
        concurrency: lambdas,
        log: false,
      });
      const client = await Client.connect(cluster.address);
      try {
        const t0 = performance.now();
        await burst.prepare();
        const prepareS = (performance.now() - t0) / 1000;
        const before = await netBytes(redis);
        cluster.adapt({ minimum: 1, maximum: 1 + lambdas, burst, targetDuration: '5s', interval: 250, waitCount: 2 });
        const run = await timed(client, () => w.submit(client));
        const settle = performance.now();
        while (burst.requested > 0 && performance.now() - settle < 120_000) await new Promise((r) => setTimeout(r, 100));
        const backToZeroS = (performance.now() - settle) / 1000;
        const again = await client.gather(run.futures);
        const retrievable = again.filter((v) => typeof v === 'number').length;
        const after = await netBytes(redis);
        emit({
          workload: w.name,
          cluster: `pool 1 + lambda ${lambdas}`,
          tasks: w.n,
          prepareS: round(prepareS),
          firstResultS: round(run.firstResultS),
          totalS: round(run.totalS),
          invocations: burst.stats.invoked,
          lost: burst.stats.lost,
          throttles: burst.stats.throttles,
          lambdaBackToZeroS: round(backToZeroS),
          store: storeKind,
          storeBytesIn: after.in - before.in,
          storeBytesOut: after.out - before.out,
          retrievable,
          allRetrievable: retrievable === w.n,
        });
      } finally {
        await client.close();
        await burst.close();
        await cluster.close();
        await store?.close();
      }
      // The fixed pool of the same concurrency.
      const fixed = await LocalCluster.start({ workers: 1 + lambdas, dashboard: false, log: false });
      const fc = await Client.connect(fixed.address);
      try {
        const run = await timed(fc, () => w.submit(fc));
        emit({ workload: w.name, cluster: `fixed ${1 + lambdas}`, tasks: w.n, firstResultS: round(run.firstResultS), totalS: round(run.totalS) });
      } finally {
        await fc.close();
        await fixed.close();
      }
    }
    if (redis !== undefined) await direct(service, redis);
  } finally {
    await service.close();
    await redis?.stop();
  }
}

/** map-N in direct mode: batches of ready tasks as synchronous invocations writing to Redis. */
async function direct(service: Awaited<ReturnType<typeof startLambdaService>>, redis: RedisServer): Promise<void> {
  const store = await RedisStore.connect(redis.url, { prefix: 'direct:' });
  const cluster = await LocalCluster.start({ workers: 0, store, dashboard: false, log: false });
  const backend = lambdaBackend({
    mode: 'direct',
    scheduler: cluster.address,
    store,
    role: 'arn:aws:iam::123456789012:role/tessera-bench',
    endpoint: service.endpoint,
    region: service.region,
    credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' },
    memoryMB: 512,
    timeout: 600,
    concurrency: lambdas,
    invocationsPerWorker: lambdas,
    tasksPerInvocation: Number(args['tasks-per-invocation']),
    log: false,
  });
  const client = await Client.connect(cluster.address);
  try {
    const t0 = performance.now();
    await backend.prepare();
    const prepareS = (performance.now() - t0) / 1000;
    await backend.scaleUp(1);
    while (cluster.scheduler.workers.length === 0) await new Promise((r) => setTimeout(r, 50));
    // Cold: the function's execution environments start during the run; warm: they are up.
    for (const phase of ['cold', 'warm']) {
      const counted = backend.stats;
      const before = await netBytes(redis);
      const run = await timed(client, () => client.map(phase === 'cold' ? inc : (x: number) => x + 1, Array.from({ length: mapN }, (_, i) => i)));
      const again = await client.gather(run.futures);
      const retrievable = again.filter((v, i) => v === i + 1).length;
      const after = await netBytes(redis);
      for (const f of run.futures) f.release();
      // The direct worker's counts reach this process twice a second.
      await new Promise((r) => setTimeout(r, 700));
      const stats = backend.stats;
      emit({
        workload: `map-${mapN}`,
        cluster: `direct ${lambdas}`,
        phase,
        tasks: mapN,
        tasksPerInvocation: Number(args['tasks-per-invocation']),
        prepareS: round(prepareS),
        firstResultS: round(run.firstResultS),
        totalS: round(run.totalS),
        invocations: stats.invocations - counted.invocations,
        functionErrors: stats.functionErrors - counted.functionErrors,
        throttles: stats.throttles - counted.throttles,
        payloadBytes: stats.bytesOut - counted.bytesOut,
        answerBytes: stats.bytesIn - counted.bytesIn,
        storeBytesIn: after.in - before.in,
        storeBytesOut: after.out - before.out,
        retrievable,
        allRetrievable: retrievable === mapN,
      });
    }
  } finally {
    await client.close();
    await backend.close();
    await cluster.close();
    await store.close();
  }
}

/** What Redis has received and sent so far (INFO stats), or zeros without Redis. */
async function netBytes(redis: RedisServer | undefined): Promise<{ in: number; out: number }> {
  if (redis === undefined) return { in: 0, out: 0 };
  const client = createClient({ url: redis.url });
  await client.connect();
  try {
    const info = await client.info('stats');
    const field = (name: string): number => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? 0);
    return { in: field('total_net_input_bytes'), out: field('total_net_output_bytes') };
  } finally {
    client.destroy();
  }
}

/** Lambda at its published scaling rate against a fixed pool of the same concurrency. Pure arithmetic, in 10 ms steps. */
export function simulateLambda(o: { tasks: number; taskS: number; concurrency: number; ratePer10s: number; coldStartS: number; memoryMB: number }): Record<string, unknown> {
  const step = 0.01;
  const gb = o.memoryMB / 1024;
  // Each environment: when it is free next. Environments are added as the rate allows.
  const freeAt: number[] = [];
  let queued = o.tasks;
  let busyS = 0;
  let t = 0;
  let end = 0;
  while (queued > 0) {
    const allowed = Math.min(o.concurrency, o.ratePer10s * (Math.floor(t / 10) + 1));
    while (freeAt.length < allowed && freeAt.length < queued + freeAt.filter((f) => f > t).length) {
      freeAt.push(t + o.coldStartS);
      busyS += o.coldStartS;
    }
    for (let i = 0; i < freeAt.length && queued > 0; i++) {
      if (freeAt[i]! <= t + 1e-9) {
        freeAt[i] = Math.max(freeAt[i]!, t) + o.taskS;
        busyS += o.taskS;
        queued--;
        end = Math.max(end, freeAt[i]!);
      }
    }
    t += step;
  }
  const lambdaS = end;
  const fixedS = Math.ceil(o.tasks / o.concurrency) * o.taskS;
  return {
    workload: 'sleep-burst (simulated)',
    tasks: o.tasks,
    concurrency: o.concurrency,
    scalingRate: `${o.ratePer10s} environments / 10 s`,
    coldStartS: o.coldStartS,
    memoryMB: o.memoryMB,
    lambda: { totalS: round(lambdaS), environments: freeAt.length, gbSeconds: Math.round(busyS * gb) },
    fixedPool: { workers: o.concurrency, totalS: fixedS, gbSecondsDuringJob: Math.round(o.concurrency * fixedS * gb) },
  };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

if (!args['no-live']) await live();
if (!args['no-sim']) {
  emit(simulateLambda({ tasks: Number(args['sim-tasks']), taskS: 1, concurrency: Number(args['sim-concurrency']), ratePer10s: 1000, coldStartS: Number(args['cold-start']), memoryMB: Number(args['memory-mb']) }));
  emit(simulateLambda({ tasks: Number(args['sim-tasks']), taskS: 1, concurrency: 3000, ratePer10s: 1000, coldStartS: Number(args['cold-start']), memoryMB: Number(args['memory-mb']) }));
}
