/**
 * The chaos driver: runs seeded random DAGs (dag.ts) on a LocalCluster while its worker
 * processes are SIGKILLed one at a time or all at once, frozen (SIGSTOP, then SIGCONT or
 * SIGKILL), retired while data moves, or come and go under the adaptive loop. Each run
 * checks the answer against the sequential reference and has a deadline: a run that
 * passes it is a hang, reported with its seed, and the cluster is replaced. After close,
 * no process the cluster started may be left.
 *
 * The package comes in through `ChaosApi` — the sources in tests, the built package in
 * `npm run bench -- chaos` — and is used only through what a user can call.
 */
import { isDeepStrictEqual } from 'node:util';
import { readdirSync, readFileSync } from 'node:fs';
import { mulberry32 } from '../helpers/random.js';
import { chaosDag, type DagShape, type GraphApi } from './dag.js';

/** kill-all-rescale: every worker killed, then `scale(n)` at once, before the dead are reaped. */
export const FAULT_KINDS = ['kill-one', 'kill-all', 'freeze', 'retire', 'adaptive', 'kill-all-rescale'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

// What the driver uses of the package: public API only, typed loosely enough that the
// sources and the built package both fit.
interface ProcessInfo {
  readonly name: string;
  readonly pid: number;
}
interface ChaosPlugin {
  readonly name: string;
  taskFinished(task: { readonly key: string }): void;
  dataMoved(key: string, nbytes: number): void;
}
export interface ChaosClusterLike {
  readonly address: string;
  readonly processes: readonly ProcessInfo[];
  readonly scheduler: {
    readonly workerCount: number;
    addPlugin(plugin: ChaosPlugin): () => void;
  };
  scale(n: number): Promise<void>;
  close(): Promise<void>;
  destroy(error?: Error): Promise<void>;
}
export interface ChaosClientLike {
  get(graph: Record<string, unknown>, keys: readonly string[]): Promise<unknown[]>;
  close(): Promise<void>;
  destroy(error?: Error): Promise<void>;
}
export interface ChaosApi extends GraphApi {
  /** A LocalCluster of `workers`, the scheduler given `scheduler`, adapting when `adaptive` is given. */
  startCluster(options: { readonly workers: number; readonly scheduler: Record<string, unknown>; readonly adaptive?: Record<string, unknown> }): Promise<ChaosClusterLike>;
  connect(cluster: ChaosClusterLike): Promise<ChaosClientLike>;
}

export interface ChaosOptions {
  /** Worker processes to keep (the adaptive loop's maximum under 'adaptive'). Default 2. */
  readonly workers?: number;
  /** Milliseconds a run may take, faults and recovery included, before it is a hang. Default 60,000. */
  readonly deadlineMs?: number;
  /** Faults injected per run at most. Default 3. */
  readonly maxFaults?: number;
  /** A worker not heard from for longer is removed (frozen ones). Default 2,000 ms. */
  readonly workerTtlMs?: number;
  readonly shape?: DagShape;
  /** Told what happens, for the benchmark's progress and a failing test's story. */
  readonly log?: (line: string) => void;
}

export type Outcome = 'ok' | 'wrong' | 'hang' | 'error';

export interface RunReport {
  readonly kind: FaultKind;
  readonly seed: number;
  readonly outcome: Outcome;
  /** What went wrong, with the seed, when the outcome is not 'ok'. */
  readonly detail?: string;
  readonly tasks: number;
  readonly faults: number;
  /** Task completions beyond one per key: work done again after a loss (or twice by a stolen task). */
  readonly recomputed: number;
  /** Milliseconds from the last fault to the answer (null: no fault landed before the answer). */
  readonly recoverMs: number | null;
  readonly elapsedMs: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Gone already.
  }
}

/** Whether `pid` runs and is this process's child (where /proc tells; else whether it runs). */
function ours(pid: number): boolean {
  if (!alive(pid)) return false;
  try {
    // Field 4 of /proc/PID/stat, after the parenthesised command name.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return ppid === process.pid;
  } catch {
    return alive(pid);
  }
}

/** Whether the process runs `tessera worker` (its command line, from /proc). */
function isWorkerProcess(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('worker');
  } catch {
    return false;
  }
}

/** Direct children of this process, from /proc (Linux); empty where /proc is missing. */
export function childPids(): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync('/proc/self/task')) {
      const text = readFileSync(`/proc/self/task/${tid}/children`, 'utf8').trim();
      if (text !== '') out.push(...text.split(/\s+/).map(Number));
    }
  } catch {
    // Not Linux: the pids the cluster reported are checked all the same.
  }
  return out;
}

/** Resolves when `condition` holds, or false once `ms` have passed. */
async function within(ms: number, condition: () => boolean): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!condition()) {
    if (performance.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

/**
 * One LocalCluster and a client, run after run. `run(kind, seed)` never throws for what
 * the cluster does: a wrong answer, an error or a hang is its report.
 */
export class ChaosCluster {
  readonly #api: ChaosApi;
  readonly #options: Required<Omit<ChaosOptions, 'log' | 'shape'>> & { readonly log: ChaosOptions['log'] | undefined; readonly shape: DagShape | undefined };
  readonly #adaptive: boolean;
  #cluster!: ChaosClusterLike;
  #client!: ChaosClientLike;
  /** Every worker pid seen, and the children of this process, checked after close. */
  readonly #seen = new Set<number>();
  readonly #frozen = new Set<number>();
  #sampler: NodeJS.Timeout | undefined;
  /** Completions by key, and transfers, since the run began. */
  #finished = new Map<string, number>();
  #moves = 0;

  private constructor(api: ChaosApi, options: ChaosOptions, adaptive: boolean) {
    this.#api = api;
    this.#adaptive = adaptive;
    this.#options = {
      workers: options.workers ?? 2,
      deadlineMs: options.deadlineMs ?? 60_000,
      maxFaults: options.maxFaults ?? 3,
      workerTtlMs: options.workerTtlMs ?? 2000,
      log: options.log,
      shape: options.shape,
    };
  }

  /** Starts the cluster: fixed at `workers`, or adapting between 1 and `workers` when `adaptive`. */
  static async start(api: ChaosApi, options: ChaosOptions = {}, adaptive = false): Promise<ChaosCluster> {
    const chaos = new ChaosCluster(api, options, adaptive);
    await chaos.#open();
    return chaos;
  }

  get workers(): number {
    return this.#options.workers;
  }

  async #open(): Promise<void> {
    const { workers, workerTtlMs } = this.#options;
    this.#cluster = await this.#api.startCluster({
      workers: this.#adaptive ? 1 : workers,
      // A task may be on many killed workers in a run: it must be retried, not failed.
      scheduler: { allowedFailures: 1000, workerTtlMs },
      ...(this.#adaptive ? { adaptive: { minimum: 1, maximum: workers, interval: 200, waitCount: 2, targetDuration: '1s' } } : {}),
    });
    this.#cluster.scheduler.addPlugin({
      name: 'chaos',
      taskFinished: (t) => {
        this.#finished.set(t.key, (this.#finished.get(t.key) ?? 0) + 1);
      },
      dataMoved: () => {
        this.#moves++;
      },
    });
    this.#client = await this.#api.connect(this.#cluster);
    this.#sample();
    clearInterval(this.#sampler);
    this.#sampler = setInterval(() => this.#sample(), 50);
    this.#sampler.unref();
  }

  #sample(): void {
    for (const p of this.#cluster.processes) if (p.pid > 0) this.#seen.add(p.pid);
    // Worker processes the cluster has not reported yet (or no longer reports); other
    // children (tsx's esbuild service, say) are not the cluster's.
    for (const pid of childPids()) if (isWorkerProcess(pid)) this.#seen.add(pid);
  }

  #log(line: string): void {
    this.#options.log?.(line);
  }

  /** One DAG under one kind of fault; `deadlineMs` overrides the cluster's for this run. */
  async run(kind: FaultKind, seed: number, deadlineMs = this.#options.deadlineMs): Promise<RunReport> {
    const dag = chaosDag(this.#api, seed, `chaos${seed}-${kind}`, this.#options.shape);
    this.#finished = new Map();
    this.#moves = 0;
    const started = performance.now();
    let answeredAt: number | undefined;
    const answer = this.#client.get(dag.graph, dag.keys).then(
      (value) => {
        answeredAt = performance.now();
        return { value };
      },
      (error: unknown) => {
        answeredAt = performance.now();
        return { error: error instanceof Error ? error : new Error(String(error)) };
      },
    );
    const faults = { count: 0, lastAt: undefined as number | undefined };
    const done = (): boolean => answeredAt !== undefined || performance.now() - started > deadlineMs;
    const injecting = this.#inject(kind, dag.tasks, mulberry32(seed ^ 0x5bd1e995), done, faults).catch((error: unknown) => {
      this.#log(`seed ${seed} (${kind}): the fault injector failed: ${String(error)}`);
    });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'hang'>((resolve) => {
      timer = setTimeout(() => resolve('hang'), deadlineMs);
    });
    const settled = await Promise.race([answer, deadline]);
    clearTimeout(timer);
    await injecting;

    const report = (outcome: Outcome, detail?: string): RunReport => {
      let total = 0;
      for (const n of this.#finished.values()) total += n;
      return {
        kind,
        seed,
        outcome,
        ...(detail === undefined ? {} : { detail }),
        tasks: dag.tasks,
        faults: faults.count,
        recomputed: total - this.#finished.size,
        recoverMs: faults.lastAt === undefined || answeredAt === undefined ? null : Math.round(answeredAt - faults.lastAt),
        elapsedMs: Math.round((answeredAt ?? performance.now()) - started),
      };
    };

    let result: RunReport;
    if (settled === 'hang') {
      result = report('hang', `seed ${seed} (${kind}): no answer within ${deadlineMs} ms after ${faults.count} faults; ${this.#cluster.processes.length} worker processes, ${this.#cluster.scheduler.workerCount} registered`);
    } else if ('error' in settled) {
      const e = settled.error;
      result = report('error', `seed ${seed} (${kind}): ${e.name}: ${e.message}`);
    } else if (!isDeepStrictEqual(settled.value, dag.expected)) {
      const bad = dag.keys.filter((_, i) => !isDeepStrictEqual((settled.value)[i], dag.expected[i]));
      result = report('wrong', `seed ${seed} (${kind}): wrong answer for ${bad.length} of ${dag.keys.length} keys: ${bad.slice(0, 5).join(', ')}`);
    } else {
      result = report('ok');
    }
    this.#log(JSON.stringify(result));
    // A cluster that hung is suspect: the next run gets a new one. Otherwise it is brought
    // back to its size (a failure to do so is the run's failure too).
    if (result.outcome === 'hang' || !(await this.#restore())) {
      if (result.outcome !== 'hang') {
        result = { ...result, outcome: 'hang', detail: `seed ${seed} (${kind}): the cluster did not come back to ${this.#options.workers} workers within ${deadlineMs} ms after the run` };
      }
      await this.#replace();
    }
    return result;
  }

  /**
   * Injects faults of `kind` until the run is done. Faults land at seeded points of the
   * run's progress (fractions of its tasks finished), so they hit mid-graph whatever the
   * machine's speed.
   */
  async #inject(kind: FaultKind, tasks: number, rnd: () => number, done: () => boolean, faults: { count: number; lastAt: number | undefined }): Promise<void> {
    const { maxFaults, workers, workerTtlMs, deadlineMs } = this.#options;
    const cluster = this.#cluster;
    const pick = <T>(xs: readonly T[]): T | undefined => xs[Math.floor(rnd() * xs.length)];
    const rounds = kind === 'kill-all' || kind === 'kill-all-rescale' || kind === 'adaptive' ? Math.min(maxFaults, 1 + Math.floor(rnd() * 2)) : maxFaults;
    const points = Array.from({ length: rounds }, () => 0.1 + 0.8 * rnd()).sort((a, b) => a - b);
    // Finished keys of this run, so a recomputation does not count as progress.
    const at = async (fraction: number): Promise<boolean> => {
      await within(deadlineMs, () => done() || this.#finished.size >= Math.ceil(fraction * tasks));
      return !done();
    };
    const hold = (ms: number): Promise<boolean> => within(ms, done).then(() => !done());
    const landed = (): void => {
      faults.count++;
      faults.lastAt = performance.now();
    };
    const reaped = (pids: readonly number[]): Promise<boolean> => within(deadlineMs, () => done() || !cluster.processes.some((p) => pids.includes(p.pid)));
    // Only once the dead are reaped does scale(n) see them gone; then it starts replacements.
    const refill = async (): Promise<void> => {
      await cluster.scale(workers).catch((error: unknown) => this.#log(`scale(${workers}) failed: ${String(error)}`));
    };

    for (const point of points) {
      if (!(await at(point))) return;
      switch (kind) {
        case 'kill-one': {
          const victim = pick(cluster.processes);
          if (victim === undefined) break;
          signal(victim.pid, 'SIGKILL');
          landed();
          await reaped([victim.pid]);
          if (!done()) await refill();
          break;
        }
        case 'kill-all': {
          const victims = cluster.processes.map((p) => p.pid);
          for (const pid of victims) signal(pid, 'SIGKILL');
          landed();
          await reaped(victims);
          if (!done()) await refill();
          break;
        }
        case 'kill-all-rescale': {
          // What a user would write: kill, then ask for the workers back straight away.
          const victims = cluster.processes.map((p) => p.pid);
          for (const pid of victims) signal(pid, 'SIGKILL');
          landed();
          await refill();
          break;
        }
        case 'freeze': {
          const victim = pick(cluster.processes);
          if (victim === undefined) break;
          signal(victim.pid, 'SIGSTOP');
          this.#frozen.add(victim.pid);
          landed();
          // Frozen for less or more than the scheduler's patience, then thawed or killed.
          const frozenFor = 300 + rnd() * (workerTtlMs + 1500);
          const thaw = rnd() < 0.5;
          await hold(frozenFor);
          signal(victim.pid, thaw ? 'SIGCONT' : 'SIGKILL');
          this.#frozen.delete(victim.pid);
          if (!done()) faults.lastAt = performance.now();
          if (!thaw) {
            await reaped([victim.pid]);
            if (!done()) await refill();
          }
          break;
        }
        case 'retire': {
          // While data moves: wait (a little) for a transfer to be reported, then retire
          // one worker — its data moves too — and bring the cluster back to size.
          const moves = this.#moves;
          await within(1000, () => done() || this.#moves > moves);
          if (done()) return;
          if (cluster.processes.length < 2) {
            await refill();
            break;
          }
          landed();
          await cluster.scale(cluster.processes.length - 1).catch((error: unknown) => this.#log(`scale down (retirement) failed: ${String(error)}`));
          if (!done()) faults.lastAt = performance.now();
          if (!done()) await refill();
          break;
        }
        case 'adaptive': {
          // The loop scales with the work; a worker dies under it, and the loop (not this
          // driver) must replace it.
          const victim = pick(cluster.processes);
          if (victim === undefined) break;
          signal(victim.pid, 'SIGKILL');
          landed();
          break;
        }
      }
    }
  }

  /** Thaws what is frozen and waits until the cluster has its workers again. */
  async #restore(): Promise<boolean> {
    for (const pid of this.#frozen) signal(pid, 'SIGCONT');
    this.#frozen.clear();
    const { workers, deadlineMs } = this.#options;
    const cluster = this.#cluster;
    if (this.#adaptive) return within(deadlineMs, () => cluster.scheduler.workerCount >= 1);
    // The dead must be reaped, and the scheduler must have let go of them, before the count means anything.
    const settled = (): boolean => cluster.processes.length === cluster.scheduler.workerCount;
    const deadline = performance.now() + deadlineMs;
    while (performance.now() < deadline) {
      if (settled() && cluster.processes.length === workers) return true;
      if (settled()) await cluster.scale(workers).catch((error: unknown) => this.#log(`scale(${workers}) failed: ${String(error)}`));
      else await sleep(50);
    }
    return false;
  }

  /** Drops the cluster (abortively) and starts a fresh one. */
  async #replace(): Promise<void> {
    this.#log('replacing the cluster');
    await this.#end(true);
    await this.#open();
  }

  async #end(abort: boolean): Promise<void> {
    for (const pid of this.#frozen) signal(pid, 'SIGKILL');
    this.#frozen.clear();
    this.#sample();
    if (abort) {
      await this.#client.destroy().catch(() => undefined);
      await this.#cluster.destroy().catch(() => undefined);
    } else {
      await this.#client.close().catch(() => undefined);
      await this.#cluster.close().catch(() => undefined);
    }
  }

  /**
   * Closes the client and the cluster; returns the pids of processes it started that are
   * still running (there should be none).
   */
  async close(): Promise<number[]> {
    clearInterval(this.#sampler);
    await this.#end(false);
    // close() resolves once every worker has exited; a moment for the kernel to reap.
    await within(2000, () => ![...this.#seen].some(ours));
    return [...this.#seen].filter(ours);
  }
}

/** Median and maximum of what is there, or null. */
export function summary(values: readonly number[]): { median: number; max: number } | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)]!, max: sorted[sorted.length - 1]! };
}
