/**
 * Lifecycle, written once: every long-lived resource (scheduler, worker, client,
 * clusters, pools, connections, servers) has an explicit state, a graceful `close()` and
 * an abortive `destroy()` — both idempotent, both ending in the same `closed` promise —
 * and works with `await using`.
 *
 * ```ts
 * class Pool extends Resource {
 *   constructor() { super('the pool'); }
 *   protected async onClose(): Promise<void> { await attemptAll([() => this.#drain(), () => this.#stopThreads()]); }
 * }
 * await using pool = new Pool();   // closed when the block ends
 * ```
 */
import { ClosedError } from './errors.js';

export type ResourceState = 'running' | 'closing' | 'closed';

export abstract class Resource implements AsyncDisposable {
  /** Names the resource in errors: 'the client', 'the cluster'… */
  readonly #what: string;
  #state: ResourceState = 'running';
  #ending: Promise<void> | null = null;
  #destroyed = false;
  #resolveClosed: () => void = () => undefined;
  /** Resolves once the resource has closed, however that happened. Never rejects. */
  readonly closed: Promise<void>;

  protected constructor(what: string) {
    this.#what = what;
    this.closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  get state(): ResourceState {
    return this.#state;
  }

  /** Graceful: finishes or hands over what it holds, then releases everything. Idempotent. */
  close(): Promise<void> {
    return this.#end(() => this.onClose());
  }

  /**
   * Abortive: releases everything now, dropping what is in flight. Idempotent; called
   * while a close is under way, it hurries that close along.
   */
  destroy(error?: Error): Promise<void> {
    if (this.#destroyed || this.#state === 'closed') return this.closed;
    this.#destroyed = true;
    if (this.#ending !== null) {
      // A graceful close is under way: abort what it waits on; its promise settles the end.
      void this.onDestroy(error).catch(() => undefined);
      return this.#ending;
    }
    return this.#end(() => this.onDestroy(error));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** The graceful steps. Every cleanup step should be attempted (see attemptAll). */
  protected abstract onClose(): Promise<void>;

  /** The abortive steps, given the error they end on; by default the graceful ones. */
  // eslint-disable-next-line @typescript-eslint/no-unused-vars -- subclasses pass the error on; the graceful steps need none
  protected onDestroy(error?: Error): Promise<void> {
    return this.onClose();
  }

  /** Throws ClosedError unless running: for calls that start new work. */
  protected assertRunning(): void {
    if (this.#state !== 'running') throw new ClosedError(this.#what, this.#state);
  }

  /** The ClosedError this resource gives for work it can no longer do. */
  protected closedError(): ClosedError {
    return new ClosedError(this.#what, this.#state === 'running' ? 'closing' : this.#state);
  }

  /** Marks the resource closing without running its steps (its connection dropped, say). */
  protected markClosing(): void {
    if (this.#state === 'running') this.#state = 'closing';
  }

  #end(steps: () => Promise<void>): Promise<void> {
    this.#ending ??= (async () => {
      this.#state = 'closing';
      // A resource that does not keep the process alive (an embedded cluster, a client)
      // still gets to finish closing.
      try {
        await holdOpen(steps());
      } finally {
        this.#state = 'closed';
        this.#resolveClosed();
      }
    })();
    return this.#ending;
  }
}

let held = 0;
let holdTimer: NodeJS.Timeout | undefined;

/**
 * Keeps the process alive until `waiting` settles. Embedded resources do not hold the
 * event loop by themselves (so a script ends when it is done); someone awaiting one of
 * their operations (a scale, a retirement) does.
 */
export function holdOpen<T>(waiting: Promise<T>): Promise<T> {
  if (held++ === 0) holdTimer = setInterval(() => undefined, 1 << 30);
  return waiting.finally(() => {
    if (--held === 0) clearInterval(holdTimer);
  });
}

/** Resources to close when the process would otherwise end with them still open. */
const atExit = new Set<Resource>();
let atExitInstalled = false;

/**
 * Closes `resource` when the program is done — when nothing but idle connections and
 * unreferenced handles is left — as Dask closes clusters at interpreter exit, so a script
 * that never calls `close()` still ends, and cleanly. Newest first: clients before the
 * clusters they talk to.
 */
export function closeAtExit(resource: Resource): void {
  atExit.add(resource);
  void resource.closed.then(() => atExit.delete(resource));
  if (atExitInstalled) return;
  atExitInstalled = true;
  process.on('beforeExit', () => {
    if (atExit.size === 0) return;
    const open = [...atExit].reverse();
    atExit.clear();
    void (async () => {
      for (const r of open) await r.close().catch(() => undefined);
    })();
  });
}

/**
 * Runs every step, in order, even when some fail (BullMQ's close does the same): a
 * failed step must not leave the ones after it undone. Rejects afterwards with the first
 * failure, or an AggregateError when several failed.
 */
export async function attemptAll(steps: readonly (() => unknown)[]): Promise<void> {
  const errors: unknown[] = [];
  for (const step of steps) {
    try {
      await step();
    } catch (error) {
      errors.push(error);
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, `${errors.length} cleanup steps failed`);
}
