/**
 * Which API failures are worth another try, and the backoff between tries. A busy or
 * restarting API server (429, 5xx, no answer), a RoleBinding not yet in effect or a quota
 * momentarily full (403), a write that raced another (409): all pass. A request the
 * server rejects as invalid (400, 404, 422) never will.
 */
import { KubernetesApiError } from './errors.js';

const RETRYABLE = new Set([0, 401, 403, 409, 429, 500, 502, 503, 504]);

export function isRetryable(error: unknown): boolean {
  return error instanceof KubernetesApiError && RETRYABLE.has(error.status);
}

/** Exponential backoff with jitter: initial, doubling up to max; reset after a success. */
export class Backoff {
  readonly #initial: number;
  readonly #max: number;
  #next: number;

  constructor(initialMs = 250, maxMs = 10_000) {
    this.#initial = initialMs;
    this.#max = maxMs;
    this.#next = initialMs;
  }

  /** The next wait, in milliseconds: between half and all of the current step. */
  next(): number {
    const step = this.#next;
    this.#next = Math.min(this.#next * 2, this.#max);
    return Math.round(step / 2 + (Math.random() * step) / 2);
  }

  reset(): void {
    this.#next = this.#initial;
  }
}

/** Read through a call: after an await, an earlier check of `aborted` no longer holds. */
export const isAborted = (signal: AbortSignal | undefined): boolean => signal?.aborted === true;

/** Resolves after `ms`, or at once when `signal` aborts. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref();
    signal?.addEventListener('abort', done, { once: true });
  });
}

export interface RetryOptions {
  /** Give up (rethrowing the last error) once this many milliseconds have passed. */
  readonly withinMs: number;
  readonly signal?: AbortSignal;
  readonly retryable?: (error: unknown) => boolean;
  /** Told of each failure that will be tried again. */
  readonly onRetry?: (error: unknown, waitMs: number) => void;
  readonly backoff?: Backoff;
}

/** Runs `attempt` until it succeeds, fails for good, the time is up, or `signal` aborts. */
export async function retrying<T>(attempt: () => Promise<T>, options: RetryOptions): Promise<T> {
  const deadline = performance.now() + options.withinMs;
  const backoff = options.backoff ?? new Backoff();
  const retryable = options.retryable ?? isRetryable;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      const suggested = error instanceof KubernetesApiError ? error.retryAfterMs : undefined;
      const wait = Math.max(backoff.next(), suggested ?? 0);
      if (!retryable(error) || options.signal?.aborted === true || performance.now() + wait > deadline) throw error;
      options.onRetry?.(error, wait);
      await pause(wait, options.signal);
      if (isAborted(options.signal)) throw error;
    }
  }
}
