/**
 * A persistent pool that bursts onto Lambda: two local worker processes hold the results,
 * and the work beyond what they can finish in the target time goes to Lambda invocations,
 * each a Tessera worker that dials out to the scheduler. When the queue is drained the
 * invocations retire (their results move to the pool) and Lambda is back to zero.
 *
 *   npx tsx examples/lambda.ts [--tasks 200] [--sleep 1] [--lambdas 8] [--redis redis://127.0.0.1:6379]
 *
 * With `--redis`, the cluster has a Redis result store: each Lambda worker writes its
 * results there before its invocation returns, and they are read from there afterwards.
 *
 * It runs against the project's local Lambda service (real execution environments running
 * AWS's runtime interface client; `scripts/lambda/ensure.sh` builds it once), so no AWS
 * account is needed. On AWS, the same `lambdaBackend()` takes a region and a role instead
 * of an endpoint, and a scheduler address the functions can reach (docs/lambda.md).
 */
import { parseArgs } from 'node:util';
import { Client, lambdaBackend, LocalCluster, RedisStore } from 'tessera';
import { startLambdaService } from '../test/helpers/lambda/index.js';

const { values } = parseArgs({ options: { tasks: { type: 'string', default: '200' }, sleep: { type: 'string', default: '1' }, lambdas: { type: 'string', default: '8' }, redis: { type: 'string' } } });
const tasks = Number(values.tasks);
const sleepMs = Number(values.sleep) * 1000;
const lambdas = Number(values.lambdas);

/** One second of "work" that holds its thread, as computation would. Self-contained: it travels as source. */
const simulate = ({ i, ms }: { i: number; ms: number }): number => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  return (i * 7919) % 1000;
};

const lambda = await startLambdaService({ concurrency: lambdas });
const store = values.redis === undefined ? undefined : await RedisStore.connect(values.redis);
const cluster = await LocalCluster.start({
  workers: 2,
  ...(store === undefined ? {} : { store }),
  dashboard: false,
  log: (line) => line.startsWith('adaptive:') && console.log(`  ${line}`),
});
const burst = lambdaBackend({
  scheduler: cluster.address,
  role: 'arn:aws:iam::123456789012:role/tessera-worker',
  endpoint: lambda.endpoint,
  region: lambda.region,
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  memoryMB: 512,
  timeout: 300,
  concurrency: lambdas,
  log: false,
});
try {
  const { fn, pkg } = await burst.prepare();
  console.log(`function ${fn.name}: ${(pkg.zippedBytes / 1024).toFixed(0)} KB zipped`);
  cluster.adapt({ minimum: 2, maximum: 2 + lambdas, burst, targetDuration: '5s', interval: 250, waitCount: 2 });
  const client = await Client.connect(cluster.address);
  const started = performance.now();
  const results = await client.gather(client.map(simulate, Array.from({ length: tasks }, (_, i) => ({ i, ms: sleepMs }))));
  console.log(`${results.length} results in ${((performance.now() - started) / 1000).toFixed(1)} s; ${burst.stats.invoked} Lambda invocations`);
  while (burst.requested > 0) await new Promise((resolve) => setTimeout(resolve, 250));
  console.log(`Lambda back to zero; ${cluster.scheduler.workerNames().size} pool workers${store === undefined ? '' : ' and the store'} hold the results`);
  await client.close();
} finally {
  await burst.close();
  await cluster.close();
  await lambda.close();
  await store?.close();
}
