/**
 * The scheduler's invariants, checked against its bookkeeping (`SchedulerState.validate()`):
 * what tests assert after every event of a random sequence, and what a debug run can
 * switch on (`validate: true`). Throws InvariantError naming the first broken one.
 */
import { InvariantError } from '../errors.js';
import { isLong, type WorkerPool } from './placement.js';
import type { RunQueue } from './priority-queue.js';
import { ERRED, FORGOTTEN, isActive, MEMORY, NO_WORKER, PINNED, PROCESSING, QUEUED, RELEASED, TASK_STATE_NAMES, type TaskState, WAITING, type WorkerState } from './records.js';

/** What the check reads; the state machine hands over its own collections. */
export interface StateView {
  readonly tasks: ReadonlyMap<string, TaskState>;
  readonly workers: ReadonlyMap<string, WorkerState>;
  /** Result stores: holders that run nothing. */
  readonly stores: ReadonlyMap<string, WorkerState>;
  readonly queue: RunQueue<TaskState>;
  readonly pool: WorkerPool;
  readonly unrunnable: ReadonlySet<TaskState>;
  readonly counts: readonly number[];
  readonly clients: ReadonlyMap<string, ReadonlySet<TaskState>>;
}

export function validateState(st: StateView): void {
  const counts = [0, 0, 0, 0, 0, 0, 0, 0];
  const fail = (ts: TaskState | null, msg: string): never => {
    throw new InvariantError(`${ts === null ? '' : `${ts.key} (${TASK_STATE_NAMES[ts.state]}): `}${msg}`);
  };
  for (const [key, ts] of st.tasks) {
    if (ts.key !== key) fail(ts, 'key mismatch');
    if (ts.state === FORGOTTEN) fail(ts, 'forgotten task still held');
    counts[ts.state] = (counts[ts.state] as number) + 1;
    // Pinned: named by a graph whose parts are still arriving.
    const needed = ts.wantedBy !== null || ts.activeDependents > 0 || (ts.flags & PINNED) !== 0;
    for (const d of ts.dependencies) {
      if (d.state === FORGOTTEN || st.tasks.get(d.key) !== d) fail(ts, `dependency ${d.key} not held`);
      if (!d.dependents.includes(ts)) fail(ts, `not among ${d.key}'s dependents`);
    }
    let active = 0;
    let dead = 0;
    for (const d of ts.dependents) {
      if (d.state === FORGOTTEN) dead++;
      else if (isActive(d.state)) active++;
    }
    if (active !== ts.activeDependents) fail(ts, `activeDependents ${ts.activeDependents}, counted ${active}`);
    if (dead !== ts.deadDependents) fail(ts, `deadDependents ${ts.deadDependents}, counted ${dead}`);
    if ((ts.whoHas !== null) !== (ts.state === MEMORY)) fail(ts, 'whoHas iff memory');
    if (ts.whoHas !== null) {
      if (ts.whoHas.length === 0) fail(ts, 'in memory nowhere');
      for (const w of ts.whoHas) {
        if (st.workers.get(w.id) !== w && st.stores.get(w.id) !== w) fail(ts, `held by unknown worker ${w.id}`);
        if (!w.hasWhat.has(ts)) fail(ts, `${w.id}.hasWhat misses it`);
      }
    }
    if ((ts.processingOn !== null) !== (ts.state === PROCESSING)) fail(ts, 'processingOn iff processing');
    if (ts.processingOn !== null && !ts.processingOn.processing.has(ts)) fail(ts, 'not in its worker processing');
    if ((ts.ticket >= 0) !== (ts.processingOn !== null)) fail(ts, 'a ticket iff processing');
    if (ts.processingOn !== null && ts.processingOn.ticketed(ts.ticket) !== ts) fail(ts, `its ticket ${ts.ticket} does not find it on ${ts.processingOn.id}`);
    if ((ts.state === QUEUED) !== st.queue.has(ts)) fail(ts, 'queued iff in queue');
    if ((ts.state === NO_WORKER) !== st.unrunnable.has(ts)) fail(ts, 'no-worker iff unrunnable');
    if (ts.state === NO_WORKER) {
      const could = [...st.workers.values()].some(
        (w) => w.status === 'running' && (ts.restrictions === null || ts.restrictions.includes(w.id) || ts.restrictions.includes(w.name)),
      );
      if (could) fail(ts, 'no-worker although a running worker could take it');
    }
    if (ts.state === WAITING) {
      const missing = ts.dependencies.filter((d) => d.state !== MEMORY).length;
      if (ts.waitingOn !== missing) fail(ts, `waitingOn ${ts.waitingOn}, missing ${missing}`);
      if (missing === 0) fail(ts, 'ready task left waiting');
      if (ts.dependencies.some((d) => d.state === ERRED)) fail(ts, 'waiting on an erred dependency');
    }
    if (ts.state === QUEUED || ts.state === PROCESSING || ts.state === NO_WORKER) {
      if (ts.dependencies.some((d) => d.state !== MEMORY)) fail(ts, 'runnable with a dependency not in memory');
    }
    if ((isActive(ts.state) || ts.state === MEMORY) && !needed) fail(ts, 'held in an active state or memory, unneeded');
    if ((ts.state === RELEASED || ts.state === ERRED) && !needed && ts.dependents.length === ts.deadDependents) {
      fail(ts, 'should have been forgotten');
    }
    if (ts.state === ERRED && ts.dependents.some((d) => isActive(d.state))) fail(ts, 'erred with active dependents');
    if (ts.wantedBy !== null) {
      if (ts.wantedBy.length === 0) fail(ts, 'empty wantedBy');
      for (const c of ts.wantedBy) if (st.clients.get(c)?.has(ts) !== true) fail(ts, `client ${c} does not list it`);
    }
  }
  for (let i = 0; i < FORGOTTEN; i++) {
    if (counts[i] !== st.counts[i]) fail(null, `count of ${TASK_STATE_NAMES[i]}: ${st.counts[i]} kept, ${counts[i]} counted`);
  }
  // A long task at the queue's head waits for a free thread, anything else for a free slot.
  const head = st.queue.peek();
  const long = head !== undefined && isLong(head);
  let freeSlot = false;
  for (const w of st.workers.values()) {
    if ((w.status === 'running') !== st.pool.has(w)) fail(null, `${w.id}: in pool iff running`);
    if (w.status === 'running' && w.processing.size < (long ? w.nthreads : w.slots)) freeSlot = true;
    let nbytes = 0;
    for (const ts of w.hasWhat) {
      if (ts.whoHas?.includes(w) !== true) fail(ts, `${w.id}.hasWhat lists it, whoHas does not`);
      nbytes += Math.max(0, ts.nbytes);
    }
    if (nbytes !== w.nbytes) fail(null, `${w.id}.nbytes ${w.nbytes}, counted ${nbytes}`);
    for (const ts of w.processing) if (ts.processingOn !== w) fail(ts, `${w.id}.processing lists it`);
    if (w.ticketsHeld !== w.processing.size) fail(null, `${w.id} has ${w.ticketsHeld} tickets held for ${w.processing.size} tasks processing`);
    const perPrefix = w.processingCounts.reduce((a, b) => a + b, 0);
    if (perPrefix !== w.processing.size) fail(null, `${w.id}: prefix counts ${perPrefix} vs ${w.processing.size}`);
    if (w.stealIncoming < 0) fail(null, `${w.id}: negative stealIncoming`);
  }
  for (const store of st.stores.values()) {
    if (st.workers.has(store.id) || st.pool.has(store)) fail(null, `${store.id}: a store among the workers`);
    if (store.processing.size > 0 || store.status !== 'paused') fail(null, `${store.id}: a store processing tasks, or placeable`);
    let nbytes = 0;
    for (const ts of store.hasWhat) {
      if (ts.whoHas?.includes(store) !== true) fail(ts, `${store.id}.hasWhat lists it, whoHas does not`);
      nbytes += Math.max(0, ts.nbytes);
    }
    if (nbytes !== store.nbytes) fail(null, `${store.id}.nbytes ${store.nbytes}, counted ${nbytes}`);
  }
  if (st.queue.size > 0 && freeSlot) fail(null, `queued tasks while a running worker has a free ${long ? 'thread for a long task' : 'slot'}`);
  for (const [c, set] of st.clients) {
    if (set.size === 0) fail(null, `client ${c} with an empty set`);
    for (const ts of set) if (ts.wantedBy?.includes(c) !== true || st.tasks.get(ts.key) !== ts) fail(ts, `client ${c} lists it`);
  }
}
