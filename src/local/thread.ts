/**
 * The body of a pool thread: loads functions once, runs batches of nodes in the order
 * given, keeps results that only this batch needs, and sends back the rest, moving large
 * buffers rather than copying them.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { UnserializableError, describeError } from '../errors.js';
import { FunctionCache } from '../functions/load.js';
import { assertPortable, transferables } from '../serialize/check-value.js';
import type { FromThread, ToThread } from './messages.js';
import { StepFailure, isThenable, runChain } from './run-chain.js';

const port = parentPort;
if (port === null) throw new Error('tessera: thread.ts must run in a worker thread');

const fns = new FunctionCache((workerData as { tsx?: string } | null)?.tsx);

// Batches run one after another, even when their tasks await: a thread is one slot of
// concurrency, as a thread is in Dask. The next batch is already here when one ends.
let queue: Promise<void> = Promise.resolve();
port.on('message', (message: ToThread) => {
  // One kind of message today; the union leaves room for more.
  queue = queue.then(() => run(message));
});

function reply(message: FromThread, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(message, transfer);
}

async function run(message: Extract<ToThread, { op: 'run' }>): Promise<void> {
  const { id, nodes } = message;
  const started = performance.now();
  try {
    for (const ref of message.fns) await fns.load(ref);
    const local = new Map<string, unknown>(message.inputs);
    let deps: readonly string[] = [];
    const lookup = (dependency: number): unknown => local.get(deps[dependency]!);
    const results: unknown[] = [];
    const times: number[] = [];
    const origin = performance.timeOrigin;
    for (const node of nodes) {
      times.push(origin + performance.now());
      deps = node.steps[0]!.deps;
      let value = runChain(node.steps, node.stepKeys, (s) => fns.get(node.steps[s]!.fn), lookup);
      if (isThenable(value)) value = await value;
      const key = node.stepKeys[node.stepKeys.length - 1]!;
      if (node.out) {
        assertPortable(value, key);
        results.push(value);
      }
      local.set(key, value);
      times.push(origin + performance.now());
    }
    const transfer: ArrayBuffer[] = [];
    for (const value of results) transferables(value, transfer);
    reply({ op: 'done', id, results, startedAt: origin + started, elapsedMs: performance.now() - started, times }, transfer);
  } catch (error) {
    if (error instanceof StepFailure) {
      reply({ op: 'task-failed', id, key: error.key, error: describeError(error.error) });
    } else if (error instanceof UnserializableError) {
      reply({ op: 'unportable', id, key: error.key, path: error.path, reason: error.reason });
    } else {
      reply({ op: 'batch-failed', id, error: describeError(error) });
    }
  }
}

