/**
 * Where a ready task runs.
 *
 * Root-ish tasks (nothing worth moving among their inputs) wait in the scheduler's queue
 * and go to whichever worker frees a slot. Every other task goes to the worker that would
 * finish it soonest: bytes it must fetch over the bandwidth, plus the work already queued
 * there per thread. Candidates are the workers holding its inputs plus the few least
 * loaded running workers from an index, never a sweep over the cluster.
 */
import { IndexedHeap } from './priority-queue.js';
import { occupancy, type Prefix, type TaskState, type WorkerState } from './records.js';
import { nextMark } from './records.js';

/** A dependency this small is not worth placing a task near. */
export const TINY_DEPENDENCY_BYTES = 4096;
/** A dependency with this many dependents ends up copied widely anyway. */
export const SHARED_DEPENDENCY_FANOUT = 8;
/** A dependency held by more workers than this counts as present everywhere. */
const WIDELY_HELD = 16;
/** How many of the least loaded workers join the holders as candidates. */
const LEAST_LOADED_CANDIDATES = 3;

/**
 * Root-ish: unrestricted, and every dependency is tiny or widely shared. Such tasks are
 * queued on the scheduler and handed out as slots free, so a wide graph never floods
 * worker memory and the queue releases work in priority order.
 */
export function isRootish(ts: TaskState): boolean {
  if (ts.restrictions !== null) return false;
  const deps = ts.dependencies;
  for (let i = 0; i < deps.length; i++) {
    const d = deps[i] as TaskState;
    if (d.nbytes > TINY_DEPENDENCY_BYTES && d.dependents.length - d.deadDependents < SHARED_DEPENDENCY_FANOUT) {
      return false;
    }
  }
  return true;
}

function lessLoaded(a: WorkerState, b: WorkerState): boolean {
  // processing/nthreads compared without dividing.
  return a.processing.size * b.nthreads < b.processing.size * a.nthreads;
}

/**
 * The running workers, least loaded (processing per thread) first. Paused, closing and
 * closed workers are not in it: they get no new tasks.
 */
export class WorkerPool {
  private readonly heap = new IndexedHeap<WorkerState>(lessLoaded);

  get size(): number {
    return this.heap.size;
  }

  add(ws: WorkerState): void {
    if (!this.heap.has(ws)) this.heap.push(ws);
  }

  remove(ws: WorkerState): void {
    this.heap.remove(ws);
  }

  has(ws: WorkerState): boolean {
    return this.heap.has(ws);
  }

  /** Call after the worker's processing count changed. */
  changed(ws: WorkerState): void {
    if (ws.heapIndex >= 0) this.heap.update(ws);
  }

  leastLoaded(): WorkerState | undefined {
    return this.heap.peek();
  }

  at(i: number): WorkerState | undefined {
    return this.heap.at(i);
  }

  values(): readonly WorkerState[] {
    return this.heap.values();
  }
}

const candidates: WorkerState[] = [];

/**
 * The worker minimising (bytes to fetch ÷ bandwidth) + (occupancy ÷ nthreads), or null
 * when no running worker may take the task. `allowed` is the resolved restriction list
 * (null: any worker). Cost: O(dependency replicas + candidates × prefixes they run).
 */
export function decideWorker(
  ts: TaskState,
  pool: WorkerPool,
  allowed: readonly WorkerState[] | null,
  bandwidth: number,
): WorkerState | null {
  const mark = nextMark();
  const cands = candidates;
  cands.length = 0;
  let total = 0;
  const deps = ts.dependencies;
  for (let i = 0; i < deps.length; i++) {
    const d = deps[i] as TaskState;
    const holders = d.whoHas;
    const nb = d.nbytes;
    if (holders === null || nb <= 0 || holders.length > WIDELY_HELD) continue;
    total += nb;
    for (let j = 0; j < holders.length; j++) {
      const h = holders[j] as WorkerState;
      if (h.mark !== mark) {
        h.mark = mark;
        h.localBytes = 0;
        if (allowed === null && h.status === 'running') cands.push(h);
      }
      h.localBytes += nb;
    }
  }
  if (allowed !== null) {
    for (let i = 0; i < allowed.length; i++) {
      const w = allowed[i] as WorkerState;
      if (w.status !== 'running') continue;
      if (w.mark !== mark) {
        w.mark = mark;
        w.localBytes = 0;
      }
      cands.push(w);
    }
  } else {
    const n = Math.min(LEAST_LOADED_CANDIDATES, pool.size);
    for (let i = 0; i < n; i++) {
      const w = pool.at(i) as WorkerState;
      if (w.mark !== mark) {
        w.mark = mark;
        w.localBytes = 0;
        cands.push(w);
      }
    }
  }
  let best: WorkerState | null = null;
  let bestCost = Infinity;
  for (let i = 0; i < cands.length; i++) {
    const w = cands[i] as WorkerState;
    const cost = (total - w.localBytes) / bandwidth + occupancy(w, bandwidth) / w.nthreads;
    if (
      cost < bestCost ||
      (cost === bestCost && best !== null && w.processing.size * best.nthreads < best.processing.size * w.nthreads)
    ) {
      best = w;
      bestCost = cost;
    }
  }
  cands.length = 0;
  return best;
}

/** Bytes of the task's dependencies that `ws` would have to fetch. */
export function missingBytes(ts: TaskState, ws: WorkerState): number {
  let missing = 0;
  const deps = ts.dependencies;
  for (let i = 0; i < deps.length; i++) {
    const d = deps[i] as TaskState;
    if (d.nbytes > 0 && (d.whoHas === null || !d.whoHas.includes(ws))) missing += d.nbytes;
  }
  return missing;
}

/** Whether the task's restrictions (ids or names) admit the worker. */
export function admits(ts: TaskState, ws: WorkerState): boolean {
  const r = ts.restrictions;
  return r === null || r.includes(ws.id) || r.includes(ws.name);
}

/**
 * A task of a prefix measured to take at least this long (seconds) goes only to a worker
 * with a thread free: the spare slot saves a scheduler round trip, a millisecond, which is
 * nothing beside such a task, while a long task queued behind another on one worker waits
 * its whole length though another worker may be idle by then.
 */
export const LONG_TASK = 0.05;

/**
 * Whether queued task `ts` may go to `ws` now: a long task (LONG_TASK) only to a free
 * thread; any other while the worker has saturation slots free, or room for a backlog.
 */
export function hasRoom(ws: WorkerState, ts: TaskState, backlogSeconds: number, bandwidth: number): boolean {
  const n = ws.processing.size;
  if (isLong(ts)) return n < ws.nthreads;
  return n < ws.slots || hasBacklogRoom(ws, ts, backlogSeconds, bandwidth);
}

/** Whether the task's prefix is measured to take LONG_TASK or longer. */
export function isLong(ts: TaskState): boolean {
  return isLongPrefix(ts.prefix);
}

function isLongPrefix(p: Prefix): boolean {
  return p.measured >= 0 && p.duration >= LONG_TASK;
}

/** Tasks per thread a worker may be given beyond its saturation slots, at most. */
export const BACKLOG_TASKS_PER_THREAD = 256;
/** Bytes per thread the tasks given beyond the slots may be expected to return, at most. */
export const BACKLOG_BYTES_PER_THREAD = 16 * 2 ** 20;

/**
 * Whether a worker whose saturation slots are full may still be given queued task `ts`:
 * its prefix is measured (short tasks are known to be short, not hoped to be), the work
 * the worker has is expected to take less than `backlogSeconds` per thread, and the extra
 * tasks stay within a count and an expected size of results per thread. Without it, tasks
 * of a few microseconds run one scheduler round trip per slot; with it, the worker always
 * has the next tiny tasks at hand while a large result still waits for its turn. Threads
 * taken by long tasks (isLong) are left out: the others share the rest of the work, so a
 * worker of two threads running one long task keeps its other thread supplied.
 */
export function hasBacklogRoom(ws: WorkerState, ts: TaskState, backlogSeconds: number, bandwidth: number): boolean {
  const p = ts.prefix;
  if (!(p.measured > 0) || backlogSeconds <= 0) return false;
  const extra = ws.processing.size - ws.slots + 1;
  if (extra > BACKLOG_TASKS_PER_THREAD * ws.nthreads) return false;
  if (p.nbytes > 0 && extra * p.nbytes > BACKLOG_BYTES_PER_THREAD * ws.nthreads) return false;
  let work = ws.transferBytes / bandwidth + p.duration;
  let threads = ws.nthreads;
  const ps = ws.processingPrefixes;
  const cs = ws.processingCounts;
  for (let i = 0; i < ps.length; i++) {
    const q = ps[i] as Prefix;
    if (isLongPrefix(q)) threads -= cs[i] as number;
    else work += q.duration * (cs[i] as number);
  }
  return threads > 0 && work <= backlogSeconds * threads;
}
