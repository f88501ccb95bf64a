/**
 * A cluster of Slurm jobs: the scheduler runs in this process (on a login node, say) and
 * each worker is one batch job, submitted when the work asks for it and cancelled when it
 * is no longer needed — dask-jobqueue's SLURMCluster, for Tessera.
 *
 * ```ts
 * const cluster = await SlurmCluster.start({ partition: 'compute', cores: 4, memory: '8GB', walltime: '00:30:00', account: 'proj' });
 * cluster.adapt({ minimum: 0, maximum: 100 });
 * console.log(cluster.jobScript());   // the exact script each job runs
 * const client = await Client.connect(cluster);
 * // …
 * await client.close();
 * await cluster.close();              // every job cancelled, none left in squeue
 * ```
 */
import { randomBytes } from 'node:crypto';
import type { ClusterBackend } from '../../adaptive/backend.js';
import type { Adaptive } from '../../adaptive/loop.js';
import type { AdaptiveInput } from '../../adaptive/policy.js';
import { InvalidArgumentError } from '../../errors.js';
import { closeAtExit, holdOpen, Resource } from '../../lifecycle.js';
import { optionNames } from '../../options.js';
import { Scheduler, type SchedulerOptions } from '../../process/scheduler.js';
import { checkAddress, SlurmBackend, type SlurmJob, type SlurmJobFailure } from './backend.js';
import { JOB_OPTION_KEYS, parseDuration, rejectUnknown, resolveJobOptions, type SlurmJobOptions } from './options.js';
import { jobIdOf } from './script.js';
import { CLUSTER_CHANGES, CLUSTER_SUMMARY, type ClusterSummary, clusterBundle, DISPLAY, displayCluster } from '../../notebook/cards.js';
import { INSPECT, type MimeBundle } from '../../notebook/kernel.js';
import { schedulerClusterSummary, watchSchedulerWorkers } from '../display.js';

export interface SlurmClusterOptions extends SlurmJobOptions {
  /** Jobs submitted at start (without waiting for them to run). Default 0. */
  readonly workers?: number;
  /** Interface the scheduler listens on. Default '0.0.0.0': workers run on other nodes. */
  readonly host?: string;
  /** Scheduler port. Default 0 (any free port). */
  readonly port?: number;
  /**
   * Token workers and clients present. Default: a random one (`cluster.token`), since the
   * scheduler listens beyond this machine. false: none, on a network you trust.
   */
  readonly token?: string | false;
  /** The address workers dial. Default: the scheduler's, with this machine's host name for 0.0.0.0. */
  readonly contactAddress?: string;
  /** Options of the scheduler's state machine. */
  readonly scheduler?: SchedulerOptions['state'];
  /** The scheduler's dashboard: default on 127.0.0.1:8787 (a free port if taken); false: off. */
  readonly dashboard?: SchedulerOptions['dashboard'];
  /** How long close() waits for cancelled jobs to leave the queue. Default '60s'. */
  readonly closeTimeout?: string | number;
  /** Where the scheduler and the backend report. Default: stderr. */
  readonly log?: (line: string) => void;
}

const CLUSTER_OPTION_NAMES = optionNames<SlurmClusterOptions>()([...JOB_OPTION_KEYS, 'workers', 'host', 'port', 'token', 'contactAddress', 'scheduler', 'dashboard', 'closeTimeout', 'log'] as const);

// Clusters not closed when the process is told to stop: their jobs are cancelled first.
const liveClusters = new Set<SlurmCluster>();
let signalHooksInstalled = false;

export class SlurmCluster extends Resource implements ClusterBackend {
  /** The address clients and workers dial. */
  readonly address: string;
  readonly token: string | undefined;
  readonly #scheduler: Scheduler;
  readonly #backend: SlurmBackend;
  #scaling: Promise<void> = Promise.resolve();

  private constructor(scheduler: Scheduler, backend: SlurmBackend, token: string | undefined) {
    super('the Slurm cluster');
    this.#scheduler = scheduler;
    this.#backend = backend;
    this.address = backend.address;
    this.token = token;
  }

  /** Starts the scheduler here; checks every option first (InvalidArgumentError naming it). */
  static async start(options: SlurmClusterOptions = {}): Promise<SlurmCluster> {
    rejectUnknown(options, CLUSTER_OPTION_NAMES, 'SlurmCluster.start()');
    const workers = options.workers ?? 0;
    if (!Number.isInteger(workers) || workers < 0) throw new InvalidArgumentError(`options.workers must be a non-negative integer, got ${String(workers)}`);
    const host = options.host ?? '0.0.0.0';
    if (typeof host !== 'string' || host === '') throw new InvalidArgumentError('options.host must be an interface to listen on, such as 0.0.0.0');
    const port = options.port ?? 0;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError(`options.port must be an integer from 0 to 65535, got ${String(port)}`);
    let token: string | undefined;
    if (options.token === undefined) token = randomBytes(24).toString('base64url');
    else if (options.token === false) token = undefined;
    else if (typeof options.token === 'string' && options.token !== '') token = options.token;
    else throw new InvalidArgumentError('options.token must be a non-empty string, or false for none');
    const { scheduler: state, dashboard, log } = options;
    // What the backend takes: the job's settings, where workers dial, how long close waits.
    const passed = new Set([...JOB_OPTION_KEYS, 'contactAddress', 'closeTimeout']);
    const rest = Object.fromEntries(Object.entries(options).filter(([key]) => passed.has(key))) as SlurmJobOptions & Pick<SlurmClusterOptions, 'contactAddress' | 'closeTimeout'>;
    // Every option is checked before anything starts.
    resolveJobOptions(rest);
    if (rest.closeTimeout !== undefined) parseDuration(rest.closeTimeout, 'options.closeTimeout');
    if (rest.contactAddress !== undefined) checkAddress(rest.contactAddress, 'options.contactAddress');
    if (log !== undefined && typeof log !== 'function') throw new InvalidArgumentError('options.log must be a function');

    const scheduler = await Scheduler.start({
      host,
      port,
      ...(token === undefined ? {} : { token }),
      ...(state === undefined ? {} : { state }),
      ...(dashboard === undefined ? {} : { dashboard }),
      ...(log === undefined ? {} : { log }),
      // Embedded in the user's script: it does not keep the script alive by itself, and is
      // closed (its jobs cancelled) when the script is done (closeAtExit below).
      keepAlive: false,
    });
    let backend: SlurmBackend;
    try {
      // The job options are checked here, with the scheduler's address at hand.
      backend = new SlurmBackend({ ...rest, scheduler, ...(token === undefined ? {} : { token }), ...(log === undefined ? {} : { log }) });
    } catch (error) {
      await scheduler.close();
      throw error;
    }
    const cluster = new SlurmCluster(scheduler, backend, token);
    closeAtExit(cluster);
    liveClusters.add(cluster);
    installSignalHooks();
    try {
      if (workers > 0) await cluster.scale(workers);
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

  /** The backend submitting and cancelling the jobs. */
  get backend(): SlurmBackend {
    return this.#backend;
  }

  /** The dashboard's address (undefined when turned off). */
  get dashboardLink(): string | undefined {
    return this.#scheduler.dashboardLink;
  }

  /** The batch script every job runs, exactly as submitted (as dask-jobqueue's job_script()). */
  jobScript(): string {
    return this.#backend.jobScript();
  }

  /** Jobs submitted and not yet ended, as last read from squeue. */
  jobs(): SlurmJob[] {
    return this.#backend.jobs();
  }

  /** Jobs that ended without being asked to, with Slurm's reason. */
  get failures(): readonly SlurmJobFailure[] {
    return this.#backend.failures;
  }

  /** Resolves once `n` workers have joined. */
  waitForWorkers(n: number, signal?: AbortSignal): Promise<void> {
    return this.#scheduler.waitForWorkers(n, signal);
  }

  /**
   * Lets the cluster follow the work: jobs are submitted when work arrives and cancelled
   * once their workers are idle and retired (their data moved first), within [minimum, maximum].
   */
  adapt(options: AdaptiveInput = {}): Adaptive {
    return this.#scheduler.adapt(this.#backend, options);
  }

  // ClusterBackend, delegated: the cluster can be handed to scheduler.adapt() as well.

  get threadsPerWorker(): number {
    return this.#backend.threadsPerWorker;
  }

  // How it shows itself: a card in a notebook (kept current while shown), text elsewhere.

  [CLUSTER_SUMMARY](): ClusterSummary {
    return schedulerClusterSummary('SlurmCluster', this.state, this.#scheduler, this.token, this.state === 'running' ? this.requested : 0);
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

  get requested(): number {
    return this.#backend.requested;
  }

  get running(): number {
    return this.#backend.running;
  }

  get closing(): number {
    return this.#backend.closing;
  }

  scaleUp(n: number): Promise<void> {
    return this.#backend.scaleUp(n);
  }

  scaleDown(names: readonly string[]): Promise<void> {
    return this.#backend.scaleDown(names);
  }

  /**
   * Submits jobs, or stops them, until `n` are pending or running; resolves once submitted
   * (jobs may wait in the queue: `waitForWorkers(n)` waits for them). Going down, jobs
   * whose worker has not joined go first; then idle workers holding the least data are
   * retired (their data moved) and their jobs cancelled.
   */
  scale(n: number): Promise<void> {
    if (!Number.isInteger(n) || n < 0) return Promise.reject(new InvalidArgumentError(`scale(n): n must be a non-negative integer, got ${String(n)}`));
    const next = this.#scaling.then(() => this.#scaleTo(n));
    this.#scaling = next.catch(() => undefined);
    return holdOpen(next);
  }

  async #scaleTo(n: number): Promise<void> {
    this.assertRunning();
    await this.#backend.refresh();
    const requested = this.#backend.requested;
    if (n >= requested) {
      await this.#backend.scaleUp(n);
      return;
    }
    let surplus = requested - n;
    surplus -= await this.#backend.cancelUnstarted(surplus);
    if (surplus <= 0) return;
    const mine = this.#scheduler
      .snapshot()
      .workers.filter((w) => w.status === 'running' && jobIdOf(this.#backend.job, w.name) !== undefined)
      .sort((a, b) => a.processing - b.processing || a.nbytes - b.nbytes)
      .slice(0, surplus);
    // Graceful: the scheduler moves what only they hold, then tells them to close. One
    // whose data has nowhere to go is kept, with its job.
    const left = new Set(await this.#scheduler.retireWorkers(mine.map((w) => w.worker)));
    await this.#backend.scaleDown(mine.filter((w) => left.has(w.worker)).map((w) => w.name));
  }

  /** Stops adapting, closes the scheduler and cancels every job; waits until none is left in the queue. */
  protected async onClose(): Promise<void> {
    liveClusters.delete(this);
    await this.#scaling.catch(() => undefined);
    this.#scheduler.stopAdapting();
    // Closing the scheduler makes every worker leave at once, with nothing to hand over;
    // meanwhile every job is cancelled. Both are attempted whatever the other does.
    const outcomes = await Promise.allSettled([this.#scheduler.close(), this.#backend.close()]);
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  /** Cancels every job without waiting, and drops the scheduler's connections. */
  protected override async onDestroy(error?: Error): Promise<void> {
    liveClusters.delete(this);
    this.#scheduler.stopAdapting();
    await Promise.allSettled([this.#backend.destroy(error), this.#scheduler.destroy(error)]);
  }
}

/**
 * On SIGINT, SIGTERM or SIGHUP with nobody else listening, the process would die without
 * its 'exit' event: cancel every job first, then die of the same signal. When the program
 * listens itself, it decides (and its close() or the exit hook cancels the jobs).
 */
function installSignalHooks(): void {
  if (signalHooksInstalled) return;
  signalHooksInstalled = true;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      if (process.listenerCount(signal) > 1) return;
      process.removeListener(signal, onSignal);
      // Exiting runs the backends' exit hook, which cancels their jobs synchronously.
      if (liveClusters.size > 0) process.exit(128 + ({ SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const)[signal]);
      // No cluster left to clean up: die of the signal, as without this hook.
      process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}
