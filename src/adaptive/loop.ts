/**
 * The adaptive loop: every `interval`, observe the scheduler and the backend, ask the
 * policy, and act — scale up at once, retire the nominated workers gracefully and only
 * then stop them. It runs inside the scheduler process (so a preload module can attach
 * any backend); `tick(now)` is public so a simulation can drive it in virtual time.
 */
import type { ScalingBackend, ScalingDecision, ScalingHistory, ScalingSample, ScalingSideSample } from '../protocol/scaling.js';
import { InvalidArgumentError } from '../errors.js';
import { createLog, type Log, type LogSink } from '../log.js';
import type { ClusterBackend } from './backend.js';
import { type BurstObservation, BurstPolicy, resolvePersistent, type SideView } from './burst.js';
import { type AdaptiveDecision, type AdaptiveInput, type AdaptiveObservation, AdaptivePolicy, type ResolvedAdaptiveOptions, resolveAdaptiveOptions, type WorkerView } from './policy.js';

export type { ScalingBackend, ScalingDecision, ScalingHistory, ScalingSample, ScalingSideSample };

/**
 * The cluster as the loop reads it each tick: the part of the scheduler's snapshot it
 * needs (the scheduler's own snapshot fits this shape as it is).
 */
export interface ClusterView {
  /** Seconds of work in waiting, no-worker, queued and processing tasks, estimated. */
  readonly expectedRemainingWork: number;
  readonly byState: {
    readonly waiting: number;
    readonly 'no-worker': number;
    readonly queued: number;
    readonly processing: number;
    readonly memory: number;
  };
  readonly workers: readonly {
    /** The scheduler's id for it. */
    readonly worker: string;
    /** The backend's name for it. */
    readonly name: string;
    readonly status: string;
    readonly nthreads: number;
    readonly processing: number;
    readonly nbytes: number;
    readonly memoryLimit: number;
  }[];
  /** Ids of workers being retired. */
  readonly retiring: readonly string[];
}

/** What the loop needs of the scheduler, and nothing more. */
export interface AdaptiveTarget {
  snapshot(): ClusterView;
  /** Whether any client holds a result that lives on a worker (or data waits for one). */
  holdsResults(): boolean;
  /**
   * Retires these workers (by name) gracefully and resolves, once each is gone or kept,
   * with the names of those that left. A worker whose retirement was given up (its data
   * had nowhere to go) stays, and so does what it holds.
   */
  retireWorkers(names: readonly string[]): Promise<readonly string[]>;
}

const HISTORY_LIMIT = 10_000;

/** One backend of the loop, what it decided this tick, and its name in the history (none when it is the only one). */
interface Side {
  readonly backend: ClusterBackend;
  readonly decision: AdaptiveDecision;
  readonly name: ScalingBackend | undefined;
}

export class Adaptive {
  readonly options: ResolvedAdaptiveOptions;
  readonly #policy: AdaptivePolicy;
  readonly #target: AdaptiveTarget;
  readonly #backend: ClusterBackend;
  /** The burst backend and the policy that splits the target, when adapt() was given one. */
  readonly #burst: { readonly backend: ClusterBackend; readonly policy: BurstPolicy } | undefined;
  readonly #log: Log;
  readonly #samples: ScalingSample[] = [];
  readonly #decisions: ScalingDecision[] = [];
  #busy = false;
  #nudged = false;
  #clock: () => number = () => performance.now();
  #last: { target: number; reason: string } | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #retiring = new Set<string>();

  /** `log`: where decisions are told (a pino logger, a function taking lines, or false; default false). */
  constructor(target: AdaptiveTarget, backend: ClusterBackend, options: AdaptiveInput = {}, log: LogSink = false) {
    this.options = resolveAdaptiveOptions(options);
    this.#policy = new AdaptivePolicy(this.options);
    if (options.burst !== undefined) {
      const burst: unknown = options.burst;
      if (typeof burst !== 'object' || burst === null || typeof (burst as ClusterBackend).scaleUp !== 'function' || typeof (burst as ClusterBackend).owns !== 'function') {
        throw new InvalidArgumentError('adapt(): burst must be a cluster backend that says which workers it owns (such as lambdaBackend())');
      }
      this.#burst = { backend: options.burst, policy: new BurstPolicy(this.options, resolvePersistent(options, this.options)) };
    }
    this.#target = target;
    this.#backend = backend;
    this.#log = createLog('adaptive', log);
  }

  /** Starts ticking on a timer that does not keep the process alive. */
  start(clock: () => number = () => performance.now()): void {
    if (this.#timer !== undefined) return;
    this.#clock = clock;
    this.#timer = setInterval(() => void this.tick(clock()), this.options.interval);
    this.#timer.unref();
    void this.tick(clock());
  }

  /** Decides now, out of turn (new work arrived); ignored when the loop is not running. */
  nudge(): void {
    if (this.#timer === undefined || this.#nudged) return;
    this.#nudged = true;
    setImmediate(() => {
      this.#nudged = false;
      void this.tick(this.#clock());
    });
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** The latest target and why; undefined before the first tick. */
  lastTarget(): { target: number; reason: string } | undefined {
    return this.#last;
  }

  history(since = -Infinity): ScalingHistory {
    return {
      samples: this.#samples.filter((s) => s.t > since),
      decisions: this.#decisions.filter((d) => d.t > since),
    };
  }

  /** One round: observe, decide, act. Overlapping rounds are skipped, not queued. */
  async tick(now: number): Promise<AdaptiveDecision | undefined> {
    if (this.#busy) return undefined;
    this.#busy = true;
    try {
      const snapshot = this.#target.snapshot();
      const names = snapshot.workers.map((w) => w.name);
      this.#backend.observe?.(names, now);
      this.#burst?.backend.observe?.(names, now);
      const observation = this.#observe(now, snapshot);
      let decision: AdaptiveDecision;
      let burstDecision: AdaptiveDecision | undefined;
      if (this.#burst === undefined) {
        decision = this.#policy.decide(observation);
        this.#last = { target: decision.target, reason: decision.reason };
      } else {
        const both = this.#burst.policy.decide(this.#split(observation, this.#burst.backend));
        decision = both.persistent;
        burstDecision = both.burst;
        this.#last = { target: both.target, reason: both.reason };
      }
      const counts = snapshot.byState;
      const sides: readonly Side[] =
        this.#burst === undefined
          ? [{ backend: this.#backend, decision, name: undefined }]
          : [
              { backend: this.#backend, decision, name: 'persistent' },
              { backend: this.#burst.backend, decision: burstDecision ?? decision, name: 'burst' },
            ];
      const side = (s: Side): ScalingSideSample => ({ requested: s.backend.requested, running: s.backend.running, closing: s.backend.closing, target: s.decision.target });
      const split = sides.map(side);
      const sum = (pick: (c: ScalingSideSample) => number): number => split.reduce((n, c) => n + pick(c), 0);
      this.#record(this.#samples, {
        t: now,
        requested: sum((c) => c.requested),
        running: sum((c) => c.running),
        closing: sum((c) => c.closing),
        target: this.#last.target,
        queued: counts.queued + counts['no-worker'],
        processing: counts.processing,
        waiting: counts.waiting,
        inMemory: counts.memory,
        // Each backend's share, so the history and the dashboard can tell the pool from the burst.
        ...(split.length === 2 ? { persistent: split[0]!, burst: split[1]! } : {}),
      });
      for (const s of sides) {
        const backend = s.name === undefined ? {} : { backend: s.name };
        for (const f of s.backend.takeFailures?.() ?? []) {
          this.#log.warn('worker failed to start', { worker: f.worker, reason: f.reason, ...backend });
          this.#record(this.#decisions, { op: 'worker-failed', target: this.#last.target, worker: f.worker, reason: f.reason, t: now, ...backend });
        }
      }
      for (const s of sides) {
        if (s.decision.op === 'hold') continue;
        // The burst's reasons keep their 'burst: ' prefix, which the log and older readers know.
        const reason = s.name === 'burst' ? `burst: ${s.decision.reason}` : s.decision.reason;
        this.#record(this.#decisions, { ...s.decision, reason, t: now, ...(s.name === undefined ? {} : { backend: s.name }) });
      }
      await Promise.all([
        this.#act(decision, this.#backend, () => this.#failed('persistent', now)),
        burstDecision === undefined || this.#burst === undefined ? undefined : this.#act(burstDecision, this.#burst.backend, () => this.#failed('burst', now)),
      ]);
      return decision;
    } finally {
      this.#busy = false;
    }
  }

  /** The observation divided between the persistent backend's workers and the burst's. */
  #split(o: AdaptiveObservation, burst: ClusterBackend): BurstObservation {
    const mine = (w: WorkerView): boolean => burst.owns?.(w.name) ?? false;
    const retiringBurst = [...this.#retiring].filter((n) => burst.owns?.(n) ?? false).length;
    const retiringPool = this.#retiring.size - retiringBurst;
    const side = (workers: readonly WorkerView[], backend: ClusterBackend, retiring: number): SideView => ({
      workers,
      requested: Math.max(0, backend.requested - retiring),
      closing: backend.closing + retiring,
    });
    return {
      now: o.now,
      expectedWork: o.expectedWork,
      pendingTasks: o.pendingTasks,
      holdsResults: o.holdsResults,
      threadsPerWorker: o.threadsPerWorker,
      persistent: side(o.workers.filter((w) => !mine(w)), this.#backend, retiringPool),
      burst: side(o.workers.filter(mine), burst, retiringBurst),
    };
  }

  #failed(side: 'persistent' | 'burst', now: number): void {
    if (this.#burst === undefined) this.#policy.failed(now);
    else this.#burst.policy.failed(side, now);
  }

  #observe(now: number, snapshot: ClusterView): AdaptiveObservation {
    const counts = snapshot.byState;
    const workers = snapshot.workers
      .filter((w) => w.status === 'running' && !this.#retiring.has(w.name) && !snapshot.retiring.includes(w.worker))
      .map((w) => ({ name: w.name, nthreads: w.nthreads, idle: w.processing === 0, nbytes: w.nbytes, memoryLimit: w.memoryLimit }));
    return {
      now,
      expectedWork: snapshot.expectedRemainingWork,
      pendingTasks: counts.waiting + counts['no-worker'] + counts.queued + counts.processing,
      holdsResults: this.#target.holdsResults(),
      workers,
      requested: Math.max(0, this.#backend.requested - this.#retiring.size),
      closing: this.#backend.closing + this.#retiring.size,
      threadsPerWorker: this.#backend.threadsPerWorker,
    };
  }

  async #act(decision: AdaptiveDecision, backend: ClusterBackend, failed: () => void): Promise<void> {
    switch (decision.op) {
      case 'hold':
        return;
      case 'scale-up':
        try {
          await backend.scaleUp(decision.target);
          this.#log.info(`scale up to ${decision.target}`, { reason: decision.reason });
        } catch (error) {
          failed();
          this.#log.warn(`scaleUp(${decision.target}) failed, will retry`, { reason: error instanceof Error ? error.message : String(error) });
        }
        return;
      case 'scale-down': {
        const names = decision.workers;
        for (const n of names) this.#retiring.add(n);
        this.#log.info(`retiring ${names.join(', ')}`, { reason: decision.reason });
        // Retirement moves data and takes a while; the loop goes on meanwhile.
        void this.#target
          .retireWorkers(names)
          .then(async (retired) => {
            const kept = names.filter((n) => !retired.includes(n));
            if (kept.length > 0) this.#log.warn(`keeping ${kept.join(', ')}: their retirement was given up, so their data stays with them`);
            // Only the workers that left are stopped; a kept one goes on holding its data.
            if (retired.length > 0) await backend.scaleDown(retired);
          })
          .catch((error: unknown) => {
            this.#log.error(`retiring ${names.join(', ')} failed`, { reason: error instanceof Error ? error.message : String(error) });
          })
          .finally(() => {
            for (const n of names) this.#retiring.delete(n);
          });
        return;
      }
    }
  }

  #record<T>(list: T[], item: T): void {
    list.push(item);
    if (list.length > HISTORY_LIMIT) list.splice(0, list.length - HISTORY_LIMIT);
  }
}
