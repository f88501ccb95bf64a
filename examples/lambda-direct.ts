/**
 * Lambda in direct mode: a wide fan-out whose batches of ready tasks go to synchronous
 * function invocations, which write their results to Redis and return. Nothing in Lambda
 * dials the scheduler: a direct worker beside it (a small local process) hands each
 * invocation its tasks, and the scheduler counts the results as held by the store.
 *
 *   npx tsx examples/lambda-direct.ts [--tasks 2000] [--lambdas 8] [--redis redis://127.0.0.1:6379]
 *
 * Without `--redis` it starts a redis-server of its own (Debian's, on a free port). It runs
 * against the project's local Lambda service, so no AWS account is needed; on AWS, give a
 * region and a role instead of an endpoint, and an ElastiCache address the functions reach.
 */
import { parseArgs } from 'node:util';
import { Client, lambdaBackend, LocalCluster, RedisStore } from 'tessera';
import { startLambdaService } from '../test/helpers/lambda/index.js';
import { startRedis } from '../test/helpers/redis.js';

const { values } = parseArgs({ options: { tasks: { type: 'string', default: '2000' }, lambdas: { type: 'string', default: '8' }, redis: { type: 'string' } } });
const tasks = Number(values.tasks);
const lambdas = Number(values.lambdas);

/** A small computation per element. Self-contained: it travels as source. */
const score = (i: number): number => {
  let h = i;
  for (let k = 0; k < 10_000; k++) h = (h * 1103515245 + 12345) % 2147483648;
  return h % 1000;
};

const lambda = await startLambdaService({ concurrency: lambdas });
const redis = values.redis === undefined ? await startRedis() : undefined;
const store = await RedisStore.connect(values.redis ?? redis!.url);
const cluster = await LocalCluster.start({ workers: 0, store, dashboard: false, log: false });
const direct = lambdaBackend({
  mode: 'direct',
  scheduler: cluster.address,
  store,
  role: 'arn:aws:iam::123456789012:role/tessera-worker',
  endpoint: lambda.endpoint,
  region: lambda.region,
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  memoryMB: 1769,
  timeout: 300,
  concurrency: lambdas,
  invocationsPerWorker: lambdas,
  log: false,
});
try {
  const { fn, pkg } = await direct.prepare();
  console.log(`function ${fn.name}: ${(pkg.zippedBytes / 1024).toFixed(0)} KB zipped`);
  await direct.scaleUp(1);
  const client = await Client.connect(cluster.address);
  const started = performance.now();
  const futures = client.map(score, Array.from({ length: tasks }, (_, i) => i));
  const results = await client.gather(futures);
  const seconds = (performance.now() - started) / 1000;
  const held = futures.filter((f) => cluster.scheduler.taskInfo(f.key)?.whoHas.some((h) => h.startsWith('store:')) === true).length;
  // The direct worker's counts reach this process twice a second.
  await new Promise((resolve) => setTimeout(resolve, 600));
  console.log(`${results.length} results in ${seconds.toFixed(1)} s; ${direct.stats.invocations} invocations; ${held} held by the store`);
  await client.close();
} finally {
  await direct.close();
  await cluster.close();
  await store.close();
  await lambda.close();
  await redis?.stop();
}
