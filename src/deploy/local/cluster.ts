/**
 * A cluster on this machine: a scheduler in this process and worker processes beside it.
 *
 * ```ts
 * const cluster = await LocalCluster.start({ workers: 2, threadsPerWorker: 1 });
 * const client = await Client.connect(cluster.address, { token: cluster.token });
 * // …
 * await client.close();
 * await cluster.close();   // no process left behind
 * ```
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError, WorkerStartError } from '../../errors.js';
import { closeAtExit, holdOpen, Resource } from '../../lifecycle.js';
import { checkOptions, optionNames } from '../../options.js';
import { checkLogSink, createLog, type Log, type LogSink } from '../../log.js';
import type { ClusterBackend } from '../../adaptive/backend.js';
import type { Adaptive } from '../../adaptive/loop.js';
import type { AdaptiveInput } from '../../adaptive/policy.js';
import { Scheduler, type SchedulerOptions } from '../../process/scheduler.js';
import { withHugePages } from '../../process/worker-env.js';
import { CLUSTER_CHANGES, CLUSTER_SUMMARY, type ClusterSummary, clusterBundle, DISPLAY, displayCluster } from '../../notebook/cards.js';
import { INSPECT, type MimeBundle } from '../../notebook/kernel.js';
import { schedulerClusterSummary, watchSchedulerWorkers } from '../display.js';

export interface LocalClusterOptions {
  /** Worker processes to start. Default: min(4, available parallelism). */
  readonly workers?: number;
  /** Threads per worker. Default 1. */
  readonly threadsPerWorker?: number;
  /**
   * Per worker: bytes or '2GB'. Default: the machine's memory times the worker's share of
   * the cores (threadsPerWorker / cores, at most 1), as Dask's 'auto'.
   */
  readonly memoryLimit?: number | string;
  /** Per worker, fraction of memoryLimit past which results spill to disk (default 0.6; false: never). */
  readonly memoryTarget?: number | false;
  /** Per worker, fraction of memoryLimit past which it takes no new tasks (default 0.8; false: never). */
  readonly memoryPause?: number | false;
  /**
   * Token the scheduler requires. Default none: the scheduler and workers listen on
   * 127.0.0.1 only. Pass one on machines shared with people you do not trust.
   */
  readonly token?: string;
  /** Scheduler port; default 0 (any free port). */
  readonly port?: number;
  /** Options of the scheduler's state machine. */
  readonly scheduler?: SchedulerOptions['state'];
  /** Milliseconds a worker has to start and register. Default 60 000. */
  readonly startTimeout?: number;
  /**
   * Where the scheduler, the adaptive loop and the cluster tell what happens: a pino logger,
   * a function taking readable lines, or false. Default: readable lines on stderr.
   */
  readonly log?: LogSink;
  /** The scheduler's dashboard: default on 127.0.0.1:8787 (a free port if taken); false: off. */
  readonly dashboard?: SchedulerOptions['dashboard'];
  /**
   * A result store (MemoryStore, RedisStore.connect(url)): workers that cannot be reached
   * keep their results there. The cluster does not close it. Default: none.
   */
  readonly store?: SchedulerOptions['store'];
}

interface WorkerProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  alive: boolean;
  /** Being stopped: no longer counted as requested. */
  stopping: boolean;
  /** Seen registered with the scheduler once. */
  registered: boolean;
}

// Worker processes starting at once; more wait their turn (see #startQueued).
const MAX_STARTING = Math.max(2, availableParallelism());

// Children this process started, killed if it exits without closing its clusters.
const everyChild = new Set<ChildProcess>();
let exitHookInstalled = false;

const LOCAL_CLUSTER_OPTIONS = optionNames<LocalClusterOptions>()([
  'workers', 'threadsPerWorker', 'memoryLimit', 'memoryTarget', 'memoryPause', 'token', 'port', 'scheduler', 'startTimeout', 'log', 'dashboard', 'store',
]);

export class LocalCluster extends Resource implements ClusterBackend {
  readonly address: string;
  readonly token: string | undefined;
  readonly #scheduler: Scheduler;
  readonly #threadsPerWorker: number;
  readonly #memoryLimit: number | string | undefined;
  readonly #memoryFlags: readonly string[];
  readonly #startTimeout: number;
  readonly #log: Log;
  readonly #procs: WorkerProcess[] = [];
  #nextName = 0;
  /** Workers asked for by scaleUp and not yet started. */
  #queued = 0;
  #scaling: Promise<void> = Promise.resolve();

  private constructor(
    scheduler: Scheduler,
    token: string | undefined,
    threadsPerWorker: number,
    memoryLimit: number | string | undefined,
    memoryFlags: readonly string[],
    startTimeout: number,
    log: Log,
  ) {
    super('the cluster');
    this.#log = log;
    this.#memoryFlags = memoryFlags;
    this.#scheduler = scheduler;
    this.address = scheduler.address;
    this.token = token;
    this.#threadsPerWorker = threadsPerWorker;
    this.#memoryLimit = memoryLimit;
    this.#startTimeout = startTimeout;
  }

  static async start(options: LocalClusterOptions = {}): Promise<LocalCluster> {
    checkOptions(options, LOCAL_CLUSTER_OPTIONS, 'LocalCluster.start()');
    checkLogSink(options.log, 'LocalCluster.start()');
    const workers = options.workers ?? Math.min(4, availableParallelism());
    if (!Number.isInteger(workers) || workers < 0) throw new InvalidArgumentError(`options.workers must be a non-negative integer, got ${String(workers)}`);
    const threadsPerWorker = options.threadsPerWorker ?? 1;
    if (!Number.isInteger(threadsPerWorker) || threadsPerWorker < 1) {
      throw new InvalidArgumentError(`options.threadsPerWorker must be a positive integer, got ${String(threadsPerWorker)}`);
    }
    if (options.token !== undefined && (typeof options.token !== 'string' || options.token === '')) {
      throw new InvalidArgumentError('options.token must be a non-empty string');
    }
    const startTimeout = options.startTimeout ?? 60_000;
    if (typeof startTimeout !== 'number' || !(startTimeout > 0)) throw new InvalidArgumentError('options.startTimeout must be a positive number of milliseconds');
    const token = options.token;
    const scheduler = await Scheduler.start({
      host: '127.0.0.1',
      port: options.port ?? 0,
      ...(token === undefined ? {} : { token }),
      ...(options.scheduler === undefined ? {} : { state: options.scheduler }),
      ...(options.dashboard === undefined ? {} : { dashboard: options.dashboard }),
      ...(options.log === undefined ? {} : { log: options.log }),
      ...(options.store === undefined ? {} : { store: options.store }),
      // Embedded in the user's script: it does not keep the script alive by itself, and
      // is closed when the script is done (closeAtExit below).
      keepAlive: false,
    });
    const memoryFlags: string[] = [];
    for (const [flag, value] of [['--memory-target', options.memoryTarget], ['--memory-pause', options.memoryPause]] as const) {
      if (value === undefined) continue;
      if (value !== false && !(typeof value === 'number' && value > 0)) {
        await scheduler.close();
        throw new InvalidArgumentError(`options.${flag === '--memory-target' ? 'memoryTarget' : 'memoryPause'} must be a positive fraction or false`);
      }
      memoryFlags.push(flag, String(value));
    }
    // As Dask's 'auto': each worker gets the machine's memory in proportion to its threads'
    // share of the cores, so the bars of 'memory per worker' mean something.
    const memoryLimit = options.memoryLimit ?? Math.floor(totalmem() * Math.min(1, threadsPerWorker / availableParallelism()));
    const cluster = new LocalCluster(scheduler, token, threadsPerWorker, memoryLimit, memoryFlags, startTimeout, createLog('cluster', options.log));
    closeAtExit(cluster);
    try {
      await cluster.scale(workers);
    } catch (error) {
      await cluster.close();
      throw error;
    }
    return cluster;
  }

  /** The scheduler running in this process. */
  get scheduler(): Scheduler {
    return this.#scheduler;
  }

  /** Worker processes alive now (not those killed and not yet reaped). */
  get processes(): readonly { readonly name: string; readonly pid: number }[] {
    return this.#procs.filter((p) => p.alive && !doomed(p)).map((p) => ({ name: p.name, pid: p.child.pid ?? -1 }));
  }

  /** The dashboard's address (undefined when turned off). */
  get dashboardLink(): string | undefined {
    return this.#scheduler.dashboardLink;
  }

  /**
   * Lets the cluster follow the work: workers are started when work arrives and retired
   * when idle (their data moves first), within [minimum, maximum].
   *
   * ```ts
   * cluster.adapt({ minimum: 0, maximum: 20, targetDuration: '5s' });
   * ```
   */
  adapt(options: AdaptiveInput = {}): Adaptive {
    return this.#scheduler.adapt(this, options);
  }

  // How it shows itself: a card in a notebook (kept current while shown), text elsewhere.

  [CLUSTER_SUMMARY](): ClusterSummary {
    return schedulerClusterSummary('LocalCluster', this.state, this.#scheduler, this.token, this.state === 'running' ? this.requested : 0);
  }

  [CLUSTER_CHANGES](changed: () => void): () => void {
    return watchSchedulerWorkers(this.#scheduler, changed);
  }

  [DISPLAY](): Promise<MimeBundle> {
    return displayCluster(this);
  }

  [INSPECT](): string {
    return clusterBundle(this[CLUSTER_SUMMARY]())['text/plain']!;
  }

  // ClusterBackend: what the adaptive loop drives.

  get threadsPerWorker(): number {
    return this.#threadsPerWorker;
  }

  /** Workers asked for and not being stopped: queued, starting or running. */
  get requested(): number {
    return this.#queued + this.#procs.filter((p) => p.alive && !p.stopping && !doomed(p)).length;
  }

  /** Worker processes registered with the scheduler. */
  get running(): number {
    const names = new Set(this.#scheduler.workerNames().values());
    return this.#procs.filter((p) => p.alive && names.has(p.name) && !doomed(p)).length;
  }

  get closing(): number {
    return this.#procs.filter((p) => p.alive && p.stopping).length;
  }

  /** Starts processes until `n` are requested; does not wait for them to register. */
  scaleUp(n: number): void {
    this.assertRunning();
    this.#queued += Math.max(0, n - this.requested);
    this.#startQueued();
  }

  /**
   * Starts queued workers, a few at a time: twenty Node processes starting at once on two
   * cores all arrive late, while a few at a time bring the first one in a fraction of a
   * second and the rest at about the same total.
   */
  #startQueued(): void {
    const names = new Set(this.#scheduler.workerNames().values());
    let starting = this.#procs.filter((p) => p.alive && !p.stopping && !names.has(p.name)).length;
    while (this.#queued > 0 && starting < MAX_STARTING && this.state === 'running') {
      this.#queued--;
      starting++;
      const proc = this.#spawn();
      // A worker that never registers is stopped; the adaptive loop asks again later.
      this.#waitRegistered(proc)
        .catch((error: unknown) => {
          this.#log.warn('a worker did not start; the adaptive loop will ask again', { reason: error instanceof Error ? error.message : String(error) });
        })
        .finally(() => {
          this.#startQueued();
        });
    }
  }

  /** Stops these (already retired) workers; one that lingers is terminated. */
  async scaleDown(names: readonly string[]): Promise<void> {
    const wanted = new Set(names);
    await Promise.all(this.#procs.filter((p) => p.alive && wanted.has(p.name)).map((p) => this.#stop(p, 10_000)));
  }

  /** Starts or retires worker processes until `n` are running. */
  scale(n: number): Promise<void> {
    if (!Number.isInteger(n) || n < 0) return Promise.reject(new InvalidArgumentError(`scale(n): n must be a non-negative integer, got ${String(n)}`));
    const next = this.#scaling.then(() => this.#scaleTo(n));
    this.#scaling = next.catch(() => undefined);
    return holdOpen(next);
  }

  async #scaleTo(n: number, rounds = 3): Promise<void> {
    this.assertRunning();
    // Count what is real: a process killed a moment ago (not yet reaped), or one whose
    // worker has left the scheduler, is no worker. Reap those first, then count.
    await this.#reapTheDead();
    const alive = this.#procs.filter((p) => p.alive);
    if (alive.length < n) {
      const started = Array.from({ length: n - alive.length }, () => this.#spawn());
      await Promise.all(started.map((p) => this.#waitRegistered(p)));
      // Workers that died while these started are replaced too: the request is for n.
      const short = this.#procs.some((p) => p.alive && !p.stopping && this.#departed(p)) || this.#procs.filter((p) => p.alive).length < n;
      if (short && rounds > 1) {
        await this.#scaleTo(n, rounds - 1);
      }
    } else if (alive.length > n) {
      const leaving = alive.slice(n);
      const names = new Set(leaving.map((p) => p.name));
      const ids = [...this.#scheduler.workerNames()].filter(([, name]) => names.has(name)).map(([id]) => id);
      // Graceful: the scheduler moves data only they hold, then tells them to close. A
      // worker whose data had nowhere to go is kept, and its data with it.
      const left = new Set(await this.#scheduler.retireWorkers(ids));
      const registered = new Map([...this.#scheduler.workerNames()].map(([id, name]) => [name, id]));
      const stopping = leaving.filter((p) => {
        const id = registered.get(p.name);
        return id === undefined || left.has(id);
      });
      await Promise.all(stopping.map((p) => this.#stop(p, 30_000)));
    }
  }

  /** Stops every worker process, then the scheduler. Idempotent; every step is attempted. */
  protected async onClose(): Promise<void> {
    this.#queued = 0;
    await this.#scaling.catch(() => undefined);
    // Closing the scheduler first makes every worker leave at once, with nothing to hand over.
    await this.#scheduler.close().catch(() => undefined);
    await Promise.allSettled(this.#procs.map((p) => this.#stop(p, 5_000)));
  }

  /** Kills every worker process at once, then closes the scheduler. */
  protected override async onDestroy(error?: Error): Promise<void> {
    this.#queued = 0;
    for (const p of this.#procs) if (p.alive) p.child.kill('SIGKILL');
    await Promise.allSettled([this.#scheduler.destroy(error), ...this.#procs.map((p) => p.exited)]);
  }

  #spawn(): WorkerProcess {
    const name = `local-${this.#nextName++}`;
    const fromSource = import.meta.url.endsWith('.ts');
    const entry = fileURLToPath(new URL(fromSource ? '../../cli/main.ts' : '../../cli/main.js', import.meta.url));
    const execArgv = fromSource ? ['--import', import.meta.resolve('tsx')] : [];
    const args = [...execArgv, entry, 'worker', this.address, '--nthreads', String(this.#threadsPerWorker), '--name', name];
    if (this.#memoryLimit !== undefined) args.push('--memory-limit', String(this.#memoryLimit));
    args.push(...this.#memoryFlags);
    // The token travels in the environment, out of sight of `ps`.
    const env: NodeJS.ProcessEnv = { ...process.env, GLIBC_TUNABLES: withHugePages(process.env['GLIBC_TUNABLES']) };
    if (this.token === undefined) delete env['TESSERA_TOKEN'];
    else env['TESSERA_TOKEN'] = this.token;
    const child = spawn(process.execPath, args, {
      env,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    // Its own connection to the scheduler keeps it alive; ours does not keep the script alive.
    child.unref();
    everyChild.add(child);
    installExitHook();
    const proc: WorkerProcess = {
      name,
      child,
      alive: true,
      stopping: false,
      registered: false,
      exited: new Promise<void>((resolve) => {
        child.once('exit', () => {
          proc.alive = false;
          everyChild.delete(child);
          resolve();
        });
        child.once('error', () => {
          proc.alive = false;
          everyChild.delete(child);
          resolve();
        });
      }),
    };
    this.#procs.push(proc);
    return proc;
  }

  /** Whether the process is dying, or its worker was registered and has left the scheduler. */
  #departed(proc: WorkerProcess): boolean {
    if (doomed(proc)) return true;
    return proc.registered && ![...this.#scheduler.workerNames().values()].includes(proc.name);
  }

  /** Waits for processes that are dead or whose worker left (not ones being stopped) to be reaped. */
  async #reapTheDead(): Promise<void> {
    const dead = this.#procs.filter((p) => p.alive && !p.stopping && this.#departed(p));
    if (dead.length === 0) return;
    this.#log.info('reaping workers that died or left before scaling', { workers: dead.map((p) => p.name).join(',') });
    await Promise.all(dead.map((p) => this.#stop(p, doomed(p) ? 2_000 : 0)));
  }

  async #waitRegistered(proc: WorkerProcess): Promise<void> {
    const deadline = performance.now() + this.#startTimeout;
    for (;;) {
      if ([...this.#scheduler.workerNames().values()].includes(proc.name)) {
        proc.registered = true;
        return;
      }
      if (!proc.alive) throw new WorkerStartError(proc.name, `worker process ${proc.name} exited before it registered`);
      if (performance.now() > deadline) {
        await this.#stop(proc, 1000);
        throw new WorkerStartError(proc.name, `worker process ${proc.name} did not register within ${this.#startTimeout} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Waits up to `grace` ms for the process to leave, then terminates it, then kills it. */
  async #stop(proc: WorkerProcess, grace: number): Promise<void> {
    if (!proc.alive) return;
    proc.stopping = true;
    const within = (ms: number): Promise<boolean> =>
      Promise.race([proc.exited.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms).unref())]);
    if (await within(grace)) return;
    proc.child.kill('SIGTERM');
    if (await within(5_000)) return;
    proc.child.kill('SIGKILL');
    await proc.exited;
  }
}

/**
 * Whether a live-looking process is in fact dead or dying: killed but not yet reaped (a
 * zombie, or SIGKILL pending). Linux tells through /proc; elsewhere only reaping does.
 */
function doomed(proc: WorkerProcess): boolean {
  const pid = proc.child.pid;
  if (!proc.alive || pid === undefined || process.platform !== 'linux') return !proc.alive;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X' || state === 'x') return true;
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    // SIGKILL (9) is bit 8 of the pending masks: it cannot be caught, so the process is gone.
    for (const field of ['ShdPnd', 'SigPnd']) {
      const mask = new RegExp(`^${field}:\\s*([0-9a-f]+)$`, 'm').exec(status)?.[1];
      if (mask !== undefined && (BigInt(`0x${mask}`) & 0x100n) !== 0n) return true;
    }
    return false;
  } catch {
    // No such process any more (reaped by now, or never ours to read).
    return true;
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of everyChild) child.kill('SIGKILL');
  });
}
