/**
 * What the backend sends a worker-mode invocation and what it answers: plain JSON, checked
 * at the function's door so a malformed event fails at once with a clear message.
 */
import { InvalidArgumentError } from '../../errors.js';

/** The part of Lambda's context object Tessera uses. */
export interface LambdaContext {
  readonly awsRequestId: string;
  getRemainingTimeInMillis(): number;
}

export interface WorkerInvocation {
  readonly op: 'worker';
  /** The scheduler's address, reachable from the function (tcp://host:port). */
  readonly scheduler: string;
  /** The worker's name prefix; the backend recognises its workers by it. */
  readonly name: string;
  readonly nthreads: number;
  readonly token?: string;
  /** Milliseconds before the function's timeout at which the worker retires itself. */
  readonly reserveMs: number;
  /** Milliseconds to reach the scheduler. */
  readonly connectTimeoutMs: number;
}

export interface WorkerInvocationResult {
  /** The worker's full name, as the scheduler knew it. */
  readonly name: string;
  /** Retired by the scheduler (idle, scale-down), or left because its deadline neared. */
  readonly reason: 'retired' | 'deadline';
  readonly ms: number;
  readonly remainingMs: number;
}

export function parseWorkerInvocation(event: unknown): WorkerInvocation {
  if (typeof event !== 'object' || event === null) throw new InvalidArgumentError('the invocation event must be an object');
  const e = event as Record<string, unknown>;
  if (e['op'] !== 'worker') throw new InvalidArgumentError(`the invocation event's op must be 'worker', got ${JSON.stringify(e['op'])}`);
  const scheduler = e['scheduler'];
  if (typeof scheduler !== 'string' || !/^(tcp|tls):\/\//.test(scheduler)) throw new InvalidArgumentError('the invocation event needs scheduler: a tcp:// or tls:// address');
  const name = e['name'];
  if (typeof name !== 'string' || name === '') throw new InvalidArgumentError('the invocation event needs name: a non-empty string');
  const nthreads = e['nthreads'] ?? 1;
  if (typeof nthreads !== 'number' || !Number.isInteger(nthreads) || nthreads < 1) throw new InvalidArgumentError('the invocation event\'s nthreads must be a positive integer');
  const token = e['token'];
  if (token !== undefined && typeof token !== 'string') throw new InvalidArgumentError('the invocation event\'s token must be a string');
  const reserveMs = e['reserveMs'] ?? 5000;
  if (typeof reserveMs !== 'number' || !(reserveMs >= 0)) throw new InvalidArgumentError('the invocation event\'s reserveMs must be a non-negative number');
  const connectTimeoutMs = e['connectTimeoutMs'] ?? 10_000;
  if (typeof connectTimeoutMs !== 'number' || !(connectTimeoutMs > 0)) throw new InvalidArgumentError('the invocation event\'s connectTimeoutMs must be a positive number');
  return { op: 'worker', scheduler, name, nthreads, ...(token === undefined ? {} : { token }), reserveMs, connectTimeoutMs };
}
