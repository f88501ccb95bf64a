import { CancelledError, TaskError, UnserializableError, WorkerLostError } from '../errors.js';
import type { FnRef } from '../functions/fn-ref.js';
import type { Plan } from '../graph/plan.js';
import { transferables } from '../serialize/check-value.js';
import { wireNode } from '../protocol/encode-task.js';
import type { WireNode } from '../protocol/task-spec.js';
import { IntMinHeap } from './min-heap.js';
import type { ResolvedLocalOptions } from './options.js';
import { type JobReply, sharedPool } from './pool.js';

const WAITING = 0;
const READY = 1;
const DISPATCHED = 2;
const DONE = 3;

// A batch aims at this much work: long enough that messaging is noise, short enough that
// threads stay balanced. Batch size follows the measured time per node.
const TARGET_BATCH_MS = 4;
const MAX_BATCH = 4096;
const FIRST_BATCH = 8;

/**
 * Runs a plan on the shared thread pool. Ready nodes leave in priority order, in batches;
 * a batch also takes the dependents whose inputs are all inside it, so a thread can run a
 * whole subtree and send back only its root.
 */
export function runThreads(plan: Plan, options: ResolvedLocalOptions): Promise<unknown[]> {
  return new ThreadRun(plan, options).start();
}

class ThreadRun {
  readonly plan: Plan;
  readonly options: ResolvedLocalOptions;
  readonly pool;
  readonly state: Uint8Array;
  readonly missing: Int32Array;
  /** Dependents not yet dispatched: a value can be dropped (or moved) when this reaches 0. */
  readonly undispatched: Int32Array;
  readonly batchOf: Int32Array;
  /** Nodes whose value shares a buffer with another's: never moved to a thread. */
  readonly pinned: Uint8Array;
  readonly results: unknown[];
  readonly ready = new IntMinHeap();
  readonly maxInFlight: number;
  inFlight = 0;
  done = 0;
  nextBatch = 1;
  msPerNode = -1;
  finished = false;
  lastProgress = 0;
  resolve!: (values: unknown[]) => void;
  reject!: (error: Error) => void;

  constructor(plan: Plan, options: ResolvedLocalOptions) {
    this.plan = plan;
    this.options = options;
    this.pool = sharedPool(options.workers);
    const n = plan.size;
    this.state = new Uint8Array(n);
    this.missing = new Int32Array(n);
    this.undispatched = new Int32Array(n);
    this.batchOf = new Int32Array(n);
    this.pinned = new Uint8Array(n);
    this.results = new Array<unknown>(n);
    this.maxInFlight = options.workers * 2;
  }

  start(): Promise<unknown[]> {
    return new Promise<unknown[]>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
      const { size, depStart, dependentStart, tasks, literals } = this.plan;
      const signal = this.options.signal;
      if (signal?.aborted === true) {
        reject(new CancelledError(undefined, { cause: signal.reason }));
        return;
      }
      signal?.addEventListener('abort', this.onAbort, { once: true });
      for (let i = 0; i < size; i++) {
        this.missing[i] = depStart[i + 1]! - depStart[i]!;
        this.undispatched[i] = dependentStart[i + 1]! - dependentStart[i]!;
      }
      for (let i = 0; i < size; i++) {
        if (tasks[i] == null) {
          this.results[i] = literals[i];
          this.complete(i);
        }
      }
      for (let i = 0; i < size; i++) {
        if (this.state[i] === WAITING && this.missing[i] === 0) {
          this.state[i] = READY;
          this.ready.push(i);
        }
      }
      this.pump();
    });
  }

  readonly onAbort = (): void => {
    const reason = this.options.signal?.reason as unknown;
    this.fail(new CancelledError(undefined, { cause: reason }));
  };

  fail(error: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.options.signal?.removeEventListener('abort', this.onAbort);
    this.reject(error);
    this.pool.abort(this, error);
  }

  /** Marks node i computed and wakes its dependents. */
  complete(i: number): void {
    this.state[i] = DONE;
    this.done++;
    const { dependentStart, dependentIdx } = this.plan;
    for (let p = dependentStart[i]!; p < dependentStart[i + 1]!; p++) {
      const d = dependentIdx[p]!;
      if (--this.missing[d]! === 0 && this.state[d] === WAITING) {
        this.state[d] = READY;
        this.ready.push(d);
      }
    }
  }

  pump(): void {
    while (!this.finished && this.inFlight < this.maxInFlight && this.ready.size > 0) this.dispatch();
    if (!this.finished && this.done === this.plan.size) {
      this.finished = true;
      this.options.signal?.removeEventListener('abort', this.onAbort);
      this.options.onProgress?.({ done: this.done, total: this.plan.size });
      this.resolve(Array.from(this.plan.outputs, (j) => this.results[j]));
    }
  }

  batchSize(): number {
    if (this.msPerNode < 0) return FIRST_BATCH;
    const bySpeed = Math.floor(TARGET_BATCH_MS / Math.max(this.msPerNode, 1e-6));
    return Math.max(1, Math.min(MAX_BATCH, bySpeed));
  }

  dispatch(): void {
    const { depStart, depIdx, dependentStart, dependentIdx, isOutput, keys } = this.plan;
    const id = this.nextBatch++;
    const limit = this.batchSize();
    const members: number[] = [];
    const add = (i: number): void => {
      this.state[i] = DISPATCHED;
      this.batchOf[i] = id;
      members.push(i);
    };
    // Take ready nodes, and after each, any dependent whose inputs are all done or here.
    for (let scan = 0; members.length < limit; ) {
      if (scan === members.length) {
        const next = this.ready.pop();
        if (next < 0) break;
        add(next);
      }
      const m = members[scan++]!;
      for (let p = dependentStart[m]!; p < dependentStart[m + 1]! && members.length < limit; p++) {
        const d = dependentIdx[p]!;
        if (this.state[d] !== WAITING) continue;
        let inputsHere = true;
        for (let q = depStart[d]!; q < depStart[d + 1]!; q++) {
          const dep = depIdx[q]!;
          if (this.state[dep] !== DONE && this.batchOf[dep] !== id) {
            inputsHere = false;
            break;
          }
        }
        if (inputsHere) add(d);
      }
    }

    const nodes: WireNode[] = [];
    const fns = new Map<string, FnRef>();
    const inputs: [string, unknown][] = [];
    const transfer: ArrayBuffer[] = [];
    const returned: number[] = [];
    for (const m of members) {
      let out = isOutput[m] === 1;
      for (let p = dependentStart[m]!; p < dependentStart[m + 1]! && !out; p++) out = this.batchOf[dependentIdx[p]!] !== id;
      if (out) returned.push(m);
      nodes.push(wireNode(this.plan, m, out, fns));
      for (let q = depStart[m]!; q < depStart[m + 1]!; q++) {
        const dep = depIdx[q]!;
        if (this.batchOf[dep] !== id && this.state[dep] === DONE && this.batchOf[dep] !== -id) {
          this.batchOf[dep] = -id; // listed once per batch
          const value = this.results[dep];
          inputs.push([keys[dep]!, value]);
          // The last consumer may take the buffers; literals stay the caller's.
          if (this.undispatched[dep] === countIn(dependentStart, dependentIdx, dep, this.batchOf, id) && isOutput[dep] === 0 && this.plan.tasks[dep] != null && this.pinned[dep] === 0) {
            transferables(value, transfer);
          }
        }
      }
    }
    // Now the inputs' dependents in this batch are dispatched; drop what nobody else needs.
    for (const m of members) {
      for (let q = depStart[m]!; q < depStart[m + 1]!; q++) {
        const dep = depIdx[q]!;
        if (--this.undispatched[dep]! === 0 && isOutput[dep] === 0) this.results[dep] = undefined;
      }
    }

    this.inFlight++;
    this.pool.run({ nodes, fns: [...fns.values()], inputs, transfer }, this).then(
      (reply) => {
        this.onReply(members, returned, reply);
      },
      (error: unknown) => {
        this.fail(error instanceof Error ? error : new WorkerLostError('', String(error)));
      },
    );
  }

  onReply(members: readonly number[], returned: readonly number[], reply: JobReply): void {
    this.inFlight--;
    if (this.finished) return;
    switch (reply.op) {
      case 'done': {
        const perNode = reply.elapsedMs / members.length;
        this.msPerNode = this.msPerNode < 0 ? perNode : 0.7 * this.msPerNode + 0.3 * perNode;
        for (let k = 0; k < returned.length; k++) this.results[returned[k]!] = reply.results[k];
        if (returned.length > 1) this.pinShared(returned, reply.results);
        for (const m of members) this.complete(m);
        this.progress();
        this.pump();
        return;
      }
      case 'task-failed':
        this.fail(new TaskError(reply.key, reply.error));
        return;
      case 'unportable':
        this.fail(new UnserializableError(reply.key, reply.path, reply.reason));
        return;
    }
  }

  /** Results of one reply that share a buffer (a task returning its input) stay copies. */
  pinShared(nodes: readonly number[], values: readonly unknown[]): void {
    const owner = new Map<ArrayBuffer, number>();
    for (let k = 0; k < nodes.length; k++) {
      for (const buffer of transferables(values[k])) {
        const other = owner.get(buffer);
        if (other === undefined) {
          owner.set(buffer, nodes[k]!);
        } else {
          this.pinned[other] = 1;
          this.pinned[nodes[k]!] = 1;
        }
      }
    }
  }

  progress(): void {
    const onProgress = this.options.onProgress;
    if (onProgress === undefined) return;
    const now = performance.now();
    if (now - this.lastProgress < 50) return;
    this.lastProgress = now;
    onProgress({ done: this.done, total: this.plan.size });
  }
}

/** How many dependents of `dep` are in batch `id`. */
function countIn(start: Int32Array, idx: Int32Array, dep: number, batchOf: Int32Array, id: number): number {
  let n = 0;
  for (let p = start[dep]!; p < start[dep + 1]!; p++) if (batchOf[idx[p]!] === id) n++;
  return n;
}
