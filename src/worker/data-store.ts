/**
 * A worker's results: in memory while they fit under the memory target, least recently
 * used ones spilled to disk past it, and read back on demand. Values are structured-clone
 * values, so v8.serialize is their disk format (fast, and keeps typed arrays, Map, Set,
 * Date, BigInt and Error intact).
 */
import { mkdirSync, rmSync } from 'node:fs';
import { readFile, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { deserialize, serialize } from 'node:v8';
import { ClosedError, TesseraError } from '../errors.js';

/** A key asked of a worker's store that it does not hold (freed, or never here). */
export class KeyNotHeldError extends TesseraError {
  readonly key: string;

  constructor(key: string) {
    super(`key '${key}' is not held by this worker`, 'ERR_KEY_NOT_HELD');
    this.name = 'KeyNotHeldError';
    this.key = key;
  }
}

export interface DataStoreOptions {
  /** Spill past this many bytes in memory (Infinity: never). */
  readonly memoryTarget: number;
  /** Where spilled values go; a fresh folder under the OS temp dir by default. */
  readonly directory?: string;
  /**
   * Told, with what `put` was given as `lent`, when a value leaves memory: deleted,
   * replaced, spilled or closed over (see FrameLender).
   */
  readonly onLetGo?: (lent: readonly ArrayBuffer[]) => void;
}

interface Entry {
  value: unknown;
  readonly nbytes: number;
  /** 'memory', 'spilling' (being written; value still here) or 'disk'. */
  where: 'memory' | 'spilling' | 'disk';
  file: string | undefined;
  /** Set when the key is deleted while spilling, so the finished write is undone. */
  dropped: boolean;
  /** Lent memory the value in memory holds, for `onLetGo` (see `put`). */
  lent: readonly ArrayBuffer[] | undefined;
}

type StoreState = 'open' | 'closed';

export class DataStore {
  readonly memoryTarget: number;
  readonly directory: string;
  // Map iteration order is insertion order: re-inserting on use makes it an LRU list.
  readonly #entries = new Map<string, Entry>();
  #memoryBytes = 0;
  /** Part of memoryBytes being written out right now. */
  #spillingBytes = 0;
  #spilledBytes = 0;
  #state: StoreState = 'open';
  #counter = 0;
  #created = false;

  readonly #onLetGo: ((lent: readonly ArrayBuffer[]) => void) | undefined;

  constructor(options: DataStoreOptions) {
    this.memoryTarget = options.memoryTarget;
    this.#onLetGo = options.onLetGo;
    this.directory = options.directory ?? join(tmpdir(), `tessera-spill-${process.pid}-${randomBytes(4).toString('hex')}`);
  }

  /** Bytes held in memory (including values still being written out). */
  get memoryBytes(): number {
    return this.#memoryBytes;
  }

  get spilledBytes(): number {
    return this.#spilledBytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  has(key: string): boolean {
    return this.#entries.has(key);
  }

  nbytes(key: string): number | undefined {
    return this.#entries.get(key)?.nbytes;
  }

  keys(): IterableIterator<string> {
    return this.#entries.keys();
  }

  /** `lent`: memory the value holds that is told to `onLetGo` when the value leaves memory. */
  put(key: string, value: unknown, nbytes: number, lent?: readonly ArrayBuffer[]): void {
    if (this.#state === 'closed') throw new ClosedError('the data store', 'closed');
    this.delete(key);
    this.#entries.set(key, { value, nbytes, where: 'memory', file: undefined, dropped: false, lent: lent !== undefined && lent.length > 0 ? lent : undefined });
    this.#memoryBytes += nbytes;
    this.#spillIfNeeded(key);
  }

  /** The value, read back from disk if it was spilled (and then kept in memory again). */
  async get(key: string): Promise<unknown> {
    const entry = this.#entries.get(key);
    if (entry === undefined) throw new KeyNotHeldError(key);
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    if (entry.where !== 'disk') return entry.value;
    const file = entry.file!;
    const value: unknown = deserialize(await readFile(file));
    // Deleted or read back by another get() while we waited: the current entry wins.
    if (entry.dropped || entry.file !== file) return value;
    entry.value = value;
    entry.where = 'memory';
    entry.file = undefined;
    this.#spilledBytes -= entry.nbytes;
    this.#memoryBytes += entry.nbytes;
    void unlink(file).catch(() => undefined);
    this.#spillIfNeeded(key);
    return value;
  }

  /** The value if it is in memory, without touching the disk; undefined otherwise. */
  peek(key: string): { value: unknown } | undefined {
    const entry = this.#entries.get(key);
    return entry === undefined || entry.where === 'disk' ? undefined : { value: entry.value };
  }

  delete(key: string): boolean {
    const entry = this.#entries.get(key);
    if (entry === undefined) return false;
    this.#entries.delete(key);
    entry.dropped = true;
    if (entry.where === 'disk') {
      this.#spilledBytes -= entry.nbytes;
      void unlink(entry.file!).catch(() => undefined);
    } else {
      this.#memoryBytes -= entry.nbytes;
    }
    entry.value = undefined;
    this.#letGo(entry);
    return true;
  }

  #letGo(entry: Entry): void {
    const lent = entry.lent;
    if (lent === undefined) return;
    entry.lent = undefined;
    this.#onLetGo?.(lent);
  }

  /** Drops everything and removes the spill folder. Idempotent. */
  close(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    for (const key of [...this.#entries.keys()]) this.delete(key);
    if (this.#created) rmSync(this.directory, { recursive: true, force: true });
  }

  /**
   * Writes least recently used values to disk until about `bytes` are on their way out
   * (memory past the pause threshold), whatever the memory target. Spilling turned off
   * (memoryTarget Infinity) writes nothing.
   */
  spill(bytes: number): void {
    if (this.#state === 'closed' || this.memoryTarget === Infinity) return;
    let freed = 0;
    for (const entry of this.#entries.values()) {
      if (freed >= bytes) break;
      if (entry.where !== 'memory') continue;
      freed += entry.nbytes;
      this.#spill(entry);
    }
  }

  #spillIfNeeded(keep: string): void {
    if (this.#memoryBytes <= this.memoryTarget) return;
    let pending = this.#memoryBytes - this.#spillingBytes;
    for (const [key, entry] of this.#entries) {
      if (pending <= this.memoryTarget) break;
      if (key === keep || entry.where !== 'memory') continue;
      pending -= entry.nbytes;
      this.#spill(entry);
    }
  }

  #spill(entry: Entry): void {
    if (!this.#created) {
      mkdirSync(this.directory, { recursive: true, mode: 0o700 });
      this.#created = true;
    }
    entry.where = 'spilling';
    this.#spillingBytes += entry.nbytes;
    const file = join(this.directory, `${(this.#counter++).toString(36)}.bin`);
    let bytes: Buffer;
    try {
      bytes = serialize(entry.value);
    } catch {
      // Not serialisable (it never should be here): keep it in memory.
      entry.where = 'memory';
      this.#spillingBytes -= entry.nbytes;
      return;
    }
    writeFile(file, bytes).then(
      () => {
        this.#spillingBytes -= entry.nbytes;
        if (entry.dropped || this.#state === 'closed') {
          void unlink(file).catch(() => undefined);
          return;
        }
        entry.where = 'disk';
        entry.file = file;
        entry.value = undefined;
        this.#letGo(entry);
        this.#memoryBytes -= entry.nbytes;
        this.#spilledBytes += entry.nbytes;
      },
      () => {
        // Disk full or gone: the value stays in memory, which is where it already is.
        this.#spillingBytes -= entry.nbytes;
        if (entry.where === 'spilling') entry.where = 'memory';
      },
    );
  }
}
