/**
 * External result stores: where results live when their worker cannot be reached or will
 * soon be gone. See docs/store.md.
 *
 * ```ts
 * const store = await RedisStore.connect('redis://127.0.0.1:6379');
 * const cluster = await LocalCluster.start({ workers: 2, store });
 * ```
 */
export { StoreUnavailableError } from './errors.js';
export { findMemoryStore, MemoryStore, type MemoryStoreOptions } from './memory.js';
export { openStore } from './open.js';
export { DEFAULT_CHUNK_BYTES, RedisStore, type RedisStoreOptions } from './redis.js';
export { checkStore, DEFAULT_TTL_MS, type PutOptions, type PutOutcome, type ResultStore, type StoreItem } from './store.js';
export { decodeValue, encodeValue, getValues, putValues } from './values.js';
export { ProxyStore, serveStoreRequest } from './proxy.js';
