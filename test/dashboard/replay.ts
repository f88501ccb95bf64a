/**
 * Sources for the page tests. `recordSimulation` runs the real scheduler core and
 * adaptive loop (SimulatedCluster) in virtual time and records what a dashboard would
 * read; `ReplaySource` plays the recording back on a real-time clock, sped up, so a
 * browser sees a cluster grow, work and shrink in a few seconds. `LargeSource`
 * synthesises 1,000 workers and 100,000 tasks.
 */
import type { ScalingHistory } from '../../src/adaptive/loop.js';
import { SimulatedCluster, type SimulatedTask } from '../../src/deploy/simulated/cluster.js';
import type { AdaptiveTargetInfo, DashboardCounters, DashboardSource, PrefixTotals, TaskStreamEntry } from '../../src/dashboard/source.js';
import { TaskStreamBuffer } from '../../src/dashboard/task-stream.js';
import type { SchedulerEvent } from '../../src/scheduler/events.js';
import type { SchedulerSnapshot, StateCounts, WorkerSnapshot } from '../../src/scheduler/state.js';

export interface Recording {
  readonly frames: readonly SchedulerSnapshot[];
  readonly history: ScalingHistory;
  /** Sorted by stop. */
  readonly stream: readonly TaskStreamEntry[];
  readonly end: number;
}

/** The adaptive demo: a burst of one-second tasks, then a reduction over them. */
export function demoWorkload(): SimulatedTask[] {
  const sleeps = Array.from({ length: 240 }, (_, i) => ({ key: `sleep-${i}`, duration: 1000, nbytes: 5e6 }));
  const sums = Array.from({ length: 30 }, (_, i) => ({
    key: `sum-${i}`,
    duration: 300,
    dependencies: Array.from({ length: 8 }, (_, j) => `sleep-${i * 8 + j}`),
  }));
  return [...sleeps, ...sums];
}

export async function recordSimulation(frameEveryMs = 100): Promise<Recording> {
  const sim = new SimulatedCluster({
    startupDelay: 500,
    threadsPerWorker: 2,
    memoryLimit: 2e9,
    adapt: { minimum: 0, maximum: 16, targetDuration: '4s', interval: '1s', waitCount: 3 },
  });
  const stream = new TaskStreamBuffer({ capacity: 100_000 });
  const handle = sim.state.handle.bind(sim.state);
  sim.state.handle = (event: SchedulerEvent) => {
    if (event.op === 'task-finished') {
      const prefix = sim.state.taskInfo(event.key)?.prefix ?? event.key;
      const deps = sim.state.taskInfo(event.key)?.dependencies.length ?? 0;
      // The simulation does not report transfers; a reduction fetches its inputs first.
      if (deps > 0) stream.record({ key: event.key, prefix, worker: event.worker, start: event.startedAt, stop: event.startedAt + 60, kind: 'transfer' });
      stream.record({ key: event.key, prefix, worker: event.worker, start: event.startedAt + (deps > 0 ? 60 : 0), stop: event.finishedAt, kind: 'compute' });
    }
    if (event.op === 'remove-worker') stream.forgetWorker(event.worker);
    return handle(event);
  };
  const frames: SchedulerSnapshot[] = [];
  const frame = (): void => {
    frames.push(sim.state.snapshot());
    sim.at(sim.now + frameEveryMs, frame);
  };
  sim.at(0, frame);
  sim.submit(demoWorkload());
  const report = await sim.run(120_000);
  frames.push({ ...sim.state.snapshot(), now: sim.now });
  return { frames, history: report.history, stream: stream.since(-Infinity), end: sim.now };
}

export class ReplaySource implements DashboardSource {
  readonly #rec: Recording;
  readonly #speed: number;
  /** When the replay started playing; until start(), it shows its first moment. */
  #t0: number | undefined;

  constructor(recording: Recording, speed: number, options: { readonly paused?: boolean } = {}) {
    this.#rec = recording;
    this.#speed = speed;
    if (options.paused !== true) this.start();
  }

  /** Real milliseconds the replay lasts. */
  get durationMs(): number {
    return this.#rec.end / this.#speed;
  }

  /** Starts playing (at once, unless `paused`): a page that took long to open misses nothing. */
  start(): void {
    this.#t0 = performance.now();
  }

  clock(): number {
    if (this.#t0 === undefined) return 0;
    return Math.min(this.#rec.end, (performance.now() - this.#t0) * this.#speed);
  }

  snapshot(): SchedulerSnapshot {
    const now = this.clock();
    const frames = this.#rec.frames;
    let lo = 0;
    let hi = frames.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((frames[mid] as SchedulerSnapshot).now <= now) lo = mid;
      else hi = mid - 1;
    }
    return frames[lo] as SchedulerSnapshot;
  }

  scaling(since = -Infinity): ScalingHistory {
    const now = this.clock();
    return {
      samples: this.#rec.history.samples.filter((s) => s.t > since && s.t <= now),
      decisions: this.#rec.history.decisions.filter((d) => d.t > since && d.t <= now),
    };
  }

  adaptiveTarget(): AdaptiveTargetInfo | undefined {
    const { samples, decisions } = this.scaling();
    const last = samples[samples.length - 1];
    if (last === undefined) return undefined;
    return { target: last.target, reason: decisions[decisions.length - 1]?.reason ?? 'no decision yet' };
  }

  taskStream(since: number, limit = Infinity): readonly TaskStreamEntry[] {
    const now = this.clock();
    const out = this.#rec.stream.filter((e) => e.stop > since && e.stop <= now);
    return out.length > limit ? out.slice(-limit) : out;
  }

  prefixTotals(): ReadonlyMap<string, PrefixTotals> {
    const now = this.clock();
    const totals = new Map<string, { finished: number; erred: number }>();
    for (const e of this.#rec.stream) {
      if (e.stop > now || e.kind === 'transfer') continue;
      const t = totals.get(e.prefix) ?? { finished: 0, erred: 0 };
      if (e.kind === 'compute') t.finished++;
      else t.erred++;
      totals.set(e.prefix, t);
    }
    return totals;
  }

  counters(): DashboardCounters {
    const now = this.clock();
    let finished = 0;
    let seconds = 0;
    let transfers = 0;
    for (const e of this.#rec.stream) {
      if (e.stop > now) continue;
      if (e.kind === 'transfer') transfers++;
      else {
        finished++;
        seconds += (e.stop - e.start) / 1000;
      }
    }
    return {
      transfersTotal: transfers,
      transferBytesTotal: transfers * 5e6,
      tasksFinishedTotal: finished,
      tasksErredTotal: 0,
      taskDurationSecondsSum: seconds,
      taskDurationCount: finished,
      bytesSpilled: 0,
    };
  }
}

const zero = (): StateCounts => ({ released: 0, waiting: 0, 'no-worker': 0, queued: 0, processing: 0, memory: 0, erred: 0 });

/**
 * 1,000 workers of 4 threads working through 100,000 tasks of 20 prefixes: every read
 * advances the work, every worker reports, and the stream has far more entries than
 * one message carries.
 */
export class LargeSource implements DashboardSource {
  readonly workers = 1000;
  readonly threads = 4;
  readonly total = 100_000;
  readonly #t0 = performance.now();
  readonly #stream = new TaskStreamBuffer({ capacity: 100_000 });
  #done = 0;
  #last = 0;

  clock(): number {
    return performance.now() - this.#t0;
  }

  #advance(): void {
    const now = this.clock();
    if (now - this.#last < 50) return;
    // About 10,000 tasks a second across the cluster.
    const n = Math.min(this.total - this.#done, Math.floor((now - this.#last) * 10));
    for (let i = 0; i < n; i++) {
      const k = this.#done + i;
      const w = k % this.workers;
      const stop = this.#last + ((i + 1) * (now - this.#last)) / n;
      this.#stream.record({
        key: `p${k % 20}-${k}`,
        prefix: `prefix-${k % 20}`,
        worker: `tcp://10.0.${w >> 8}.${w & 255}:9000`,
        thread: (k >> 10) % this.threads,
        start: stop - 150 - (k % 7) * 40,
        stop,
        kind: k % 97 === 0 ? 'transfer' : k % 1013 === 0 ? 'error' : 'compute',
      });
    }
    this.#done += n;
    this.#last = now;
  }

  snapshot(): SchedulerSnapshot {
    this.#advance();
    const now = this.clock();
    const per = this.total / 20;
    const doneEach = Math.floor(this.#done / 20);
    const prefixes = Array.from({ length: 20 }, (_, p) => {
      const c = zero();
      c.memory = Math.min(doneEach, 50);
      c.released = Math.max(0, doneEach - 50);
      c.processing = Math.min(per - doneEach, 200);
      c.waiting = Math.max(0, per - doneEach - 200);
      return { prefix: `prefix-${p}`, duration: 0.3, measured: true, counts: c };
    });
    const byState = zero();
    for (const p of prefixes) for (const k of Object.keys(byState) as (keyof StateCounts)[]) byState[k] += p.counts[k];
    const workers: WorkerSnapshot[] = Array.from({ length: this.workers }, (_, w) => ({
      worker: `tcp://10.0.${w >> 8}.${w & 255}:9000`,
      name: `worker-${w}`,
      status: w % 50 === 0 ? 'closing' : 'running',
      nthreads: this.threads,
      memoryLimit: 8e9,
      processing: (w * 7 + Math.floor(now / 100)) % 5,
      inMemory: 100 + (w % 13),
      nbytes: ((w * 7919) % 1000) * 5e6 + (now % 1000) * 1e3,
      occupancy: (w % 9) * 0.3,
      memory: { managed: ((w * 7919) % 1000) * 5e6, spilled: w % 10 === 0 ? 1e8 : 0, process: 1e9 + ((w * 31) % 100) * 3e7 },
      lastSeen: now - (w % 20) * 50,
    }));
    return {
      now,
      tasks: this.total,
      byState,
      workers,
      prefixes,
      totalThreads: this.workers * this.threads,
      stealsInFlight: 0,
      retiring: [],
      clients: 1,
      expectedRemainingWork: 100,
    };
  }

  scaling(): ScalingHistory | undefined {
    return undefined;
  }

  adaptiveTarget(): AdaptiveTargetInfo | undefined {
    return undefined;
  }

  taskStream(since: number, limit?: number): readonly TaskStreamEntry[] {
    this.#advance();
    return this.#stream.since(since, limit);
  }

  prefixTotals(): ReadonlyMap<string, PrefixTotals> {
    return this.#stream.prefixTotals();
  }

  counters(): DashboardCounters {
    return {
      transfersTotal: 0,
      transferBytesTotal: 0,
      tasksFinishedTotal: this.#done,
      tasksErredTotal: 0,
      taskDurationSecondsSum: this.#done * 0.3,
      taskDurationCount: this.#done,
      bytesSpilled: 1e10,
    };
  }
}
