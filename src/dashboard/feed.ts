/**
 * The live feed: server-sent events carrying one aggregated update per interval to every
 * connected page. The timer runs only while someone watches, and each tick reads the
 * source once whatever the number of pages, so an unwatched dashboard costs the scheduler
 * nothing and a watched one a snapshot per interval.
 *
 * A page that does not drain its socket is not queued for: while its buffered bytes are
 * over the cap its updates are skipped (the next one sent carries the latest state, plus
 * the newest task-stream entries since what it last got), and after `stallTimeoutMs` of
 * that it is disconnected. Memory per page stays under the cap plus one message.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ScalingDecision, ScalingSample } from '../protocol/scaling.js';
import { emptyStateCounts, type SchedulerSnapshot } from '../scheduler/state.js';
import {
  FEED_VERSION,
  type FeedHello,
  type FeedUpdate,
  type PrefixRow,
  STREAM_FIELDS,
  STREAM_KINDS,
  type StreamChunk,
  type WorkerRow,
} from './feed-protocol.js';
import type { DashboardSource, TaskStreamEntry } from './source.js';

export interface FeedOptions {
  readonly intervalMs: number;
  readonly maxStreamEntries: number;
  readonly streamWindowMs: number;
  readonly workersIntervalMs: number;
  readonly maxPrefixes: number;
  readonly maxWorkerRows: number;
  readonly maxBufferedBytes: number;
  readonly stallTimeoutMs: number;
  readonly maxClients: number;
  readonly keepAliveMs: number;
}

export interface FeedClientStats {
  readonly id: number;
  readonly bufferedBytes: number;
  /** The most bytes ever waiting in its socket's buffer. */
  readonly maxBufferedBytes: number;
  readonly sent: number;
  readonly dropped: number;
}

export interface FeedStats {
  readonly clients: readonly FeedClientStats[];
  /** Pages disconnected for not draining. */
  readonly stalledDisconnects: number;
  readonly ticks: number;
  /** The last error the source threw during a tick (the feed goes on). */
  readonly lastError: unknown;
}

interface Client {
  readonly id: number;
  readonly res: ServerResponse;
  status: 'live' | 'closed';
  streamSince: number;
  scalingSince: number;
  lastBase: string | undefined;
  lastWorkers: string | undefined;
  lastWorkersAt: number;
  lastWriteAt: number;
  congestedSince: number | undefined;
  droppedSinceSend: number;
  dropped: number;
  sent: number;
  maxBuffered: number;
}

/** Initial backlog of the cluster-size history sent to a new page. */
const INITIAL_SAMPLES = 3600;
const MAX_DECISIONS = 200;

interface Delta {
  readonly json: string;
  readonly cursor: number;
  readonly empty: boolean;
}

export class LiveFeed {
  readonly #source: DashboardSource;
  readonly #o: FeedOptions;
  readonly #clients = new Set<Client>();
  #timer: NodeJS.Timeout | undefined;
  #nextId = 1;
  #seq = 0;
  #ticks = 0;
  #stalled = 0;
  #lastError: unknown = undefined;
  #prevBase: string | undefined;
  #prevWorkers: string | undefined;
  #status: 'running' | 'closed' = 'running';

  constructor(source: DashboardSource, options: FeedOptions) {
    this.#source = source;
    this.#o = options;
  }

  get clientCount(): number {
    return this.#clients.size;
  }

  /** Takes over a `GET /api/v1/events` response. */
  attach(req: IncomingMessage, res: ServerResponse): void {
    if (this.#status !== 'running' || this.#clients.size >= this.#o.maxClients) {
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '5' });
      res.end(`too many live dashboard connections (at most ${this.#o.maxClients})\n`);
      return;
    }
    const now = performance.now();
    const client: Client = {
      id: this.#nextId++,
      res,
      status: 'live',
      streamSince: -Infinity,
      scalingSince: -Infinity,
      lastBase: undefined,
      lastWorkers: undefined,
      lastWorkersAt: -Infinity,
      lastWriteAt: now,
      congestedSince: undefined,
      droppedSinceSend: 0,
      dropped: 0,
      sent: 0,
      maxBuffered: 0,
    };
    this.#clients.add(client);
    const drop = (): void => this.#drop(client);
    req.on('close', drop);
    res.on('close', drop);
    res.on('error', drop);
    req.socket.setNoDelay(true);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    });
    const hello: FeedHello = {
      op: 'hello',
      version: FEED_VERSION,
      intervalMs: this.#o.intervalMs,
      adaptive: this.#source.scaling(Infinity) !== undefined,
      streamWindowMs: this.#o.streamWindowMs,
    };
    // The first update follows on the next tick, which keeps the rate bound without a special case.
    res.write(`retry: 2000\n\ndata: ${JSON.stringify(hello)}\n\n`);
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.tick(), this.#o.intervalMs);
      this.#timer.unref();
    }
  }

  stats(): FeedStats {
    return {
      clients: [...this.#clients].map((c) => ({
        id: c.id,
        bufferedBytes: c.res.writableLength,
        maxBufferedBytes: c.maxBuffered,
        sent: c.sent,
        dropped: c.dropped,
      })),
      stalledDisconnects: this.#stalled,
      ticks: this.#ticks,
      lastError: this.#lastError,
    };
  }

  /** One round: read the source once, send each page what it has not seen. Public for tests. */
  tick(): void {
    if (this.#clients.size === 0) return;
    this.#ticks++;
    try {
      this.#broadcast();
    } catch (error) {
      // A source that throws must not take the scheduler down; pages keep their last state.
      this.#lastError = error;
    }
  }

  /** Ends every page's stream and stops the timer. Idempotent. */
  close(): void {
    if (this.#status === 'closed') return;
    this.#status = 'closed';
    this.#stopTimer();
    for (const c of [...this.#clients]) {
      this.#drop(c);
      try {
        c.res.end();
      } catch {
        // Already torn down; nothing else to release.
      }
    }
  }

  #broadcast(): void {
    const o = this.#o;
    const source = this.#source;
    const wallNow = performance.now();
    const snap = source.snapshot();
    const clock = source.clock?.() ?? snap.now;

    const baseText = JSON.stringify(this.#base(snap, clock));
    // Reusing the previous string when nothing changed lets clients compare by identity.
    const base = baseText === this.#prevBase ? this.#prevBase : baseText;
    this.#prevBase = base;
    let workers: string | undefined;
    const workersText = (): string => {
      if (workers === undefined) {
        const t = JSON.stringify(workerRows(snap, o.maxWorkerRows));
        workers = t === this.#prevWorkers ? this.#prevWorkers : t;
        this.#prevWorkers = workers;
      }
      return workers;
    };

    const streamDeltas = new Map<number, Delta>();
    const scalingDeltas = new Map<number, Delta>();
    for (const c of [...this.#clients]) {
      if (c.status !== 'live') continue;
      const buffered = c.res.writableLength;
      if (buffered > c.maxBuffered) c.maxBuffered = buffered;
      if (buffered > o.maxBufferedBytes) {
        c.droppedSinceSend++;
        c.dropped++;
        c.congestedSince ??= wallNow;
        if (wallNow - c.congestedSince >= o.stallTimeoutMs) {
          this.#stalled++;
          this.#drop(c);
          c.res.destroy();
        }
        continue;
      }
      c.congestedSince = undefined;

      const streamFrom = c.streamSince === -Infinity ? clock - o.streamWindowMs : c.streamSince;
      let stream = streamDeltas.get(streamFrom);
      if (stream === undefined) {
        stream = this.#streamDelta(streamFrom);
        streamDeltas.set(streamFrom, stream);
      }
      let scaling = scalingDeltas.get(c.scalingSince);
      if (scaling === undefined) {
        scaling = this.#scalingDelta(c.scalingSince);
        scalingDeltas.set(c.scalingSince, scaling);
      }
      // Half an interval of slack: a tick a millisecond early must not put the list off a whole interval.
      const workersDue = c.lastWorkers === undefined || wallNow - c.lastWorkersAt >= o.workersIntervalMs - o.intervalMs / 2;
      const w = workersDue ? workersText() : undefined;
      const sendWorkers = w !== undefined && w !== c.lastWorkers;
      if (base === c.lastBase && stream.empty && scaling.empty && !sendWorkers) {
        if (wallNow - c.lastWriteAt >= o.keepAliveMs) this.#write(c, ': keepalive\n\n', wallNow);
        continue;
      }
      const seq = ++this.#seq;
      const message =
        `data: {"op":"update","seq":${seq},"dropped":${c.droppedSinceSend},${base.slice(1, -1)}` +
        `${sendWorkers ? `,"workers":${w}` : ''},${scaling.json},${stream.json}}\n\n`;
      this.#write(c, message, wallNow);
      c.sent++;
      c.droppedSinceSend = 0;
      c.lastBase = base;
      c.streamSince = stream.cursor;
      c.scalingSince = scaling.cursor;
      if (sendWorkers) {
        c.lastWorkers = w;
        c.lastWorkersAt = wallNow;
      }
    }
  }

  #write(c: Client, text: string, wallNow: number): void {
    c.lastWriteAt = wallNow;
    c.res.write(text);
  }

  #base(
    snap: SchedulerSnapshot,
    clock: number,
  ): Omit<FeedUpdate, 'op' | 'seq' | 'dropped' | 'workers' | 'samples' | 'decisions' | 'stream' | 'streamCapped'> {
    const source = this.#source;
    const { rows, omitted } = prefixRows(snap, source.prefixTotals?.(), this.#o.maxPrefixes);
    return {
      now: clock,
      tasks: snap.tasks,
      byState: snap.byState,
      totalThreads: snap.totalThreads,
      clients: snap.clients,
      expectedRemainingWork: snap.expectedRemainingWork,
      workerCount: snap.workers.length,
      prefixes: rows,
      prefixesOmitted: omitted,
      target: source.adaptiveTarget() ?? null,
      counters: source.counters(),
    };
  }

  #streamDelta(since: number): Delta {
    const limit = this.#o.maxStreamEntries;
    const all = this.#source.taskStream(since);
    let cursor = since;
    for (const e of all) if (e.stop > cursor) cursor = e.stop;
    // Over the cap, an even sample across the interval rather than its newest part: the
    // page then shows every thread busy for the whole interval, not in bursts.
    const entries = all.length <= limit ? all : evenSample(all, limit);
    const chunk: Pick<FeedUpdate, 'stream' | 'streamCapped'> = { stream: encodeStream(entries), streamCapped: all.length > limit };
    const json = JSON.stringify(chunk);
    return { json: json.slice(1, -1), cursor, empty: entries.length === 0 };
  }

  #scalingDelta(since: number): Delta {
    const h = this.#source.scaling(since);
    let samples: readonly ScalingSample[] = h?.samples ?? [];
    let decisions: readonly ScalingDecision[] = h?.decisions ?? [];
    if (samples.length > INITIAL_SAMPLES) samples = samples.slice(-INITIAL_SAMPLES);
    if (decisions.length > MAX_DECISIONS) decisions = decisions.slice(-MAX_DECISIONS);
    let cursor = since;
    for (const s of samples) if (s.t > cursor) cursor = s.t;
    for (const d of decisions) if (d.t > cursor) cursor = d.t;
    const part: Pick<FeedUpdate, 'samples' | 'decisions'> = { samples, decisions };
    return { json: JSON.stringify(part).slice(1, -1), cursor, empty: samples.length === 0 && decisions.length === 0 };
  }

  #drop(c: Client): void {
    if (c.status === 'closed') return;
    c.status = 'closed';
    this.#clients.delete(c);
    if (this.#clients.size === 0) this.#stopTimer();
  }

  #stopTimer(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

const round = (x: number): number => Math.round(x * 10) / 10;

function encodeStream(entries: readonly TaskStreamEntry[]): StreamChunk {
  const prefixes: string[] = [];
  const workers: string[] = [];
  const pIndex = new Map<string, number>();
  const wIndex = new Map<string, number>();
  const rows = new Array<number>(entries.length * STREAM_FIELDS);
  const keys = new Array<string>(entries.length);
  let i = 0;
  for (let n = 0; n < entries.length; n++) {
    const e = entries[n] as TaskStreamEntry;
    let p = pIndex.get(e.prefix);
    if (p === undefined) {
      p = prefixes.push(e.prefix) - 1;
      pIndex.set(e.prefix, p);
    }
    let w = wIndex.get(e.worker);
    if (w === undefined) {
      w = workers.push(e.worker) - 1;
      wIndex.set(e.worker, w);
    }
    rows[i++] = p;
    rows[i++] = w;
    rows[i++] = e.thread;
    rows[i++] = round(e.start);
    rows[i++] = round(e.stop);
    rows[i++] = STREAM_KINDS.indexOf(e.kind);
    keys[n] = e.key;
  }
  return { prefixes, workers, rows, keys };
}

/** `n` of `xs`, evenly spaced, in order (the last always among them). */
export function evenSample<T>(xs: readonly T[], n: number): T[] {
  const out = new Array<T>(n);
  for (let i = 0; i < n; i++) out[i] = xs[Math.floor(((i + 1) * xs.length) / n) - 1] as T;
  return out;
}

export function workerRows(snap: SchedulerSnapshot, limit: number): WorkerRow[] {
  const out: WorkerRow[] = [];
  for (const ws of snap.workers) {
    if (out.length >= limit) break;
    out.push([
      ws.worker,
      ws.name,
      ws.status,
      ws.nthreads,
      ws.processing,
      ws.inMemory,
      ws.nbytes,
      ws.memoryLimit,
      ws.memory.managed,
      ws.memory.spilled,
      ws.memory.process,
      round(ws.lastSeen),
      round(ws.occupancy * 1000) / 1000,
    ]);
  }
  return out;
}

const NO_COUNTS = emptyStateCounts();

/**
 * Per-prefix progress, the most active first: prefixes with work left, then the largest.
 * Prefixes only the totals know (every task forgotten) are done ones.
 */
export function prefixRows(
  snap: SchedulerSnapshot,
  totals: ReadonlyMap<string, { readonly finished: number; readonly erred: number }> | undefined,
  limit: number,
): { rows: PrefixRow[]; omitted: number } {
  const rows: PrefixRow[] = [];
  const seen = new Set<string>();
  for (const p of snap.prefixes) {
    seen.add(p.prefix);
    const t = totals?.get(p.prefix);
    rows.push({ prefix: p.prefix, counts: p.counts, finished: t?.finished ?? -1, erred: t?.erred ?? -1 });
  }
  if (totals !== undefined) {
    for (const [prefix, t] of totals) {
      if (!seen.has(prefix)) rows.push({ prefix, counts: NO_COUNTS, finished: t.finished, erred: t.erred });
    }
  }
  if (rows.length <= limit) return { rows, omitted: 0 };
  const left = (r: PrefixRow): number => r.counts.waiting + r.counts['no-worker'] + r.counts.queued + r.counts.processing;
  const size = (r: PrefixRow): number => Math.max(r.finished, 0) + left(r) + r.counts.memory + r.counts.erred;
  rows.sort((a, b) => left(b) - left(a) || size(b) - size(a));
  return { rows: rows.slice(0, limit), omitted: rows.length - limit };
}
