/**
 * Asynchronous (Event) invocations: Lambda's internal queue, as its documentation describes
 * it. An accepted event waits its turn for concurrency; a throttled attempt goes back to the
 * queue with a growing backoff; a function error (the handler threw, timed out, or the
 * runtime crashed) is retried up to the function's MaximumRetryAttempts (2 unless
 * configured), after about one minute and then two; an event older than its
 * MaximumEventAgeInSeconds is discarded. Delivery is at least once: `duplicate` can ask for
 * an event to be delivered twice, with the same request id, as Lambda occasionally does.
 */
import type { Outcome } from './environment.js';
import type { ThrottleReason } from './errors.js';

export interface QueuedEvent {
  readonly requestId: string;
  readonly functionName: string;
  readonly payload: Buffer;
  readonly traceId: string;
  readonly enqueuedAt: number;
  /** Which delivery of a duplicated event this is (0, or 1 for the deliberate duplicate). */
  readonly copy: number;
  /** Attempts that ran the function (first run and retries). */
  attempts: number;
  throttles: number;
  notBefore: number;
}

export interface RetryPolicy {
  /** Delays before the first and second retry after a function error. Lambda: ~60 s, ~120 s. */
  readonly errorDelaysMs: readonly number[];
  /** First backoff after a throttle; it doubles up to throttleMaxMs. Lambda: 1 s up to 5 min. */
  readonly throttleBaseMs: number;
  readonly throttleMaxMs: number;
}

export type EventRecord =
  | { readonly kind: 'ran'; readonly event: QueuedEvent; readonly attempt: number; readonly outcome: Outcome }
  | { readonly kind: 'throttled'; readonly event: QueuedEvent; readonly reason: ThrottleReason }
  | { readonly kind: 'discarded'; readonly event: QueuedEvent; readonly why: 'retries-exhausted' | 'too-old' | 'function-deleted' };

/** What the queue needs from the service. */
export interface EventRunner {
  /** The function's event invoke configuration, or undefined when the function no longer exists. */
  config(functionName: string): { maximumRetryAttempts: number; maximumEventAgeS: number } | undefined;
  /** Starts the event on an environment, or says it is throttled; decided synchronously. */
  start(event: QueuedEvent): { throttled: ThrottleReason } | { outcome: Promise<Outcome> };
  record(record: EventRecord): void;
}

export class EventQueue {
  private readonly waiting: QueuedEvent[] = [];
  private running = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private drainWaiters: (() => void)[] = [];
  private closed = false;

  constructor(
    private readonly runner: EventRunner,
    private readonly policy: RetryPolicy,
  ) {}

  get size(): number {
    return this.waiting.length + this.running;
  }

  push(event: QueuedEvent): void {
    this.waiting.push(event);
    this.pump();
  }

  /** Starts every event that is due and has capacity; schedules the next look. */
  pump(): void {
    if (this.closed) { this.checkDrained(); return; }
    const now = Date.now();
    let nextDue = Infinity;
    for (let i = 0; i < this.waiting.length; ) {
      const event = this.waiting[i]!;
      const config = this.runner.config(event.functionName);
      if (config === undefined) {
        this.waiting.splice(i, 1);
        this.runner.record({ kind: 'discarded', event, why: 'function-deleted' });
        continue;
      }
      if (now - event.enqueuedAt > config.maximumEventAgeS * 1000) {
        this.waiting.splice(i, 1);
        this.runner.record({ kind: 'discarded', event, why: 'too-old' });
        continue;
      }
      if (event.notBefore > now) {
        nextDue = Math.min(nextDue, event.notBefore);
        i++;
        continue;
      }
      const started = this.runner.start(event);
      if ('throttled' in started) {
        event.throttles++;
        event.notBefore = now + Math.min(this.policy.throttleMaxMs, this.policy.throttleBaseMs * 2 ** (event.throttles - 1));
        this.runner.record({ kind: 'throttled', event, reason: started.throttled });
        nextDue = Math.min(nextDue, event.notBefore);
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      this.running++;
      event.attempts++;
      void started.outcome.then(
        (outcome) => this.finished(event, outcome, config.maximumRetryAttempts),
        (err: unknown) => {
          const body = Buffer.from(JSON.stringify({ errorType: 'ServiceException', errorMessage: String(err) }));
          this.finished(event, { ok: false, errorType: 'ServiceException', body }, config.maximumRetryAttempts);
        },
      );
    }
    this.schedule(nextDue);
    this.checkDrained();
  }

  private finished(event: QueuedEvent, outcome: Outcome, maximumRetryAttempts: number): void {
    this.running--;
    this.runner.record({ kind: 'ran', event, attempt: event.attempts, outcome });
    if (!outcome.ok) {
      const retry = event.attempts - 1;
      if (retry < maximumRetryAttempts) {
        const delays = this.policy.errorDelaysMs;
        event.notBefore = Date.now() + (delays[Math.min(retry, delays.length - 1)] ?? 0);
        this.waiting.push(event);
      } else {
        this.runner.record({ kind: 'discarded', event, why: 'retries-exhausted' });
      }
    }
    this.pump();
  }

  private schedule(at: number): void {
    if (at === Infinity || at >= this.timerAt) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.pump();
    }, Math.max(0, at - Date.now()));
  }

  private checkDrained(): void {
    if (this.size > 0) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  /** Resolves when no event is waiting or running. */
  drained(): Promise<void> {
    if (this.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.waiting.length = 0;
    this.checkDrained();
  }
}
