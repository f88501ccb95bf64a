/**
 * Walltime-aware workers: a worker whose process cannot outlive a deadline (a batch job's
 * walltime, a function's timeout) leaves before it, on its own terms. At `lifetime` — less
 * a random part of `stagger`, so that workers started together do not all leave together —
 * it closes gracefully: the scheduler stops giving it tasks, copies the results only it
 * holds to workers that stay, then lets it go. The adaptive loop sees a worker leaving and
 * asks for another; nothing is lost.
 *
 * ```ts
 * const worker = await Worker.start({ scheduler: address });
 * leaveAtLifetime(worker, { lifetime: 25 * 60_000, stagger: 2 * 60_000 });   // tessera worker --lifetime 25m --lifetime-stagger 2m
 * ```
 *
 * Unlike Dask, whose stagger moves the moment either way, the moment here is never later
 * than `lifetime`: the lifetime is a promise made to a deadline.
 */
import { InvalidArgumentError } from '../errors.js';

/** What this needs of a worker (a `Worker` fits). */
export interface LeavingWorker {
  close(options: { readonly graceful?: boolean; readonly timeout?: number }): Promise<void>;
  readonly closed: Promise<void>;
}

export interface LifetimeOptions {
  /** Milliseconds after which the worker leaves. */
  readonly lifetime: number;
  /** It leaves up to this many milliseconds earlier, chosen at random. Default 0. */
  readonly stagger?: number;
  /** How long handing its results over may take before it closes anyway. Default: the worker's own (60 s). */
  readonly handoverTimeout?: number;
  /** Where the departure is reported. Default: nowhere. */
  readonly log?: (line: string) => void;
  /** A number in [0, 1); tests pass their own. Default Math.random. */
  readonly random?: () => number;
}

export interface Lifetime {
  /** Milliseconds from the call to the moment the worker leaves. */
  readonly after: number;
  /** Forgets the lifetime (the worker stays). */
  cancel(): void;
}

/** Makes the worker leave gracefully once its lifetime is over; forgotten if it closes first. */
export function leaveAtLifetime(worker: LeavingWorker, options: LifetimeOptions): Lifetime {
  const { lifetime, stagger = 0 } = options;
  if (typeof lifetime !== 'number' || !Number.isFinite(lifetime) || lifetime <= 0) throw new InvalidArgumentError(`lifetime must be a positive number of milliseconds, got ${String(lifetime)}`);
  if (typeof stagger !== 'number' || !Number.isFinite(stagger) || stagger < 0 || stagger >= lifetime) {
    throw new InvalidArgumentError(`lifetime stagger must be a non-negative number of milliseconds below the lifetime (${lifetime}), got ${String(stagger)}`);
  }
  const random = options.random ?? Math.random;
  const after = Math.round(lifetime - random() * stagger);
  const timer = setTimeout(() => {
    options.log?.(`lifetime of ${formatMs(after)} reached: retiring (results only this worker holds move to others first)`);
    worker.close({ graceful: true, ...(options.handoverTimeout === undefined ? {} : { timeout: options.handoverTimeout }) }).catch((error: unknown) => {
      options.log?.(`leaving at the end of its lifetime failed: ${error instanceof Error ? error.message : String(error)}`);
    });
  }, after);
  // The worker's own sockets keep the process alive; the timer need not.
  timer.unref();
  void worker.closed.then(() => clearTimeout(timer));
  return { after, cancel: () => clearTimeout(timer) };
}

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A lifetime as the command line gives it — '25m', '90s', '1h30m', '500ms' — in
 * milliseconds. A bare number is refused: seconds or minutes, nobody could tell.
 */
export function parseLifetime(value: string, flag: string): number {
  if (!/^\s*(\d+(\.\d+)?\s*(ms|s|m|h|d)\s*)+$/.test(value)) throw new InvalidArgumentError(`${flag} must be a duration with its unit, such as '25m', '90s' or '1h30m', got '${value}'`);
  let ms = 0;
  for (const part of value.matchAll(/(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)/g)) ms += Number(part[1]) * UNITS[part[2]!]!;
  return ms;
}

function formatMs(ms: number): string {
  return ms >= 120_000 ? `${Math.round(ms / 6000) / 10} min` : `${Math.round(ms / 100) / 10} s`;
}
