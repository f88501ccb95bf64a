/**
 * How a cluster summarises itself for its card (and its client's card), so that all
 * clusters display alike (src/notebook/cards.ts): from its scheduler, when that runs in
 * this process (schedulerClusterSummary, watchSchedulerWorkers), or from the dashboard
 * API of a scheduler elsewhere (RemoteSchedulerView).
 */
import type { ResourceState } from '../lifecycle.js';
import { linkWithToken } from '../notebook/html.js';
import type { ClusterDetail, ClusterSummary, WorkerSummary } from '../notebook/cards.js';
import type { Scheduler } from '../process/scheduler.js';

export function schedulerClusterSummary(
  type: string,
  state: ResourceState,
  scheduler: Scheduler,
  token: string | undefined,
  requested: number | undefined,
): ClusterSummary {
  const running = state === 'running' && scheduler.state === 'running';
  const workers = running
    ? scheduler.snapshot().workers.map((w) => ({
        name: w.name,
        status: w.status,
        threads: w.nthreads,
        memory: w.memory.managed,
        memoryLimit: w.memoryLimit,
        processing: w.processing,
      }))
    : [];
  const adaptive = running ? scheduler.adaptive?.options : undefined;
  const link = scheduler.dashboardLink;
  return {
    type,
    state: state === 'running' && !running ? 'closing' : state,
    address: scheduler.address,
    dashboard: link === undefined || !running ? undefined : linkWithToken(link, token),
    workers,
    requested: running ? requested : 0,
    adaptive: adaptive === undefined ? undefined : { minimum: adaptive.minimum, maximum: adaptive.maximum },
  };
}

/** Calls `changed` whenever a worker registers with the scheduler or leaves it; returns how to stop. */
export function watchSchedulerWorkers(scheduler: Scheduler, changed: () => void): () => void {
  if (scheduler.state !== 'running') return () => undefined;
  return scheduler.addPlugin({ name: 'notebook card', addWorker: changed, removeWorker: changed });
}

/** A scheduler in another process (a pod, a batch job), as its cluster's card shows it. */
export interface RemoteSchedulerViewOptions {
  /** The scheduler's dashboard, as reached from here. */
  readonly dashboard: string;
  /** Sent as `Authorization: Bearer …` when the dashboard asks for one. */
  readonly token: string | undefined;
  /** Milliseconds between looks while the card is displayed (default 1,000). */
  readonly intervalMs?: number;
  /** Milliseconds a look may take (default 5,000). */
  readonly timeoutMs?: number;
}

/** What the dashboard's JSON API answers that the card uses: `/api/v1/workers`, `/api/v1/scaling`. */
interface WorkersReply {
  readonly workers: readonly {
    readonly name: string;
    readonly status: string;
    readonly nthreads: number;
    readonly memoryLimit: number;
    readonly processing: number;
    readonly memory: { readonly managed: number };
  }[];
}
interface ScalingReply {
  readonly adaptive: boolean;
  readonly samples: readonly { readonly t: number; readonly requested: number }[];
}

/**
 * The workers of a scheduler that does not run in this process, read from its dashboard's
 * JSON API (the same answers a browser gets): what a card shows is what was last read.
 * While a card watches (`watch`), it reads again about once a second and tells the card
 * when the workers changed; with no one watching, nothing is read and no timer runs.
 */
export class RemoteSchedulerView {
  readonly #workersUrl: string;
  readonly #scalingUrl: URL;
  readonly #headers: Record<string, string>;
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  #workers: readonly WorkerSummary[] = [];
  #requested: number | undefined;
  /** The scheduler clock's time of the last scaling sample read: later looks ask only for newer ones. */
  #since: number | undefined;
  /** Why the last look failed; undefined when it succeeded, or before the first. */
  #problem: string | undefined;
  #looked = false;
  #looking: Promise<void> | undefined;
  readonly #watchers = new Set<() => void>();
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(options: RemoteSchedulerViewOptions) {
    const base = new URL(options.dashboard);
    this.#workersUrl = new URL('api/v1/workers', base).href;
    this.#scalingUrl = new URL('api/v1/scaling', base);
    this.#headers = options.token === undefined ? {} : { authorization: `Bearer ${options.token}` };
    this.#intervalMs = options.intervalMs ?? 1000;
    this.#timeoutMs = options.timeoutMs ?? 5000;
  }

  /** Reads the workers (and the workers requested) now; never rejects: a failure is shown on the card. */
  refresh(): Promise<void> {
    this.#looking ??= this.#look().finally(() => {
      this.#looking = undefined;
    });
    return this.#looking;
  }

  /** The card's summary from what was last read, for a cluster of `type` in `state`. */
  summary(type: string, state: ResourceState, address: string, dashboard: string | undefined, details: readonly ClusterDetail[], adaptive: ClusterSummary['adaptive']): ClusterSummary {
    const running = state === 'running';
    const seen: ClusterDetail[] = [];
    if (running && this.#problem !== undefined) seen.push({ label: 'Report', field: 'reported', text: `the scheduler is not answering: ${this.#problem}` });
    else if (running && !this.#looked) seen.push({ label: 'Report', field: 'reported', text: 'the scheduler was not asked yet' });
    return {
      type,
      state,
      address,
      dashboard: running ? dashboard : undefined,
      workers: running ? this.#workers : [],
      requested: running ? this.#requested : 0,
      adaptive: running ? adaptive : undefined,
      details: [...details, ...seen],
    };
  }

  /** Reads about once a second until stopped, calling `changed` when the workers changed. */
  watch(changed: () => void): () => void {
    this.#watchers.add(changed);
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => void this.refresh(), this.#intervalMs);
      this.#timer.unref();
    }
    return () => {
      this.#watchers.delete(changed);
      if (this.#watchers.size > 0) return;
      clearInterval(this.#timer);
      this.#timer = undefined;
    };
  }

  /** Stops every watch: the cluster is closing. Idempotent. */
  stop(): void {
    this.#watchers.clear();
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Whether anyone watches (a timer runs exactly then). */
  get watched(): boolean {
    return this.#timer !== undefined;
  }

  async #look(): Promise<void> {
    const before = JSON.stringify([this.#workers, this.#requested, this.#problem]);
    try {
      const scaling = new URL(this.#scalingUrl);
      if (this.#since !== undefined) scaling.searchParams.set('since', String(this.#since));
      const [workers, history] = await Promise.all([this.#get<WorkersReply>(this.#workersUrl), this.#get<ScalingReply>(scaling.href)]);
      this.#workers = workers.workers.map((w) => ({
        name: w.name,
        status: w.status,
        threads: w.nthreads,
        memory: w.memory.managed,
        memoryLimit: w.memoryLimit,
        processing: w.processing,
      }));
      const last = history.samples.at(-1);
      if (!history.adaptive) this.#requested = undefined;
      else if (last !== undefined) {
        this.#requested = last.requested;
        this.#since = last.t;
      }
      this.#problem = undefined;
    } catch (error) {
      this.#problem = error instanceof Error ? error.message : String(error);
    }
    this.#looked = true;
    if (JSON.stringify([this.#workers, this.#requested, this.#problem]) === before) return;
    for (const changed of this.#watchers) changed();
  }

  async #get<T>(url: string): Promise<T> {
    const response = await fetch(url, { headers: this.#headers, signal: AbortSignal.timeout(this.#timeoutMs) });
    if (!response.ok) throw new Error(`${new URL(url).pathname}: HTTP ${response.status}`);
    return (await response.json()) as T;
  }
}
