/**
 * Functions and bundled modules on their way to workers: clients send them with their
 * graphs, and each worker is sent a function (and the module bundle it comes from) once,
 * just before the first task that needs it.
 */
import type { FnRef } from '../functions/fn-ref.js';
import { BUNDLE_SCHEME, type SchedulerToWorker } from '../protocol/messages.js';
import type { TaskSpec } from '../protocol/task-spec.js';

/** What one worker has been sent already. */
export interface Shipped {
  readonly fns: Set<string>;
  readonly modules: Set<string>;
}

export class FunctionShipping {
  readonly #fns = new Map<string, FnRef>();
  /** Bundled modules by content hash. */
  readonly #modules = new Map<string, Uint8Array>();
  /** Functions held after the last sweep: the next one is due once there are twice as many. */
  #afterSweep = 0;

  /** Functions held (their sources). */
  get size(): number {
    return this.#fns.size;
  }

  /** Whether enough functions came since the last sweep to make one worth its walk over the tasks. */
  get sweepDue(): boolean {
    return this.#fns.size > 2 * this.#afterSweep + 64;
  }

  /**
   * Forgets functions no held task uses (a client sends a graph's functions with every
   * graph, so one needed again comes again). Returns the ids forgotten. Module bundles
   * stay: a client uploads each once.
   */
  sweep(used: ReadonlySet<string>): string[] {
    const gone: string[] = [];
    for (const id of this.#fns.keys()) {
      if (used.has(id)) continue;
      this.#fns.delete(id);
      gone.push(id);
    }
    this.#afterSweep = this.#fns.size;
    return gone;
  }

  /** Functions a client's graph names; the first copy of an id is kept. */
  register(fns: readonly FnRef[]): void {
    for (const fn of fns) if (!this.#fns.has(fn.id)) this.#fns.set(fn.id, fn);
  }

  /** A module bundle a client uploaded, by its content hash. */
  upload(hash: string, code: Uint8Array): void {
    this.#modules.set(hash, code);
  }

  /** Sends what `worker` lacks to run `spec`, before the task itself goes. */
  prepare(worker: Shipped, spec: TaskSpec, send: (message: SchedulerToWorker) => void): void {
    for (const step of spec.node.steps) this.#ship(worker, step.fn, send);
  }

  /** The same, for a spec held encoded: the ids of the functions it names. */
  prepareFns(worker: Shipped, ids: string | readonly string[], send: (message: SchedulerToWorker) => void): void {
    if (typeof ids === 'string') this.#ship(worker, ids, send);
    else for (const id of ids) this.#ship(worker, id, send);
  }

  #ship(worker: Shipped, id: string, send: (message: SchedulerToWorker) => void): void {
    if (worker.fns.has(id)) return;
    const fn = this.#fns.get(id);
    if (fn === undefined) return;
    worker.fns.add(id);
    if (fn.kind === 'module' && fn.url.startsWith(BUNDLE_SCHEME)) {
      const hash = fn.url.slice(BUNDLE_SCHEME.length);
      const code = this.#modules.get(hash);
      if (code !== undefined && !worker.modules.has(hash)) {
        worker.modules.add(hash);
        send({ op: 'load-module', hash, code });
      }
    }
    send({ op: 'load-fns', fns: [fn] });
  }
}
