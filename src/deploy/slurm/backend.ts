/**
 * Workers as Slurm jobs, behind the adaptive loop's interface: each worker is one batch
 * job running `tessera worker`, named `<jobName>-<job id>` so that names and jobs map both
 * ways without asking Slurm.
 *
 * ```ts
 * const backend = new SlurmBackend({ scheduler, token, partition: 'compute', cores: 4, memory: '8GB', walltime: '1h' });
 * scheduler.adapt(backend, { minimum: 0, maximum: 50 });
 * // …
 * scheduler.stopAdapting();
 * await backend.close();   // every job it submitted cancelled, none left in squeue
 * ```
 *
 * - `scaleUp(n)` submits the difference between `n` and the jobs pending or running (one
 *   job array for several); PENDING jobs count as requested, so nothing is asked twice.
 * - `scaleDown(names)` cancels exactly the jobs of those (already retired) workers.
 * - Job states are read in bulk, one `squeue` call per `pollInterval`; a job that ends
 *   FAILED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY or CANCELLED by someone else counts no more
 *   and is reported with its reason (and the end of its output file, when readable here);
 *   `sacct` adds exit codes, and end states Slurm has forgotten, when accounting is kept.
 * - Jobs that fail one after another do not become a storm of submissions: after three,
 *   scaleUp refuses (the loop backs off) and then lets one job through at a time.
 *
 * Why one file: submitting, polling and cancelling share one table of jobs and its states;
 * split, each part would reach into the others' bookkeeping.
 */
import { open } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { ClusterBackend } from '../../adaptive/backend.js';
import { formatAddress, parseAddress } from '../../comm/address.js';
import { InvalidArgumentError, WorkerStartError } from '../../errors.js';
import { Resource } from '../../lifecycle.js';
import { optionNames } from '../../options.js';
import { accounting, type AccountingRow, cancel, type Env, phaseOf, type Phase, queue, runSync, submit } from './commands.js';
import { JOB_OPTION_KEYS, parseDuration, rejectUnknown, type ResolvedSlurmJob, resolveJobOptions, type SlurmJobOptions } from './options.js';
import { exportWithToken, jobIdOf, logFile, renderJobScript, TOKEN_VARIABLE, workerName } from './script.js';

/** What the backend reads of the scheduler it serves (a `Scheduler` fits). */
export interface SchedulerView {
  readonly address: string;
  snapshot(): { readonly workers: readonly { readonly name: string; readonly status: string }[] };
}

export interface SlurmBackendOptions extends SlurmJobOptions {
  /** The scheduler the workers join (its address, and who has registered). */
  readonly scheduler: SchedulerView;
  /** The scheduler's token; it reaches the jobs in their environment, never in the script. */
  readonly token?: string;
  /**
   * The address workers dial, when not the scheduler's own: a scheduler listening on all
   * interfaces (0.0.0.0) is reached at this machine's host name by default.
   */
  readonly contactAddress?: string;
  /** How long close() waits for the cancelled jobs to leave the queue. Default '60s'. */
  readonly closeTimeout?: string | number;
  /** Where submissions, failures and trouble are reported. Default: stderr. */
  readonly log?: (line: string) => void;
}

const BACKEND_OPTION_NAMES = optionNames<SlurmBackendOptions>()([...JOB_OPTION_KEYS, 'scheduler', 'token', 'contactAddress', 'closeTimeout', 'log'] as const);

/** A job the backend submitted and Slurm still knows. */
export interface SlurmJob {
  /** The id scancel and squeue use: '12', or '9_3' for an array task. */
  readonly id: string;
  /** The job's own id (an array task gets one when it starts), as in the worker's name. */
  readonly jobId: string | undefined;
  /** The worker's name, once the job has its own id. */
  readonly worker: string | undefined;
  /** As squeue reports it: PENDING, RUNNING, COMPLETING… */
  readonly state: string;
  readonly reason: string;
  readonly submittedAt: Date;
}

/** A job that ended without being asked to. */
export interface SlurmJobFailure {
  readonly id: string;
  readonly worker: string | undefined;
  /** FAILED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY, CANCELLED, … ('UNKNOWN' when Slurm forgot it and keeps no accounting). */
  readonly state: string;
  /** Slurm's reason (NonZeroExitCode, TimeLimit, …), and who cancelled it when accounting says. */
  readonly reason: string;
  /** 'code:signal' from accounting, when kept. */
  readonly exitCode: string | undefined;
  /** The job's output file, and its last lines when this machine can read it. */
  readonly logFile: string | undefined;
  readonly logTail: string | undefined;
  readonly at: Date;
}

interface JobRecord {
  readonly id: string;
  jobId: string | undefined;
  state: string;
  reason: string;
  phase: Phase;
  readonly submittedAt: Date;
  /** Seen by squeue at least once. */
  seen: boolean;
  /** Cancelled by this backend (scaleDown, close): its end is no failure. */
  cancelled: boolean;
  /** Its worker registered with the scheduler. */
  registered: boolean;
  /** The pending reason last reported, so that each is said once. */
  toldReason: string;
  /** Counted towards the storm guard: it ended, or began to, before its worker joined. */
  struck: boolean;
}

// Reasons a job waits that need no word: its turn will come.
const ROUTINE_REASONS = new Set(['None', 'Resources', 'Priority', 'submitted', 'BeginTime', 'Dependency', 'JobArrayTaskLimit', 'Prolog', 'NodeDown', '']);
const FAILURES_KEPT = 100;
const FAILURE_STREAK = 3;
const MAX_ARRAY = 1000;

// Jobs of backends not closed, cancelled if the process exits first.
const liveBackends = new Set<() => void>();
let exitHookInstalled = false;

export class SlurmBackend extends Resource implements ClusterBackend {
  readonly job: ResolvedSlurmJob;
  /** The address workers dial. */
  readonly address: string;
  readonly #scheduler: SchedulerView;
  readonly #script: string;
  readonly #submitEnv: Env;
  readonly #env: Env;
  readonly #log: (line: string) => void;
  readonly #closeTimeout: number;
  readonly #records = new Map<string, JobRecord>();
  readonly #failures: SlurmJobFailure[] = [];
  /** Names of this backend's workers that the scheduler shows leaving (retiring). */
  #leaving = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> | undefined;
  #submitting: Promise<void> = Promise.resolve();
  /** false once sacct said the cluster keeps no accounting. */
  #accounting = true;
  #streak = 0;
  #holdUntil = 0;
  #backoff = 30_000;
  readonly #cancelOnExit = (): void => {
    const ids = this.#liveIds();
    if (ids.length > 0) runSync('scancel', ids, this.#env);
  };

  constructor(options: SlurmBackendOptions) {
    super('the Slurm backend');
    rejectUnknown(options, BACKEND_OPTION_NAMES, 'new SlurmBackend()');
    if (typeof (options as unknown) !== 'object' || (options as unknown) === null) throw new InvalidArgumentError('new SlurmBackend(): options must be an object');
    const scheduler = options.scheduler as SchedulerView | undefined;
    if (scheduler === undefined || typeof scheduler.address !== 'string' || typeof scheduler.snapshot !== 'function') {
      throw new InvalidArgumentError('new SlurmBackend(): options.scheduler must be the Scheduler the workers join');
    }
    if (options.token !== undefined && (typeof options.token !== 'string' || options.token === '')) throw new InvalidArgumentError('new SlurmBackend(): options.token must be a non-empty string');
    if (options.log !== undefined && typeof options.log !== 'function') throw new InvalidArgumentError('new SlurmBackend(): options.log must be a function');
    this.job = resolveJobOptions(options, 'options');
    this.#closeTimeout = parseDuration(options.closeTimeout ?? '60s', 'options.closeTimeout');
    this.address = contactAddress(scheduler.address, options.contactAddress);
    this.#scheduler = scheduler;
    this.#log = options.log ?? ((line: string) => process.stderr.write(`tessera slurm: ${line}\n`));
    this.#script = renderJobScript(this.job, { address: this.address, token: options.token !== undefined });

    // The token goes to sbatch only, which exports it to the jobs.
    const env: Record<string, string | undefined> = Object.fromEntries(Object.entries(process.env).filter(([key]) => key !== TOKEN_VARIABLE));
    if (this.job.slurmConf !== undefined) env['SLURM_CONF'] = this.job.slurmConf;
    this.#env = env;
    // sbatch exports its own environment to the job: that is how the token travels.
    const submitEnv: Record<string, string | undefined> = { ...env };
    if (options.token !== undefined) {
      submitEnv[TOKEN_VARIABLE] = options.token;
      if (submitEnv['SBATCH_EXPORT'] !== undefined) submitEnv['SBATCH_EXPORT'] = exportWithToken(submitEnv['SBATCH_EXPORT']);
    }
    this.#submitEnv = submitEnv;
  }

  /** The batch script every job runs, exactly as submitted (arrays add `--array` to sbatch's command line). */
  jobScript(): string {
    return this.#script;
  }

  /** Jobs submitted and not yet ended, as last read from squeue. */
  jobs(): SlurmJob[] {
    return [...this.#records.values()].map((r) => ({
      id: r.id,
      jobId: r.jobId,
      worker: r.jobId === undefined ? undefined : workerName(this.job, r.jobId),
      state: r.state,
      reason: r.reason,
      submittedAt: r.submittedAt,
    }));
  }

  /** Jobs that ended without being asked to, newest last (the last hundred). */
  get failures(): readonly SlurmJobFailure[] {
    return this.#failures;
  }

  // ClusterBackend: what the adaptive loop drives.

  get threadsPerWorker(): number {
    return this.job.cores;
  }

  /** Jobs pending or running, neither cancelled nor with a worker on its way out. */
  get requested(): number {
    let n = 0;
    for (const r of this.#records.values()) if (this.#counts(r) && (r.phase === 'pending' || r.phase === 'running')) n++;
    return n;
  }

  /** Jobs running (their worker process is up), not being cancelled. */
  get running(): number {
    let n = 0;
    for (const r of this.#records.values()) if (r.phase === 'running' && !r.cancelled) n++;
    return n;
  }

  /** Jobs being cancelled or ending, and running jobs whose worker is retiring. */
  get closing(): number {
    let n = 0;
    for (const r of this.#records.values()) if (r.phase === 'ending' || (r.phase !== 'ended' && !this.#counts(r))) n++;
    return n;
  }

  #counts(r: JobRecord): boolean {
    return !r.cancelled && !(r.jobId !== undefined && this.#leaving.has(workerName(this.job, r.jobId)));
  }

  /** Submits jobs until `n` are pending or running. Rejects with SlurmCommandError when sbatch refuses. */
  scaleUp(n: number): Promise<void> {
    this.assertRunning();
    if (!Number.isInteger(n) || n < 0) return Promise.reject(new InvalidArgumentError(`scaleUp(n): n must be a non-negative integer, got ${String(n)}`));
    const next = this.#submitting.then(async () => {
      if (this.state !== 'running') return;
      let missing = n - this.requested;
      if (missing <= 0) return;
      if (this.#streak >= FAILURE_STREAK) {
        const now = Date.now();
        const last = this.#failures.at(-1);
        if (now < this.#holdUntil) {
          throw new WorkerStartError(last?.worker ?? last?.id ?? '', `${this.#streak} Slurm jobs in a row ended before their worker joined; submitting again in ${Math.ceil((this.#holdUntil - now) / 1000)} s. Last: ${describeFailure(last)}`);
        }
        // One job at a time until one works.
        missing = 1;
      }
      await this.#submit(missing);
    });
    this.#submitting = next.catch(() => undefined);
    return next;
  }

  /** Cancels exactly the jobs of these workers (already retired by the scheduler). */
  async scaleDown(names: readonly string[]): Promise<void> {
    let ids = this.#cancellable(names);
    if (ids.unknown.length > 0) {
      // An array task's own id is learnt from squeue: read it once more before giving up.
      await this.refresh().catch(() => undefined);
      ids = this.#cancellable(names);
      if (ids.unknown.length > 0) this.#log(`scaleDown: ${ids.unknown.join(', ')} ${ids.unknown.length === 1 ? 'is' : 'are'} no job of this backend (or already ended); nothing cancelled for ${ids.unknown.length === 1 ? 'it' : 'them'}`);
    }
    await this.#cancel(ids.jobs);
  }

  /** Cancels these jobs (by the id squeue shows) if they are this backend's and still live. */
  async cancelJobs(ids: readonly string[]): Promise<void> {
    await this.#cancel(ids.map((id) => this.#records.get(id)).filter((r): r is JobRecord => r !== undefined && r.phase !== 'ended'));
  }

  /**
   * Cancels up to `n` jobs whose worker has not joined (pending ones first, newest first):
   * they hold nothing. Resolves to how many were cancelled.
   */
  async cancelUnstarted(n: number): Promise<number> {
    this.#readScheduler();
    const rank = (r: JobRecord): number => (r.phase === 'pending' ? 0 : 1);
    const chosen = [...this.#records.values()]
      .filter((r) => !r.registered && this.#counts(r) && (r.phase === 'pending' || r.phase === 'running'))
      .sort((a, b) => rank(a) - rank(b) || b.submittedAt.getTime() - a.submittedAt.getTime() || b.id.localeCompare(a.id, 'en', { numeric: true }))
      .slice(0, Math.max(0, n));
    await this.#cancel(chosen);
    return chosen.length;
  }

  #cancellable(names: readonly string[]): { jobs: JobRecord[]; unknown: string[] } {
    const jobs: JobRecord[] = [];
    const unknown: string[] = [];
    for (const name of names) {
      const jobId = jobIdOf(this.job, name);
      const record = jobId === undefined ? undefined : [...this.#records.values()].find((r) => r.jobId === jobId);
      if (record === undefined) unknown.push(name);
      else jobs.push(record);
    }
    return { jobs, unknown };
  }

  async #cancel(records: readonly JobRecord[]): Promise<void> {
    const live = records.filter((r) => r.phase !== 'ended' && !r.cancelled);
    if (live.length === 0) return;
    for (const r of live) r.cancelled = true;
    await cancel(live.map((r) => r.id), this.#env);
  }

  /** Reads every job's state now (one squeue call); concurrent calls share it. */
  refresh(): Promise<void> {
    this.#polling ??= this.#poll().finally(() => {
      this.#polling = undefined;
    });
    return this.#polling;
  }

  async #submit(count: number): Promise<void> {
    const ids: string[] = [];
    if (this.job.jobArrays && count > 1) {
      for (let left = count; left > 0; left -= MAX_ARRAY) ids.push(...(await submit(this.#script, Math.min(left, MAX_ARRAY), true, this.#submitEnv)));
    } else {
      for (let i = 0; i < count; i++) ids.push(...(await submit(this.#script, 1, false, this.#submitEnv)));
    }
    const now = new Date();
    for (const id of ids) {
      // A job that is not an array task is its own id from the start.
      this.#records.set(id, { id, jobId: id.includes('_') ? undefined : id, state: 'PENDING', reason: 'submitted', phase: 'pending', submittedAt: now, seen: false, cancelled: false, registered: false, toldReason: '', struck: false });
    }
    this.#log(`submitted ${ids.length === 1 ? `job ${ids[0]}` : `${ids.length} jobs (${ids[0]}…${ids.at(-1)})`}${this.job.partition === undefined ? '' : ` to partition ${this.job.partition}`}`);
    this.#startPolling();
  }

  #startPolling(): void {
    if (this.#timer !== undefined || this.state !== 'running') return;
    this.#timer = setInterval(() => {
      this.refresh().catch((error: unknown) => this.#log(`reading job states failed: ${error instanceof Error ? error.message : String(error)}`));
    }, this.job.pollInterval);
    this.#timer.unref();
    liveBackends.add(this.#cancelOnExit);
    installExitHook();
  }

  async #poll(): Promise<void> {
    const live = [...this.#records.values()].filter((r) => r.phase !== 'ended');
    if (live.length === 0) return;
    const rows = await queue([...new Set(live.map((r) => r.id.split('_')[0]!))], this.#env);
    const byId = new Map(rows.map((row) => [row.id, row]));
    const now = Date.now();
    const ended: JobRecord[] = [];
    const missing: JobRecord[] = [];
    for (const r of live) {
      const row = byId.get(r.id);
      if (row === undefined) {
        // Just submitted and not listed yet, or gone from Slurm's memory (MinJobAge).
        if (!r.seen && now - r.submittedAt.getTime() < 10_000) continue;
        missing.push(r);
        continue;
      }
      r.seen = true;
      r.state = row.state;
      r.reason = row.reason;
      r.phase = phaseOf(row.state);
      // A pending array task shows its array's id until it starts and gets its own.
      if (r.jobId === undefined && r.phase !== 'pending' && row.jobId !== '') r.jobId = row.jobId;
      if (r.phase === 'ended') ended.push(r);
      else if (r.phase === 'pending' && !ROUTINE_REASONS.has(r.reason) && r.reason !== r.toldReason && this.state === 'running') {
        r.toldReason = r.reason;
        this.#log(`job ${r.id} is pending: ${r.reason}${PENDING_HINTS[r.reason] === undefined ? '' : ` (${PENDING_HINTS[r.reason]})`}`);
      }
    }
    this.#readScheduler();
    // A job ending before its worker joined is a failure to start as soon as it is seen
    // ending: it no longer counts as requested, so the streak must count it already.
    for (const r of live) if (r.phase === 'ending') this.#strike(r);
    if (ended.length === 0 && missing.length === 0) return;
    // Counted before any await: a scale-up asked meanwhile must already see the streak.
    for (const r of [...ended, ...missing]) this.#retire(r);
    // Accounting explains what squeue cannot: exit codes, who cancelled, forgotten jobs.
    const ask = [...missing, ...ended.filter((r) => this.#isFailure(r.state, r))];
    let acct: Map<string, AccountingRow> | undefined;
    if (ask.length > 0 && this.#accounting && this.state === 'running') {
      const since = new Date(Math.min(...ask.map((r) => r.submittedAt.getTime())) - 60_000);
      const found = await accounting(ask.map((r) => r.id), since, this.#env).catch((error: unknown) => {
        this.#log(`sacct failed: ${error instanceof Error ? error.message : String(error)}`);
        return [];
      });
      if (found === undefined) this.#accounting = false;
      else acct = new Map(found.map((row) => [row.id, row]));
    }
    for (const r of [...ended, ...missing]) await this.#report(r, acct?.get(r.id));
  }

  /** Which of this backend's workers the scheduler shows retiring, and which registered. */
  #readScheduler(): void {
    let workers: readonly { readonly name: string; readonly status: string }[];
    try {
      workers = this.#scheduler.snapshot().workers;
    } catch {
      // A closed scheduler: nothing is leaving that the queue will not show.
      workers = [];
    }
    const leaving = new Set<string>();
    const registered = new Set<string>();
    for (const w of workers) {
      registered.add(w.name);
      if (w.status === 'closing') leaving.add(w.name);
    }
    this.#leaving = leaving;
    for (const r of this.#records.values()) {
      if (r.registered || r.jobId === undefined || !registered.has(workerName(this.job, r.jobId))) continue;
      r.registered = true;
      this.#streak = 0;
      this.#backoff = 30_000;
    }
  }

  #isFailure(state: string, r: JobRecord): boolean {
    if (this.state !== 'running') return false;
    if (state === 'COMPLETED') return false;
    return !(state.startsWith('CANCELLED') && r.cancelled);
  }

  /** Forgets an ended job. */
  #retire(r: JobRecord): void {
    this.#records.delete(r.id);
    r.phase = 'ended';
    this.#strike(r);
  }

  /**
   * A job that ends, however, before its worker ever joined counts (once) towards the
   * storm guard; past it, each such job holds submissions back for longer.
   */
  #strike(r: JobRecord): void {
    if (r.struck || r.registered || r.cancelled || this.state !== 'running') return;
    r.struck = true;
    if (++this.#streak >= FAILURE_STREAK) {
      this.#holdUntil = Date.now() + this.#backoff;
      this.#backoff = Math.min(this.#backoff * 2, 600_000);
    }
  }

  /** Tells how an ended job ended, when that was a failure. */
  async #report(r: JobRecord, acct: AccountingRow | undefined): Promise<void> {
    const state = acct?.state.split(' ')[0] ?? (r.seen && phaseOf(r.state) === 'ended' ? r.state : 'UNKNOWN');
    if (state === 'UNKNOWN' && !r.cancelled && this.state === 'running') {
      this.#log(`job ${r.id} left the queue before its end state was read, and the cluster keeps no accounting to ask`);
      return;
    }
    if (!this.#isFailure(state, r)) return;
    const file = logFile(this.job, r.jobId ?? r.id);
    const failure: SlurmJobFailure = {
      id: r.id,
      worker: r.jobId === undefined ? undefined : workerName(this.job, r.jobId),
      state,
      reason: [r.reason, acct !== undefined && acct.state.includes(' by ') ? acct.state.slice(state.length).trim() : ''].filter((s) => s !== '' && s !== 'None').join(', ') || REASONS[state] || 'no reason given',
      exitCode: acct?.exitCode,
      logFile: file,
      logTail: file === undefined || r.jobId === undefined ? undefined : await tail(file),
      at: new Date(),
    };
    this.#failures.push(failure);
    if (this.#failures.length > FAILURES_KEPT) this.#failures.splice(0, this.#failures.length - FAILURES_KEPT);
    this.#log(describeFailure(failure));
  }

  #liveIds(): string[] {
    return [...this.#records.values()].filter((r) => r.phase !== 'ended').map((r) => r.id);
  }

  /** Cancels every job this backend submitted and waits until none is left in the queue. */
  protected async onClose(): Promise<void> {
    await this.#submitting;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    try {
      await this.#cancel([...this.#records.values()]);
      const deadline = performance.now() + this.#closeTimeout;
      for (;;) {
        await this.refresh();
        if (this.#liveIds().length === 0) break;
        if (performance.now() > deadline) {
          this.#log(`jobs ${this.#liveIds().join(', ')} were cancelled but are still in the queue after ${this.#closeTimeout / 1000} s`);
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    } finally {
      liveBackends.delete(this.#cancelOnExit);
    }
  }

  /** Cancels every job without waiting for them to leave the queue. */
  protected override async onDestroy(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    try {
      await this.#cancel([...this.#records.values()]);
    } finally {
      liveBackends.delete(this.#cancelOnExit);
    }
  }
}

/** What the pending reasons worth a word mean. */
const PENDING_HINTS: Readonly<Record<string, string>> = {
  PartitionConfig: 'the job asks for more than the partition has: cores, memory or time',
  PartitionTimeLimit: 'the walltime is above the partition\'s limit',
  PartitionNodeLimit: 'the job asks for more nodes than the partition allows',
  ReqNodeNotAvail: 'the nodes it needs are down, drained or reserved',
  QOSMaxJobsPerUserLimit: 'the QoS caps jobs per user',
  QOSMaxSubmitJobPerUserLimit: 'the QoS caps submitted jobs per user',
  AssocMaxJobsLimit: 'the account caps running jobs',
  AssocGrpCpuLimit: 'the account\'s CPUs are all in use',
  InvalidAccount: 'the account is not valid',
  InvalidQOS: 'the QoS is not valid',
};

/** What an end state means, when Slurm gives no reason. */
const REASONS: Readonly<Record<string, string>> = {
  FAILED: 'the worker exited with an error',
  TIMEOUT: 'the job reached its walltime',
  NODE_FAIL: 'its node failed',
  OUT_OF_MEMORY: 'it used more memory than it asked for',
  CANCELLED: 'cancelled by someone other than this cluster',
  PREEMPTED: 'preempted by a job of higher priority',
  BOOT_FAIL: 'its node failed to boot',
  DEADLINE: 'it reached its deadline',
};

function describeFailure(f: SlurmJobFailure | undefined): string {
  if (f === undefined) return 'none';
  const parts = [`job ${f.id}${f.worker === undefined ? '' : ` (worker ${f.worker})`} ended ${f.state}: ${f.reason}`];
  if (f.exitCode !== undefined && f.exitCode !== '0:0') parts.push(`exit code ${f.exitCode}`);
  if (f.logTail !== undefined && f.logTail !== '') parts.push(`${f.logFile ?? 'its output'} ends with:\n  ${f.logTail.split('\n').join('\n  ')}`);
  else if (f.logFile !== undefined && f.worker !== undefined) parts.push(`see ${f.logFile}`);
  return parts.join('; ');
}

/** The last lines of a file, when readable here (a file system shared with the node). */
async function tail(path: string): Promise<string | undefined> {
  try {
    const file = await open(path, 'r');
    try {
      const { size } = await file.stat();
      const length = Math.min(size, 4096);
      const buffer = Buffer.alloc(length);
      await file.read(buffer, 0, length, size - length);
      return buffer.toString('utf8').trimEnd().split('\n').slice(-6).join('\n');
    } finally {
      await file.close();
    }
  } catch {
    return undefined;
  }
}

/** An address as `tcp://host:port` (or tls://), or InvalidArgumentError naming the option. */
export function checkAddress(given: unknown, name: string): string {
  if (typeof given !== 'string') throw new InvalidArgumentError(`${name} must be an address such as tcp://login1:8786`);
  try {
    const a = parseAddress(given);
    return formatAddress(a.scheme ?? 'tcp', a.host, a.port);
  } catch (error) {
    throw new InvalidArgumentError(`${name}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** The address workers dial: given, or the scheduler's with a wildcard host made this machine's name. */
function contactAddress(schedulerAddress: string, given: string | undefined): string {
  if (given !== undefined) return checkAddress(given, 'options.contactAddress');
  const a = parseAddress(schedulerAddress);
  const wildcard = a.host === '0.0.0.0' || a.host === '::';
  return formatAddress(a.scheme ?? 'tcp', wildcard ? hostname() : a.host, a.port);
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const cancelAll of liveBackends) cancelAll();
  });
}
