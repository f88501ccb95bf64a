/**
 * An external result store: where task results live when the worker that computed them
 * cannot be reached or will soon be gone (a worker that cannot accept connections, a
 * function invocation). The scheduler counts a store among a key's holders, like a worker
 * that does not die with any worker; workers and clients read from it directly.
 *
 * A store holds bytes. Values are encoded with the project's codec first (values.ts), so
 * binary data travels as it is, without base64.
 *
 * ```ts
 * const store = await RedisStore.connect('redis://127.0.0.1:6379');
 * await store.put([['inc-1', bytes]]);            // ['written']: first write of a key wins
 * await store.put([['inc-1', other]]);            // ['exists']: the first value stays
 * const [back] = await store.get(['inc-1']);      // Uint8Array, or undefined when absent
 * await store.delete(['inc-1']);
 * await store.close();
 * ```
 */

import { InvalidArgumentError } from '../errors.js';

/** One key and its bytes. */
export type StoreItem = readonly [key: string, bytes: Uint8Array];

/**
 * What a put did with one key: `'written'`, the store holds these bytes now; `'exists'`,
 * it held the key already (first write wins) and kept the bytes it had. A writer told
 * `'exists'` holds a value nobody else will read: it drops it and adopts the stored one.
 */
export type PutOutcome = 'written' | 'exists';

export interface PutOptions {
  /** How long the keys live if nobody deletes them, in ms. Default: the store's `ttlMs`. */
  readonly ttlMs?: number;
}

export interface ResultStore {
  /**
   * Where another process opens the same store with `openStore(address)`: `redis://…`, or
   * `memory://…`, which only this process can open (a scheduler serves its memory store to
   * its workers over their connection instead).
   */
  readonly address: string;
  /** How long a key lives when nobody deletes it, in ms (a safety net: the scheduler deletes keys it forgets). */
  readonly ttlMs: number;
  /**
   * Writes each key that is not already there (first write wins: a recomputed key written
   * twice keeps its first value). Resolves, per item, whether this write won (`'written'`)
   * or the key was there already and kept its value (`'exists'`). Rejects with
   * StoreUnavailableError when the store cannot be reached.
   */
  put(items: readonly StoreItem[], options?: PutOptions): Promise<PutOutcome[]>;
  /** The bytes of each key, undefined where the store does not hold it. */
  get(keys: readonly string[]): Promise<(Uint8Array | undefined)[]>;
  /** Deletes the keys; absent keys are no error. */
  delete(keys: readonly string[]): Promise<void>;
  /**
   * Called when the store is lost (its server went away): whatever it held must be
   * presumed gone. Returns a function that removes the listener.
   */
  onLost(listener: (error: Error) => void): () => void;
  /** Called when a lost store is reachable again (and, presumably, empty). */
  onRestored(listener: () => void): () => void;
  /** Closes the connection; idempotent. The data stays where it is. */
  close(): Promise<void>;
}

/** Default time-to-live of a stored result: a day. */
export const DEFAULT_TTL_MS = 24 * 60 * 60 * 1000;

/** Throws InvalidArgumentError naming `what` unless `value` looks like a ResultStore. */
export function checkStore(value: unknown, what: string): asserts value is ResultStore {
  const store = value as Partial<Record<keyof ResultStore, unknown>> | null;
  const methods = ['put', 'get', 'delete', 'onLost', 'onRestored', 'close'] as const;
  if (typeof store !== 'object' || store === null || typeof store.address !== 'string' || methods.some((m) => typeof store[m] !== 'function')) {
    throw new InvalidArgumentError(`${what} must be a result store (MemoryStore, RedisStore.connect(url), or an object with address, put, get, delete, onLost, onRestored and close)`);
  }
}
