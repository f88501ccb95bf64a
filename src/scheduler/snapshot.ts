/**
 * What the scheduler answers about itself: counts by state, worker and prefix snapshots,
 * one task's record. Plain data, made from the records on request.
 */
import type { TaskErrorInfo, WorkerMemory } from '../protocol/messages.js';
import { FORGOTTEN, TASK_STATE_NAMES, type HeldTaskStateName, type WorkerStatus } from './records.js';

export type StateCounts = Record<HeldTaskStateName, number>;

export interface WorkerSnapshot {
  readonly worker: string;
  readonly name: string;
  readonly status: WorkerStatus;
  readonly nthreads: number;
  readonly memoryLimit: number;
  /** Tasks assigned to it and not yet reported back. */
  readonly processing: number;
  /** Task results it holds. */
  readonly inMemory: number;
  readonly nbytes: number;
  /** Seconds of work assigned to it, estimated. */
  readonly occupancy: number;
  readonly memory: WorkerMemory;
  readonly lastSeen: number;
}

export interface PrefixSnapshot {
  readonly prefix: string;
  /** Estimated seconds per task in use now. */
  readonly duration: number;
  /** Whether a task of the prefix has finished (else the estimate is the default or running time). */
  readonly measured: boolean;
  readonly counts: StateCounts;
}

export interface SchedulerSnapshot {
  readonly now: number;
  readonly tasks: number;
  readonly byState: StateCounts;
  readonly workers: readonly WorkerSnapshot[];
  readonly prefixes: readonly PrefixSnapshot[];
  readonly totalThreads: number;
  readonly stealsInFlight: number;
  readonly retiring: readonly string[];
  readonly clients: number;
  /** Seconds of work in waiting, no-worker, queued and processing tasks, estimated. */
  readonly expectedRemainingWork: number;
}

export interface TaskInfo {
  readonly key: string;
  readonly prefix: string;
  readonly state: HeldTaskStateName;
  readonly priority: readonly [number, number, number];
  readonly dependencies: readonly string[];
  readonly dependents: readonly string[];
  readonly whoHas: readonly string[];
  readonly processingOn: string | null;
  /** When it started running, on the scheduler's clock (as reported or estimated); NaN when not running. */
  readonly startedAt: number;
  readonly nbytes: number;
  readonly wantedBy: readonly string[];
  /** Workers (ids or names) it may run on; empty when any will do. */
  readonly restrictions: readonly string[];
  readonly retries: number;
  readonly suspicious: number;
  readonly error: TaskErrorInfo | null;
}

/** Every state at zero: a prefix or cluster with nothing in it. */
export function emptyStateCounts(): StateCounts {
  return countsOf(new Array<number>(FORGOTTEN).fill(0));
}

export function countsOf(raw: readonly number[]): StateCounts {
  const out = {} as Record<HeldTaskStateName, number>;
  for (let s = 0; s < FORGOTTEN; s++) out[TASK_STATE_NAMES[s] as HeldTaskStateName] = raw[s] as number;
  return out;
}
