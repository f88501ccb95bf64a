/**
 * The embedded store: a map in this process's memory, with first-write-wins puts and
 * lazily enforced time-to-live. Another process cannot open it; a scheduler holding one
 * serves it to its workers over their connection (proxy.ts).
 *
 * ```ts
 * const store = new MemoryStore();
 * await store.put([['k', new Uint8Array([1, 2])]]);   // ['written']
 * ```
 */
import { randomBytes } from 'node:crypto';
import { attemptAll, Resource } from '../lifecycle.js';
import { checkOptions, optionNames } from '../options.js';
import { StoreUnavailableError } from './errors.js';
import { StoreListeners } from './listeners.js';
import { checkPositive } from './options.js';
import { DEFAULT_TTL_MS, type PutOptions, type PutOutcome, type ResultStore, type StoreItem } from './store.js';

export interface MemoryStoreOptions {
  /** How long a key lives when nobody deletes it, in ms. Default a day. */
  readonly ttlMs?: number;
}

const MEMORY_STORE_OPTIONS = optionNames<MemoryStoreOptions>()(['ttlMs']);

/** Memory stores of this process by address, so openStore('memory://…') finds them. */
const OPEN = new Map<string, MemoryStore>();

/** The memory store of this process at `address`, if it is open. */
export function findMemoryStore(address: string): MemoryStore | undefined {
  return OPEN.get(address);
}

interface Entry {
  readonly bytes: Uint8Array;
  readonly expiresAt: number;
}

export class MemoryStore extends Resource implements ResultStore {
  readonly address: string;
  readonly ttlMs: number;
  readonly #entries = new Map<string, Entry>();
  readonly #listeners = new StoreListeners();
  readonly #sweep: NodeJS.Timeout;

  constructor(options: MemoryStoreOptions = {}) {
    super('the memory store');
    checkOptions(options, MEMORY_STORE_OPTIONS, 'new MemoryStore()');
    this.ttlMs = checkPositive(options.ttlMs, 'ttlMs', 'new MemoryStore()') ?? DEFAULT_TTL_MS;
    this.address = `memory://${randomBytes(6).toString('hex')}`;
    OPEN.set(this.address, this);
    // Expired keys nobody asks for again still go, now and then.
    this.#sweep = setInterval(() => this.#expire(), Math.min(this.ttlMs, 60_000));
    this.#sweep.unref();
  }

  /** Keys held (expired ones excluded). */
  get size(): number {
    this.#expire();
    return this.#entries.size;
  }

  /** Bytes held. */
  get bytes(): number {
    let n = 0;
    for (const e of this.#entries.values()) n += e.bytes.byteLength;
    return n;
  }

  put(items: readonly StoreItem[], options: PutOptions = {}): Promise<PutOutcome[]> {
    return this.#run(() => {
      const ttl = checkPositive(options.ttlMs, 'ttlMs', 'MemoryStore.put()') ?? this.ttlMs;
      const now = Date.now();
      return items.map(([key, bytes]): PutOutcome => {
        if (this.#live(key, now) !== undefined) return 'exists';
        // A copy: the caller may reuse its buffer.
        this.#entries.set(key, { bytes: Uint8Array.prototype.slice.call(bytes), expiresAt: now + ttl });
        return 'written';
      });
    });
  }

  get(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    return this.#run(() => {
      const now = Date.now();
      return keys.map((key) => this.#live(key, now)?.bytes);
    });
  }

  delete(keys: readonly string[]): Promise<void> {
    return this.#run(() => {
      for (const key of keys) this.#entries.delete(key);
    });
  }

  onLost(listener: (error: Error) => void): () => void {
    return this.#listeners.onLost(listener);
  }

  onRestored(listener: () => void): () => void {
    return this.#listeners.onRestored(listener);
  }

  protected async onClose(): Promise<void> {
    await attemptAll([
      () => clearInterval(this.#sweep),
      () => {
        if (OPEN.get(this.address) === this) OPEN.delete(this.address);
      },
      () => this.#entries.clear(),
      () => this.#listeners.clear(),
    ]);
  }

  /** Runs `op` now; its outcome, or the store being closed, as a promise. */
  #run<T>(op: () => T): Promise<T> {
    if (this.state !== 'running') return Promise.reject(new StoreUnavailableError(`${this.address} is closed`));
    try {
      return Promise.resolve(op());
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  #live(key: string, now: number): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt > now) return entry;
    this.#entries.delete(key);
    return undefined;
  }

  #expire(): void {
    const now = Date.now();
    for (const [key, entry] of this.#entries) if (entry.expiresAt <= now) this.#entries.delete(key);
  }
}
