/**
 * The code a Tessera Lambda function runs, in either mode; the event's `op` says which.
 *
 * Worker mode (`op: 'worker'`). Each invocation starts a worker
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
 * Direct mode (`op: 'direct'`). Each invocation runs one batch of ready tasks on the
 * worker's own executor — inputs from the payload or the store, functions from the batch,
 * bundled modules from the store — writes every result to the store (first write wins) and
 * answers how the batch ended, with the stored records small enough to carry. Nothing
 * connects back and nothing listens: the caller reports the results as held by the store.
 * A duplicated or retried execution writes nothing new, and it answers with the records
 * the store already held, so every caller sees one value per key.
 *
 * An entry point, as main.ts is for the `tessera` command: deploy/lambda/package.ts bundles
 * it into the function's `handler.js`, beside the pool's `thread.js`.
 */
import { randomBytes } from 'node:crypto';
import type { FnRef } from '../functions/fn-ref.js';
import type { WireNode } from '../protocol/task-spec.js';
import { BUNDLE_SCHEME } from '../protocol/messages.js';
import { fnIdsOf } from '../protocol/encoded-spec.js';
import { decodeValue, encodeValue, openStore, type ResultStore } from '../store/index.js';
import { DataStore } from '../worker/data-store.js';
import type { ExecuteTask } from '../worker/events.js';
import { Executor } from '../worker/executor.js';
import { Worker } from '../worker/worker.js';
import {
  type DirectBatchResult,
  type DirectInvocation,
  type DirectInvocationResult,
  fromBase64,
  moduleKey,
  parseDirectInvocation,
} from '../deploy/lambda/direct-invocation.js';
import { type LambdaContext, type WorkerInvocation, type WorkerInvocationResult, parseWorkerInvocation } from '../deploy/lambda/invocation.js';

export async function handler(event: unknown, context: LambdaContext): Promise<WorkerInvocationResult | DirectInvocationResult> {
  if (typeof event === 'object' && event !== null && (event as { op?: unknown }).op === 'direct') return runDirect(parseDirectInvocation(event));
  return runWorker(event, context);
}

async function runWorker(event: unknown, context: LambdaContext): Promise<WorkerInvocationResult> {
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

// ---- direct mode ----

// What an execution environment keeps between invocations: its store connection, one
// thread (a function's share of CPU is its memory's; 1,769 MB is one vCPU) and the modules
// it has saved. Lambda runs one invocation at a time per environment.
const stores = new Map<string, Promise<ResultStore>>();
const data = new DataStore({ memoryTarget: Infinity });
let executor: Executor | undefined;
const modulesSaved = new Set<string>();

function storeAt(address: string): Promise<ResultStore> {
  let store = stores.get(address);
  if (store === undefined) {
    store = openStore(address, { connectTimeoutMs: 5000 });
    stores.set(address, store);
    // A failed open is tried again by the next invocation.
    store.catch(() => stores.delete(address));
  }
  return store;
}

async function runDirect(invocation: DirectInvocation): Promise<DirectInvocationResult> {
  const store = await storeAt(invocation.store);
  const run = (executor ??= new Executor(1, data));
  const inputKeys: string[] = [];
  const unrunnable = (message: string): DirectInvocationResult => ({ op: 'direct', batches: invocation.batches.map(() => ({ status: 'unrunnable', message })) });
  try {
    for (const [key, text] of invocation.inputs) {
      data.put(key, fromBase64(text), text.length);
      inputKeys.push(key);
    }
    if (invocation.stored.length > 0) {
      const records = await store.get(invocation.stored.map(([, storeKey]) => storeKey));
      for (let i = 0; i < invocation.stored.length; i++) {
        const [key, storeKey] = invocation.stored[i]!;
        const record = records[i];
        if (record === undefined) return unrunnable(`input ${key} is not in the store (${storeKey})`);
        data.put(key, decodeValue(record), record.byteLength);
        inputKeys.push(key);
      }
    }
    for (const hash of invocation.modules) {
      if (modulesSaved.has(hash)) continue;
      const [code] = await store.get([moduleKey(hash)]);
      if (code === undefined) return unrunnable(`module ${BUNDLE_SCHEME}${hash} is not in the store`);
      run.saveModule(hash, code);
      modulesSaved.add(hash);
    }
    const budget = { bytes: invocation.inlineBytes };
    const results: DirectBatchResult[] = [];
    for (let b = 0; b < invocation.batches.length; b++) {
      const job = fromBase64(invocation.batches[b]!) as { nodes: readonly WireNode[]; fns: readonly FnRef[] };
      run.loadFns(job.fns);
      const tasks: ExecuteTask[] = job.nodes.map((node) => ({ key: node.stepKeys[node.stepKeys.length - 1]!, spec: { node }, fns: fnIdsOf(node), dependencies: [] }));
      const needed = new Set(job.nodes.flatMap((node) => node.steps.flatMap((step) => step.deps)));
      results.push(await runBatch(run, store, b + 1, tasks, inputKeys.filter((k) => needed.has(k)), budget));
    }
    return { op: 'direct', batches: results };
  } finally {
    for (const key of inputKeys) data.delete(key);
  }
}

/** Runs one batch as a worker's thread does, and stores what it made. */
async function runBatch(run: Executor, store: ResultStore, id: number, tasks: readonly ExecuteTask[], inputKeys: readonly string[], budget: { bytes: number }): Promise<DirectBatchResult> {
  const event = await run.run(id, tasks, inputKeys, data);
  switch (event.op) {
    case 'batch-done':
      return storeResults(store, tasks, event.values, event.times, budget);
    case 'batch-task-failed': {
      const { error } = event;
      if (error.kind === 'unserializable') return { status: 'unportable', key: event.key, path: error.path ?? '', reason: error.reason ?? error.message };
      return { status: 'task-failed', key: event.key, error: { name: error.name, message: error.message, stack: error.stack } };
    }
    case 'batch-thread-died':
      return { status: 'unrunnable', message: `the thread died: ${event.message}` };
    case 'batch-unrunnable':
      return { status: 'unrunnable', message: `${event.error.name}: ${event.error.message}` };
    default: {
      const never: never = event;
      throw new Error(`unknown batch event '${(never as { op: string }).op}'`);
    }
  }
}

/**
 * Writes each result (first write wins) and reads back, for the answer, the records the
 * store holds: a duplicated or retried execution answers with the first values, not its own.
 */
async function storeResults(
  store: ResultStore,
  tasks: readonly ExecuteTask[],
  values: readonly unknown[],
  times: ArrayLike<number>,
  budget: { bytes: number },
): Promise<DirectBatchResult> {
  const records: Uint8Array[] = [];
  for (let i = 0; i < tasks.length; i++) {
    try {
      records.push(encodeValue(values[i]));
    } catch (error) {
      return { status: 'unportable', key: tasks[i]!.key, path: '', reason: error instanceof Error ? error.message : String(error) };
    }
  }
  const keys = tasks.map((t) => t.key);
  const outcomes = await store.put(keys.map((key, i) => [key, records[i]!] as const));
  // Where an earlier delivery wrote first, its record is the result: answer with it.
  const lost = keys.flatMap((_, i) => (outcomes[i] === 'exists' ? [i] : []));
  if (lost.length > 0) {
    const kept = await store.get(lost.map((i) => keys[i]!));
    lost.forEach((i, j) => {
      const record = kept[j];
      if (record !== undefined) records[i] = record;
    });
  }
  // Within the answer's budget, smallest first, the records as stored.
  const inline = new Array<string | null>(tasks.length).fill(null);
  const order = keys.map((_, i) => i).sort((a, b) => records[a]!.byteLength - records[b]!.byteLength);
  const chosen: number[] = [];
  for (const i of order) {
    const cost = Math.ceil(records[i]!.byteLength / 3) * 4 + 8;
    if (cost > budget.bytes) break;
    budget.bytes -= cost;
    chosen.push(i);
  }
  const nbytes = records.map((r) => r.byteLength);
  if (chosen.length > 0) {
    const stored = await store.get(chosen.map((i) => keys[i]!));
    for (let j = 0; j < chosen.length; j++) {
      const record = stored[j];
      const i = chosen[j]!;
      // Deleted meanwhile (released already): the caller reads, and misses, as it would.
      if (record === undefined) continue;
      inline[i] = Buffer.from(record.buffer, record.byteOffset, record.byteLength).toString('base64');
      nbytes[i] = record.byteLength;
    }
  }
  // Times from this process's clock to the epoch, as a thread reports them.
  const epoch = new Array<number>(times.length);
  for (let i = 0; i < times.length; i++) epoch[i] = times[i]! + performance.timeOrigin;
  return { status: 'done', values: inline, nbytes, times: epoch };
}
