/**
 * Lambda as a cluster backend (worker mode): `scaleUp(n)` invokes the graph's function so
 * that `n` workers are asked for, each invocation a worker that dials out to the
 * scheduler. Invocations are asynchronous (`Event`) by default, as Lambda scales them
 * without holding a connection per worker; 429s are backpressure, waited out with backoff.
 * The backend never picks which worker stops: the scheduler retires one and its function
 * returns.
 *
 * ```ts
 * const cluster = await LocalCluster.start({ workers: 2 });
 * cluster.adapt({
 *   minimum: 2,
 *   maximum: 500,
 *   burst: lambdaBackend({ scheduler: 'tcp://10.0.1.5:8786', role: 'arn:aws:iam::…:role/tessera-worker', region: 'eu-west-1', memoryMB: 1769 }),
 * });
 * ```
 */
import { LambdaClient, type LambdaClientConfig } from '@aws-sdk/client-lambda';
import type { ClusterBackend } from '../../adaptive/backend.js';
import { InvalidArgumentError } from '../../errors.js';
import { Resource } from '../../lifecycle.js';
import { checkLogSink, createLog, type Log, type LogSink } from '../../log.js';
import { checkOptions, optionNames } from '../../options.js';
import { LambdaThrottledError } from './errors.js';
import { LambdaDirectBackend, type LambdaDirectOptions } from './direct.js';
import { type EnsuredFunction, prepareFunction } from './functions.js';
import type { WorkerInvocation, WorkerInvocationResult } from './invocation.js';
import { MAX_MEMORY_MB, MAX_TIMEOUT_SECONDS, MIN_MEMORY_MB } from './limits.js';
import type { WorkerPackage } from './package.js';
import { type InvocationType, invokeWithRetry, type ResolvedRetry, resolveRetry, type RetryOptions } from './retry.js';
import { InvocationTracker, type TrackerCounts } from './tracker.js';

export interface LambdaBackendOptions {
  /** 'worker' (default): each invocation is a worker. For direct mode, see lambdaDirectBackend(). */
  readonly mode?: 'worker';
  /** The scheduler's address as the functions reach it (tcp://host:port). */
  readonly scheduler: string;
  /** The scheduler's token, if it has one (sent in each invocation's payload). */
  readonly token?: string;
  /** The execution role's ARN (see docs/lambda.md for its policy). */
  readonly role: string;
  /** A Lambda client to use; default: one made from region, endpoint and credentials. */
  readonly client?: LambdaClient;
  readonly region?: string;
  /** Another Lambda endpoint (a local service, a VPC endpoint). */
  readonly endpoint?: string;
  readonly credentials?: LambdaClientConfig['credentials'];
  /** Function memory, MB (default 1769: one full vCPU). */
  readonly memoryMB?: number;
  /** Function timeout, seconds (default 900, Lambda's longest). */
  readonly timeout?: number;
  /** Threads per worker (default 1). */
  readonly nthreads?: number;
  /** At most this many invocations at a time (default 1000, Lambda's default account limit). */
  readonly concurrency?: number;
  /** Modules whose functions the graphs run, bundled into the function's package. */
  readonly modules?: readonly string[];
  /**
   * Milliseconds before the timeout at which a worker hands its data over and leaves
   * (default: a quarter of the timeout, at most 30 s). 0: it never leaves by itself, and the
   * timeout ends it as a lost worker.
   */
  readonly reserve?: number;
  /** Milliseconds for an invocation's worker to register before it is written off (default 30,000). */
  readonly startTimeout?: number;
  /** 'Event' (default) or 'RequestResponse' (the backend holds a connection per invocation and hears how it ended). */
  readonly invocationType?: InvocationType;
  /** Backoff for 429s. */
  readonly retry?: RetryOptions;
  /** Function name prefix (default 'tessera-worker'). */
  readonly functionPrefix?: string;
  /** Worker name prefix (default 'lambda'). */
  readonly workerPrefix?: string;
  /** Default 'nodejs20.x'. */
  readonly runtime?: string;
  readonly architecture?: 'x86_64' | 'arm64';
  /** Where it tells what happens (default: readable lines on stderr). */
  readonly log?: LogSink;
}

const OPTIONS = optionNames<LambdaBackendOptions>()([
  'mode', 'scheduler', 'token', 'role', 'client', 'region', 'endpoint', 'credentials', 'memoryMB', 'timeout', 'nthreads', 'concurrency', 'modules',
  'reserve', 'startTimeout', 'invocationType', 'retry', 'functionPrefix', 'workerPrefix', 'runtime', 'architecture', 'log',
]);

/** What a Lambda backend has done so far. */
export interface LambdaBackendStats extends TrackerCounts {
  readonly throttles: number;
  /** The function's name, once it exists. */
  readonly functionName: string | undefined;
  /** Invocations that ended in a function error (RequestResponse only). */
  readonly functionErrors: number;
  /** How the last failed invocation failed, if one did. */
  readonly lastError: string | undefined;
}

/**
 * A Lambda backend: worker mode (each invocation a worker that dials the scheduler), or
 * with `mode: 'direct'` direct mode (batches of ready tasks as invocations that write their
 * results to the store; see direct.ts).
 */
export function lambdaBackend(options: LambdaDirectOptions & { readonly mode: 'direct' }): LambdaDirectBackend;
export function lambdaBackend(options: LambdaBackendOptions): LambdaBackend;
export function lambdaBackend(options: LambdaBackendOptions | (LambdaDirectOptions & { readonly mode: 'direct' })): LambdaBackend | LambdaDirectBackend {
  if (options.mode === 'direct') return new LambdaDirectBackend(options);
  return new LambdaBackend(options);
}

export class LambdaBackend extends Resource implements ClusterBackend {
  readonly threadsPerWorker: number;
  readonly #options: LambdaBackendOptions;
  readonly #client: LambdaClient;
  readonly #ownsClient: boolean;
  readonly #tracker: InvocationTracker;
  readonly #retry: ResolvedRetry;
  readonly #type: InvocationType;
  readonly #concurrency: number;
  readonly #memoryMB: number;
  readonly #timeout: number;
  readonly #reserve: number;
  readonly #log: Log;
  readonly #abort = new AbortController();
  readonly #inFlight = new Set<Promise<void>>();
  #ready: Promise<{ pkg: WorkerPackage; fn: EnsuredFunction }> | undefined;
  #throttles = 0;
  #functionErrors = 0;
  #lastError: string | undefined;
  #functionName: string | undefined;
  /** A scale-up that failed outright is reported on the next one, so the loop backs off. */
  #failure: Error | undefined;

  constructor(options: LambdaBackendOptions) {
    super('the Lambda backend');
    checkOptions(options, OPTIONS, 'lambdaBackend()');
    const mode: unknown = options.mode;
    if (mode !== undefined && mode !== 'worker') throw new InvalidArgumentError("lambdaBackend(): mode must be 'worker' or 'direct'");
    checkLogSink(options.log, 'lambdaBackend()');
    if (typeof options.scheduler !== 'string' || !/^(tcp|tls):\/\/./.test(options.scheduler)) {
      throw new InvalidArgumentError('lambdaBackend(): scheduler must be the address functions dial, such as tcp://10.0.1.5:8786');
    }
    if (typeof options.role !== 'string' || options.role === '') throw new InvalidArgumentError('lambdaBackend(): role must be the ARN of the functions\' execution role');
    const int = (name: keyof LambdaBackendOptions, value: unknown, fallback: number, min: number, max: number): number => {
      const v = value ?? fallback;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new InvalidArgumentError(`lambdaBackend(): ${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
      return v;
    };
    this.#memoryMB = int('memoryMB', options.memoryMB, 1769, MIN_MEMORY_MB, MAX_MEMORY_MB);
    this.#timeout = int('timeout', options.timeout, MAX_TIMEOUT_SECONDS, 1, MAX_TIMEOUT_SECONDS);
    this.threadsPerWorker = int('nthreads', options.nthreads, 1, 1, 64);
    this.#concurrency = int('concurrency', options.concurrency, 1000, 1, 1_000_000);
    this.#reserve = int('reserve', options.reserve, Math.min(30_000, Math.floor((this.#timeout * 1000) / 4)), 0, this.#timeout * 1000 - 1);
    const startTimeout = int('startTimeout', options.startTimeout, 30_000, 1, 3_600_000);
    const type: unknown = options.invocationType ?? 'Event';
    if (type !== 'Event' && type !== 'RequestResponse') throw new InvalidArgumentError("lambdaBackend(): invocationType must be 'Event' or 'RequestResponse'");
    this.#type = type;
    this.#retry = resolveRetry(options.retry, 'lambdaBackend(): retry');
    const workerPrefix = options.workerPrefix ?? 'lambda';
    if (!/^[A-Za-z0-9_-]+$/.test(workerPrefix)) throw new InvalidArgumentError("lambdaBackend(): workerPrefix must be letters, digits, '-' or '_'");
    this.#options = options;
    this.#tracker = new InvocationTracker(workerPrefix, startTimeout);
    this.#ownsClient = options.client === undefined;
    // One attempt per call: throttles are retried here, visibly, with backoff.
    this.#client =
      options.client ??
      new LambdaClient({
        maxAttempts: 1,
        ...(options.region === undefined ? {} : { region: options.region }),
        ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
        ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
      });
    this.#log = createLog('lambda', options.log);
  }

  /**
   * Builds the package and creates the function if it is not there yet, waiting until it is
   * Active. The first scale-up does this itself; calling it ahead saves the burst that time.
   * Throws LambdaPackageTooLargeError when the package is over Lambda's limits.
   */
  prepare(): Promise<{ readonly pkg: WorkerPackage; readonly fn: EnsuredFunction }> {
    this.assertRunning();
    this.#ready ??= (async () => {
      const prepared = await prepareFunction(this.#client, { ...this.#options, memoryMB: this.#memoryMB, timeout: this.#timeout }, this.#log);
      this.#functionName = prepared.fn.name;
      return prepared;
    })();
    // A failure is not remembered: the next call tries again.
    this.#ready.catch(() => {
      this.#ready = undefined;
    });
    return this.#ready;
  }

  get requested(): number {
    return this.#tracker.requested;
  }

  get running(): number {
    return this.#tracker.running;
  }

  get closing(): number {
    return this.#tracker.closing;
  }

  get stats(): LambdaBackendStats {
    return {
      ...this.#tracker.counts,
      throttles: this.#throttles,
      functionErrors: this.#functionErrors,
      lastError: this.#lastError,
      functionName: this.#functionName,
    };
  }

  owns(name: string): boolean {
    return this.#tracker.owns(name);
  }

  observe(names: readonly string[], now: number): void {
    this.#tracker.observe(names, now);
  }

  /** Invokes until `n` workers are asked for (at most `concurrency`); returns once the invocations are sent off. */
  async scaleUp(n: number): Promise<void> {
    this.assertRunning();
    const failure = this.#failure;
    this.#failure = undefined;
    if (failure !== undefined) throw failure;
    const { fn } = await this.prepare();
    const want = Math.min(n, this.#concurrency) - this.#tracker.requested;
    if (want <= 0) return;
    const now = performance.now();
    for (const name of this.#tracker.add(want, now)) {
      const payload: WorkerInvocation = {
        op: 'worker',
        scheduler: this.#options.scheduler,
        name,
        nthreads: this.threadsPerWorker,
        ...(this.#options.token === undefined ? {} : { token: this.#options.token }),
        reserveMs: this.#reserve,
        connectTimeoutMs: 10_000,
      };
      const done = this.#invoke(fn.name, name, payload);
      this.#inFlight.add(done);
      void done.finally(() => this.#inFlight.delete(done));
    }
  }

  async #invoke(functionName: string, name: string, payload: WorkerInvocation): Promise<void> {
    const sync = this.#type === 'RequestResponse';
    // A synchronous invocation is under way once sent; an Event one once Lambda accepts it.
    if (sync) this.#tracker.accepted(name, performance.now());
    try {
      const { output, throttles } = await invokeWithRetry(this.#client, functionName, this.#type, payload, this.#retry, { signal: this.#abort.signal });
      this.#throttles += throttles;
      if (sync) {
        const result = JSON.parse(Buffer.from(output.Payload ?? new Uint8Array()).toString()) as WorkerInvocationResult;
        this.#log.debug(`${result.name} ended (${result.reason}) after ${result.ms} ms`);
        this.#tracker.ended(name, false);
      } else {
        this.#tracker.accepted(name, performance.now());
      }
    } catch (error) {
      this.#tracker.ended(name, true);
      if (error instanceof LambdaThrottledError) this.#throttles += error.attempts;
      if (this.state !== 'running') return;
      const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      this.#lastError = message;
      if ((error as { code?: unknown }).code === 'ERR_LAMBDA_FUNCTION') {
        // The worker was lost with its invocation (a timeout, a crash): the scheduler reruns its tasks.
        this.#functionErrors++;
        this.#log.warn(`invocation ${name} failed; its tasks are rerun elsewhere`, { reason: message });
      } else {
        this.#failure = error instanceof Error ? error : new Error(message);
        this.#log.warn(`could not invoke ${functionName} for ${name}`, { reason: message });
      }
    }
  }

  /** The scheduler retired these workers and told them to close; their invocations return. */
  scaleDown(names: readonly string[]): void {
    this.#tracker.closingWorkers(names, performance.now());
  }

  /** Stops invoking; invocations under way end as their workers leave. */
  protected async onClose(): Promise<void> {
    this.#abort.abort(this.closedError());
    await Promise.allSettled([...this.#inFlight]);
    this.#tracker.clear();
    if (this.#ownsClient) this.#client.destroy();
  }
}
