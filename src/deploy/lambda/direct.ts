/**
 * Lambda in direct mode, as a cluster backend: no invocation is a worker. Each "worker" it
 * starts is a small process beside the scheduler (cli/lambda-direct.ts) that registers as
 * a worker that cannot be reached, with one thread per invocation it may have under way,
 * and runs every batch of ready tasks it is given as one synchronous invocation of the
 * graph's function, which writes the results to the store and returns. Nothing connects
 * back from Lambda and nothing there listens; the scheduler sees an ordinary worker whose
 * results the store holds. Suited to wide fan-outs: a map of 10,000 tasks becomes a few
 * dozen invocations of hundreds of tasks each.
 *
 * ```ts
 * const store = await RedisStore.connect('redis://cache:6379');
 * const cluster = await LocalCluster.start({ workers: 1, store });
 * const direct = lambdaDirectBackend({ scheduler: cluster.address, store, role, region, concurrency: 64 });
 * cluster.adapt({ minimum: 1, maximum: 3, burst: direct });     // up to two direct workers of 32 invocations each
 * ```
 *
 * The function is the same one worker mode uses (same package, same handler; the event says
 * which mode), created once per content hash.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { LambdaClient, type LambdaClientConfig } from '@aws-sdk/client-lambda';
import type { ClusterBackend } from '../../adaptive/backend.js';
import { InvalidArgumentError } from '../../errors.js';
import { Resource } from '../../lifecycle.js';
import { checkLogSink, createLog, type Log, type LogSink } from '../../log.js';
import { checkOptions, optionNames } from '../../options.js';
import type { ResultStore } from '../../store/index.js';
import type { DirectRunnerStats } from './direct-runner.js';
import { type EnsuredFunction, prepareFunction } from './functions.js';
import { MAX_MEMORY_MB, MAX_TIMEOUT_SECONDS, MIN_MEMORY_MB } from './limits.js';
import type { WorkerPackage } from './package.js';
import { type ResolvedRetry, resolveRetry, type RetryOptions } from './retry.js';

export interface LambdaDirectOptions {
  /** 'direct' (what `lambdaBackend({ mode: 'direct' })` passes on). */
  readonly mode?: 'direct';
  /** The scheduler's address as this process reaches it (tcp://host:port). */
  readonly scheduler: string;
  /** The scheduler's token, if it has one. */
  readonly token?: string;
  /**
   * The scheduler's result store (or its address): the functions write results there, so
   * they must reach it — Redis, not a memory store.
   */
  readonly store: ResultStore | string;
  /** The execution role's ARN (see docs/lambda.md). */
  readonly role: string;
  readonly region?: string;
  /** Another Lambda endpoint (a local service, a VPC endpoint). */
  readonly endpoint?: string;
  /** Static credentials (handed to the direct workers' processes); default: the SDK's chain. */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string };
  /** Function memory, MB (default 1769: one full vCPU). */
  readonly memoryMB?: number;
  /** Function timeout, seconds (default 900): the longest a batch may run. */
  readonly timeout?: number;
  /** At most this many invocations at a time, over all direct workers (default 1000). */
  readonly concurrency?: number;
  /** Invocations at a time per direct worker (default 32, at most `concurrency`). */
  readonly invocationsPerWorker?: number;
  /**
   * Tasks one invocation takes, at most, when that many wait (default 16; a batch larger
   * than this still goes whole). A direct worker shows the scheduler
   * invocationsPerWorker × tasksPerInvocation threads, so that it is given that much work.
   */
  readonly tasksPerInvocation?: number;
  /** Modules whose functions the graphs run, bundled into the package. */
  readonly modules?: readonly string[];
  /** Backoff for 429s and failed invocations. */
  readonly retry?: RetryOptions;
  /** Invocations of a batch that failed in its function before its tasks count as lost (default 3). */
  readonly attempts?: number;
  /** Function name prefix (default 'tessera-worker'). */
  readonly functionPrefix?: string;
  /** Worker name prefix (default 'lambda-direct'). */
  readonly workerPrefix?: string;
  /** Default 'nodejs20.x'. */
  readonly runtime?: string;
  readonly architecture?: 'x86_64' | 'arm64';
  /** Where it tells what happens (default: readable lines on stderr). */
  readonly log?: LogSink;
}

const OPTIONS = optionNames<LambdaDirectOptions>()([
  'mode', 'scheduler', 'token', 'store', 'role', 'region', 'endpoint', 'credentials', 'memoryMB', 'timeout', 'concurrency', 'invocationsPerWorker', 'tasksPerInvocation',
  'modules', 'retry', 'attempts', 'functionPrefix', 'workerPrefix', 'runtime', 'architecture', 'log',
]);

/** What a direct worker process is told, as JSON in TESSERA_LAMBDA_DIRECT. */
export interface DirectProcessConfig {
  readonly scheduler: string;
  readonly name: string;
  /** Invocations at a time. */
  readonly invocations: number;
  readonly tasksPerInvocation: number;
  readonly functionName: string;
  readonly store: string;
  readonly region?: string;
  readonly endpoint?: string;
  readonly retry: ResolvedRetry;
  readonly attempts: number;
  readonly inputTtlMs: number;
}

/** What a direct backend has done so far: its workers' invocations, added up. */
export interface LambdaDirectStats extends DirectRunnerStats {
  readonly functionName: string | undefined;
  /** Direct worker processes started. */
  readonly workers: number;
}

interface DirectProcess {
  readonly name: string;
  readonly child: ChildProcess;
  alive: boolean;
  stopping: boolean;
  stats: DirectRunnerStats | undefined;
  readonly exited: Promise<void>;
}

export function lambdaDirectBackend(options: LambdaDirectOptions): LambdaDirectBackend {
  return new LambdaDirectBackend(options);
}

export class LambdaDirectBackend extends Resource implements ClusterBackend {
  readonly threadsPerWorker: number;
  readonly #options: LambdaDirectOptions;
  readonly #store: string;
  readonly #memoryMB: number;
  readonly #timeout: number;
  readonly #concurrency: number;
  readonly #invocations: number;
  readonly #tasksPerInvocation: number;
  readonly #retry: ResolvedRetry;
  readonly #attempts: number;
  readonly #prefix: string;
  readonly #log: Log;
  readonly #procs: DirectProcess[] = [];
  /** Names the scheduler lists as connected, at the last observation. */
  #connected = new Set<string>();
  #next = 0;
  #ready: Promise<{ pkg: WorkerPackage; fn: EnsuredFunction }> | undefined;
  #functionName: string | undefined;

  constructor(options: LambdaDirectOptions) {
    super('the Lambda direct backend');
    checkOptions(options, OPTIONS, 'lambdaDirectBackend()');
    checkLogSink(options.log, 'lambdaDirectBackend()');
    if (typeof options.scheduler !== 'string' || !/^(tcp|tls):\/\/./.test(options.scheduler)) {
      throw new InvalidArgumentError('lambdaDirectBackend(): scheduler must be the scheduler\'s address, such as tcp://127.0.0.1:8786');
    }
    if (typeof options.role !== 'string' || options.role === '') throw new InvalidArgumentError('lambdaDirectBackend(): role must be the ARN of the functions\' execution role');
    const store = typeof options.store === 'string' ? options.store : (options.store as { address?: unknown } | undefined)?.address;
    if (typeof store !== 'string' || !/^rediss?:\/\//.test(store)) {
      throw new InvalidArgumentError('lambdaDirectBackend(): store must be the scheduler\'s Redis store (or its redis:// address): functions write their results there');
    }
    this.#store = store;
    const int = (name: keyof LambdaDirectOptions, value: unknown, fallback: number, min: number, max: number): number => {
      const v = value ?? fallback;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new InvalidArgumentError(`lambdaDirectBackend(): ${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
      return v;
    };
    this.#memoryMB = int('memoryMB', options.memoryMB, 1769, MIN_MEMORY_MB, MAX_MEMORY_MB);
    this.#timeout = int('timeout', options.timeout, MAX_TIMEOUT_SECONDS, 1, MAX_TIMEOUT_SECONDS);
    this.#concurrency = int('concurrency', options.concurrency, 1000, 1, 1_000_000);
    this.#invocations = int('invocationsPerWorker', options.invocationsPerWorker, Math.min(32, this.#concurrency), 1, this.#concurrency);
    this.#tasksPerInvocation = int('tasksPerInvocation', options.tasksPerInvocation, 16, 1, 100_000);
    this.threadsPerWorker = this.#invocations * this.#tasksPerInvocation;
    this.#attempts = int('attempts', options.attempts, 3, 1, 100);
    this.#retry = resolveRetry(options.retry, 'lambdaDirectBackend(): retry');
    const prefix = options.workerPrefix ?? 'lambda-direct';
    if (!/^[A-Za-z0-9_-]+$/.test(prefix)) throw new InvalidArgumentError("lambdaDirectBackend(): workerPrefix must be letters, digits, '-' or '_'");
    this.#prefix = prefix;
    this.#options = options;
    this.#log = createLog('lambda-direct', options.log);
  }

  /**
   * Builds the package and creates the function if it is not there yet (the same function
   * as worker mode's for the same code), waiting until it is Active.
   */
  prepare(): Promise<{ readonly pkg: WorkerPackage; readonly fn: EnsuredFunction }> {
    this.assertRunning();
    this.#ready ??= (async () => {
      const client = this.#client();
      try {
        const prepared = await prepareFunction(client, { ...this.#options, memoryMB: this.#memoryMB, timeout: this.#timeout }, this.#log);
        this.#functionName = prepared.fn.name;
        return prepared;
      } finally {
        client.destroy();
      }
    })();
    this.#ready.catch(() => {
      this.#ready = undefined;
    });
    return this.#ready;
  }

  get requested(): number {
    return this.#procs.filter((p) => p.alive && !p.stopping).length;
  }

  get running(): number {
    return this.#procs.filter((p) => p.alive && !p.stopping && this.#connected.has(p.name)).length;
  }

  get closing(): number {
    return this.#procs.filter((p) => p.alive && p.stopping).length;
  }

  /** Names of the direct workers alive now. */
  get workers(): string[] {
    return this.#procs.filter((p) => p.alive).map((p) => p.name);
  }

  get stats(): LambdaDirectStats {
    const total = { invocations: 0, throttles: 0, functionErrors: 0, bytesOut: 0, bytesIn: 0, storeBytesOut: 0, storeBytesIn: 0, splits: 0 };
    for (const p of this.#procs) {
      if (p.stats === undefined) continue;
      for (const k of Object.keys(total) as (keyof DirectRunnerStats)[]) total[k] += p.stats[k];
    }
    return { ...total, functionName: this.#functionName, workers: this.#procs.length };
  }

  owns(name: string): boolean {
    return this.#procs.some((p) => p.name === name);
  }

  observe(names: readonly string[]): void {
    this.#connected = new Set(names);
  }

  /** Starts direct workers until `n` are asked for (at most concurrency / invocationsPerWorker). */
  async scaleUp(n: number): Promise<void> {
    this.assertRunning();
    const { fn } = await this.prepare();
    const most = Math.max(1, Math.floor(this.#concurrency / this.#invocations));
    const want = Math.min(n, most) - this.requested;
    for (let i = 0; i < want; i++) this.#spawn(fn.name);
  }

  /** The scheduler retired these workers and told them to close; their processes exit. */
  scaleDown(names: readonly string[]): void {
    for (const p of this.#procs) {
      if (!names.includes(p.name) || !p.alive || p.stopping) continue;
      p.stopping = true;
      // Told to close already; a process that lingers is ended.
      const timer = setTimeout(() => p.child.kill('SIGTERM'), 30_000);
      timer.unref();
      void p.exited.then(() => clearTimeout(timer));
    }
  }

  #client(): LambdaClient {
    const credentials: LambdaClientConfig['credentials'] | undefined = this.#options.credentials;
    return new LambdaClient({
      maxAttempts: 1,
      ...(this.#options.region === undefined ? {} : { region: this.#options.region }),
      ...(this.#options.endpoint === undefined ? {} : { endpoint: this.#options.endpoint }),
      ...(credentials === undefined ? {} : { credentials }),
    });
  }

  #spawn(functionName: string): void {
    const name = `${this.#prefix}-${this.#next++}`;
    const config: DirectProcessConfig = {
      scheduler: this.#options.scheduler,
      name,
      invocations: this.#invocations,
      tasksPerInvocation: this.#tasksPerInvocation,
      functionName,
      store: this.#store,
      ...(this.#options.region === undefined ? {} : { region: this.#options.region }),
      ...(this.#options.endpoint === undefined ? {} : { endpoint: this.#options.endpoint }),
      retry: this.#retry,
      attempts: this.#attempts,
      inputTtlMs: (this.#timeout + 60) * 1000,
    };
    const fromSource = import.meta.url.endsWith('.ts');
    const entry = fileURLToPath(new URL(fromSource ? '../../cli/lambda-direct.ts' : '../../cli/lambda-direct.js', import.meta.url));
    const execArgv = fromSource ? ['--import', import.meta.resolve('tsx')] : [];
    // The token and credentials travel in the environment, out of sight of `ps`.
    const env: NodeJS.ProcessEnv = { ...process.env, TESSERA_LAMBDA_DIRECT: JSON.stringify(config) };
    if (this.#options.token === undefined) delete env['TESSERA_TOKEN'];
    else env['TESSERA_TOKEN'] = this.#options.token;
    const credentials = this.#options.credentials;
    if (credentials !== undefined) {
      env['AWS_ACCESS_KEY_ID'] = credentials.accessKeyId;
      env['AWS_SECRET_ACCESS_KEY'] = credentials.secretAccessKey;
      if (credentials.sessionToken === undefined) delete env['AWS_SESSION_TOKEN'];
      else env['AWS_SESSION_TOKEN'] = credentials.sessionToken;
    }
    const child = spawn(process.execPath, [...execArgv, entry], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    child.unref();
    const proc: DirectProcess = {
      name,
      child,
      alive: true,
      stopping: false,
      stats: undefined,
      exited: new Promise<void>((resolve) => {
        const done = (): void => {
          proc.alive = false;
          resolve();
        };
        child.once('exit', done);
        child.once('error', done);
      }),
    };
    // Its stdout: the worker id once registered, then its runner's counts as they change.
    // Read without holding this process open: the child's connection to the scheduler is what keeps it.
    // (A pipe is a socket underneath, which can be unref'd; the type does not say so.)
    (child.stdout as unknown as { unref?: () => void }).unref?.();
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.startsWith('stats ')) proc.stats = JSON.parse(line.slice(6)) as DirectRunnerStats;
    });
    void proc.exited.then(() => {
      if (!proc.stopping && this.state === 'running') this.#log.warn(`direct worker ${name} exited`, { code: child.exitCode });
    });
    this.#procs.push(proc);
    this.#log.info(`started direct worker ${name}`, { invocations: this.#invocations, tasksPerInvocation: this.#tasksPerInvocation });
  }

  /** Asks every direct worker to leave (gracefully: results it holds are in the store), then waits for them. */
  protected async onClose(): Promise<void> {
    for (const p of this.#procs) {
      if (!p.alive) continue;
      p.stopping = true;
      p.child.kill('SIGTERM');
    }
    const all = Promise.all(this.#procs.map((p) => p.exited));
    const timer = setTimeout(() => {
      for (const p of this.#procs) if (p.alive) p.child.kill('SIGKILL');
    }, 30_000);
    await all;
    clearTimeout(timer);
  }
}
