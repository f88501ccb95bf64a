/**
 * The adaptive scaling decision, pure: observations in, a decision out, no clocks or I/O.
 * The loop that feeds it (loop.ts) runs in the scheduler process; the same policy runs
 * in the simulation.
 *
 * Where it departs from Dask's `Adaptive`, on purpose:
 * - remaining work counts tasks still running and not yet measured (the state machine
 *   raises a prefix's estimate while its tasks run), so an empty cluster given 200
 *   one-second tasks asks for many workers at once, not one;
 * - workers requested but not yet arrived count as capacity, so scale-up neither
 *   overshoots nor flaps, and a burst arriving while workers start asks only for the
 *   difference;
 * - the policy names the workers to retire (idle, least data first); a backend never
 *   picks which worker dies.
 */
import { InvalidArgumentError } from '../errors.js';
import { checkOptions, optionNames } from '../options.js';
import type { AdaptiveDecision } from '../protocol/scaling.js';
import type { ClusterBackend } from './backend.js';

export type { AdaptiveDecision };

export interface AdaptiveOptions {
  /** Never fewer workers than this (default 0). */
  readonly minimum?: number;
  /** Never more workers than this (default Infinity). */
  readonly maximum?: number;
  /** Aim to finish the queued work in this many milliseconds (default 5,000). */
  readonly targetDuration?: number;
  /** Milliseconds between decisions (default 1,000). */
  readonly interval?: number;
  /** A worker is retired only after being nominated on this many consecutive ticks (default 3). */
  readonly waitCount?: number;
  /** Scale up for memory when stored bytes pass this fraction of the cluster's limit (default 0.6). */
  readonly memoryTarget?: number;
  /** Requested workers missing for this long are asked for again, with backoff (default 60,000 ms). */
  readonly startupTimeout?: number;
}

export interface ResolvedAdaptiveOptions {
  readonly minimum: number;
  readonly maximum: number;
  readonly targetDuration: number;
  readonly interval: number;
  readonly waitCount: number;
  readonly memoryTarget: number;
  readonly startupTimeout: number;
}

/** Accepts '5s', '500ms', '2m' or a number of milliseconds. */
export function parseDuration(value: string | number, name: string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new InvalidArgumentError(`${name} must be a non-negative number of milliseconds`);
    return value;
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(value);
  if (match === null) throw new InvalidArgumentError(`${name} must be a duration such as '5s' or '500ms', got '${value}'`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h'];
  return Number(match[1]) * unit;
}

export type AdaptiveInput = Omit<AdaptiveOptions, 'targetDuration' | 'interval' | 'startupTimeout'> & {
  readonly targetDuration?: string | number;
  readonly interval?: string | number;
  readonly startupTimeout?: string | number;
  /**
   * A second backend for the work beyond the persistent pool (Lambda, say): the cluster's
   * own backend keeps between `minimum` and `persistent` workers, and the rest of the
   * target, up to `maximum` in all, goes here.
   */
  readonly burst?: ClusterBackend;
  /** With `burst`: the most workers the persistent backend holds (default: minimum, at least 1). */
  readonly persistent?: number;
};

const ADAPT_OPTIONS = optionNames<AdaptiveInput>()(['minimum', 'maximum', 'targetDuration', 'interval', 'waitCount', 'memoryTarget', 'startupTimeout', 'burst', 'persistent']);

export function resolveAdaptiveOptions(input: AdaptiveInput = {}): ResolvedAdaptiveOptions {
  checkOptions(input, ADAPT_OPTIONS, 'adapt()');
  const minimum = input.minimum ?? 0;
  const maximum = input.maximum ?? Infinity;
  if (!Number.isInteger(minimum) || minimum < 0) throw new InvalidArgumentError('adapt(): minimum must be a non-negative integer');
  if (maximum !== Infinity && (!Number.isInteger(maximum) || maximum < 0)) throw new InvalidArgumentError('adapt(): maximum must be a non-negative integer or Infinity');
  if (maximum < minimum) throw new InvalidArgumentError(`adapt(): maximum (${maximum}) is below minimum (${minimum})`);
  const targetDuration = parseDuration(input.targetDuration ?? '5s', 'adapt(): targetDuration');
  const interval = parseDuration(input.interval ?? '1s', 'adapt(): interval');
  const startupTimeout = parseDuration(input.startupTimeout ?? '60s', 'adapt(): startupTimeout');
  if (targetDuration <= 0) throw new InvalidArgumentError('adapt(): targetDuration must be positive');
  if (interval <= 0) throw new InvalidArgumentError('adapt(): interval must be positive');
  const waitCount = input.waitCount ?? 3;
  if (!Number.isInteger(waitCount) || waitCount < 1) throw new InvalidArgumentError('adapt(): waitCount must be a positive integer');
  const memoryTarget = input.memoryTarget ?? 0.6;
  if (!(memoryTarget > 0 && memoryTarget <= 1)) throw new InvalidArgumentError('adapt(): memoryTarget must be in (0, 1]');
  return { minimum, maximum, targetDuration, interval, waitCount, memoryTarget, startupTimeout };
}

/** One running worker as the policy sees it. */
export interface WorkerView {
  /** The backend's name for it (what scaleDown takes). */
  readonly name: string;
  readonly nthreads: number;
  /** No task processing or queued on it. */
  readonly idle: boolean;
  /** Bytes of results it holds. */
  readonly nbytes: number;
  readonly memoryLimit: number;
}

export interface AdaptiveObservation {
  readonly now: number;
  /** Seconds of work left, estimated (the scheduler's expectedRemainingWork). */
  readonly expectedWork: number;
  /** Tasks that could run now or later (not yet in memory); 0 means the job is done. */
  readonly pendingTasks: number;
  /** True if some client still holds results on a worker. */
  readonly holdsResults: boolean;
  /** Workers connected and running (not retiring). */
  readonly workers: readonly WorkerView[];
  /** The backend's counts: asked for (including those starting), and closing. */
  readonly requested: number;
  readonly closing: number;
  /** Threads a new worker will bring (the backend's, or the running workers' average). */
  readonly threadsPerWorker: number;
}

export class AdaptivePolicy {
  readonly options: ResolvedAdaptiveOptions;
  /** Consecutive ticks each worker has been nominated for retirement. */
  readonly #nominated = new Map<string, number>();
  #missingSince = -1;
  #retryAt = 0;
  #backoff = 0;

  constructor(options: ResolvedAdaptiveOptions) {
    this.options = options;
  }

  /** The number of workers the observed work asks for, within [minimum, maximum], and why. */
  target(o: AdaptiveObservation): { target: number; reason: string } {
    const { minimum, maximum, targetDuration, memoryTarget } = this.options;
    const threads = Math.max(1, o.threadsPerWorker);
    const byWork = o.pendingTasks > 0 ? Math.max(1, Math.ceil((o.expectedWork * 1000) / targetDuration / threads)) : 0;
    let stored = 0;
    let limit = 0;
    for (const w of o.workers) {
      stored += w.nbytes;
      limit += w.memoryLimit;
    }
    const perWorkerLimit = o.workers.length > 0 ? limit / o.workers.length : 0;
    const byMemory = perWorkerLimit > 0 && stored > memoryTarget * limit ? Math.ceil(stored / (memoryTarget * perWorkerLimit)) : 0;
    // Results still held by a client need somewhere to live.
    const byResults = o.holdsResults ? 1 : 0;
    const wanted = Math.max(byWork, byMemory, byResults);
    const target = Math.min(maximum, Math.max(minimum, wanted));
    let reason: string;
    if (wanted === byMemory && byMemory > 0 && byMemory >= byWork) {
      reason = `memory: ${fmtBytes(stored)} stored is over ${Math.round(memoryTarget * 100)}% of ${fmtBytes(limit)}`;
    } else if (byWork > 0) {
      reason = `work: ${o.expectedWork.toFixed(1)} s over ${o.pendingTasks} tasks in ${targetDuration / 1000} s at ${threads} threads/worker`;
    } else if (byResults > 0) {
      reason = 'no work; keeping a worker for results a client holds';
    } else {
      reason = 'no work';
    }
    if (target !== wanted) reason += target === maximum ? ` (capped at maximum ${maximum})` : ` (raised to minimum ${minimum})`;
    return { target, reason };
  }

  /** `given`: a target decided elsewhere (a burst split), instead of this policy's own. */
  decide(o: AdaptiveObservation, given?: { readonly target: number; readonly reason: string }): AdaptiveDecision {
    const { target, reason } = given ?? this.target(o);
    const running = o.workers.length;

    // Workers started by hand count too.
    if (target > Math.max(o.requested, running)) {
      this.#nominated.clear();
      if (o.now < this.#retryAt) return { op: 'hold', target, reason: `${reason}; backing off after a failed scale-up` };
      return { op: 'scale-up', target, reason };
    }

    // Asked-for workers that never arrive: ask again, backing off, rather than wedging.
    if (o.requested > running + o.closing && target > running) {
      if (this.#missingSince < 0) this.#missingSince = o.now;
      if (o.now - this.#missingSince >= this.options.startupTimeout && o.now >= this.#retryAt) {
        this.failed(o.now);
        return { op: 'scale-up', target, reason: `retry: ${o.requested - running} requested workers have not arrived` };
      }
    } else {
      this.#missingSince = -1;
      this.#backoff = 0;
    }

    if (target >= running) {
      this.#nominated.clear();
      return { op: 'hold', target, reason };
    }

    // Too many: nominate idle workers, least data first; retire those nominated on
    // waitCount consecutive ticks.
    const surplus = running - target;
    // Workers already nominated stay first in line, so that data moving between workers
    // (as earlier ones retire) does not reshuffle the choice and restart the count.
    const rank = (w: WorkerView): number => (this.#nominated.has(w.name) ? 0 : 1);
    const candidates = o.workers
      .filter((w) => w.idle)
      .sort((a, b) => rank(a) - rank(b) || a.nbytes - b.nbytes)
      .slice(0, surplus);
    const chosen = new Set(candidates.map((w) => w.name));
    for (const name of this.#nominated.keys()) if (!chosen.has(name)) this.#nominated.delete(name);
    const ready: string[] = [];
    for (const name of chosen) {
      const count = (this.#nominated.get(name) ?? 0) + 1;
      this.#nominated.set(name, count);
      if (count >= this.options.waitCount) ready.push(name);
    }
    if (ready.length === 0) {
      return { op: 'hold', target, reason: `${reason}; ${chosen.size} idle worker(s) nominated for retirement` };
    }
    for (const name of ready) this.#nominated.delete(name);
    return { op: 'scale-down', target, workers: ready, reason: `${reason}; idle for ${this.options.waitCount} ticks` };
  }

  /** A scale-up failed (or went unanswered): wait before asking again, doubling up to a minute. */
  failed(now: number): void {
    this.#backoff = this.#backoff === 0 ? this.options.interval : Math.min(this.#backoff * 2, 60_000);
    this.#retryAt = now + this.#backoff;
  }

}

function fmtBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${Math.round(n / 1024)} KiB`;
}
