/**
 * Scatters in flight: a client's values spread over the workers, each worker's share put
 * there with `put-data`. A scatter is answered once, when every share is held and
 * registered (so a task submitted right after finds its inputs); a share whose worker
 * leaves before acknowledging goes to another worker; with no worker left, the scatter
 * waits for one when workers may come (an adaptive cluster) and fails otherwise.
 */
import type { KeyValue, SchedulerToWorker } from '../protocol/messages.js';

export interface ScatterHost<C> {
  /** Workers that may take data now, by id. */
  workers(): readonly string[];
  /** Whether a worker may still come when there is none (an adaptive loop listens). */
  mayWait(): boolean;
  send(worker: string, message: Extract<SchedulerToWorker, { op: 'put-data' }>): void;
  /** A share is held: the state machine records these keys on `worker`. */
  held(client: C, worker: string, keys: readonly { readonly key: string; readonly nbytes: number }[]): void;
  /** The scatter's one answer: null when every value is held, else why it failed. */
  answer(client: C, requestId: number, error: string | null): void;
}

interface Share<C> {
  readonly scatter: Scatter<C>;
  readonly items: readonly KeyValue[];
  worker: string;
}

interface Scatter<C> {
  readonly client: C;
  readonly requestId: number;
  /** Shares not yet acknowledged. */
  pending: number;
  failed: boolean;
}

export class Scatters<C> {
  readonly #host: ScatterHost<C>;
  /** Shares sent and not acknowledged, by put-data id. */
  readonly #shares = new Map<number, Share<C>>();
  /** Shares with nowhere to go yet, waiting for a worker. */
  #homeless: Share<C>[] = [];
  #nextId = 1;

  constructor(host: ScatterHost<C>) {
    this.#host = host;
  }

  /** Shares waiting for a first worker. */
  get waiting(): number {
    return this.#homeless.length;
  }

  start(client: C, requestId: number, items: readonly KeyValue[]): void {
    const scatter: Scatter<C> = { client, requestId, pending: 0, failed: false };
    if (items.length === 0) {
      this.#host.answer(client, requestId, null);
      return;
    }
    const workers = this.#host.workers();
    if (workers.length === 0) {
      scatter.pending = 1;
      this.#wait({ scatter, items, worker: '' });
      return;
    }
    // Round robin over the workers, as evenly as the values go.
    const shares = workers.map((): KeyValue[] => []);
    items.forEach((item, i) => shares[i % workers.length]!.push(item));
    const placed = shares.map((share, w) => ({ share, worker: workers[w]! })).filter((s) => s.share.length > 0);
    scatter.pending = placed.length;
    for (const { share, worker } of placed) this.#send({ scatter, items: share, worker });
  }

  /** A worker acknowledged put-data `id`, with the size of each value it now holds. */
  acknowledged(id: number, worker: string, nbytes: readonly number[]): void {
    const share = this.#shares.get(id);
    if (share === undefined || share.worker !== worker) return;
    this.#shares.delete(id);
    const { scatter } = share;
    if (scatter.failed) return;
    this.#host.held(scatter.client, worker, share.items.map(([key], i) => ({ key, nbytes: nbytes[i] ?? 0 })));
    if (--scatter.pending === 0) this.#host.answer(scatter.client, scatter.requestId, null);
  }

  /** Shares on a worker that left before acknowledging go elsewhere. */
  workerLeft(worker: string): void {
    for (const [id, share] of this.#shares) {
      if (share.worker !== worker) continue;
      this.#shares.delete(id);
      this.#place(share);
    }
  }

  /** A worker joined: shares waiting for one go there. */
  workerJoined(): void {
    const waiting = this.#homeless;
    this.#homeless = [];
    for (const share of waiting) {
      if (share.worker === '' && share.scatter.pending === 1 && !share.scatter.failed) {
        // A whole scatter that waited for a first worker spreads over those there now.
        share.scatter.pending = 0;
        this.start(share.scatter.client, share.scatter.requestId, share.items);
        continue;
      }
      this.#place(share);
    }
  }

  /** The client left: its scatters are dropped (nobody waits for the answer). */
  clientLeft(client: C): void {
    for (const [id, share] of this.#shares) if (share.scatter.client === client) this.#shares.delete(id);
    this.#homeless = this.#homeless.filter((s) => s.scatter.client !== client);
  }

  /** Fails every scatter still in flight. */
  close(reason: string): void {
    const all = [...this.#shares.values(), ...this.#homeless];
    this.#shares.clear();
    this.#homeless = [];
    for (const share of all) this.#fail(share.scatter, reason);
  }

  #place(share: Share<C>): void {
    if (share.scatter.failed) return;
    const workers = this.#host.workers();
    if (workers.length === 0) {
      this.#wait(share);
      return;
    }
    // The worker with the fewest shares in flight from us takes it.
    const load = new Map(workers.map((w) => [w, 0]));
    for (const s of this.#shares.values()) if (load.has(s.worker)) load.set(s.worker, load.get(s.worker)! + 1);
    let best = workers[0]!;
    for (const w of workers) if (load.get(w)! < load.get(best)!) best = w;
    share.worker = best;
    this.#send(share);
  }

  #wait(share: Share<C>): void {
    if (this.#host.mayWait()) this.#homeless.push(share);
    else this.#fail(share.scatter, 'no workers are connected');
  }

  #send(share: Share<C>): void {
    const id = this.#nextId++;
    this.#shares.set(id, share);
    this.#host.send(share.worker, { op: 'put-data', id, items: share.items });
  }

  #fail(scatter: Scatter<C>, reason: string): void {
    if (scatter.failed) return;
    scatter.failed = true;
    for (const [id, share] of this.#shares) if (share.scatter === scatter) this.#shares.delete(id);
    this.#homeless = this.#homeless.filter((s) => s.scatter !== scatter);
    this.#host.answer(scatter.client, scatter.requestId, reason);
  }
}
