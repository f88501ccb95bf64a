/**
 * A cluster with no processes: workers that start after a delay, tasks that take the time
 * their spec says, all in virtual time. It drives the real SchedulerState and the real
 * adaptive loop, so scaling decisions can be tested and tuned at the scale of thousands of
 * workers and hundreds of thousands of tasks in seconds.
 *
 * ```ts
 * const sim = new SimulatedCluster({ startupDelay: 1000, adapt: { minimum: 0, maximum: 1000 } });
 * sim.submit(Array.from({ length: 100_000 }, (_, i) => ({ key: `sleep-${i}`, duration: 1000 })));
 * const report = await sim.run();
 * ```
 */
import { InvalidArgumentError } from '../../errors.js';
import type { ClusterBackend } from '../../adaptive/backend.js';
import { Adaptive, type ScalingHistory } from '../../adaptive/loop.js';
import type { AdaptiveInput } from '../../adaptive/policy.js';
import { CLUSTER_SUMMARY, type ClusterSummary, clusterBundle, DISPLAY } from '../../notebook/cards.js';
import { INSPECT, type MimeBundle } from '../../notebook/kernel.js';
import { dependencyKey } from '../../protocol/messages.js';
import type { ComputeTaskCommand, SchedulerCommand, SchedulerEvent } from '../../scheduler/events.js';
import { SchedulerState, type SchedulerStateOptions } from '../../scheduler/state.js';

export interface SimulatedTask {
  readonly key: string;
  readonly dependencies?: readonly string[];
  /** Milliseconds of compute. */
  readonly duration: number;
  /** Bytes of the result (default 8). */
  readonly nbytes?: number;
}

export interface SimulationOptions {
  /** Milliseconds from a scale-up request to the worker joining (default 1,000). */
  readonly startupDelay?: number;
  readonly threadsPerWorker?: number;
  readonly memoryLimit?: number;
  /** Bytes per second between workers (default 100 MB/s). */
  readonly bandwidth?: number;
  /** Workers present from the start (a fixed cluster when `adapt` is absent). */
  readonly workers?: number;
  /** Run the adaptive loop with these options. */
  readonly adapt?: AdaptiveInput;
  /** Scheduler tick (stealing, estimates), milliseconds (default 500). */
  readonly tickInterval?: number;
  readonly state?: SchedulerStateOptions;
}

export interface SimulationReport {
  readonly tasks: number;
  readonly timeToFirstWorker: number;
  readonly timeToFirstResult: number;
  readonly totalTime: number;
  readonly peakWorkers: number;
  /** Integral of running workers over time, from submission until back at the floor. */
  readonly workerSeconds: number;
  /** From the last result until running workers are back at the floor (-1: never). */
  readonly backToMinimum: number;
  /** The floor: minimum, or one worker while a client holds results. */
  readonly floor: number;
  readonly resultsLost: number;
  readonly decisions: number;
  readonly history: ScalingHistory;
}

interface SimWorker {
  readonly id: string;
  readonly name: string;
  readonly ready: ComputeTaskCommand[];
  readonly running: Set<string>;
  readonly data: Map<string, number>;
}

interface Timed {
  readonly t: number;
  readonly seq: number;
  readonly run: () => void | Promise<void>;
}

const CLIENT = 'sim-client';

export class SimulatedCluster implements ClusterBackend {
  readonly state: SchedulerState;
  readonly adaptive: Adaptive | undefined;
  readonly threadsPerWorker: number;
  now = 0;
  readonly #startupDelay: number;
  readonly #memoryLimit: number;
  readonly #bandwidth: number;
  readonly #tickInterval: number;
  readonly #workers = new Map<string, SimWorker>();
  readonly #byName = new Map<string, SimWorker>();
  #starting = 0;
  #closing = 0;
  #nextWorker = 0;
  #seq = 0;
  readonly #timeline: Timed[] = [];
  readonly #specs = new Map<string, SimulatedTask>();
  readonly #wanted: string[] = [];
  /** Per worker being retired: called with whether it left. */
  readonly #retirements = new Map<string, (left: boolean) => void>();
  #resultsSeen = 0;
  #firstResult = -1;
  #lastResult = -1;
  #firstWorker = -1;
  #peak = 0;
  #workerMs = 0;
  #lastSample = 0;

  constructor(options: SimulationOptions = {}) {
    this.#startupDelay = options.startupDelay ?? 1000;
    this.threadsPerWorker = options.threadsPerWorker ?? 1;
    this.#memoryLimit = options.memoryLimit ?? 2 ** 31;
    this.#bandwidth = options.bandwidth ?? 100e6;
    this.#tickInterval = options.tickInterval ?? 500;
    if (!(this.#startupDelay >= 0)) throw new InvalidArgumentError('startupDelay must be a non-negative number of milliseconds');
    this.state = new SchedulerState({ workerTtlMs: Infinity, ...options.state });
    for (let i = 0; i < (options.workers ?? 0); i++) this.#join(this.#newWorker());
    if (options.adapt !== undefined) {
      this.adaptive = new Adaptive(
        {
          snapshot: () => this.state.snapshot(),
          holdsResults: () => this.#wanted.length > 0 && this.state.stateCounts().memory > 0,
          retireWorkers: (names) => this.#retire(names),
        },
        this,
        options.adapt,
      );
    }
  }

  // ClusterBackend -------------------------------------------------------------------------

  get requested(): number {
    return this.#starting + this.#workers.size;
  }

  get running(): number {
    return this.#workers.size;
  }

  get closing(): number {
    return this.#closing;
  }

  scaleUp(n: number): void {
    while (this.requested < n) {
      const worker = this.#newWorker();
      this.#starting++;
      this.#at(this.now + this.#startupDelay, () => {
        this.#starting--;
        this.#join(worker);
      });
    }
  }

  scaleDown(names: readonly string[]): void {
    // Retirement already closed them; stopping what is left is all there is to do.
    for (const name of names) {
      const w = this.#byName.get(name);
      if (w !== undefined) this.#leave(w, 'closed');
    }
  }

  // Driving ---------------------------------------------------------------------------------

  submit(tasks: readonly SimulatedTask[]): void {
    for (const t of tasks) this.#specs.set(t.key, t);
    const keys = tasks.map((t) => t.key);
    this.#wanted.push(...keys);
    this.#send({
      op: 'update-graph',
      client: CLIENT,
      tasks: tasks.map((t, i) => ({ key: t.key, dependencies: t.dependencies ?? [], spec: t.key, priority: i })),
      wanted: keys,
      now: this.now,
    });
  }

  /** Runs `fn` at virtual time `t` (say, to submit more work later). */
  at(t: number, fn: () => void): void {
    this.#at(t, fn);
  }

  /** Runs until every result is in and the cluster has settled, or `limit` ms pass. */
  async run(limit = 3_600_000): Promise<SimulationReport> {
    const start = this.now;
    const interval = this.adaptive?.options.interval ?? 1000;
    const floor = Math.max(this.adaptive?.options.minimum ?? this.#workers.size, this.#wanted.length > 0 ? 1 : 0);
    let settledAt = -1;
    const adaptiveTick = async (): Promise<void> => {
      await this.adaptive?.tick(this.now);
      this.#at(this.now + interval, adaptiveTick);
    };
    const schedulerTick = (): void => {
      this.#send({ op: 'tick', now: this.now });
      this.#at(this.now + this.#tickInterval, schedulerTick);
    };
    if (this.adaptive !== undefined) this.#at(this.now, adaptiveTick);
    this.#at(this.now + this.#tickInterval, schedulerTick);
    while (this.#timeline.length > 0) {
      const next = pop(this.#timeline)!;
      this.#sample(next.t);
      this.now = next.t;
      await next.run();
      const done = this.#resultsSeen >= this.#wanted.length;
      if (done && this.#workers.size <= floor && this.#starting === 0 && settledAt < 0) settledAt = this.now;
      if (done && (settledAt >= 0 || this.adaptive === undefined)) break;
      if (this.now - start > limit) break;
    }
    this.#sample(this.now);
    let lost = 0;
    for (const key of this.#wanted) if (this.state.taskInfo(key)?.state !== 'memory') lost++;
    const history = this.adaptive?.history() ?? { samples: [], decisions: [] };
    return {
      tasks: this.#wanted.length,
      timeToFirstWorker: this.#firstWorker < 0 ? -1 : this.#firstWorker - start,
      timeToFirstResult: this.#firstResult < 0 ? -1 : this.#firstResult - start,
      totalTime: this.#lastResult < 0 ? -1 : this.#lastResult - start,
      peakWorkers: this.#peak,
      workerSeconds: this.#workerMs / 1000,
      backToMinimum: settledAt < 0 ? -1 : Math.max(0, settledAt - this.#lastResult),
      floor,
      resultsLost: lost,
      decisions: history.decisions.length,
      history,
    };
  }

  // How it shows itself: a card, as every cluster (src/notebook/cards.ts) -------------------

  [CLUSTER_SUMMARY](): ClusterSummary {
    const snap = this.state.snapshot();
    const adaptive = this.adaptive?.options;
    return {
      type: 'SimulatedCluster',
      state: 'running',
      address: 'none: a simulation in this process, in virtual time',
      dashboard: undefined,
      workers: snap.workers.map((w) => ({ name: w.name, status: w.status, threads: w.nthreads, memory: w.memory.managed, memoryLimit: w.memoryLimit, processing: w.processing })),
      requested: this.requested,
      adaptive: adaptive === undefined ? undefined : { minimum: adaptive.minimum, maximum: adaptive.maximum },
      details: [
        { label: 'Virtual time', field: 'time', text: `${(this.now / 1000).toFixed(1)} s` },
        { label: 'Results', field: 'results', text: `${Math.min(this.#resultsSeen, this.#wanted.length)} of ${this.#wanted.length}` },
      ],
    };
  }

  /**
   * In a notebook: the card as it is now. It is not kept current, as a real cluster's is:
   * the simulation moves in virtual time, a run at a time; show it again after a run.
   */
  [DISPLAY](): MimeBundle {
    return clusterBundle(this[CLUSTER_SUMMARY]());
  }

  [INSPECT](): string {
    return clusterBundle(this[CLUSTER_SUMMARY]())['text/plain']!;
  }

  // Internals -------------------------------------------------------------------------------

  #newWorker(): SimWorker {
    const n = this.#nextWorker++;
    return { id: `sim://worker-${n}`, name: `worker-${n}`, ready: [], running: new Set(), data: new Map() };
  }

  #join(w: SimWorker): void {
    this.#workers.set(w.id, w);
    this.#byName.set(w.name, w);
    if (this.#firstWorker < 0) this.#firstWorker = this.now;
    this.#peak = Math.max(this.#peak, this.#workers.size);
    this.#send({ op: 'add-worker', worker: w.id, name: w.name, nthreads: this.threadsPerWorker, memoryLimit: this.#memoryLimit, now: this.now });
  }

  #leave(w: SimWorker, reason: 'retired' | 'closed'): void {
    if (!this.#workers.has(w.id)) return;
    this.#workers.delete(w.id);
    this.#byName.delete(w.name);
    this.#send({ op: 'remove-worker', worker: w.id, reason, now: this.now });
  }

  #retire(names: readonly string[]): Promise<readonly string[]> {
    const workers = names.map((n) => this.#byName.get(n)).filter((w): w is SimWorker => w !== undefined);
    const done = workers.map((w) => new Promise<boolean>((resolve) => this.#retirements.set(w.id, resolve)));
    this.#closing += workers.length;
    this.#send({ op: 'retire-workers', workers: workers.map((w) => w.id), now: this.now });
    return Promise.all(done).then((left) => {
      this.#closing -= workers.length;
      return workers.filter((_, i) => left[i]).map((w) => w.name);
    });
  }

  #send(event: SchedulerEvent): void {
    for (const command of this.state.handle(event)) this.#deliver(command);
  }

  #deliver(c: SchedulerCommand): void {
    switch (c.op) {
      case 'compute-task': {
        const w = this.#workers.get(c.worker);
        if (w === undefined) return;
        w.ready.push(c);
        this.#startTasks(w);
        return;
      }
      case 'free-keys': {
        const w = this.#workers.get(c.worker);
        if (w === undefined) return;
        for (const key of c.keys) {
          w.data.delete(key);
          const i = w.ready.findIndex((r) => r.key === key);
          if (i >= 0) w.ready.splice(i, 1);
        }
        return;
      }
      case 'steal-request': {
        const w = this.#workers.get(c.worker);
        const i = w === undefined ? -1 : w.ready.findIndex((r) => r.key === c.key);
        if (w !== undefined && i >= 0) w.ready.splice(i, 1);
        this.#at(this.now, () => this.#send({ op: 'steal-response', worker: c.worker, key: c.key, accepted: i >= 0 }));
        return;
      }
      case 'replicate': {
        const w = this.#workers.get(c.worker);
        if (w === undefined) return;
        const bytes = c.keys.reduce((s, k) => s + (this.#specs.get(k.key)?.nbytes ?? 8), 0);
        this.#at(this.now + (bytes / this.#bandwidth) * 1000, () => {
          if (!this.#workers.has(w.id)) return;
          for (const k of c.keys) w.data.set(k.key, this.#specs.get(k.key)?.nbytes ?? 8);
          this.#send({ op: 'add-keys', worker: w.id, keys: c.keys.map((k) => k.key) });
        });
        return;
      }
      case 'close-worker': {
        const w = this.#workers.get(c.worker);
        if (w !== undefined) this.#leave(w, 'retired');
        this.#retirements.get(c.worker)?.(true);
        this.#retirements.delete(c.worker);
        return;
      }
      case 'retire-aborted':
        this.#retirements.get(c.worker)?.(false);
        this.#retirements.delete(c.worker);
        return;
      case 'key-in-memory':
        this.#resultsSeen++;
        if (this.#firstResult < 0) this.#firstResult = this.now;
        this.#lastResult = this.now;
        return;
      case 'key-erred':
      case 'key-lost':
      case 'key-cancelled':
        return;
    }
  }

  #startTasks(w: SimWorker): void {
    while (w.running.size < this.threadsPerWorker && w.ready.length > 0) {
      const c = w.ready.shift()!;
      const spec = this.#specs.get(c.key);
      let fetchBytes = 0;
      for (const dep of c.dependencies) {
        const key = dependencyKey(dep);
        if (!w.data.has(key)) fetchBytes += this.#specs.get(key)?.nbytes ?? 8;
      }
      const startedAt = this.now;
      const finishAt = this.now + (fetchBytes / this.#bandwidth) * 1000 + (spec?.duration ?? 0);
      w.running.add(c.key);
      this.#send({ op: 'task-started', worker: w.id, key: c.key, startedAt });
      this.#at(finishAt, () => {
        if (!this.#workers.has(w.id) || !w.running.delete(c.key)) return;
        const nbytes = spec?.nbytes ?? 8;
        w.data.set(c.key, nbytes);
        this.#send({ op: 'task-finished', worker: w.id, key: c.key, nbytes, startedAt, finishedAt: this.now, now: this.now });
        this.#startTasks(w);
      });
    }
  }

  #at(t: number, run: () => void | Promise<void>): void {
    push(this.#timeline, { t, seq: this.#seq++, run });
  }

  #sample(t: number): void {
    if (t > this.#lastSample) this.#workerMs += (t - this.#lastSample) * this.#workers.size;
    this.#lastSample = t;
  }
}

function earlier(a: Timed, b: Timed): boolean {
  return a.t < b.t || (a.t === b.t && a.seq < b.seq);
}

function push(heap: Timed[], item: Timed): void {
  let i = heap.push(item) - 1;
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (!earlier(item, heap[p]!)) break;
    heap[i] = heap[p]!;
    i = p;
  }
  heap[i] = item;
}

function pop(heap: Timed[]): Timed | undefined {
  const top = heap[0];
  const last = heap.pop();
  if (top === undefined || last === undefined || heap.length === 0) return top;
  let i = 0;
  for (;;) {
    let c = 2 * i + 1;
    if (c >= heap.length) break;
    if (c + 1 < heap.length && earlier(heap[c + 1]!, heap[c]!)) c++;
    if (!earlier(heap[c]!, last)) break;
    heap[i] = heap[c]!;
    i = c;
  }
  heap[i] = last;
  return top;
}
