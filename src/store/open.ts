/**
 * Opens a store by its address, as a worker or a function invocation does with the
 * address the scheduler gave it.
 *
 * ```ts
 * const store = await openStore('redis://cache:6379');
 * ```
 */
import { InvalidArgumentError } from '../errors.js';
import { StoreUnavailableError } from './errors.js';
import { findMemoryStore } from './memory.js';
import { RedisStore, type RedisStoreOptions } from './redis.js';
import type { PutOptions, PutOutcome, ResultStore, StoreItem } from './store.js';

/**
 * The store at `address`: `redis://…` or `rediss://…` connects (close it when done);
 * `memory://…` is a memory store of this very process, lent (closing it leaves it open).
 */
export async function openStore(address: string, options: RedisStoreOptions = {}): Promise<ResultStore> {
  if (typeof address !== 'string') throw new InvalidArgumentError('openStore() takes a store address');
  if (address.startsWith('redis://') || address.startsWith('rediss://')) return RedisStore.connect(address, options);
  if (address.startsWith('memory://')) {
    const store = findMemoryStore(address);
    if (store === undefined) throw new StoreUnavailableError(`${address} is a memory store of another process (or closed): it cannot be opened here`);
    return new LentStore(store);
  }
  throw new InvalidArgumentError(`openStore(): unknown kind of store address '${address}' (redis://, rediss:// or memory://)`);
}

/** Someone else's store: everything but close goes through. */
class LentStore implements ResultStore {
  readonly #store: ResultStore;

  constructor(store: ResultStore) {
    this.#store = store;
  }

  get address(): string {
    return this.#store.address;
  }

  get ttlMs(): number {
    return this.#store.ttlMs;
  }

  put(items: readonly StoreItem[], options?: PutOptions): Promise<PutOutcome[]> {
    return this.#store.put(items, options);
  }

  get(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    return this.#store.get(keys);
  }

  delete(keys: readonly string[]): Promise<void> {
    return this.#store.delete(keys);
  }

  onLost(listener: (error: Error) => void): () => void {
    return this.#store.onLost(listener);
  }

  onRestored(listener: () => void): () => void {
    return this.#store.onRestored(listener);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
