/** The state machine's options: what users may set, checked at the door, and their defaults. */
import { InvalidArgumentError } from '../errors.js';
import { checkOptions, optionNames } from '../options.js';

export interface SchedulerStateOptions {
  /** Bytes per second between workers, for the cost of moving data. Default 100 MB/s. */
  bandwidth?: number;
  /** Expected duration of a task whose prefix has not finished a task yet. Default 500 ms. */
  defaultTaskDurationMs?: number;
  /** Workers that may die while running a task before it errs. Default 3. */
  allowedFailures?: number;
  /** A worker not heard from for longer is removed on the next tick. Default 300,000 ms; Infinity disables. */
  workerTtlMs?: number;
  /**
   * Queued root-ish tasks go to a worker while it processes fewer than
   * ceil(nthreads × saturation). Default 1.1 (one spare task per worker at least);
   * Infinity disables queuing (root-ish tasks are then placed at once).
   */
  saturation?: number;
  /**
   * Beyond its saturation slots, a worker is given queued tasks of a prefix whose tasks are
   * known to be short while the work it has is expected to take less than this per
   * thread: enough tiny tasks to cover the round trip to the scheduler, so its threads never
   * wait on it. Bounded by count and by the bytes the tasks are expected to return (see
   * placement.ts), so a wide graph of large results still cannot flood memory. Default 5 ms;
   * 0 sends exactly the saturation slots, as Dask does.
   */
  backlogMs?: number;
  /** Rebalance on ticks by stealing from saturated workers. Default true. */
  workStealing?: boolean;
  /** A steal request unanswered for this long is given up. Default 30,000 ms. */
  stealTimeoutMs?: number;
  /** Transitions kept for `story()`, newest replacing oldest. Default 100,000; 0 keeps none. */
  transitionLogLength?: number;
  /** Check every invariant after every event (slow; for tests and debugging). Default false. */
  validate?: boolean;
}

export interface ResolvedOptions {
  readonly bandwidth: number;
  readonly defaultTaskDurationMs: number;
  readonly allowedFailures: number;
  readonly workerTtlMs: number;
  readonly saturation: number;
  readonly backlogMs: number;
  readonly workStealing: boolean;
  readonly stealTimeoutMs: number;
  readonly transitionLogLength: number;
  readonly validate: boolean;
}

const STATE_OPTIONS = optionNames<SchedulerStateOptions>()([
  'bandwidth', 'defaultTaskDurationMs', 'allowedFailures', 'workerTtlMs', 'saturation', 'backlogMs', 'workStealing', 'stealTimeoutMs', 'transitionLogLength', 'validate',
]);

export function resolveOptions(o: SchedulerStateOptions): ResolvedOptions {
  checkOptions(o, STATE_OPTIONS, 'scheduler state options');
  const positive = (name: string, v: number | undefined, dflt: number, allowInfinity: boolean): number => {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || Number.isNaN(v) || v <= 0 || (!allowInfinity && !Number.isFinite(v))) {
      throw new InvalidArgumentError(`options.${name} must be a positive number${allowInfinity ? ' or Infinity' : ''}`);
    }
    return v;
  };
  const allowedFailures = o.allowedFailures ?? 3;
  if (!Number.isInteger(allowedFailures) || allowedFailures < 0) {
    throw new InvalidArgumentError('options.allowedFailures must be a non-negative integer');
  }
  if (o.workStealing !== undefined && typeof o.workStealing !== 'boolean') {
    throw new InvalidArgumentError('options.workStealing must be a boolean');
  }
  if (o.validate !== undefined && typeof o.validate !== 'boolean') throw new InvalidArgumentError('options.validate must be a boolean');
  const backlogMs = o.backlogMs ?? 5;
  if (typeof backlogMs !== 'number' || !(backlogMs >= 0) || !Number.isFinite(backlogMs)) {
    throw new InvalidArgumentError('options.backlogMs must be a non-negative number of milliseconds');
  }
  const transitionLogLength = o.transitionLogLength ?? 100_000;
  if (!Number.isInteger(transitionLogLength) || transitionLogLength < 0) {
    throw new InvalidArgumentError('options.transitionLogLength must be a non-negative integer');
  }
  return {
    bandwidth: positive('bandwidth', o.bandwidth, 100e6, false),
    defaultTaskDurationMs: positive('defaultTaskDurationMs', o.defaultTaskDurationMs, 500, false),
    allowedFailures,
    workerTtlMs: positive('workerTtlMs', o.workerTtlMs, 300_000, true),
    saturation: positive('saturation', o.saturation, 1.1, true),
    backlogMs,
    workStealing: o.workStealing ?? true,
    stealTimeoutMs: positive('stealTimeoutMs', o.stealTimeoutMs, 30_000, true),
    transitionLogLength,
    validate: o.validate ?? false,
  };
}
