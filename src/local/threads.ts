import { CancelledError, TaskError, UnserializableError, WorkerLostError } from '../errors.js';
import type { FnRef } from '../functions/fn-ref.js';
import type { Plan } from '../graph/plan.js';
import { transferables } from '../serialize/check-value.js';
import { packNode } from '../protocol/encode-task.js';
import type { PackedNode, WireNode } from '../protocol/task-spec.js';
import { IntMinHeap } from './min-heap.js';
import type { ResolvedLocalOptions } from './options.js';
import { JobClaim, type JobReply, sharedPool } from './pool.js';

const WAITING = 0;
const READY = 1;
const DISPATCHED = 2;
const DONE = 3;

// A batch aims at this much work: long enough that messaging is noise, short enough that
// threads stay balanced. Batch size follows the measured time per node.
const TARGET_BATCH_MS = 4;
const MAX_BATCH = 4096;
// Until a reply says how long a node takes, a batch is at most this long, and at most the
// ready work divided among the idle threads: eight ready tasks of a second each must not
// all go to one thread.
const FIRST_BATCH = 8;
// Attempts to take back a tail that a thread keeps reaching first, per pump.
const STEAL_ATTEMPTS = 4;

/** A batch in flight: its nodes in the order the thread runs them, and how it may be cut. */
interface Batch {
  readonly id: number;
  readonly members: readonly number[];
  /** Positions in `members` of the nodes whose results come back, in order. */
  readonly returned: readonly number[];
  readonly claim: JobClaim;
  /** Members before this position consume buffers moved to the thread: they cannot leave it. */
  readonly movedUntil: number;
}

/**
 * Runs a plan on the shared thread pool. Ready nodes leave in priority order, in batches;
 * a batch also takes the dependents whose inputs are all inside it, so a thread can run a
 * whole subtree and send back only its root.
 *
 * Work-conserving: while a thread is idle and nothing is ready, the tail of another
 * thread's batch that it has not started is taken back (`steal`) and sent to the idle one,
 * so a long task never holds back the tasks queued behind it.
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
  /** Dependents not yet dispatched: a value's buffers can be moved when the last ones leave. */
  readonly undispatched: Int32Array;
  /** Dependents not yet done: a value is dropped when this reaches 0 (a stolen tail may need it again until then). */
  readonly unfinished: Int32Array;
  readonly batchOf: Int32Array;
  /** Nodes whose value shares a buffer with another's: never moved to a thread. */
  readonly pinned: Uint8Array;
  /** Scratch: a node's position in the batch being cut. */
  readonly position: Int32Array;
  readonly results: unknown[];
  readonly ready = new IntMinHeap();
  readonly batches = new Map<number, Batch>();
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
    this.unfinished = new Int32Array(n);
    this.batchOf = new Int32Array(n);
    this.pinned = new Uint8Array(n);
    this.position = new Int32Array(n);
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
        this.undispatched[i] = this.unfinished[i] = dependentStart[i + 1]! - dependentStart[i]!;
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

  /** Marks node i computed, wakes its dependents and drops inputs nobody needs any more. */
  complete(i: number): void {
    this.state[i] = DONE;
    this.done++;
    const { dependentStart, dependentIdx, depStart, depIdx, isOutput } = this.plan;
    for (let p = dependentStart[i]!; p < dependentStart[i + 1]!; p++) {
      const d = dependentIdx[p]!;
      if (--this.missing[d]! === 0 && this.state[d] === WAITING) {
        this.state[d] = READY;
        this.ready.push(d);
      }
    }
    for (let q = depStart[i]!; q < depStart[i + 1]!; q++) {
      const dep = depIdx[q]!;
      if (--this.unfinished[dep]! === 0 && isOutput[dep] === 0) this.results[dep] = undefined;
    }
  }

  pump(): void {
    while (!this.finished && this.inFlight < this.maxInFlight && this.ready.size > 0) this.dispatch();
    // Nothing ready, a thread idle: take work back from a thread that has more queued.
    for (let attempt = 0; attempt < STEAL_ATTEMPTS && !this.finished && this.ready.size === 0 && this.inFlight < this.maxInFlight && this.pool.idleThreads > 0; attempt++) {
      if (!this.steal()) break;
    }
    if (!this.finished && this.done === this.plan.size) {
      this.finished = true;
      this.options.signal?.removeEventListener('abort', this.onAbort);
      this.options.onProgress?.({ done: this.done, total: this.plan.size });
      this.resolve(Array.from(this.plan.outputs, (j) => this.results[j]));
    }
  }

  batchSize(): number {
    if (this.msPerNode < 0) return Math.max(1, Math.min(FIRST_BATCH, Math.ceil(this.ready.size / Math.max(1, this.pool.idleThreads))));
    const bySpeed = Math.floor(TARGET_BATCH_MS / Math.max(this.msPerNode, 1e-6));
    return Math.max(1, Math.min(MAX_BATCH, bySpeed, Math.ceil(this.ready.size / this.options.workers)));
  }

  dispatch(): void {
    const { depStart, depIdx, dependentStart, dependentIdx } = this.plan;
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
    this.send(id, members, true);
  }

  /**
   * Sends batch `id` (its members already carry the id in batchOf). On a first dispatch to
   * an idle thread, the first member may take the buffers of inputs only it still needs:
   * that member starts at once and is never taken back, so a moved buffer never pins a tail.
   * Everything else, and a stolen tail sent again, gets copies.
   */
  send(id: number, members: readonly number[], first: boolean): void {
    const { depStart, depIdx, dependentStart, dependentIdx, isOutput, keys } = this.plan;
    const nodes: (PackedNode | WireNode)[] = [];
    const fns = new Map<string, FnRef>();
    const inputs: [string, unknown][] = [];
    const transfer: ArrayBuffer[] = [];
    const returned: number[] = [];
    const mayMove = first && this.pool.idleThreads > 0;
    for (let k = 0; k < members.length; k++) {
      const m = members[k]!;
      let out = isOutput[m] === 1;
      for (let p = dependentStart[m]!; p < dependentStart[m + 1]! && !out; p++) out = this.batchOf[dependentIdx[p]!] !== id;
      if (out) returned.push(k);
      nodes.push(packNode(this.plan, m, out, fns));
      for (let q = depStart[m]!; q < depStart[m + 1]!; q++) {
        const dep = depIdx[q]!;
        if (this.batchOf[dep] !== id && this.state[dep] === DONE && this.batchOf[dep] !== -id) {
          this.batchOf[dep] = -id; // listed once per batch
          const value = this.results[dep];
          inputs.push([keys[dep]!, value]);
          // The last consumer may take the buffers; literals stay the caller's.
          if (mayMove && k === 0 && this.undispatched[dep] === countIn(dependentStart, dependentIdx, dep, this.batchOf, id) && isOutput[dep] === 0 && this.plan.tasks[dep] != null && this.pinned[dep] === 0) {
            transferables(value, transfer);
          }
        }
      }
    }
    if (first) {
      for (const m of members) for (let q = depStart[m]!; q < depStart[m + 1]!; q++) this.undispatched[depIdx[q]!]!--;
    }

    const claim = new JobClaim(members.length);
    const batch: Batch = { id, members, returned, claim, movedUntil: transfer.length > 0 ? 1 : 0 };
    this.batches.set(id, batch);
    this.inFlight++;
    this.pool.run({ nodes, fns: [...fns.values()], inputs, transfer, claim }, this).then(
      (reply) => {
        this.onReply(batch, reply);
      },
      (error: unknown) => {
        this.fail(error instanceof Error ? error : new WorkerLostError('', String(error)));
      },
    );
  }

  /**
   * Takes back the tail of a batch in flight that its thread has not started, about half of
   * what is left, and sends what of it can run now to an idle thread. Tail nodes that need a
   * value computed earlier in the batch wait here instead: the thread sends those values
   * back with its reply, and the nodes leave again once their inputs are done. False when
   * nothing can move.
   */
  steal(): boolean {
    let best: Batch | undefined;
    let bestCut = -1;
    let bestGain = 0;
    for (const batch of this.batches.values()) {
      const { claim } = batch;
      const end = claim.end;
      const { half, lowest } = claim.cuts(batch.movedUntil);
      if (end - lowest < 1) continue;
      let cut = half;
      let gain = this.runnableInTail(batch, cut, end);
      if (gain === 0 && cut > lowest) gain = this.runnableInTail(batch, (cut = lowest), end);
      if (gain > bestGain) {
        best = batch;
        bestCut = cut;
        bestGain = gain;
      }
    }
    if (best === undefined) return false;
    const { members, id: from } = best;
    const end = best.claim.end;
    // The thread got there first: the caller tries again with what is left.
    if (!best.claim.truncate(bestCut)) return true;
    const { depStart, depIdx } = this.plan;
    const id = this.nextBatch++;
    const runnable: number[] = [];
    for (let k = bestCut; k < end; k++) {
      const m = members[k]!;
      if (this.runsAlone(m, from)) {
        this.batchOf[m] = id;
        runnable.push(m);
      } else {
        // Back to waiting: `missing` still counts its inputs not done, and it will be
        // dispatched (and counted as dispatched) again.
        this.state[m] = WAITING;
        this.batchOf[m] = 0;
        for (let q = depStart[m]!; q < depStart[m + 1]!; q++) this.undispatched[depIdx[q]!]!++;
      }
    }
    if (runnable.length > 0) this.send(id, runnable, false);
    return true;
  }

  /** Whether node m, in the tail cut from batch `from`, has every input done or in the runnable tail. */
  runsAlone(m: number, from: number): boolean {
    const { depStart, depIdx } = this.plan;
    for (let q = depStart[m]!; q < depStart[m + 1]!; q++) {
      const dep = depIdx[q]!;
      // An input still in the batch's head, or a tail node that waits too.
      if (this.batchOf[dep] === from || (this.state[dep] !== DONE && this.batchOf[dep] === 0)) return false;
    }
    return true;
  }

  /** How many nodes of the tail from `cut` could run elsewhere now. */
  runnableInTail(batch: Batch, cut: number, end: number): number {
    const { depStart, depIdx } = this.plan;
    const { members, id } = batch;
    // Positions: an input inside the batch is runnable with the tail only if it is in the
    // tail and runnable itself (marked by position -1 - k).
    for (let k = 0; k < end; k++) this.position[members[k]!] = k;
    let runnable = 0;
    for (let k = cut; k < end; k++) {
      const m = members[k]!;
      let alone = true;
      for (let q = depStart[m]!; q < depStart[m + 1]!; q++) {
        const dep = depIdx[q]!;
        if (this.batchOf[dep] === id && this.position[dep]! >= 0) {
          alone = false;
          break;
        }
      }
      if (alone) {
        this.position[m] = -1 - k;
        runnable++;
      }
    }
    return runnable;
  }

  onReply(batch: Batch, reply: JobReply): void {
    this.inFlight--;
    this.batches.delete(batch.id);
    if (this.finished) return;
    switch (reply.op) {
      case 'done': {
        // The thread ran the nodes before the claim's end; the rest went to another thread.
        const { members, returned } = batch;
        const ran = batch.claim.end;
        if (ran > 0) {
          const perNode = reply.elapsedMs / ran;
          this.msPerNode = this.msPerNode < 0 ? perNode : 0.7 * this.msPerNode + 0.3 * perNode;
        }
        const nodes: number[] = [];
        for (let r = 0; r < returned.length && returned[r]! < ran; r++) nodes.push(members[returned[r]!]!);
        if (ran < members.length) this.headInputs(batch, ran, nodes);
        for (let r = 0; r < nodes.length; r++) this.results[nodes[r]!] = reply.results[r];
        if (nodes.length > 1) this.pinShared(nodes, reply.results);
        for (let k = 0; k < ran; k++) this.complete(members[k]!);
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

  /**
   * After a tail was taken back: the nodes the thread ran that it sent back although no
   * one outside the batch needed them at dispatch — inputs of tail nodes — in the order it
   * ran them, appended to `nodes` (thread.ts applies the same rule).
   */
  headInputs(batch: Batch, ran: number, nodes: number[]): void {
    const { dependentStart, dependentIdx } = this.plan;
    const { members, returned } = batch;
    for (let k = 0; k < members.length; k++) this.position[members[k]!] = k;
    for (let k = 0, r = 0; k < ran; k++) {
      if (returned[r] === k) {
        r++; // came back already
        continue;
      }
      const m = members[k]!;
      for (let p = dependentStart[m]!; p < dependentStart[m + 1]!; p++) {
        const d = dependentIdx[p]!;
        const at = this.position[d]!;
        if (at >= ran && at < members.length && members[at] === d) {
          nodes.push(m);
          break;
        }
      }
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
