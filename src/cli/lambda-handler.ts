/**
 * The code a Tessera Lambda function runs (worker mode). Each invocation starts a worker
 * that dials out to the scheduler — a function cannot listen, so the worker serves its data
 * through the scheduler's relay — takes tasks until the scheduler retires it (the adaptive
 * loop retires idle workers) or its deadline nears, and returns. Before the deadline it
 * retires itself: the scheduler moves the results only it holds to workers that stay and
 * hands its unfinished tasks to others, so nothing a client holds ends with the invocation.
 * An invocation killed anyway (its timeout, a crash) is a lost worker: its tasks rerun.
 *
 * With a result store (the scheduler names it when the worker registers), the worker writes
 * each result there before reporting it — first write wins, so a retried or duplicated
 * delivery leaves one value per key — and closing waits for writes under way: the
 * invocation returns only once everything it computed is in the store.
 *
 * An entry point, as main.ts is for the `tessera` command: deploy/lambda/package.ts bundles
 * it into the function's `handler.js`, beside the pool's `thread.js`.
 */
import { randomBytes } from 'node:crypto';
import { Worker } from '../worker/worker.js';
import { type LambdaContext, type WorkerInvocation, type WorkerInvocationResult, parseWorkerInvocation } from '../deploy/lambda/invocation.js';

export async function handler(event: unknown, context: LambdaContext): Promise<WorkerInvocationResult> {
  const started = Date.now();
  const invocation = parseWorkerInvocation(event);
  // A retried or duplicated delivery runs under the same request id: the suffix keeps each
  // execution a distinct worker, and the scheduler treats them as two workers.
  const name = `${invocation.name}.${randomBytes(3).toString('hex')}`;
  const memoryMB = Number(process.env['AWS_LAMBDA_FUNCTION_MEMORY_SIZE'] ?? '1024');
  const worker = await startWorker(invocation, name, memoryMB, context);
  let reason: WorkerInvocationResult['reason'] = 'retired';
  // Leave while there is time to hand data over; what is left of the reserve bounds the handover.
  // A reserve of 0 leaves the ending to the platform (the worker is then lost at the timeout).
  const leaveIn = Math.max(0, context.getRemainingTimeInMillis() - invocation.reserveMs);
  const deadline = invocation.reserveMs === 0 ? undefined : setTimeout(() => {
    reason = 'deadline';
    void worker.close({ graceful: true, timeout: Math.max(100, invocation.reserveMs - 500) });
  }, leaveIn);
  await worker.closed;
  if (deadline !== undefined) clearTimeout(deadline);
  return { name, reason, ms: Date.now() - started, remainingMs: context.getRemainingTimeInMillis() };
}

function startWorker(invocation: WorkerInvocation, name: string, memoryMB: number, context: LambdaContext): Promise<Worker> {
  return Worker.start({
    scheduler: invocation.scheduler,
    name,
    nthreads: invocation.nthreads,
    ...(invocation.token === undefined ? {} : { token: invocation.token }),
    // Functions cannot accept connections: data travels through the scheduler.
    listen: false,
    metricsPort: false,
    memoryLimit: memoryMB * 2 ** 20,
    // /tmp is small and dies with the environment: results stay in memory.
    memoryTarget: false,
    connectTimeout: Math.max(1000, Math.min(invocation.connectTimeoutMs, context.getRemainingTimeInMillis() - invocation.reserveMs)),
    log: (line) => process.stderr.write(`tessera worker ${name}: ${line}\n`),
  });
}
