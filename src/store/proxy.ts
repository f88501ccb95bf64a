/**
 * A store reached through the scheduler: for a worker or client in another process than
 * the scheduler's memory store. Requests go over the connection the peer already has
 * (`store-put`, `store-get`, `store-delete`) and the scheduler answers from its store
 * (`store-reply`). Results held this way live as long as the scheduler, not their worker.
 *
 * ```ts
 * const store = new ProxyStore(ref.address, (request) => conn.send(request));
 * conn.onMessage((m) => { if (m.op === 'store-reply') store.answer(m); });
 * ```
 */
import type { StoreReply, StoreRequest } from '../protocol/messages.js';
import { StoreUnavailableError } from './errors.js';
import { StoreListeners } from './listeners.js';
import { DEFAULT_TTL_MS, type PutOutcome, type ResultStore, type StoreItem } from './store.js';

interface Pending {
  readonly resolve: (reply: StoreReply) => void;
  readonly reject: (error: Error) => void;
}

export class ProxyStore implements ResultStore {
  readonly address: string;
  readonly ttlMs = DEFAULT_TTL_MS;
  readonly #send: (request: StoreRequest) => void;
  readonly #pending = new Map<number, Pending>();
  readonly #listeners = new StoreListeners();
  #nextId = 1;
  #closed = false;

  /** `send` writes a request on the connection to the scheduler; it throws when that is closed. */
  constructor(address: string, send: (request: StoreRequest) => void) {
    this.address = address;
    this.#send = send;
  }

  async put(items: readonly StoreItem[]): Promise<PutOutcome[]> {
    if (items.length === 0) return [];
    const reply = await this.#request((id) => ({ op: 'store-put', id, items }));
    // On the wire, `held[i]` is true where this write won (see serveStoreRequest).
    return items.map((_, i): PutOutcome => (reply.held[i] === true ? 'written' : 'exists'));
  }

  async get(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    if (keys.length === 0) return [];
    const reply = await this.#request((id) => ({ op: 'store-get', id, keys }));
    return keys.map((_, i) => reply.values[i] ?? undefined);
  }

  delete(keys: readonly string[]): Promise<void> {
    if (this.#closed) return Promise.reject(new StoreUnavailableError(`${this.address} is closed`));
    try {
      if (keys.length > 0) this.#send({ op: 'store-delete', keys });
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(new StoreUnavailableError(`could not reach ${this.address} through the scheduler`, { cause: error }));
    }
  }

  /** The scheduler's answer to one of this store's requests. */
  answer(reply: StoreReply): void {
    const pending = this.#pending.get(reply.id);
    if (pending === undefined) return;
    this.#pending.delete(reply.id);
    if (reply.error === null) pending.resolve(reply);
    else pending.reject(new StoreUnavailableError(`${this.address}: ${reply.error}`));
  }

  /** The connection to the scheduler is gone: every request still waiting fails, and so will the next. */
  disconnected(error: Error): void {
    if (this.#closed) return;
    this.#fail(new StoreUnavailableError(`lost the connection to the scheduler serving ${this.address}`, { cause: error }));
    this.#listeners.lost(error);
    this.#closed = true;
  }

  onLost(listener: (error: Error) => void): () => void {
    return this.#listeners.onLost(listener);
  }

  onRestored(listener: () => void): () => void {
    return this.#listeners.onRestored(listener);
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#fail(new StoreUnavailableError(`${this.address} is closed`));
      this.#listeners.clear();
    }
    return Promise.resolve();
  }

  #request(make: (id: number) => StoreRequest): Promise<StoreReply> {
    if (this.#closed) return Promise.reject(new StoreUnavailableError(`${this.address} is closed`));
    const id = this.#nextId++;
    return new Promise<StoreReply>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      try {
        this.#send(make(id));
      } catch (error) {
        this.#pending.delete(id);
        reject(new StoreUnavailableError(`could not reach ${this.address} through the scheduler`, { cause: error }));
      }
    });
  }

  #fail(error: Error): void {
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }
}

/**
 * Serves store requests from `store` (the scheduler's side of ProxyStore): answers go
 * through `reply`; a failing store answers with its error, never silence.
 */
export function serveStoreRequest(store: ResultStore | null, request: StoreRequest, reply: (answer: StoreReply) => void): void {
  const fail = (id: number, error: unknown): void =>
    reply({ op: 'store-reply', id, values: [], held: [], error: error instanceof Error ? error.message : String(error) });
  switch (request.op) {
    case 'store-put':
      if (store === null) {
        fail(request.id, 'the scheduler has no result store');
        return;
      }
      store.put(request.items).then(
        // true where this write won, false where the key was there already and kept its value.
        (outcomes) => reply({ op: 'store-reply', id: request.id, values: [], held: outcomes.map((o) => o === 'written'), error: null }),
        (error: unknown) => fail(request.id, error),
      );
      return;
    case 'store-get':
      if (store === null) {
        fail(request.id, 'the scheduler has no result store');
        return;
      }
      store.get(request.keys).then(
        (values) => reply({ op: 'store-reply', id: request.id, values: values.map((v) => v ?? null), held: [], error: null }),
        (error: unknown) => fail(request.id, error),
      );
      return;
    case 'store-delete':
      if (store !== null) store.delete(request.keys).catch(() => undefined);
      return;
    default: {
      const never: never = request;
      throw new TypeError(`unknown store request '${(never as { op: string }).op}'`);
    }
  }
}
