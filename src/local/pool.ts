import { Worker } from 'node:worker_threads';
import { WorkerLostError, describeError } from '../errors.js';
import type { FnRef } from '../functions/fn-ref.js';
import { type NodeToRun, nodeOf } from '../protocol/encoded-spec.js';
import type { FromThread, ToThread } from './messages.js';

/** A node to run, or a spec as its client encoded it, alone or in its task (encoded-spec.ts: the thread decodes it). */
export type JobNode = NodeToRun;

/** A batch of nodes for one thread, and what it needs. */
export interface Job {
  readonly nodes: readonly JobNode[];
  /** Every node's result comes back, whatever its `out` says (a worker's batches). Default false. */
  readonly returnAll?: boolean;
  readonly fns: readonly FnRef[];
  readonly inputs: readonly (readonly [string, unknown])[];
  /** The inputs' large buffers were copied for this job alone: send back the ones no result holds (messages.ts). */
  readonly recycle?: boolean;
  readonly transfer: readonly ArrayBuffer[];
  /** Lets the sender take back nodes the thread has not started; without it the thread runs them all. */
  readonly claim?: JobClaim;
  /**
   * Called once when the job reaches the front of its thread: its first node starts now.
   * `following`: it starts as a thread's answer to another job is handled (the job ahead of
   * it on its thread, as a rule), rather than when the job was handed in.
   */
  readonly onStart?: (following: boolean) => void;
}

/** Jobs with more nodes than this run whole: a claim word holds 16-bit counts. */
export const MAX_CLAIMABLE = 0xffff;

/**
 * The word a thread and the sender share for one job: how many of its nodes the thread has
 * started (low 16 bits) and how many it may start (high 16 bits). The thread claims each
 * node with a compare-and-swap before running it, so the sender can lower the end — take
 * back the tail for an idle thread — without ever racing a node the thread has begun.
 */
export class JobClaim {
  #cells: Int32Array | undefined;
  #slot = 0;
  #end: number;
  #queued: () => boolean = () => true;

  constructor(nodes: number) {
    if (nodes > MAX_CLAIMABLE) throw new RangeError(`a claimable job has at most ${MAX_CLAIMABLE} nodes, got ${nodes}`);
    this.#end = nodes;
  }

  /** Nodes the thread may run: all of them unless the tail was taken back. Final once the job has replied. */
  get end(): number {
    return this.#end;
  }

  /** Nodes the thread has started (or finished); 0 while the job waits in the pool's queue. */
  get started(): number {
    return this.#cells === undefined ? 0 : Atomics.load(this.#cells, this.#slot) & 0xffff;
  }

  /** Whether the job waits behind another job on its thread (or in the pool's queue). */
  get queued(): boolean {
    return this.#queued();
  }

  /**
   * Where the sender may cut now, for about half of what is not started, and the lowest it
   * may cut (`floor` and up): the thread keeps the node it is about to start — its first,
   * unless the job waits behind another. Read once, so the two agree; `truncate` has the
   * last word.
   */
  cuts(floor = 0): { readonly half: number; readonly lowest: number } {
    const started = this.started;
    const lowest = Math.max(started > 0 || this.queued ? started : 1, floor);
    return { half: Math.max(lowest, started + ((this.#end - started) >> 1)), lowest };
  }

  /** Lowers the end to `cut`: true when no node at or after `cut` had been started. */
  truncate(cut: number): boolean {
    if (cut >= this.#end || cut < 0) return false;
    const cells = this.#cells;
    if (cells === undefined) {
      this.#end = cut;
      return true;
    }
    for (;;) {
      const word = Atomics.load(cells, this.#slot);
      if ((word & 0xffff) > cut) return false;
      if (Atomics.compareExchange(cells, this.#slot, word, (cut << 16) | (word & 0xffff)) === word) {
        this.#end = cut;
        return true;
      }
    }
  }

  /** @internal The pool binds the claim to a thread's slot as it sends the job. */
  bind(cells: Int32Array, slot: number, queued: () => boolean): void {
    this.#cells = cells;
    this.#slot = slot;
    this.#queued = queued;
    Atomics.store(cells, slot, this.#end << 16);
  }
}

/** A thread's reply, with which of the pool's threads (0 to size - 1) ran the job. */
export type JobReply = Exclude<FromThread, { op: 'batch-failed' }> & { readonly thread: number };

interface Pending {
  readonly job: Job;
  readonly resolve: (reply: JobReply) => void;
  readonly reject: (error: Error) => void;
  readonly owner: object;
  id: number;
}

// Two batches per thread: the next is already there when the current one ends. Only jobs
// of one owner share a thread this way, so that aborting an owner (which terminates its
// threads) never takes another owner's job, whose moved buffers could not be sent again.
// Each job in flight on a thread has one claim word; the thread replies in order, so the
// k-th job sent to a thread uses word k % PIPELINE on both sides.
const PIPELINE = 2;

type PoolState = 'open' | 'closing' | 'closed';

/**
 * A pool of worker threads shared by every local computation in the process. Threads start
 * on first use, stay for the next computation, and are unref'd while idle so that an idle
 * pool never keeps the process alive.
 */
export class ThreadPool {
  readonly size: number;
  #state: PoolState = 'open';
  readonly #threads: PoolThread[] = [];
  readonly #queue: Pending[] = [];
  #nextId = 1;

  constructor(size: number) {
    this.size = size;
  }

  get state(): PoolState {
    return this.#state;
  }

  /** Threads with nothing to run, counting those not started yet. */
  get idleThreads(): number {
    let idle = this.size - this.#threads.length;
    for (const t of this.#threads) if (t.inFlight.size === 0) idle++;
    return idle;
  }

  /** Runs a job on the least busy thread; `owner` groups jobs so `abort(owner)` can drop them. */
  run(job: Job, owner: object): Promise<JobReply> {
    if (this.#state !== 'open') return Promise.reject(new WorkerLostError('', 'the thread pool is closed'));
    return new Promise<JobReply>((resolve, reject) => {
      this.#queue.push({ job, resolve, reject, owner, id: 0 });
      this.#dispatch();
    });
  }

  /**
   * Drops an owner's jobs: queued ones never run; a thread running one is terminated (a task
   * may loop forever) and its other jobs go back to the queue.
   */
  abort(owner: object, reason: Error): void {
    for (let i = this.#queue.length - 1; i >= 0; i--) {
      const pending = this.#queue[i]!;
      if (pending.owner === owner) {
        this.#queue.splice(i, 1);
        pending.reject(reason);
      }
    }
    for (const thread of [...this.#threads]) {
      if (thread.owner !== owner || thread.inFlight.size === 0) continue;
      this.#remove(thread);
      for (const pending of thread.inFlight.values()) pending.reject(reason);
      thread.inFlight.clear();
      void thread.worker.terminate();
    }
    this.#dispatch();
  }

  /** Lets running jobs finish, then stops every thread. Idempotent. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closing';
    while (this.#threads.some((t) => t.inFlight.size > 0) || this.#queue.length > 0) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    this.destroy();
  }

  /** Stops every thread now; jobs still running reject. Idempotent. */
  destroy(error: Error = new WorkerLostError('', 'the thread pool was destroyed')): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    for (const pending of this.#queue.splice(0)) pending.reject(error);
    for (const thread of this.#threads.splice(0)) {
      for (const pending of thread.inFlight.values()) pending.reject(error);
      thread.inFlight.clear();
      void thread.worker.terminate();
    }
  }

  /** `following`: called as a thread's answer to a job is handled (see `Job.onStart`). */
  #dispatch(following = false): void {
    while (this.#queue.length > 0) {
      const owner = this.#queue[0]!.owner;
      let thread = this.#leastBusy(owner);
      if ((thread === undefined || thread.inFlight.size > 0) && this.#threads.length < this.size) {
        thread = this.#spawn();
      }
      if (thread === undefined) return;
      this.#send(thread, this.#queue.shift()!, following);
    }
  }

  /** The idle thread, or the least busy one already working for `owner` with room. */
  #leastBusy(owner: object): PoolThread | undefined {
    let best: PoolThread | undefined;
    for (const t of this.#threads) {
      const fits = t.inFlight.size === 0 || (t.owner === owner && t.inFlight.size < PIPELINE);
      if (fits && (best === undefined || t.inFlight.size < best.inFlight.size)) best = t;
    }
    return best;
  }

  #send(thread: PoolThread, pending: Pending, following: boolean): void {
    pending.id = this.#nextId++;
    const slot = thread.sent % PIPELINE;
    const { claim, nodes } = pending.job;
    if (claim !== undefined) claim.bind(thread.claims, slot, () => thread.inFlight.keys().next().value !== pending.id);
    else if (nodes.length <= MAX_CLAIMABLE) Atomics.store(thread.claims, slot, nodes.length << 16);
    const fns = pending.job.fns.filter((ref) => !thread.known.has(ref.id));
    for (const ref of fns) thread.known.add(ref.id);
    const message: ToThread = { op: 'run', id: pending.id, fns, nodes: pending.job.nodes, returnAll: pending.job.returnAll === true, inputs: pending.job.inputs, recycle: pending.job.recycle === true };
    if (thread.unsent !== null) {
      thread.unsent.push({ message, transfer: pending.job.transfer });
    } else {
      try {
        thread.worker.postMessage(message, pending.job.transfer);
      } catch (error) {
        for (const ref of fns) thread.known.delete(ref.id);
        pending.reject(error instanceof Error ? error : new Error(String(error)));
        return;
      }
    }
    thread.sent++;
    if (thread.inFlight.size === 0) thread.worker.ref();
    thread.owner = pending.owner;
    thread.inFlight.set(pending.id, pending);
    if (thread.inFlight.size === 1) pending.job.onStart?.(following);
  }

  #spawn(): PoolThread {
    const { code, tsx } = bootstrap();
    const claims = new Int32Array(new SharedArrayBuffer(PIPELINE * Int32Array.BYTES_PER_ELEMENT));
    const worker = new Worker(code, { eval: true, stdout: false, stderr: false, workerData: { tsx, claims } });
    // The lowest slot free: a thread that replaces a lost one takes its place.
    let index = 0;
    while (this.#threads.some((t) => t.index === index)) index++;
    const thread: PoolThread = { worker, index, known: new Set(), inFlight: new Map(), owner: undefined, claims, sent: 0, unsent: [] };
    worker.unref();
    worker.on('message', (message: FromThread | ThreadReady) => {
      if (message.op === 'ready') {
        this.#flushUnsent(thread);
        return;
      }
      const pending = thread.inFlight.get(message.id);
      if (pending === undefined) return;
      thread.inFlight.delete(message.id);
      if (thread.inFlight.size === 0) worker.unref();
      // A thread runs its jobs in order: the next one in flight starts as this one ends.
      else thread.inFlight.values().next().value?.job.onStart?.(true);
      if (message.op === 'batch-failed') {
        const { name, message: text } = message.error;
        pending.reject(new WorkerLostError('', `a pool thread failed to run a batch: ${name}: ${text}`));
      } else {
        pending.resolve({ ...message, thread: thread.index });
      }
      this.#dispatch(true);
    });
    const lost = (error: unknown): void => {
      if (!this.#threads.includes(thread)) return;
      this.#remove(thread);
      const { message } = describeError(error);
      for (const pending of thread.inFlight.values()) {
        const first = pending.job.nodes[0];
        pending.reject(new WorkerLostError(first === undefined ? '' : nodeOf(first).stepKeys[0]!, `a pool thread died while running tasks: ${message}`));
      }
      thread.inFlight.clear();
      this.#dispatch();
    };
    worker.on('error', lost);
    worker.on('exit', (code) => {
      lost(new Error(`thread exited with code ${code}`));
    });
    this.#threads.push(thread);
    return thread;
  }

  /** Posts what waited for the thread to listen; a job that cannot be posted fails alone. */
  #flushUnsent(thread: PoolThread): void {
    const unsent = thread.unsent ?? [];
    thread.unsent = null;
    for (const { message, transfer } of unsent) {
      try {
        thread.worker.postMessage(message, transfer);
      } catch (error) {
        for (const ref of message.fns) thread.known.delete(ref.id);
        const pending = thread.inFlight.get(message.id);
        thread.inFlight.delete(message.id);
        if (thread.inFlight.size === 0) thread.worker.unref();
        pending?.reject(error instanceof Error ? error : new Error(String(error)));
      }
    }
  }

  #remove(thread: PoolThread): void {
    const i = this.#threads.indexOf(thread);
    if (i >= 0) this.#threads.splice(i, 1);
  }
}

interface PoolThread {
  readonly worker: Worker;
  /** Its slot in the pool, 0 to size - 1. */
  readonly index: number;
  /** Function ids this thread has loaded. */
  readonly known: Set<string>;
  readonly inFlight: Map<number, Pending>;
  /** Whose jobs are in flight (one owner at a time). */
  owner: object | undefined;
  /** One claim word per job in flight (see JobClaim), shared with the thread. */
  readonly claims: Int32Array;
  /** Jobs sent so far: the next one uses claim word `sent % PIPELINE`. */
  sent: number;
  /** Jobs held until the thread says it listens (null from then on); see bootstrap(). */
  unsent: { readonly message: Extract<ToThread, { op: 'run' }>; readonly transfer: readonly ArrayBuffer[] }[] | null;
}

/** What a thread's bootstrap posts once the thread body listens for work. */
interface ThreadReady {
  readonly op: 'ready';
}

interface Bootstrap {
  readonly code: string;
  /** tsx's register API, for threads that meet a .ts module later. */
  readonly tsx: string | undefined;
}

let cachedBootstrap: Bootstrap | undefined;

/**
 * How a thread starts. Running from this package's TypeScript sources (its own tests),
 * threads register tsx first; from the compiled package they import the thread body
 * directly and register tsx only if a task's module is TypeScript, because a tsx loader
 * costs every thread start-up time and memory.
 *
 * Once the thread body is loaded (and so listens), the bootstrap posts `{ op: 'ready' }`
 * and only then does the pool post work: Node queues messages sent to a thread that has no
 * listener yet, but Deno drops them, and the body attaches its listener only after an
 * asynchronous import.
 */
function bootstrap(): Bootstrap {
  if (cachedBootstrap !== undefined) return cachedBootstrap;
  const fromSource = import.meta.url.endsWith('.ts');
  const entry = new URL(fromSource ? './thread.ts' : './thread.js', import.meta.url).href;
  let tsx: string | undefined;
  if (fromSource || process.execArgv.some((a) => a.includes('tsx'))) {
    try {
      tsx = import.meta.resolve('tsx/esm/api');
    } catch {
      tsx = undefined;
    }
  }
  const load =
    fromSource && tsx !== undefined
      ? `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(entry)}); })`
      : `import(${JSON.stringify(entry)})`;
  const code = `${load}.then(() => import('node:worker_threads')).then(({ parentPort }) => { parentPort.postMessage({ op: 'ready' }); });`;
  cachedBootstrap = { code, tsx };
  return cachedBootstrap;
}

const pools = new Map<number, ThreadPool>();

/** The process-wide pool with `size` threads, created on first use. */
export function sharedPool(size: number): ThreadPool {
  let pool = pools.get(size);
  if (pool === undefined || pool.state !== 'open') {
    pool = new ThreadPool(size);
    pools.set(size, pool);
  }
  return pool;
}

/** Stops the threads of every shared pool (they would end with the process anyway). */
export async function shutdownThreads(): Promise<void> {
  const all = [...pools.values()];
  pools.clear();
  await Promise.all(all.map((p) => p.close()));
}
