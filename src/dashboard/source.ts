/**
 * What the dashboard reads. The dashboard knows the scheduler only through this
 * interface, so the server shell wires it once and tests (or a replayed simulation) can
 * stand in for a whole cluster.
 *
 * ```ts
 * const stream = new TaskStreamBuffer();
 * const source: DashboardSource = {
 *   snapshot: () => state.snapshot(),
 *   scaling: (since) => adaptive?.history(since),
 *   adaptiveTarget: () => lastDecision,
 *   taskStream: (since, limit) => stream.since(since, limit),
 *   prefixTotals: () => stream.prefixTotals(),
 *   counters: () => counters,
 *   clock: () => performance.now(),
 * };
 * const dashboard = await startDashboard({ source });
 * ```
 *
 * Times are milliseconds on the scheduler's clock (whatever its events carry as `now`:
 * `performance.now()` in the server, virtual time in a simulation).
 */
import type { ScalingHistory } from '../protocol/scaling.js';
import type { SchedulerSnapshot } from '../scheduler/state.js';

/**
 * One bar of the task stream. `compute`: a task ran; `transfer`: data moved to `worker`
 * (its key is the key moved); `error`: a task ran and raised.
 */
export interface TaskStreamEntry {
  readonly key: string;
  readonly prefix: string;
  /** Worker name. */
  readonly worker: string;
  /** Lane within the worker: its thread for computations. */
  readonly thread: number;
  readonly start: number;
  readonly stop: number;
  readonly kind: TaskStreamKind;
}

export type TaskStreamKind = 'compute' | 'transfer' | 'error';

/** Totals since the scheduler started; they never go down. */
export interface DashboardCounters {
  readonly transfersTotal: number;
  readonly transferBytesTotal: number;
  readonly tasksFinishedTotal: number;
  readonly tasksErredTotal: number;
  readonly taskDurationSecondsSum: number;
  readonly taskDurationCount: number;
  /** Bytes spilled to disk across the workers now (a level, not a total). */
  readonly bytesSpilled: number;
}

/** Tasks of one prefix finished or erred since the scheduler started, forgotten ones included. */
export interface PrefixTotals {
  readonly finished: number;
  readonly erred: number;
}

export interface AdaptiveTargetInfo {
  readonly target: number;
  readonly reason: string;
}

export interface DashboardSource {
  snapshot(): SchedulerSnapshot;
  /** Samples and decisions with `t > since`; undefined when the cluster is not adaptive. */
  scaling(since?: number): ScalingHistory | undefined;
  /** The adaptive loop's latest target; undefined when not adaptive. */
  adaptiveTarget(): AdaptiveTargetInfo | undefined;
  /**
   * Entries with `stop > since`, oldest first; with `limit`, only the newest `limit` of
   * them (a feed that fell behind wants the latest, not the oldest).
   */
  taskStream(since: number, limit?: number): readonly TaskStreamEntry[];
  counters(): DashboardCounters;
  /**
   * Per-prefix totals including forgotten tasks, so progress can say "done" for results
   * already released. Without it, progress counts only tasks the scheduler still holds.
   */
  prefixTotals?(): ReadonlyMap<string, PrefixTotals>;
  /** The current time on the source's clock; defaults to the snapshot's `now`. */
  clock?(): number;
}
