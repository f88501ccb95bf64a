/**
 * A Future names a result that lives (or will live) in the cluster's memory. Holding a
 * Future keeps the result there; releasing it — explicitly, or by dropping it so it is
 * garbage collected — lets the cluster forget it once no one else holds it.
 */
import { DISPLAY, futureBundle } from '../notebook/cards.js';
import { INSPECT, type MimeBundle } from '../notebook/kernel.js';
import type { ProgressBarOptions } from './progress-bar.js';
import { InvalidArgumentError } from '../errors.js';

export type FutureStatus = 'pending' | 'finished' | 'error' | 'cancelled' | 'lost';

/** What a Future needs of its client; the Client implements it. */
export interface FutureOwner {
  statusOf(key: string): FutureStatus;
  /** Why the task failed (status 'error' or 'lost'); null otherwise. */
  errorOf(key: string): Error | null;
  /** Resolves when every one of the futures is done, whatever its outcome. */
  wait(futures: readonly Future[]): Promise<void>;
  resultOf(key: string): Promise<unknown>;
  cancelKeys(keys: readonly string[]): Promise<void>;
  releaseFuture(future: Future): void;
  progress(futures: readonly Future[], options?: Omit<ProgressBarOptions, 'total'>): Promise<void>;
}

/**
 * @internal What a client watches a Future by: its key, and whether it was released. Shared
 * with the client's FinalizationRegistry as the value it is handed when the Future is
 * collected, so a Future released already is not released twice — with no unregister
 * token, whose table costs more per Future than the Future itself.
 */
export interface Lease {
  readonly key: string;
  released: boolean;
}

export class Future<T = unknown> implements PromiseLike<T> {
  declare readonly __result?: T;
  readonly key: string;
  readonly #owner: FutureOwner;
  readonly #lease: Lease;

  /** @internal Futures are made by a Client. */
  constructor(key: string, owner: FutureOwner) {
    this.key = key;
    this.#owner = owner;
    this.#lease = { key, released: false };
  }

  /** @internal The client a future belongs to. */
  static ownerOf(future: Future): FutureOwner {
    return future.#owner;
  }

  /** @internal Its lease (see Lease): never holds the Future itself. */
  static leaseOf(future: Future): Lease {
    return future.#lease;
  }

  /** 'pending' until the result is in cluster memory ('finished') or it failed. */
  get status(): FutureStatus {
    return this.#lease.released ? 'cancelled' : this.#owner.statusOf(this.key);
  }

  get released(): boolean {
    return this.#lease.released;
  }

  /** The value, fetched from the worker that holds it. Rejects with TaskError if the task threw. */
  result(): Promise<T> {
    // The pending promise holds this Future, so that `await client.submit(f).result()`
    // cannot see its Future collected (and its result released) while it waits.
    return (this.#owner.resultOf(this.key) as Promise<T>).finally(() => keepAlive(this));
  }

  /**
   * `await future` gives the value, as `future.result()` does. Beware what that implies:
   * resolving a Promise with a Future (returning one from an async function, say) waits for
   * its value too.
   */
  then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.result().then(onfulfilled, onrejected);
  }

  /** Stops the computation if nobody else needs it; `result()` then rejects with CancelledError. */
  cancel(): Promise<void> {
    return this.#owner.cancelKeys([this.key]);
  }

  /** Lets the cluster forget the result once no other Future holds it. Idempotent. */
  release(): void {
    if (this.#lease.released) return;
    this.#lease.released = true;
    this.#owner.releaseFuture(this);
  }

  toString(): string {
    return `Future(${this.key}, ${this.status})`;
  }

  /** In a notebook: a small card with its key and status. */
  [DISPLAY](): MimeBundle {
    return futureBundle(this.key, this.status);
  }

  [INSPECT](): string {
    return this.toString();
  }
}

/** Does nothing, visibly to the optimiser: the argument stays reachable until the call. */
export function keepAlive(value: unknown): void {
  if (value === kNever) throw new Error('unreachable');
}

const kNever = Symbol('never');

/**
 * A progress display over futures until each is done, as Dask's `progress(futures)`: in a
 * notebook one display updated in place, elsewhere a terminal bar (`client.progress` with
 * the futures' client). Resolves when all are done; never rejects for a task's error.
 *
 * ```ts
 * const fs = client.map(slowMaths, inputs);
 * await progress(fs);
 * ```
 */
export function progress(futures: Future | readonly Future[], options: Omit<ProgressBarOptions, 'total'> = {}): Promise<void> {
  const list = futures instanceof Future ? [futures] : futures;
  if (!Array.isArray(list) || !list.every((f) => f instanceof Future)) {
    return Promise.reject(new InvalidArgumentError('progress(): takes a Future or an array of Futures'));
  }
  if (list.length === 0) return Promise.resolve();
  const owner = Future.ownerOf(list[0]!);
  if (list.some((f) => Future.ownerOf(f) !== owner)) {
    return Promise.reject(new InvalidArgumentError('progress(): the futures belong to several clients; call it once per client'));
  }
  return owner.progress(list, options);
}
