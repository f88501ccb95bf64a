/**
 * The body of a pool thread: loads functions once, runs batches of nodes in the order
 * given, keeps results that only this batch needs, and sends back the rest, moving large
 * buffers rather than copying them.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { UnserializableError, describeError } from '../errors.js';
import { FunctionCache } from '../functions/load.js';
import { MIN_COPY_TRANSFER_BYTES, assertPortable, transferables, unreferenced } from '../serialize/check-value.js';
import type { FromThread, ToThread } from './messages.js';
import { nodeOf } from '../protocol/encoded-spec.js';
import { MAX_CLAIMABLE } from './pool.js';
import { StepFailure, isThenable, runChain } from './run-chain.js';

const port = parentPort;
if (port === null) throw new Error('tessera: thread.ts must run in a worker thread');

const data = workerData as { tsx?: string; claims: Int32Array };
const fns = new FunctionCache(data.tsx);
// One word per job in flight, shared with the pool (JobClaim in pool.ts): nodes started in
// the low 16 bits, nodes this thread may start in the high 16. Jobs larger than that run whole.
const claims = data.claims;

// Batches run one after another, even when their tasks await: a thread is one slot of
// concurrency, as a thread is in Dask. The next batch is already here when one ends.
let queue: Promise<void> = Promise.resolve();
let received = 0;
port.on('message', (message: ToThread) => {
  // One kind of message today; the union leaves room for more. Jobs use the claim words in
  // the order they arrive, as the pool assigns them.
  const slot = received++ % claims.length;
  queue = queue.then(() => run(message, slot));
});

/** Takes node k of the job in `slot`; false when the sender took it back for another thread. */
function claim(slot: number, k: number): boolean {
  for (;;) {
    const word = Atomics.load(claims, slot);
    if (k >= word >>> 16) return false;
    if (Atomics.compareExchange(claims, slot, word, (word + 1) | 0) === word) return true;
  }
}

function reply(message: FromThread, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(message, transfer);
}

async function run(message: Extract<ToThread, { op: 'run' }>, slot: number): Promise<void> {
  const { id, returnAll } = message;
  const claimable = message.nodes.length <= MAX_CLAIMABLE;
  const started = performance.now();
  try {
    // A spec that does not decode fails its batch, as a function that does not load does.
    const nodes = message.nodes.map(nodeOf);
    for (const ref of message.fns) await fns.load(ref);
    const local = new Map<string, unknown>(message.inputs);
    let deps: readonly string[] = [];
    const lookup = (dependency: number): unknown => local.get(deps[dependency]!);
    const results: unknown[] = [];
    const times: number[] = [];
    const origin = performance.timeOrigin;
    let ran = 0;
    for (; ran < nodes.length; ran++) {
      // The nodes after one taken back were taken back too: the sender cuts only tails.
      if (claimable && !claim(slot, ran)) break;
      const node = nodes[ran]!;
      times.push(origin + performance.now());
      deps = node.steps[0]!.deps;
      let value = runChain(node.steps, node.stepKeys, (s) => fns.get(node.steps[s]!.fn), lookup);
      if (isThenable(value)) value = await value;
      const key = node.stepKeys[node.stepKeys.length - 1]!;
      if (returnAll || node.out) {
        assertPortable(value, key);
        results.push(value);
      }
      local.set(key, value);
      times.push(origin + performance.now());
    }
    if (ran < nodes.length) {
      // A tail went to another thread: values it needs from the nodes run here go back too,
      // after the others, in the order they ran (threads.ts expects exactly these).
      const needed = new Set<string>();
      for (let k = ran; k < nodes.length; k++) for (const dep of nodes[k]!.steps[0]!.deps) needed.add(dep);
      for (let k = 0; k < ran; k++) {
        const node = nodes[k]!;
        const key = node.stepKeys[node.stepKeys.length - 1]!;
        if (returnAll || node.out || !needed.has(key)) continue;
        const value = local.get(key);
        assertPortable(value, key);
        results.push(value);
      }
    }
    const transfer: ArrayBuffer[] = [];
    for (const value of results) transferables(value, transfer);
    const recycled = message.recycle ? recyclable(message.inputs, results) : [];
    transfer.push(...recycled);
    reply({ op: 'done', id, results, startedAt: origin + started, elapsedMs: performance.now() - started, times, ...(recycled.length === 0 ? {} : { recycled }) }, transfer);
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

/**
 * The inputs' large buffers that no result refers to, once the batch is done: copies made
 * for it alone, which the worker writes its next copies into (BufferPool). A task must not
 * keep an input past its return (docs/functions.md).
 */
function recyclable(inputs: readonly (readonly [string, unknown])[], results: readonly unknown[]): ArrayBuffer[] {
  const buffers: ArrayBuffer[] = [];
  for (const [, value] of inputs) transferables(value, buffers);
  // Smaller ones were cloned, not copied into a buffer of their own: nothing takes them.
  const large = buffers.filter((b) => b.byteLength >= MIN_COPY_TRANSFER_BYTES);
  return large.length === 0 ? large : unreferenced(large, results);
}
