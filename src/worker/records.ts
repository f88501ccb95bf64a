/**
 * What the worker's core remembers of each key: one record per key, whether the scheduler
 * asked for it to be computed here or it is data a task here needs (or both, one after the
 * other). The states, as in Dask's worker:
 *
 * - computed here: waiting (for dependencies to arrive) → ready → running → memory;
 * - fetched here: fetch (a holder to ask is known) → flight (asked) → memory, or missing
 *   (every holder known was asked and none had it);
 * - released: dropped from the core; erred: reported and dropped (both only in stories).
 */
import type { WireSpec } from '../protocol/task-spec.js';

export const RELEASED = 0;
export const WAITING = 1;
export const READY = 2;
export const RUNNING = 3;
export const MEMORY = 4;
export const FETCH = 5;
export const FLIGHT = 6;
export const MISSING = 7;
export const ERRED = 8;

export type TaskStateCode = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8;

export const TASK_STATE_NAMES = ['released', 'waiting', 'ready', 'running', 'memory', 'fetch', 'flight', 'missing', 'erred'] as const;

export type WorkerTaskStateName = (typeof TASK_STATE_NAMES)[number];

/** Computed here and not finished: what keeps its dependencies needed. */
export function isActive(state: TaskStateCode): boolean {
  return state === WAITING || state === READY || state === RUNNING;
}

/** Being fetched, or to be: data only, no spec. */
export function isFetching(state: TaskStateCode): boolean {
  return state === FETCH || state === FLIGHT || state === MISSING;
}

// Shared by every record that has none: most never fetch, and finished ones keep no dependencies.
const NO_KEYS: readonly string[] = Object.freeze([]);
const NO_TASKS: readonly WorkerTask[] = Object.freeze([]);

export class WorkerTask {
  readonly key: string;
  state: TaskStateCode = RELEASED;
  /**
   * What to run, while the scheduler wants it computed here (waiting, ready, running): as
   * its client encoded it (encoded-spec.ts; the thread that runs it decodes it), or the object.
   */
  spec: WireSpec | null = null;
  /** Ids of the functions the spec names, while it is held. */
  fns: readonly string[] = NO_KEYS;
  /** Keys of its dependencies, as the thread looks them up. */
  dependencies: readonly string[] = NO_KEYS;
  /** Their records, held while this one is active. */
  deps: readonly WorkerTask[] = NO_TASKS;
  /** Dependencies not in memory yet (waiting). */
  waitingOn = 0;
  /** Active tasks here that need this one's data: it stays while any does. */
  needers = 0;
  /** Waiting tasks to wake when this one reaches memory. */
  waiters: Set<WorkerTask> | null = null;
  /** Holders not asked yet, in the order they will be (fetch, flight, missing). */
  holders: readonly string[] = NO_KEYS;
  /** In the fetch queue (a record enters it once however often it goes back to fetch). */
  queued = false;
  /** In the ready queue, likewise. */
  listed = false;
  /** The request it is in flight in. */
  request = 0;
  /** The batch it runs in. */
  batch = 0;
  /** The ticket of the scheduler's last compute of it (-1: none): its reports name it so. */
  ticket = -1;
  /** Size of its value, once in memory. */
  nbytes = 0;
  /** In memory, and the scheduler counts this worker among its holders. */
  held = false;
  /** The scheduler asked for a copy here (replicate), with no task here needing it. */
  replica = false;
  /** Runs alone: it was in a batch whose thread died, and which task killed it is unknown. */
  solo = false;

  constructor(key: string) {
    this.key = key;
  }

  /** Drops what only an active task keeps. */
  clearDependencies(): void {
    this.deps = NO_TASKS;
    this.dependencies = NO_KEYS;
  }

  clearHolders(): void {
    this.holders = NO_KEYS;
  }
}
