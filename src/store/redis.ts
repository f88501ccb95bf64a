/**
 * A Redis store, on node-redis (the `redis` package). Values are Redis strings written as
 * raw bytes; one larger than `chunkBytes` (64 MiB by default — Redis refuses strings over
 * 512 MB) is written as chunks under keys of their own, and then a small manifest under
 * the key itself. The key is always written last and with NX, so the first complete write
 * wins, its writer is told (`'written'`, others `'exists'`), and a reader never sees half a
 * value.
 *
 * ```ts
 * const store = await RedisStore.connect('redis://127.0.0.1:6379', { ttlMs: 3_600_000 });
 * store.onLost((error) => console.error('Redis went away', error));
 * ```
 *
 * Commands are never queued while Redis is away (they fail at once with
 * StoreUnavailableError) and each has a timeout, so nothing waits on a store that is gone.
 * The connection keeps trying to come back; `onLost` and `onRestored` say when it goes and
 * returns.
 */
import { randomBytes } from 'node:crypto';
import { createClient, RESP_TYPES } from 'redis';
import { InvalidArgumentError } from '../errors.js';
import { attemptAll, Resource } from '../lifecycle.js';
import { checkOptions, optionNames } from '../options.js';
import { StoreUnavailableError } from './errors.js';
import { StoreListeners } from './listeners.js';
import { checkPositive } from './options.js';
import { DEFAULT_TTL_MS, type PutOptions, type PutOutcome, type ResultStore, type StoreItem } from './store.js';

export interface RedisStoreOptions {
  /** How long a key lives when nobody deletes it, in ms. Default a day. */
  readonly ttlMs?: number;
  /** Values larger than this are written in chunks of this size. Default 64 MiB. */
  readonly chunkBytes?: number;
  /** Prepended to every key, so several clusters can share one Redis. Default 'tessera:'. */
  readonly prefix?: string;
  /** Each command's timeout, in ms. Default 30 000. */
  readonly commandTimeoutMs?: number;
  /** How long to wait for the first connection, in ms. Default 10 000. */
  readonly connectTimeoutMs?: number;
}

const REDIS_STORE_OPTIONS = optionNames<RedisStoreOptions>()(['ttlMs', 'chunkBytes', 'prefix', 'commandTimeoutMs', 'connectTimeoutMs']);

/** Redis refuses strings longer than 512 MB; chunks stay well below. */
export const DEFAULT_CHUNK_BYTES = 64 * 1024 * 1024;
const MAX_CHUNK_BYTES = 512 * 1024 * 1024;
const DEFAULT_PREFIX = 'tessera:';

// First byte of what the key holds: the value itself, or where its chunks are.
const INLINE = 0;
const MANIFEST = 1;
/** A manifest is short; reading this much of a key is enough to find its chunks. */
const MANIFEST_PEEK = 255;

interface Manifest {
  readonly id: string;
  readonly chunks: number;
  readonly bytes: number;
}

type Client = ReturnType<typeof newClient>;

function newClient(url: string, commandTimeoutMs: number, connectTimeoutMs: number) {
  return createClient({
    url,
    // A command while Redis is away fails at once instead of waiting in a queue.
    disableOfflineQueue: true,
    socket: {
      connectTimeout: connectTimeoutMs,
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 6), 2000),
    },
    // Commands time out; strings come back as Buffers (binary as it is).
    commandOptions: { timeout: commandTimeoutMs, typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } },
  });
}

export class RedisStore extends Resource implements ResultStore {
  readonly address: string;
  readonly ttlMs: number;
  readonly chunkBytes: number;
  readonly prefix: string;
  readonly #client: Client;
  readonly #listeners = new StoreListeners();
  #up = true;

  private constructor(address: string, client: Client, ttlMs: number, chunkBytes: number, prefix: string) {
    super('the Redis store');
    this.address = address;
    this.#client = client;
    this.ttlMs = ttlMs;
    this.chunkBytes = chunkBytes;
    this.prefix = prefix;
    client.on('error', (error: unknown) => this.#down(error instanceof Error ? error : new Error(String(error))));
    client.on('reconnecting', () => this.#down(new StoreUnavailableError(`lost the connection to ${address}`)));
    client.on('ready', () => {
      if (this.#up) return;
      this.#up = true;
      this.#listeners.restored();
    });
  }

  /**
   * Connects to `url` (`redis://[user:password@]host:port[/db]`); rejects when Redis cannot
   * be reached. Options may also come in the url's query (`?prefix=a:&ttlMs=60000`), which
   * is how `address` carries them to the workers that open the same store.
   */
  static async connect(address: string, given: RedisStoreOptions = {}): Promise<RedisStore> {
    const where = 'RedisStore.connect()';
    checkOptions(given, REDIS_STORE_OPTIONS, where);
    if (typeof address !== 'string' || !/^rediss?:\/\//.test(address)) throw new InvalidArgumentError(`${where} takes a redis:// or rediss:// url, got ${address}`);
    const { url, options } = splitAddress(address, given, where);
    const ttlMs = checkPositive(options.ttlMs, 'ttlMs', where) ?? DEFAULT_TTL_MS;
    const chunkBytes = Math.floor(checkPositive(options.chunkBytes, 'chunkBytes', where) ?? DEFAULT_CHUNK_BYTES);
    if (chunkBytes > MAX_CHUNK_BYTES) throw new InvalidArgumentError(`${where}: options.chunkBytes must be at most ${MAX_CHUNK_BYTES} (Redis's string limit), got ${chunkBytes}`);
    const prefix = options.prefix ?? DEFAULT_PREFIX;
    if (typeof prefix !== 'string') throw new InvalidArgumentError(`${where}: options.prefix must be a string`);
    const commandTimeoutMs = checkPositive(options.commandTimeoutMs, 'commandTimeoutMs', where) ?? 30_000;
    const connectTimeoutMs = checkPositive(options.connectTimeoutMs, 'connectTimeoutMs', where) ?? 10_000;
    const client = newClient(url, commandTimeoutMs, connectTimeoutMs);
    // Until the store exists, errors are the connect's to report. This listener is never
    // removed: node-redis hands out an Object.create() view of its client, and removing the
    // last listener would give the view event slots of its own that the client never fires.
    client.on('error', () => undefined);
    try {
      await withTimeout(client.connect(), connectTimeoutMs, `could not connect to ${url} within ${connectTimeoutMs} ms`);
    } catch (error) {
      client.destroy();
      throw error instanceof StoreUnavailableError ? error : new StoreUnavailableError(`could not connect to ${url}: ${message(error)}`, { cause: error });
    }
    return new RedisStore(joinAddress(url, { ttlMs, chunkBytes, prefix }), client, ttlMs, chunkBytes, prefix);
  }

  async put(items: readonly StoreItem[], options: PutOptions = {}): Promise<PutOutcome[]> {
    const ttl = Math.ceil(checkPositive(options.ttlMs, 'ttlMs', 'RedisStore.put()') ?? this.ttlMs);
    return this.#run('put', () => Promise.all(items.map(([key, bytes]) => this.#putOne(key, bytes, ttl))));
  }

  async get(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    return this.#run('get', () => Promise.all(keys.map((key) => this.#getOne(key))));
  }

  async delete(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    await this.#run('delete', async () => {
      const heads = await Promise.all(keys.map((key) => this.#client.getRange(this.prefix + key, 0, MANIFEST_PEEK)));
      const doomed: string[] = keys.map((key) => this.prefix + key);
      for (const head of heads) {
        const manifest = head === null ? undefined : readManifest(head);
        if (manifest !== undefined) doomed.push(...this.#chunkKeys(manifest));
      }
      await this.#client.unlink(doomed);
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
      () => this.#listeners.clear(),
      async () => {
        if (this.#client.isOpen) await this.#client.close().catch(() => this.#client.destroy());
      },
    ]);
  }

  protected override async onDestroy(): Promise<void> {
    this.#listeners.clear();
    if (this.#client.isOpen) this.#client.destroy();
    return Promise.resolve();
  }

  #down(error: Error): void {
    if (!this.#up || this.state !== 'running') return;
    this.#up = false;
    this.#listeners.lost(error);
  }

  async #run<T>(what: string, op: () => Promise<T>): Promise<T> {
    if (this.state !== 'running') throw new StoreUnavailableError(`${this.address} is closed`);
    try {
      return await op();
    } catch (error) {
      throw new StoreUnavailableError(`${what} on ${this.address} failed: ${message(error)}`, { cause: error });
    }
  }

  async #putOne(key: string, bytes: Uint8Array, ttl: number): Promise<PutOutcome> {
    const buffer = asBuffer(bytes);
    const set = { condition: 'NX', expiration: { type: 'PX', value: ttl } } as const;
    if (buffer.byteLength + 1 <= this.chunkBytes) {
      // One write: the tag byte, then the bytes. NX answers null when the key was there.
      const written = await this.#client.set(this.prefix + key, Buffer.concat([TAG_INLINE, buffer]), set);
      return written === null ? 'exists' : 'written';
    }
    const manifest: Manifest = { id: randomBytes(8).toString('hex'), chunks: Math.ceil(buffer.byteLength / this.chunkBytes), bytes: buffer.byteLength };
    const chunkKeys = this.#chunkKeys(manifest);
    // Chunks one after another: each is large, and Redis serves one command at a time anyway.
    for (let i = 0; i < chunkKeys.length; i++) {
      await this.#client.set(chunkKeys[i]!, buffer.subarray(i * this.chunkBytes, (i + 1) * this.chunkBytes), { expiration: { type: 'PX', value: ttl } });
    }
    const head = Buffer.concat([TAG_MANIFEST, Buffer.from(JSON.stringify(manifest))]);
    const written = await this.#client.set(this.prefix + key, head, set);
    if (written !== null) return 'written';
    // Someone else's complete write came first: theirs stands, ours goes.
    await this.#client.unlink(chunkKeys);
    return 'exists';
  }

  async #getOne(key: string): Promise<Uint8Array | undefined> {
    const head = await this.#client.get(this.prefix + key);
    if (head === null || head.byteLength === 0) return undefined;
    if (head[0] === INLINE) return head.subarray(1);
    const manifest = readManifest(head);
    if (manifest === undefined) return undefined;
    const out = Buffer.allocUnsafe(manifest.bytes);
    let offset = 0;
    for (const chunkKey of this.#chunkKeys(manifest)) {
      const chunk = await this.#client.get(chunkKey);
      // A chunk expired or was evicted: the value is gone as a whole.
      if (chunk === null || offset + chunk.byteLength > out.byteLength) return undefined;
      out.set(chunk, offset);
      offset += chunk.byteLength;
    }
    return offset === manifest.bytes ? out : undefined;
  }

  #chunkKeys(manifest: Manifest): string[] {
    return Array.from({ length: manifest.chunks }, (_, i) => `${this.prefix}chunk:${manifest.id}:${i}`);
  }
}

// Options that travel in the address: a worker opening it must see the same keys.
const ADDRESS_OPTIONS = ['prefix', 'ttlMs', 'chunkBytes'] as const;

/** The url without its query, and the options: those given win over the query's. */
function splitAddress(address: string, given: RedisStoreOptions, where: string): { url: string; options: RedisStoreOptions } {
  const q = address.indexOf('?');
  if (q < 0) return { url: address, options: given };
  const query = new URLSearchParams(address.slice(q + 1));
  const fromQuery: Record<string, string | number> = {};
  for (const [name, value] of query) {
    if (!(ADDRESS_OPTIONS as readonly string[]).includes(name)) throw new InvalidArgumentError(`${where}: unknown option '${name}' in the url (${ADDRESS_OPTIONS.join(', ')})`);
    fromQuery[name] = name === 'prefix' ? value : Number(value);
  }
  return { url: address.slice(0, q), options: { ...(fromQuery as RedisStoreOptions), ...given } };
}

/** The url with the options that differ from the defaults, in its query. */
function joinAddress(url: string, options: { ttlMs: number; chunkBytes: number; prefix: string }): string {
  const query = new URLSearchParams();
  if (options.prefix !== DEFAULT_PREFIX) query.set('prefix', options.prefix);
  if (options.ttlMs !== DEFAULT_TTL_MS) query.set('ttlMs', String(options.ttlMs));
  if (options.chunkBytes !== DEFAULT_CHUNK_BYTES) query.set('chunkBytes', String(options.chunkBytes));
  const text = query.toString();
  return text === '' ? url : `${url}?${text}`;
}

const TAG_INLINE = Buffer.from([INLINE]);
const TAG_MANIFEST = Buffer.from([MANIFEST]);

function readManifest(head: Buffer): Manifest | undefined {
  if (head[0] !== MANIFEST) return undefined;
  try {
    const m = JSON.parse(head.subarray(1).toString('utf8')) as Partial<Manifest>;
    if (typeof m.id !== 'string' || !/^[0-9a-f]+$/.test(m.id) || !Number.isInteger(m.chunks) || !Number.isInteger(m.bytes)) return undefined;
    return m as Manifest;
  } catch {
    return undefined;
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new StoreUnavailableError(what)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
