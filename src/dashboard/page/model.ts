/**
 * What the page knows: the latest summary, the cluster-size series and the task stream
 * of the last window, folded from the live feed's messages. Views read it; only `apply`
 * writes it.
 */
import type { ScalingDecision } from '../../protocol/scaling.js';
import type { StateCounts } from '../../scheduler/state.js';
import { type FeedHello, type FeedMessage, type FeedUpdate, type PrefixRow, STREAM_FIELDS, WORKER_FIELD, type WorkerRow } from '../feed-protocol.js';

/** Points of the cluster-size chart kept (an hour at one per second). */
const MAX_POINTS = 3600;
const MAX_DECISIONS = 200;

export interface Series {
  /** Seconds on the scheduler's clock. */
  readonly x: number[];
  readonly requested: (number | null)[];
  readonly running: (number | null)[];
  readonly closing: (number | null)[];
  readonly target: (number | null)[];
  readonly queued: (number | null)[];
  readonly processing: (number | null)[];
  /** With a burst backend, the running workers of the persistent pool and of the burst (null otherwise). */
  readonly persistentRunning: (number | null)[];
  readonly burstRunning: (number | null)[];
}

const emptySeries = (): Series => ({ x: [], requested: [], running: [], closing: [], target: [], queued: [], processing: [], persistentRunning: [], burstRunning: [] });

/**
 * The task stream of the last window, in columns (typed arrays) so 100,000 entries cost
 * a few megabytes and no garbage per update.
 */
export class StreamStore {
  readonly capacity: number;
  readonly prefix: Int32Array;
  readonly lane: Int32Array;
  readonly start: Float64Array;
  readonly stop: Float64Array;
  readonly kind: Uint8Array;
  /** Each entry's key ('' when the feed sent none), shown on hover. */
  readonly key: string[];
  head = 0;
  size = 0;
  /** Entries ever received (a bar for each was drawn, or will be). */
  received = 0;
  /** Bumped whenever prefix ids are renumbered (clear, compaction), so views drop caches keyed by id. */
  epoch = 0;
  readonly prefixNames: string[] = [];
  readonly #prefixIds = new Map<string, number>();
  /** Lanes: one per worker thread. */
  readonly laneWorker: string[] = [];
  readonly laneThread: number[] = [];
  /** Latest stop per lane and per prefix, so views find what the window shows without a pass over it. */
  readonly laneLastStop: number[] = [];
  readonly prefixLastStop: number[] = [];
  readonly #laneIds = new Map<string, number>();

  constructor(capacity: number) {
    this.capacity = capacity;
    this.prefix = new Int32Array(capacity);
    this.lane = new Int32Array(capacity);
    this.start = new Float64Array(capacity);
    this.stop = new Float64Array(capacity);
    this.kind = new Uint8Array(capacity);
    this.key = new Array<string>(capacity).fill('');
  }

  /** Physical index of the i-th oldest entry. */
  at(i: number): number {
    return (this.head + i) % this.capacity;
  }

  add(chunk: FeedUpdate['stream']): void {
    const prefixIds = chunk.prefixes.map((p) => this.#prefixId(p));
    const rows = chunk.rows;
    const keys = chunk.keys;
    for (let r = 0, n = 0; r + STREAM_FIELDS <= rows.length; r += STREAM_FIELDS, n++) {
      const worker = chunk.workers[rows[r + 1] as number] ?? '?';
      let i: number;
      if (this.size === this.capacity) {
        i = this.head;
        this.head = (this.head + 1) % this.capacity;
      } else {
        i = this.at(this.size);
        this.size++;
      }
      const prefix = prefixIds[rows[r] as number] ?? 0;
      const lane = this.#laneId(worker, rows[r + 2] as number);
      const stop = rows[r + 4] as number;
      this.prefix[i] = prefix;
      this.lane[i] = lane;
      this.start[i] = rows[r + 3] as number;
      this.stop[i] = stop;
      this.kind[i] = rows[r + 5] as number;
      this.key[i] = keys[n] ?? '';
      if (stop > (this.laneLastStop[lane] as number)) this.laneLastStop[lane] = stop;
      if (stop > (this.prefixLastStop[prefix] as number)) this.prefixLastStop[prefix] = stop;
      this.received++;
    }
  }

  /** Drops entries that ended before `t` (entries arrive roughly in order of stop). */
  expire(t: number): void {
    while (this.size > 0 && (this.stop[this.head] as number) < t) {
      this.head = (this.head + 1) % this.capacity;
      this.size--;
    }
    // Worker churn would grow the lane and prefix tables forever; rebuild them when large.
    if (this.laneWorker.length > 20_000 || this.prefixNames.length > 5_000) this.#compact();
  }

  clear(): void {
    this.head = 0;
    this.size = 0;
    this.#clearTables();
  }

  /** Empties the prefix and lane tables; ids given out before mean nothing now. */
  #clearTables(): void {
    this.epoch++;
    this.prefixNames.length = 0;
    this.prefixLastStop.length = 0;
    this.#prefixIds.clear();
    this.laneWorker.length = 0;
    this.laneThread.length = 0;
    this.laneLastStop.length = 0;
    this.#laneIds.clear();
  }

  #prefixId(p: string): number {
    let id = this.#prefixIds.get(p);
    if (id === undefined) {
      id = this.prefixNames.push(p) - 1;
      this.prefixLastStop.push(Number.NEGATIVE_INFINITY);
      this.#prefixIds.set(p, id);
    }
    return id;
  }

  #laneId(worker: string, thread: number): number {
    const key = `${worker}\u0000${thread}`;
    let id = this.#laneIds.get(key);
    if (id === undefined) {
      id = this.laneWorker.push(worker) - 1;
      this.laneThread.push(thread);
      this.laneLastStop.push(Number.NEGATIVE_INFINITY);
      this.#laneIds.set(key, id);
    }
    return id;
  }

  #compact(): void {
    const prefixNames = [...this.prefixNames];
    const laneWorker = [...this.laneWorker];
    const laneThread = [...this.laneThread];
    this.#clearTables();
    for (let k = 0; k < this.size; k++) {
      const i = this.at(k);
      const p = this.#prefixId(prefixNames[this.prefix[i] as number] ?? '?');
      const l = this.lane[i] as number;
      const lane = this.#laneId(laneWorker[l] ?? '?', laneThread[l] ?? 0);
      const stop = this.stop[i] as number;
      this.prefix[i] = p;
      this.lane[i] = lane;
      if (stop > (this.laneLastStop[lane] as number)) this.laneLastStop[lane] = stop;
      if (stop > (this.prefixLastStop[p] as number)) this.prefixLastStop[p] = stop;
    }
  }
}

export class DashboardModel {
  hello: FeedHello | undefined;
  /**
   * Whether the cluster adapts: as the hello said, or since an update brought the adaptive
   * loop's samples, decisions or target (a cluster told to adapt after the page opened).
   */
  adaptive = false;
  now = 0;
  tasks = 0;
  byState: StateCounts | undefined;
  totalThreads = 0;
  workerCount = 0;
  workers: readonly WorkerRow[] = [];
  /** Bumped when `workers` is replaced, so views redo their work only then. */
  workersVersion = 0;
  prefixes: readonly PrefixRow[] = [];
  prefixesOmitted = 0;
  series: Series = emptySeries();
  decisions: ScalingDecision[] = [];
  target: FeedUpdate['target'] = null;
  counters: FeedUpdate['counters'] | undefined;
  readonly stream = new StreamStore(100_000);
  updates = 0;
  dropped = 0;
  streamCapped = 0;
  /** Highest running-worker count seen, for the page's own summary and tests. */
  maxRunning = 0;
  /** Whether the loop's samples divide the cluster between a persistent pool and a burst backend. */
  bursts = false;
  /** Highest count of burst workers running seen. */
  maxBurstRunning = 0;

  apply(msg: FeedMessage): void {
    switch (msg.op) {
      case 'hello':
        // A new connection sends the whole state again: start over rather than duplicate.
        this.hello = msg;
        this.adaptive = msg.adaptive;
        this.series = emptySeries();
        this.bursts = false;
        this.decisions = [];
        this.stream.clear();
        this.workers = [];
        this.workersVersion++;
        return;
      case 'update':
        this.#update(msg);
        return;
    }
  }

  #update(u: FeedUpdate): void {
    this.updates++;
    this.dropped += u.dropped;
    if (u.streamCapped) this.streamCapped++;
    this.now = u.now;
    this.tasks = u.tasks;
    this.byState = u.byState;
    this.totalThreads = u.totalThreads;
    this.workerCount = u.workerCount;
    if (u.workers !== undefined) {
      this.workers = u.workers;
      this.workersVersion++;
    }
    this.prefixes = u.prefixes;
    this.prefixesOmitted = u.prefixesOmitted;
    this.target = u.target;
    this.counters = u.counters;
    if (!this.adaptive && (u.samples.length > 0 || u.decisions.length > 0 || u.target !== null)) {
      // From now on the loop's history is the chart; the page's own samples would mix with it.
      this.adaptive = true;
      this.series = emptySeries();
    }
    const s = this.series;
    if (this.adaptive) {
      for (const p of u.samples) {
        push(s, p.t / 1000, p.requested, p.running, p.closing, p.target, p.queued, p.processing, p.persistent?.running ?? null, p.burst?.running ?? null);
        this.maxRunning = Math.max(this.maxRunning, p.running);
        if (p.burst !== undefined) {
          this.bursts = true;
          this.maxBurstRunning = Math.max(this.maxBurstRunning, p.burst.running);
        }
      }
    } else {
      // Without the adaptive loop's history, the page samples the cluster itself.
      let closing = 0;
      for (const w of this.workers) if (w[WORKER_FIELD.status] === 'closing') closing++;
      const c = u.byState;
      push(s, u.now / 1000, null, u.workerCount, closing, null, c.queued + c['no-worker'], c.processing);
      this.maxRunning = Math.max(this.maxRunning, u.workerCount);
    }
    for (const d of u.decisions) this.decisions.push(d);
    if (this.decisions.length > MAX_DECISIONS) this.decisions.splice(0, this.decisions.length - MAX_DECISIONS);
    this.stream.add(u.stream);
    this.stream.expire(u.now - (this.hello?.streamWindowMs ?? 30_000));
  }
}

function push(s: Series, x: number, ...values: (number | null)[]): void {
  const last = s.x[s.x.length - 1];
  // Keep x increasing: uPlot requires it, and a late duplicate adds nothing.
  if (last !== undefined && x <= last) return;
  s.x.push(x);
  const cols = [s.requested, s.running, s.closing, s.target, s.queued, s.processing, s.persistentRunning, s.burstRunning];
  for (let i = 0; i < cols.length; i++) (cols[i] as (number | null)[]).push(values[i] ?? null);
  if (s.x.length > MAX_POINTS) {
    const n = s.x.length - MAX_POINTS;
    s.x.splice(0, n);
    for (const c of cols) c.splice(0, n);
  }
}
