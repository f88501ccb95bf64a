/**
 * A direct-mode Lambda worker: the process the direct backend starts beside the scheduler.
 * It registers as an ordinary worker that cannot be reached (`listen: false`: its results
 * are held by the scheduler's store), advertises `tasksPerInvocation` "threads" per
 * invocation it may have under way — so the scheduler gives it enough ready tasks to fill
 * its invocations — and runs the batches its core hands those threads as synchronous
 * invocations of the graph's function, several batches to one (deploy/lambda/direct-runner.ts). The scheduler knows nothing of
 * Lambda: it sees a worker with many threads.
 *
 * An entry point, as main.ts and lambda-handler.ts are. Its settings arrive as JSON in
 * TESSERA_LAMBDA_DIRECT (see DirectProcessConfig), the token in TESSERA_TOKEN; it prints
 * its worker id on stdout once registered and leaves on SIGTERM, SIGINT, or when the
 * scheduler retires it.
 */
import { LambdaClient } from '@aws-sdk/client-lambda';
import { DirectRunner } from '../deploy/lambda/direct-runner.js';
import type { DirectProcessConfig } from '../deploy/lambda/direct.js';
import { openStore } from '../store/index.js';
import { withJobRunner } from '../worker/executor.js';
import { Worker } from '../worker/worker.js';

const log = (line: string): void => void process.stderr.write(`tessera lambda-direct: ${line}\n`);

async function main(): Promise<void> {
  const config = JSON.parse(process.env['TESSERA_LAMBDA_DIRECT'] ?? '{}') as DirectProcessConfig;
  const token = process.env['TESSERA_TOKEN'];
  const client = new LambdaClient({
    maxAttempts: 1,
    ...(config.region === undefined ? {} : { region: config.region }),
    ...(config.endpoint === undefined ? {} : { endpoint: config.endpoint }),
  });
  const store = await openStore(config.store, { connectTimeoutMs: 5000 });
  const runners: DirectRunner[] = [];
  const worker = await withJobRunner(
    () => {
      const runner = new DirectRunner({
        client,
        functionName: config.functionName,
        store,
        slots: config.invocations,
        tasksPerInvocation: config.tasksPerInvocation,
        retry: config.retry,
        attempts: config.attempts,
        inputTtlMs: config.inputTtlMs,
        log,
      });
      runners.push(runner);
      return { run: (job) => runner.run(job), destroy: (error) => runner.destroy(error) };
    },
    () =>
      Worker.start({
        scheduler: config.scheduler,
        name: config.name,
        nthreads: config.invocations * config.tasksPerInvocation,
        listen: false,
        metricsPort: false,
        ...(token === undefined ? {} : { token }),
        log,
      }),
  );
  process.stdout.write(`${worker.id}\n`);
  // The runner's counts, for the backend's stats, whenever they changed.
  let last = '';
  const report = (): void => {
    const line = JSON.stringify(runners[0]?.stats ?? null);
    if (line === last || runners.length === 0) return;
    last = line;
    process.stdout.write(`stats ${line}\n`);
  };
  const reporting = setInterval(report, 500);
  const leave = (): void => void worker.close({ graceful: true, timeout: 30_000 });
  process.once('SIGTERM', leave);
  process.once('SIGINT', leave);
  await worker.closed;
  clearInterval(reporting);
  report();
  client.destroy();
  await store.close();
}

main().then(
  () => {
    // Everything is closed; the process ends by itself, or shortly anyway.
    setTimeout(() => process.exit(0), 5000).unref();
  },
  (error: unknown) => {
    log(error instanceof Error ? `${error.name}: ${error.message}` : String(error));
    process.exit(1);
  },
);
