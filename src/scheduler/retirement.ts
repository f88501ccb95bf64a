/**
 * Graceful retirement: a retiring worker takes no new tasks, finishes what it runs, and
 * leaves only once every key that only it holds has a copy on a worker that stays. If no
 * worker can take that data, the retirement is given up and the worker (with its data)
 * stays — losing results to shrink a cluster is never the trade.
 */
import type { SchedulerCommand } from './events.js';
import type { WorkerPool } from './placement.js';
import { IndexedHeap } from './priority-queue.js';
import { MEMORY, type TaskState, type WorkerState } from './records.js';

/** What retirement needs of the state machine around it. */
export interface RetirementHost {
  /** Workers that stay and take new data. */
  readonly pool: WorkerPool;
  /** A command addressed to a worker (keeps the host's free-keys batching right). */
  send(ws: WorkerState, command: SchedulerCommand): void;
  emit(command: SchedulerCommand): void;
  /** Its data is safe elsewhere and it runs nothing: it leaves. */
  retired(ws: WorkerState): void;
  /** A running worker whose retirement was given up takes work again. */
  rejoin(ws: WorkerState): void;
}

export class Retirements {
  readonly #host: RetirementHost;
  readonly #retiring = new Set<WorkerState>();

  constructor(host: RetirementHost) {
    this.#host = host;
  }

  get size(): number {
    return this.#retiring.size;
  }

  ids(): string[] {
    return [...this.#retiring].map((w) => w.id);
  }

  /** Starts retiring `ws` (already out of the pool): everything it holds needs a home. */
  begin(ws: WorkerState): void {
    ws.status = 'closing';
    ws.retirePending = new Map();
    ws.retireFresh = [...ws.hasWhat];
    this.#retiring.add(ws);
  }

  /** `ws` is gone, retired or not. */
  forget(ws: WorkerState): void {
    this.#retiring.delete(ws);
    ws.retirePending = null;
    ws.retireFresh = null;
  }

  /** Copies planned onto `gone` (which left or is leaving) are planned again. */
  workerGone(gone: WorkerState): void {
    if (this.#retiring.size === 0) return;
    for (const r of this.#retiring) {
      const pending = r.retirePending;
      if (pending === null || r === gone) continue;
      const again: TaskState[] = [];
      for (const [ts, target] of pending) if (target === gone) again.push(ts);
      if (again.length === 0) continue;
      for (const ts of again) pending.delete(ts);
      if (r.retireFresh === null) r.retireFresh = again;
      else r.retireFresh.push(...again);
    }
  }

  /** Finds homes for the fresh keys of retiring workers; lets go of those done. Returns whether anything changed. */
  progress(): boolean {
    let changed = false;
    for (const ws of [...this.#retiring]) {
      const fresh = ws.retireFresh;
      if (fresh !== null && fresh.length > 0) {
        ws.retireFresh = [];
        if (!this.#plan(ws, fresh)) {
          changed = true;
          continue;
        }
      }
      if (ws.processing.size === 0 && ws.retirePending !== null && ws.retirePending.size === 0) {
        this.#host.send(ws, { op: 'close-worker', worker: ws.id, reason: 'retired' });
        this.#host.retired(ws);
        changed = true;
      }
    }
    return changed;
  }

  /**
   * Sends copies of the keys only leaving workers hold to the workers that stay with the
   * least data, spreading them. Returns false (and aborts the retirement) if no worker stays.
   */
  #plan(ws: WorkerState, keys: readonly TaskState[]): boolean {
    const pending = ws.retirePending;
    if (pending === null) return true;
    let targets: IndexedHeap<{ heapIndex: number; ws: WorkerState; bytes: number }> | null = null;
    const batches = new Map<WorkerState, { key: string; whoHas: string[] }[]>();
    for (const ts of keys) {
      if (ts.state !== MEMORY || ts.whoHas === null || !ws.hasWhat.has(ts) || pending.has(ts)) continue;
      if (ts.whoHas.some((h) => h.status === 'running' || h.status === 'paused')) continue;
      if (targets === null) {
        targets = new IndexedHeap((a, b) => a.bytes < b.bytes);
        for (const w of this.#host.pool.values()) targets.push({ heapIndex: -1, ws: w, bytes: w.nbytes });
      }
      const target = targets.peek();
      if (target === undefined) {
        this.#abort(ws);
        return false;
      }
      pending.set(ts, target.ws);
      target.bytes += ts.nbytes > 0 ? ts.nbytes : 0;
      targets.update(target);
      let batch = batches.get(target.ws);
      if (batch === undefined) {
        batch = [];
        batches.set(target.ws, batch);
      }
      batch.push({ key: ts.key, whoHas: ts.whoHas.map((h) => h.id) });
    }
    for (const [target, batch] of batches) this.#host.send(target, { op: 'replicate', worker: target.id, keys: batch });
    return true;
  }

  #abort(ws: WorkerState): void {
    this.forget(ws);
    ws.status = ws.reported;
    if (ws.status === 'running') this.#host.rejoin(ws);
    this.#host.emit({
      op: 'retire-aborted',
      worker: ws.id,
      reason: 'no other running worker can take the data it alone holds',
    });
  }
}
