/**
 * The worker core's invariants, checked against its bookkeeping (`WorkerState.validate()`):
 * what tests assert after every event of a random sequence, and what a debug run can switch
 * on (`validate: true`). Throws InvariantError naming the first broken one.
 */
import { InvariantError } from '../errors.js';
import { ERRED, FETCH, FLIGHT, isActive, isFetching, MEMORY, MISSING, READY, RELEASED, RUNNING, TASK_STATE_NAMES, WAITING, type WorkerTask } from './records.js';

/** What the check reads; the state machine hands over its own collections. */
export interface WorkerStateView {
  readonly id: string;
  readonly tasks: ReadonlyMap<string, WorkerTask>;
  readonly counts: ArrayLike<number>;
  /** The ready queue from its head. */
  readonly ready: readonly WorkerTask[];
  readonly fetchQueue: readonly WorkerTask[];
  readonly batches: ReadonlyMap<number, readonly WorkerTask[]>;
  readonly requests: ReadonlyMap<number, { readonly holder: string; readonly keys: readonly string[] }>;
  readonly maxBatches: number;
  readonly maxRequests: number;
}

export function validateWorkerState(st: WorkerStateView): void {
  const fail = (t: WorkerTask | null, msg: string): never => {
    throw new InvariantError(`${t === null ? '' : `${t.key} (${TASK_STATE_NAMES[t.state]}): `}${msg}`);
  };
  const counts = new Array<number>(TASK_STATE_NAMES.length).fill(0);
  const needers = new Map<WorkerTask, number>();
  const ready = new Set(st.ready);
  const queued = new Set(st.fetchQueue);
  for (const [key, t] of st.tasks) {
    if (t.key !== key) fail(t, 'key mismatch');
    if (t.state === RELEASED || t.state === ERRED) fail(t, 'released or erred, still held');
    counts[t.state]!++;
    if (isActive(t.state)) {
      if (t.spec === null) fail(t, 'active without a spec');
      if (t.deps.length !== t.dependencies.length) fail(t, 'dependency records and keys differ in number');
      let missing = 0;
      const seen = new Set<WorkerTask>();
      for (let i = 0; i < t.deps.length; i++) {
        const d = t.deps[i]!;
        if (d.key !== t.dependencies[i]) fail(t, `dependency ${i} is ${d.key}, its key says ${String(t.dependencies[i])}`);
        if (st.tasks.get(d.key) !== d) fail(t, `dependency ${d.key} not held`);
        if (d === t) fail(t, 'depends on itself');
        if (seen.has(d)) fail(t, `dependency ${d.key} listed twice`);
        seen.add(d);
        needers.set(d, (needers.get(d) ?? 0) + 1);
        if (d.state === MEMORY) continue;
        missing++;
        if (d.waiters?.has(t) !== true) fail(t, `not among the waiters of ${d.key}`);
      }
      if (missing !== t.waitingOn) fail(t, `waitingOn ${t.waitingOn}, counted ${missing}`);
      if (t.state === WAITING && missing === 0) fail(t, 'ready task left waiting');
      if (t.state !== WAITING && missing > 0) fail(t, 'dependencies not in memory');
    } else {
      if (t.spec !== null) fail(t, 'spec kept while not computing');
      if (t.deps.length > 0 || t.waitingOn !== 0) fail(t, 'dependencies kept while not computing');
      if (t.solo) fail(t, 'solo while not computing');
    }
    if (t.waiters !== null) {
      if (t.state === MEMORY && t.waiters.size > 0) fail(t, 'in memory with tasks still waiting on it');
      for (const w of t.waiters) {
        if (w.state !== WAITING || st.tasks.get(w.key) !== w || !w.deps.includes(t)) fail(t, `waiter ${w.key} is not waiting on it`);
      }
    }
    if (t.held && t.state !== MEMORY) fail(t, 'held while not in memory');
    if (t.state === MEMORY && !t.held && t.needers === 0) fail(t, 'in memory, neither held nor needed');
    if (t.replica && !isFetching(t.state)) fail(t, 'a replica wanted while not fetching');
    if (isFetching(t.state) && t.needers === 0 && !t.replica) fail(t, 'fetched for nobody');
    if (t.state === MISSING && (t.needers === 0 || t.holders.length > 0)) fail(t, 'missing with holders to ask, or for nobody');
    if (t.state === FETCH) {
      if (t.holders.length === 0) fail(t, 'to fetch from nobody');
      if (!t.queued || !queued.has(t)) fail(t, 'to fetch, not in the fetch queue');
    }
    if (!isFetching(t.state) && t.holders.length > 0) fail(t, 'holders kept while not fetching');
    if (t.holders.includes(st.id)) fail(t, 'to be fetched from this worker itself');
    if (new Set(t.holders).size !== t.holders.length) fail(t, 'a holder listed twice');
    if (t.state === FLIGHT && st.requests.get(t.request)?.keys.includes(t.key) !== true) fail(t, `in flight outside request ${t.request}`);
    if (t.state === RUNNING && st.batches.get(t.batch)?.includes(t) !== true) fail(t, `running outside batch ${t.batch}`);
    if (t.state === READY && (!t.listed || !ready.has(t))) fail(t, 'ready, not in the ready queue');
  }
  for (const [key, t] of st.tasks) {
    if ((needers.get(t) ?? 0) !== t.needers) fail(t, `needers ${t.needers}, counted ${needers.get(t) ?? 0} (${key})`);
  }
  for (let s = WAITING; s <= MISSING; s++) {
    if (counts[s] !== st.counts[s]) fail(null, `count of ${TASK_STATE_NAMES[s]}: ${st.counts[s]} kept, ${counts[s]} counted`);
  }
  if (st.batches.size > st.maxBatches) fail(null, `${st.batches.size} batches in flight, at most ${st.maxBatches}`);
  for (const [id, batch] of st.batches) if (batch.length === 0) fail(null, `batch ${id} is empty`);
  if (st.requests.size > st.maxRequests) fail(null, `${st.requests.size} requests in flight, at most ${st.maxRequests}`);
  for (const [id, request] of st.requests) if (request.holder === st.id) fail(null, `request ${id} asks this worker itself`);
  for (const t of st.fetchQueue) if (!t.queued) fail(t, 'in the fetch queue, not marked queued');
  for (const t of st.ready) if (!t.listed) fail(t, 'in the ready queue, not marked listed');
}
