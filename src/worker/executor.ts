/**
 * Runs the worker's batches on its pool of threads: gathers their inputs from the data
 * store (reading spilled ones back), the functions they name (writing bundled modules
 * where threads can import them), and turns a thread's answer into the event the core
 * expects. I/O only; what runs when is the core's to say.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { BundleError } from '../functions/bundle.js';
import { BundleCache } from '../functions/bundle-cache.js';
import type { FnRef } from '../functions/fn-ref.js';
import { type Job, JobClaim, type JobNode, type JobReply, MAX_CLAIMABLE, ThreadPool } from '../local/pool.js';
import { describeError, ProtocolError, UnserializableError } from '../errors.js';
import { BUNDLE_SCHEME } from '../protocol/messages.js';
import { BufferPool } from '../serialize/buffer-pool.js';
import { copiedForTransfer } from '../serialize/check-value.js';
import type { DataStore } from './data-store.js';
import type { ExecuteTask, WorkerEvent } from './events.js';

// This process's clock starts here, in ms since the epoch (read once: it never changes).
const TIME_ORIGIN = performance.timeOrigin;

/**
 * Where a batch's job runs: the worker's own threads unless a runner is given. A runner
 * takes the job as threads would (inputs gathered, functions resolved, bundled modules
 * saved as files) and answers as a thread does; a rejection is a lost thread.
 */
export interface JobRunner {
  run(job: Job, owner: object): Promise<JobReply>;
  /** Stops what runs; jobs still running end as lost. */
  destroy(error: Error): void;
}

/**
 * Workers constructed inside `fn` (and what it awaits) run their batches on the runner
 * `make(nthreads)` returns rather than on threads: an entry point can start a worker whose
 * tasks run elsewhere (function invocations: cli/lambda-direct.ts) while the worker's core
 * and shell stay as they are. Scoped to `fn`'s asynchronous context, because the worker
 * builds its executor itself, after registering, from options that name no runner.
 */
export function withJobRunner<T>(make: (nthreads: number) => JobRunner, fn: () => T): T {
  return runners.run(make, fn);
}

const runners = new AsyncLocalStorage<(nthreads: number) => JobRunner>();

/** What became of a batch, as the core hears it. */
export type BatchEvent = Extract<WorkerEvent, { op: 'batch-done' | 'batch-task-failed' | 'batch-thread-died' | 'batch-unrunnable' }>;

/** At most this much memory a worker is done with (threads' copies, fetched frames) is kept for reuse: two 64 MiB arrays. */
export const RECYCLED_BYTES = 128 * 2 ** 20;

export class Executor {
  readonly #pool: JobRunner;
  readonly #data: DataStore;
  readonly #fns = new Map<string, FnRef>();
  /** Bundled modules saved here: hash → file URL once written. */
  readonly #modules = new Map<string, Promise<string>>();
  readonly #bundles = new BundleCache();
  /** Batches in flight on the threads, by id: how far each has got. */
  readonly #claims = new Map<number, JobClaim>();
  /** The pool when batches run on threads of this process (they carry claims), else null (a job runner). */
  readonly #threads: ThreadPool | null;
  /** Buffers the threads are done with, for the next copies of inputs (the worker's BufferPool). */
  readonly #buffers: BufferPool;
  readonly #nthreads: number;

  constructor(nthreads: number, data: DataStore, buffers = new BufferPool(RECYCLED_BYTES)) {
    const pool = runners.getStore()?.(nthreads) ?? new ThreadPool(nthreads);
    this.#pool = pool;
    this.#data = data;
    this.#buffers = buffers;
    this.#threads = pool instanceof ThreadPool ? pool : null;
    this.#nthreads = nthreads;
  }

  /**
   * Whether tasks run on threads of this process, which get copies of their inputs: then
   * nothing outside the store keeps a stored value once it is let go.
   */
  get threaded(): boolean {
    return this.#threads !== null;
  }

  loadFns(fns: readonly FnRef[]): void {
    for (const fn of fns) this.#fns.set(fn.id, fn);
  }

  /**
   * Writes a bundled module where the threads can import it, once per hash; the cache
   * checks the code against its hash first. Batches that need it wait for the write.
   */
  saveModule(hash: string, code: Uint8Array): void {
    if (this.#modules.has(hash)) return;
    const saved = this.#bundles.put(hash, code);
    // A refused or failed write surfaces as the task's error when a batch needs the module.
    saved.catch(() => undefined);
    this.#modules.set(hash, saved);
  }

  /**
   * Runs `tasks` in order on one thread; never rejects: every outcome is an event.
   * `onStart` is called when the thread begins the batch (it may first wait behind another),
   * with how many of its tasks the thread still answers for (a tail taken back is not).
   */
  run(batch: number, tasks: readonly ExecuteTask[], inputKeys: readonly string[], owner: object, onStart?: (kept: number, following: boolean) => void): Promise<BatchEvent> {
    // Encoded specs go to the thread as they came, one string each with what their task says
    // beside it (its function ids, key and dependency keys), which it decodes: far cheaper to
    // post than the objects they decode to. Every result comes back (returnAll).
    const nodes: JobNode[] = [];
    const fnIds = new Set<string>();
    for (const t of tasks) {
      nodes.push(typeof t.spec === 'string' ? [t.spec, t.fns, t.key, t.dependencies] : t.spec.node);
      for (const id of t.fns) fnIds.add(id);
    }
    // The store keeps its values: large buffers go to a thread as copies, moved, not cloned.
    const inputs: [string, unknown][] = [];
    const spilled: number[] = [];
    const transfer: ArrayBuffer[] = [];
    const copies = this.#threads === null ? null : new Map<ArrayBuffer, ArrayBuffer>();
    const posted = (value: unknown): unknown => (copies === null || typeof value !== 'object' ? value : copiedForTransfer(value, transfer, copies, this.#buffers));
    for (const key of inputKeys) {
      const held = this.#data.peek(key);
      if (held === undefined) spilled.push(inputs.length);
      inputs.push([key, held === undefined ? undefined : posted(held.value)]);
    }
    const fns: FnRef[] = [];
    let bundled = false;
    for (const id of fnIds) {
      const fn = this.#fns.get(id);
      if (fn === undefined) continue;
      fns.push(fn);
      if (fn.kind === 'module' && fn.url.startsWith(BUNDLE_SCHEME)) bundled = true;
    }
    const claim = this.#threads !== null && nodes.length <= MAX_CLAIMABLE ? new JobClaim(nodes.length) : undefined;
    const run = (): Promise<BatchEvent> => {
      if (claim !== undefined) this.#claims.set(batch, claim);
      const started = onStart === undefined ? {} : { onStart: (following: boolean) => onStart(claim?.end ?? nodes.length, following) };
      return this.#pool.run({ nodes, returnAll: true, fns, inputs, transfer, recycle: transfer.length > 0, ...started, ...(claim === undefined ? {} : { claim }) }, owner).then(
        (reply): BatchEvent => {
          this.#claims.delete(batch);
          const now = performance.now();
          switch (reply.op) {
            case 'done': {
              // Each task's own times, measured in its thread (ms since the epoch), onto this process's clock.
              if (reply.recycled !== undefined) for (const buffer of reply.recycled) this.#buffers.give(buffer);
              const epoch = reply.times;
              const times = new Array<number>(epoch.length);
              for (let i = 0; i < epoch.length; i++) times[i] = epoch[i]! - TIME_ORIGIN;
              return { op: 'batch-done', batch, thread: reply.thread, values: reply.results, times, now };
            }
            case 'task-failed':
              return { op: 'batch-task-failed', batch, key: reply.key, error: { kind: 'task', ...reply.error, key: reply.key }, now };
            case 'unportable': {
              const e = new UnserializableError(reply.key, reply.path, reply.reason);
              const error = { kind: 'unserializable', name: e.name, message: e.message, stack: '', key: reply.key, path: reply.path, reason: reply.reason } as const;
              return { op: 'batch-task-failed', batch, key: reply.key, error, now };
            }
            default: {
              const never: never = reply;
              throw new ProtocolError(`unknown thread reply '${(never as { op: string }).op}'`);
            }
          }
        },
        (error: unknown): BatchEvent => {
          this.#claims.delete(batch);
          return { op: 'batch-thread-died', batch, message: describeError(error).message, now: performance.now() };
        },
      );
    };
    // Inputs spilled to disk are read back, and bundles written, first; the common case
    // stays synchronous.
    if (spilled.length === 0 && !bundled) return run();
    return Promise.all([
      ...spilled.map(async (i) => {
        const input = inputs[i]!;
        input[1] = posted(await this.#data.get(input[0]));
      }),
      ...fns.map(async (fn, i) => {
        fns[i] = await this.#localRef(fn);
      }),
    ]).then(run, (error: unknown): BatchEvent => {
      // A bundle that cannot be written or a spilled input that cannot be read: the tasks
      // cannot run here, and saying so beats retrying forever.
      const { name, message, stack } = describeError(error);
      return { op: 'batch-unrunnable', batch, error: { name, message, stack }, now: performance.now() };
    });
  }

  /** Threads with nothing to run that could take work back (none with one thread, or a runner). */
  get idleThreads(): number {
    return this.#nthreads > 1 ? (this.#threads?.idleThreads ?? 0) : 0;
  }

  /**
   * Takes back, for an idle thread, about half of what a thread has not started of one of
   * its batches: the one with the most to give. Its thread then runs the tasks before `cut`
   * only, and answers for those alone; the core hands the rest out again (where to cut:
   * JobClaim.cuts). Null when no batch has anything to give.
   */
  takeBack(): { batch: number; cut: number } | null {
    for (let attempt = 0; attempt < 3; attempt++) {
      let best: number | undefined;
      let bestCut = -1;
      let bestGain = 0;
      for (const [batch, claim] of this.#claims) {
        const end = claim.end;
        const cut = claim.cuts().half;
        if (end - cut > bestGain) {
          best = batch;
          bestCut = cut;
          bestGain = end - cut;
        }
      }
      if (best === undefined) return null;
      // The thread may have got there first: try again with what is left.
      if (this.#claims.get(best)!.truncate(bestCut)) return { batch: best, cut: bestCut };
    }
    return null;
  }

  /**
   * Takes back the tasks of `batch` from position `index` on, for a steal, if its thread
   * has not started them (nor is about to: JobClaim.cuts). Its thread then answers for
   * those before `index` only.
   */
  cut(batch: number, index: number): boolean {
    const claim = this.#claims.get(batch);
    return claim !== undefined && index >= claim.cuts().lowest && claim.truncate(index);
  }

  /** Stops the threads; batches still running end as lost. */
  destroy(error: Error): void {
    this.#pool.destroy(error);
  }

  /** A bundled module's functions are imported from the file it was saved to. */
  async #localRef(fn: FnRef): Promise<FnRef> {
    if (fn.kind !== 'module' || !fn.url.startsWith(BUNDLE_SCHEME)) return fn;
    const saved = this.#modules.get(fn.url.slice(BUNDLE_SCHEME.length));
    if (saved === undefined) throw new BundleError(fn.url, `module ${fn.url} for ${fn.name} never reached this worker`);
    return { ...fn, url: await saved };
  }
}
