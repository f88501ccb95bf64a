/**
 * Messages of the live feed (`GET /api/v1/events`, server-sent events, one JSON message
 * per event). Shared by the server and the page, so it holds only types and constants.
 * Rows are tuples and the task stream a flat number array: a message for 1,000 workers
 * and 2,000 stream entries stays around 100 kB.
 */
import type { ScalingDecision, ScalingSample } from '../protocol/scaling.js';
import type { StateCounts } from '../scheduler/state.js';
import type { AdaptiveTargetInfo, DashboardCounters } from './source.js';

export const FEED_VERSION = 2;

export interface FeedHello {
  readonly op: 'hello';
  readonly version: number;
  readonly intervalMs: number;
  readonly adaptive: boolean;
  /** The page keeps task-stream bars this long (source clock). */
  readonly streamWindowMs: number;
}

/** A worker, as a tuple; its field indices are in `WORKER_FIELD`. */
export type WorkerRow = readonly [
  worker: string,
  name: string,
  status: string,
  nthreads: number,
  processing: number,
  inMemory: number,
  nbytes: number,
  memoryLimit: number,
  managed: number,
  spilled: number,
  process: number,
  lastSeen: number,
  occupancy: number,
];

export const WORKER_FIELD = {
  worker: 0,
  name: 1,
  status: 2,
  nthreads: 3,
  processing: 4,
  inMemory: 5,
  nbytes: 6,
  memoryLimit: 7,
  managed: 8,
  spilled: 9,
  process: 10,
  lastSeen: 11,
  occupancy: 12,
} as const;

/** Progress of one prefix: held tasks by state, plus totals including forgotten tasks. */
export interface PrefixRow {
  readonly prefix: string;
  readonly counts: StateCounts;
  /** Finished since the start, forgotten ones included; -1 when the source cannot tell. */
  readonly finished: number;
  readonly erred: number;
}

/**
 * Task-stream entries since the last message: `rows` holds six numbers per entry —
 * prefix index, worker index (into the two tables), lane, start, stop, kind (`STREAM_KINDS`)
 * — and `keys` each entry's key, in the same order (what the page shows on hover).
 */
export interface StreamChunk {
  readonly prefixes: readonly string[];
  readonly workers: readonly string[];
  readonly rows: readonly number[];
  readonly keys: readonly string[];
}

export const STREAM_FIELDS = 6;
export const STREAM_KINDS = ['compute', 'transfer', 'error'] as const;

export interface FeedUpdate {
  readonly op: 'update';
  readonly seq: number;
  /** Updates this client missed because it was not draining; this one carries the latest state. */
  readonly dropped: number;
  /** The source's clock at this update. */
  readonly now: number;
  readonly tasks: number;
  readonly byState: StateCounts;
  readonly totalThreads: number;
  readonly clients: number;
  readonly expectedRemainingWork: number;
  readonly workerCount: number;
  /** Present when the worker list is sent (at most about once a second). */
  readonly workers?: readonly WorkerRow[];
  readonly prefixes: readonly PrefixRow[];
  /** Prefixes left out to keep the message small (the least active ones). */
  readonly prefixesOmitted: number;
  readonly samples: readonly ScalingSample[];
  readonly decisions: readonly ScalingDecision[];
  readonly target: AdaptiveTargetInfo | null;
  readonly stream: StreamChunk;
  /** True when more entries finished than one message carries; the oldest were left out. */
  readonly streamCapped: boolean;
  readonly counters: DashboardCounters;
}

export type FeedMessage = FeedHello | FeedUpdate;
