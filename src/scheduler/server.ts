/**
 * The scheduler's I/O shell: accepts workers and clients over the wire, turns their
 * messages into state-machine events, and sends the commands that come out. Decisions
 * live in SchedulerState; this file only moves bytes and keeps track of who is connected.
 *
 * ```ts
 * const scheduler = await Scheduler.start({ port: 8786, token: 'secret' });
 * console.log(scheduler.address); // tcp://127.0.0.1:8786
 * await scheduler.close();
 * ```
 */
import { randomBytes } from 'node:crypto';
import { type Connection, type Hello, listen, type Server, type ServerTlsOptions } from '../comm/index.js';
import { InvalidArgumentError, TesseraError } from '../errors.js';
import type { FnRef } from '../functions/fn-ref.js';
import type { SchedulerCommand, SchedulerEvent, TaskErrorInfo } from './events.js';
import {
  BUNDLE_SCHEME,
  type ClientToScheduler,
  type DataReply,
  type KeyValue,
  ROLE_CLIENT,
  ROLE_WORKER,
  type SchedulerToClient,
  type SchedulerToWorker,
  type TaskSpec,
  type WireComputeTask,
  type WorkerToScheduler,
} from './protocol.js';
import { SchedulerState, type SchedulerStateOptions } from './state.js';
import { keyPrefix } from './records.js';
import type { AdaptiveInput } from './adaptive-policy.js';
import { Adaptive } from '../deploy/adaptive.js';
import type { ClusterBackend } from '../deploy/backend.js';
import type { Dashboard } from '../dashboard/server.js';
import { startDashboard } from '../dashboard/server.js';
import { TaskStreamBuffer } from '../dashboard/task-stream.js';
import type { DashboardCounters, DashboardSource } from '../dashboard/source.js';

export interface SchedulerOptions {
  /** Default 127.0.0.1; 0.0.0.0 accepts workers and clients from other machines. */
  readonly host?: string;
  /** Default 8786; 0 picks a free port. */
  readonly port?: number;
  /** Peers must present it in the handshake. */
  readonly token?: string;
  readonly tls?: ServerTlsOptions;
  /** Milliseconds between ticks (work stealing, worker time-to-live). Default 500. */
  readonly tickInterval?: number;
  /** Options of the state machine (saturation, allowedFailures, …). */
  readonly state?: SchedulerStateOptions;
  /** Where refused peers and other trouble are reported. Default: stderr. */
  readonly log?: (line: string) => void;
  /**
   * The dashboard (page, JSON API, /metrics). Default: on 127.0.0.1:8787, or a free port
   * when that one is taken; false turns it off. Exposed on another host only with `token`.
   */
  readonly dashboard?: false | { readonly host?: string; readonly port?: number; readonly exposed?: boolean; readonly updateIntervalMs?: number };
}

export type SchedulerServerState = 'running' | 'closing' | 'closed';

type WorkerConn = Connection<WorkerToScheduler | SchedulerToWorker>;
type ClientConn = Connection<ClientToScheduler | SchedulerToClient>;

interface WorkerEntry {
  readonly id: string;
  readonly name: string;
  readonly conn: WorkerConn;
  /** Function ids this worker has been sent. */
  readonly fns: Set<string>;
  /** Module bundles this worker has been sent. */
  readonly modules: Set<string>;
  /** Messages waiting for the end of this turn; consecutive computes and frees merge. */
  outbox: SchedulerToWorker[];
  leaving: 'lost' | 'retired' | 'closed';
  /** Add to the worker's task times to put them on this process's clock. */
  readonly clockOffset: number;
  /** It asked to leave; if its data cannot move, it leaves anyway. */
  selfRetiring: boolean;
}

interface ClientEntry {
  readonly id: string;
  readonly conn: ClientConn;
  outbox: SchedulerToClient[];
}

interface PendingScatter {
  readonly client: ClientEntry;
  readonly worker: string;
  readonly keys: readonly string[];
  readonly requestId: number;
}

interface PendingRelay {
  readonly reply: (message: DataReply) => void;
  readonly requestId: number;
  readonly worker: string;
}

export class Scheduler {
  readonly address: string;
  readonly #server: Server<WorkerToScheduler | SchedulerToWorker | ClientToScheduler | SchedulerToClient>;
  readonly #state: SchedulerState;
  readonly #log: (line: string) => void;
  readonly #workers = new Map<string, WorkerEntry>();
  readonly #clients = new Map<string, ClientEntry>();
  readonly #fns = new Map<string, FnRef>();
  /** Bundled modules by content hash. */
  readonly #modules = new Map<string, Uint8Array>();
  readonly #scatters = new Map<number, PendingScatter>();
  readonly #relays = new Map<number, PendingRelay>();
  readonly #workerWaiters: (() => void)[] = [];
  readonly #tick: NodeJS.Timeout;
  /** Scatters waiting for a first worker (an adaptive cluster starting from zero). */
  readonly #waitingScatters: { readonly client: ClientEntry; readonly id: number; readonly items: readonly KeyValue[] }[] = [];
  /** Resolvers waiting for a worker to be gone, by id (retirement by the adaptive loop). */
  readonly #departures = new Map<string, () => void>();
  readonly #stream = new TaskStreamBuffer();
  readonly #counters = { transfersTotal: 0, transferBytesTotal: 0, tasksFinishedTotal: 0, tasksErredTotal: 0, taskDurationSecondsSum: 0, taskDurationCount: 0, bytesSpilled: 0 };
  #adaptive: Adaptive | undefined;
  #dashboard: Dashboard | undefined;
  #nextRequest = 1;
  #nextClient = 1;
  #tasksFinished = 0;
  #flushScheduled = false;
  #status: SchedulerServerState = 'running';
  #closing: Promise<void> | null = null;

  private constructor(
    server: Server<WorkerToScheduler | SchedulerToWorker | ClientToScheduler | SchedulerToClient>,
    state: SchedulerState,
    tickInterval: number,
    log: (line: string) => void,
  ) {
    this.#server = server;
    this.address = server.address;
    this.#state = state;
    this.#log = log;
    this.#tick = setInterval(() => this.#apply({ op: 'tick', now: performance.now() }), tickInterval);
    this.#tick.unref();
  }

  static async start(options: SchedulerOptions = {}): Promise<Scheduler> {
    if (typeof (options as unknown) !== 'object' || (options as unknown) === null) throw new InvalidArgumentError('options must be an object');
    const tickInterval = options.tickInterval ?? 500;
    if (typeof tickInterval !== 'number' || !(tickInterval >= 1)) {
      throw new InvalidArgumentError(`options.tickInterval must be a number of milliseconds >= 1, got ${String(tickInterval)}`);
    }
    if (options.log !== undefined && typeof options.log !== 'function') throw new InvalidArgumentError('options.log must be a function');
    const log = options.log ?? ((line: string) => process.stderr.write(`tessera scheduler: ${line}\n`));
    const state = new SchedulerState(options.state ?? {});
    const started: { scheduler?: Scheduler } = {};
    const server = await listen<WorkerToScheduler | SchedulerToWorker | ClientToScheduler | SchedulerToClient>({
      host: options.host ?? '127.0.0.1',
      // This shell gathers each turn's messages per peer itself; waiting longer only adds latency.
      batchInterval: 0,
      port: options.port ?? 8786,
      ...(options.token === undefined ? {} : { token: options.token }),
      ...(options.tls === undefined ? {} : { tls: options.tls }),
      onConnection: (conn, hello) => {
        if (started.scheduler === undefined) {
          conn.destroy();
          return;
        }
        started.scheduler.#accept(conn, hello);
      },
      onRefused: ({ remoteAddress, error }) => log(`refused ${remoteAddress}: ${error.message}`),
      onError: (error) => log(`error: ${error.message}`),
    });
    const scheduler = new Scheduler(server, state, tickInterval, log);
    started.scheduler = scheduler;
    if (options.dashboard !== false) {
      try {
        scheduler.#dashboard = await startDashboard({
          source: scheduler.#dashboardSource(),
          host: options.dashboard?.host ?? '127.0.0.1',
          port: options.dashboard?.port ?? 8787,
          ...(options.dashboard?.exposed === undefined ? {} : { exposed: options.dashboard.exposed }),
          ...(options.dashboard?.updateIntervalMs === undefined ? {} : { updateIntervalMs: options.dashboard.updateIntervalMs }),
          ...(options.token === undefined ? {} : { token: options.token }),
        });
      } catch (error) {
        await scheduler.close();
        throw error;
      }
    }
    return scheduler;
  }

  get status(): SchedulerServerState {
    return this.#status;
  }

  /** Task completions reported by workers since the start (progress, for tests and dashboards). */
  get tasksFinished(): number {
    return this.#tasksFinished;
  }

  /** Ids of the connected workers. */
  get workers(): string[] {
    return [...this.#workers.keys()];
  }

  /** Names of the connected workers, by id. */
  workerNames(): Map<string, string> {
    return new Map([...this.#workers.values()].map((w) => [w.id, w.name]));
  }

  /** The state machine, for inspection (dashboards, tests). Do not feed it events. */
  get state(): SchedulerState {
    return this.#state;
  }

  /** Resolves once at least `n` workers are connected. */
  async waitForWorkers(n: number, signal?: AbortSignal): Promise<void> {
    while (this.#workers.size < n) {
      if (this.#status !== 'running') throw new TesseraError('the scheduler closed while waiting for workers', 'ERR_SCHEDULER_CLOSED');
      signal?.throwIfAborted();
      await new Promise<void>((resolve) => this.#workerWaiters.push(resolve));
    }
  }

  /** Gracefully retires workers: their unique data moves elsewhere, then they are told to close. */
  retireWorkers(workers: readonly string[]): void {
    this.#apply({ op: 'retire-workers', workers, now: performance.now() });
  }

  /** The dashboard's address, or undefined when it is off. */
  get dashboardLink(): string | undefined {
    return this.#dashboard?.url;
  }

  /** The adaptive loop, when one runs. */
  get adaptive(): Adaptive | undefined {
    return this.#adaptive;
  }

  /**
   * Lets the scheduler grow and shrink the cluster through `backend`: every `interval` it
   * asks for as many workers as would finish the queued work in `targetDuration`, and
   * retires idle ones (after moving the data only they hold). Replaces an earlier loop.
   */
  adapt(backend: ClusterBackend, options: AdaptiveInput = {}): Adaptive {
    if (this.#status !== 'running') throw new TesseraError('the scheduler is closed', 'ERR_SCHEDULER_CLOSED');
    this.#adaptive?.stop();
    const adaptive = new Adaptive(
      {
        snapshot: () => this.#state.snapshot(),
        // Results a client holds need a worker to live on; so does a scatter waiting for one.
        holdsResults: () => this.#state.stateCounts().memory > 0 || this.#waitingScatters.length > 0,
        retireWorkers: (names) => this.#retireByName(names),
      },
      backend,
      options,
      this.#log,
    );
    this.#adaptive = adaptive;
    adaptive.start();
    return adaptive;
  }

  /** Stops the adaptive loop; the workers stay as they are. */
  stopAdapting(): void {
    this.#adaptive?.stop();
    this.#adaptive = undefined;
  }

  /** Retires workers by name and resolves when they are gone (or their retirement was given up). */
  #retireByName(names: readonly string[]): Promise<void> {
    const wanted = new Set(names);
    const ids = [...this.#workers.values()].filter((w) => wanted.has(w.name)).map((w) => w.id);
    const gone = ids.map((id) => new Promise<void>((resolve) => this.#departures.set(id, resolve)));
    this.retireWorkers(ids);
    return Promise.all(gone).then(() => undefined);
  }

  #departed(id: string): void {
    const resolve = this.#departures.get(id);
    this.#departures.delete(id);
    resolve?.();
  }

  #dashboardSource(): DashboardSource {
    return {
      snapshot: () => this.#state.snapshot(),
      scaling: (since) => this.#adaptive?.history(since),
      adaptiveTarget: () => this.#adaptive?.lastTarget(),
      taskStream: (since, limit) => this.#stream.since(since, limit),
      prefixTotals: () => this.#stream.prefixTotals(),
      counters: (): DashboardCounters => {
        let spilled = 0;
        for (const w of this.#state.snapshot().workers) spilled += w.memory.spilled;
        return { ...this.#counters, bytesSpilled: spilled };
      },
      clock: () => performance.now(),
    };
  }

  /** Stops accepting, tells workers nothing (they see the connection close), closes everything. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#shutDown();
    return this.#closing;
  }

  async #shutDown(): Promise<void> {
    this.#status = 'closing';
    clearInterval(this.#tick);
    this.#adaptive?.stop();
    for (const resolve of this.#departures.values()) resolve();
    this.#departures.clear();
    for (const waiting of this.#waitingScatters.splice(0)) this.#toClient(waiting.client, { op: 'scattered', id: waiting.id, error: 'the scheduler closed' });
    await this.#dashboard?.close().catch(() => undefined);
    this.#flush();
    for (const waiter of this.#workerWaiters.splice(0)) waiter();
    await this.#server.close();
    this.#status = 'closed';
  }

  // ---- connections ----

  #accept(conn: Connection<WorkerToScheduler | SchedulerToWorker | ClientToScheduler | SchedulerToClient>, hello: Hello): void {
    if (this.#status !== 'running') {
      conn.destroy();
      return;
    }
    switch (hello.role) {
      case ROLE_WORKER:
        this.#acceptWorker(conn as WorkerConn);
        return;
      case ROLE_CLIENT:
        this.#acceptClient(conn as ClientConn);
        return;
      default:
        this.#log(`refused ${conn.remoteAddress}: unknown role '${hello.role}'`);
        conn.destroy();
    }
  }

  #acceptWorker(conn: WorkerConn): void {
    let entry: WorkerEntry | undefined;
    conn.onMessage((message) => {
      const m = message as WorkerToScheduler;
      if (entry === undefined) {
        if (m.op !== 'register') throw new TesseraError(`a worker's first message must be register, not '${m.op}'`, 'ERR_PROTOCOL');
        entry = this.#register(conn, m);
        return;
      }
      this.#onWorkerMessage(entry, m);
    });
    conn.onClose((reason) => {
      if (entry === undefined) return;
      if (reason.kind === 'error' && entry.leaving === 'lost') this.#log(`lost worker ${entry.id}: ${reason.error.message}`);
      this.#dropWorker(entry);
    });
  }

  #register(conn: WorkerConn, m: Extract<WorkerToScheduler, { op: 'register' }>): WorkerEntry {
    if (typeof m.name !== 'string' || typeof m.nthreads !== 'number' || typeof m.memoryLimit !== 'number') {
      throw new TesseraError('malformed register message', 'ERR_PROTOCOL');
    }
    const id = m.address ?? `relay://${m.name}-${randomBytes(4).toString('hex')}`;
    const previous = this.#workers.get(id);
    if (previous !== undefined) {
      // The same address again is a restart; the old connection is dead or dying.
      this.#workers.delete(id);
      previous.conn.destroy();
    }
    // Worker task times are its own performance.now(); this moves them onto ours.
    const clockOffset = typeof m.timeOrigin === 'number' ? m.timeOrigin - performance.timeOrigin : 0;
    const entry: WorkerEntry = { id, name: m.name, conn, fns: new Set(), modules: new Set(), outbox: [], leaving: 'lost', selfRetiring: false, clockOffset };
    this.#workers.set(id, entry);
    conn.send({ op: 'registered', id });
    this.#apply({ op: 'add-worker', worker: id, name: m.name, nthreads: m.nthreads, memoryLimit: m.memoryLimit, now: performance.now() });
    for (const waiter of this.#workerWaiters.splice(0)) waiter();
    for (const waiting of this.#waitingScatters.splice(0)) this.#scatter(waiting.client, waiting.id, waiting.items);
    return entry;
  }

  #dropWorker(entry: WorkerEntry): void {
    if (this.#workers.get(entry.id) !== entry) return;
    this.#workers.delete(entry.id);
    for (const [id, relay] of this.#relays) {
      if (relay.worker !== entry.id) continue;
      this.#relays.delete(id);
      relay.reply({ op: 'data', id: relay.requestId, values: [], missing: [] });
    }
    for (const [id, scatter] of this.#scatters) {
      if (scatter.worker !== entry.id) continue;
      this.#scatters.delete(id);
      this.#toClient(scatter.client, { op: 'scattered', id: scatter.requestId, error: `worker ${entry.id} left during scatter` });
    }
    if (this.#status === 'running') this.#apply({ op: 'remove-worker', worker: entry.id, reason: entry.leaving, now: performance.now() });
    this.#stream.forgetWorker(entry.name);
    this.#departed(entry.id);
  }

  #onWorkerMessage(entry: WorkerEntry, m: WorkerToScheduler): void {
    const worker = entry.id;
    switch (m.op) {
      case 'register':
        throw new TesseraError('a worker registered twice on one connection', 'ERR_PROTOCOL');
      case 'tasks-finished': {
        const now = performance.now();
        this.#tasksFinished += m.keys.length;
        this.#recordFinished(entry, m);
        for (let i = 0; i < m.keys.length; i++) {
          this.#apply(
            {
              op: 'task-finished',
              worker,
              key: m.keys[i]!,
              nbytes: m.nbytes[i] ?? 0,
              startedAt: m.startedAt[i] ?? 0,
              finishedAt: m.finishedAt[i] ?? 0,
              now,
            },
            false,
          );
        }
        this.#scheduleFlush();
        return;
      }
      case 'task-erred': {
        const now = performance.now();
        this.#counters.tasksErredTotal++;
        this.#stream.record({ key: m.key, prefix: keyPrefix(m.key), worker: entry.name, start: now, stop: now, kind: 'error' });
        this.#apply({ op: 'task-erred', worker, key: m.key, error: m.error, now });
        return;
      }
      case 'add-keys': {
        // A worker reports keys it fetched from a peer: transfers, for the dashboard.
        const now = performance.now();
        for (const key of m.keys) {
          this.#counters.transfersTotal++;
          this.#counters.transferBytesTotal += this.#state.taskInfo(key)?.nbytes ?? 0;
          this.#stream.record({ key, prefix: keyPrefix(key), worker: entry.name, start: now, stop: now, kind: 'transfer' });
        }
        this.#apply({ op: 'add-keys', worker, keys: m.keys });
        return;
      }
      case 'missing-data':
        this.#apply({ op: 'missing-data', worker, key: m.key, from: m.from });
        return;
      case 'heartbeat':
        this.#apply({ op: 'heartbeat', worker, now: performance.now(), memory: m.memory });
        return;
      case 'steal-response':
        this.#apply({ op: 'steal-response', worker, key: m.key, accepted: m.accepted });
        return;
      case 'worker-status':
        this.#apply({ op: 'worker-status', worker, status: m.status === 'paused' ? 'paused' : 'running' });
        return;
      case 'put-data-done': {
        const pending = this.#scatters.get(m.id);
        if (pending === undefined) return;
        this.#scatters.delete(m.id);
        const keys = pending.keys.map((key, i) => ({ key, nbytes: m.nbytes[i] ?? 0 }));
        this.#apply({ op: 'scatter', client: pending.client.id, worker, keys });
        this.#toClient(pending.client, { op: 'scattered', id: pending.requestId, error: null });
        return;
      }
      case 'goodbye':
        if (entry.leaving === 'lost') entry.leaving = 'closed';
        return;
      case 'retire':
        entry.selfRetiring = true;
        this.#apply({ op: 'retire-workers', workers: [worker], now: performance.now() });
        return;
      case 'relay-get-data':
        this.#relay(m.worker, m.keys, m.id, (reply) => this.#toWorker(entry, reply));
        return;
      case 'data': {
        const pending = this.#relays.get(m.id);
        if (pending === undefined) return;
        this.#relays.delete(m.id);
        pending.reply({ op: 'data', id: pending.requestId, values: m.values, missing: m.missing });
        return;
      }
      default: {
        const never: never = m;
        throw new TesseraError(`unknown worker message '${(never as { op: string }).op}'`, 'ERR_PROTOCOL');
      }
    }
  }

  #acceptClient(conn: ClientConn): void {
    const entry: ClientEntry = { id: `client-${this.#nextClient++}-${randomBytes(3).toString('hex')}`, conn, outbox: [] };
    this.#clients.set(entry.id, entry);
    conn.send({ op: 'client-welcome', id: entry.id });
    conn.onMessage((message) => this.#onClientMessage(entry, message as ClientToScheduler));
    conn.onClose(() => {
      this.#clients.delete(entry.id);
      for (const [id, scatter] of this.#scatters) if (scatter.client === entry) this.#scatters.delete(id);
      if (this.#status === 'running') this.#apply({ op: 'client-removed', client: entry.id });
    });
  }

  #onClientMessage(entry: ClientEntry, m: ClientToScheduler): void {
    const client = entry.id;
    switch (m.op) {
      case 'update-graph': {
        if (!isList(m.tasks) || !isList(m.wanted) || !isList(m.fns)) {
          throw new TesseraError('malformed update-graph message', 'ERR_PROTOCOL');
        }
        for (const fn of m.fns) if (!this.#fns.has(fn.id)) this.#fns.set(fn.id, fn);
        this.#apply({
          op: 'update-graph',
          client,
          tasks: m.tasks,
          wanted: m.wanted,
          ...(m.userPriority === undefined ? {} : { userPriority: m.userPriority }),
          now: performance.now(),
        });
        // New work: let the adaptive loop look now rather than at its next tick.
        this.#adaptive?.nudge();
        return;
      }
      case 'release-keys':
        this.#apply({ op: 'release-keys', client, keys: m.keys });
        return;
      case 'cancel':
        this.#apply({ op: 'cancel', client, keys: m.keys });
        return;
      case 'upload-module':
        if (typeof m.hash !== 'string' || !(m.code instanceof Uint8Array)) throw new TesseraError('malformed upload-module message', 'ERR_PROTOCOL');
        this.#modules.set(m.hash, m.code);
        return;
      case 'who-has': {
        const whoHas = m.keys.map((key) => this.#state.taskInfo(key)?.whoHas ?? null);
        this.#toClient(entry, { op: 'who-has-reply', id: m.id, whoHas });
        return;
      }
      case 'scatter':
        this.#scatter(entry, m.id, m.items);
        return;
      case 'scaling-history':
        this.#toClient(entry, { op: 'scaling-history-reply', id: m.id, history: this.#adaptive?.history(m.since) ?? null });
        return;
      case 'relay-get-data':
        this.#relay(m.worker, m.keys, m.id, (reply) => this.#toClient(entry, reply));
        return;
      default: {
        const never: never = m;
        throw new TesseraError(`unknown client message '${(never as { op: string }).op}'`, 'ERR_PROTOCOL');
      }
    }
  }

  /** Spreads the items over the workers, round robin; each worker acknowledges its share. */
  #scatter(client: ClientEntry, requestId: number, items: readonly KeyValue[]): void {
    const workers = [...this.#workers.values()];
    if (workers.length === 0) {
      // An adaptive cluster will start one for it; a fixed one never will.
      if (this.#adaptive !== undefined) {
        this.#waitingScatters.push({ client, id: requestId, items });
        this.#adaptive.nudge();
      }
      else this.#toClient(client, { op: 'scattered', id: requestId, error: 'no workers are connected' });
      return;
    }
    const shares = workers.map((): KeyValue[] => []);
    items.forEach((item, i) => shares[i % workers.length]!.push(item));
    let parts = 0;
    shares.forEach((share, w) => {
      if (share.length === 0) return;
      parts++;
      const worker = workers[w]!;
      const id = this.#nextRequest++;
      this.#scatters.set(id, { client, worker: worker.id, keys: share.map(([key]) => key), requestId });
      this.#toWorker(worker, { op: 'put-data', id, items: share });
    });
    if (parts === 0) this.#toClient(client, { op: 'scattered', id: requestId, error: null });
  }

  #relay(worker: string, keys: readonly string[], requestId: number, reply: (message: DataReply) => void): void {
    const target = this.#workers.get(worker);
    if (target === undefined) {
      reply({ op: 'data', id: requestId, values: [], missing: [...keys] });
      return;
    }
    const id = this.#nextRequest++;
    this.#relays.set(id, { reply, requestId, worker });
    this.#toWorker(target, { op: 'get-data', id, keys });
  }

  // ---- the state machine and its commands ----

  #apply(event: SchedulerEvent, flush = true): void {
    if (this.#status !== 'running' && event.op !== 'remove-worker' && event.op !== 'client-removed') return;
    const commands = this.#state.handle(event);
    for (const command of commands) this.#dispatch(command);
    if (flush) this.#scheduleFlush();
  }

  #dispatch(c: SchedulerCommand): void {
    switch (c.op) {
      case 'compute-task': {
        const w = this.#workers.get(c.worker);
        if (w === undefined) return;
        const spec = c.spec as TaskSpec;
        for (const step of spec.node.steps) {
          if (w.fns.has(step.fn)) continue;
          const fn = this.#fns.get(step.fn);
          if (fn === undefined) continue;
          w.fns.add(step.fn);
          if (fn.kind === 'module' && fn.url.startsWith(BUNDLE_SCHEME)) {
            const hash = fn.url.slice(BUNDLE_SCHEME.length);
            const code = this.#modules.get(hash);
            if (code !== undefined && !w.modules.has(hash)) {
              w.modules.add(hash);
              this.#toWorker(w, { op: 'load-module', hash, code });
            }
          }
          this.#toWorker(w, { op: 'load-fns', fns: [fn] });
        }
        const task: WireComputeTask = {
          key: c.key,
          spec,
          priority: c.priority,
          dependencies: c.dependencies.map((d) => [d.key, d.whoHas, d.nbytes] as const),
        };
        const last = w.outbox[w.outbox.length - 1];
        if (last?.op === 'compute') (last.tasks as WireComputeTask[]).push(task);
        else w.outbox.push({ op: 'compute', tasks: [task] });
        return;
      }
      case 'free-keys': {
        const w = this.#workers.get(c.worker);
        if (w === undefined) return;
        const last = w.outbox[w.outbox.length - 1];
        if (last?.op === 'free-keys') (last.keys as string[]).push(...c.keys);
        else w.outbox.push({ op: 'free-keys', keys: [...c.keys] });
        return;
      }
      case 'steal-request': {
        const w = this.#workers.get(c.worker);
        if (w !== undefined) w.outbox.push({ op: 'steal-request', key: c.key });
        return;
      }
      case 'replicate': {
        const w = this.#workers.get(c.worker);
        if (w !== undefined) w.outbox.push({ op: 'replicate', keys: c.keys.map((k) => [k.key, k.whoHas] as const) });
        return;
      }
      case 'close-worker': {
        const w = this.#workers.get(c.worker);
        if (w === undefined) return;
        w.leaving = 'retired';
        w.outbox.push({ op: 'close-worker' });
        return;
      }
      case 'retire-aborted': {
        this.#log(`retiring ${c.worker} was given up: ${c.reason}`);
        this.#departed(c.worker);
        const w = this.#workers.get(c.worker);
        // A worker leaving of its own accord goes anyway; its data is recomputed if needed.
        if (w?.selfRetiring === true) w.outbox.push({ op: 'close-worker' });
        return;
      }
      case 'key-in-memory':
        for (const id of c.clients) {
          const client = this.#clients.get(id);
          if (client === undefined) continue;
          const last = client.outbox[client.outbox.length - 1];
          if (last?.op === 'keys-in-memory') (last.keys as string[]).push(c.key);
          else client.outbox.push({ op: 'keys-in-memory', keys: [c.key] });
        }
        return;
      case 'key-erred':
        this.#toClients(c.clients, { op: 'key-erred', key: c.key, error: c.error });
        return;
      case 'key-lost':
        this.#toClients(c.clients, { op: 'key-lost', key: c.key, error: c.error });
        return;
      case 'key-cancelled':
        this.#toClients(c.clients, { op: 'keys-cancelled', keys: [c.key] });
        return;
      default: {
        const never: never = c;
        throw new TesseraError(`unknown scheduler command '${(never as { op: string }).op}'`, 'ERR_PROTOCOL');
      }
    }
  }

  #recordFinished(worker: WorkerEntry, m: Extract<WorkerToScheduler, { op: 'tasks-finished' }>): void {
    const { keys, startedAt, finishedAt, threads } = m;
    const c = this.#counters;
    for (let i = 0; i < keys.length; i++) {
      const start = (startedAt[i] ?? 0) + worker.clockOffset;
      const stop = (finishedAt[i] ?? 0) + worker.clockOffset;
      c.tasksFinishedTotal++;
      c.taskDurationSecondsSum += Math.max(0, stop - start) / 1000;
      c.taskDurationCount++;
      const key = keys[i]!;
      this.#stream.record({ key, prefix: keyPrefix(key), worker: worker.name, thread: threads[i] ?? 0, start, stop, kind: 'compute' });
    }
  }

  #toClients(ids: readonly string[], message: SchedulerToClient): void {
    for (const id of ids) {
      const client = this.#clients.get(id);
      if (client !== undefined) client.outbox.push(message);
    }
  }

  #toClient(client: ClientEntry, message: SchedulerToClient): void {
    client.outbox.push(message);
    this.#scheduleFlush();
  }

  #toWorker(worker: WorkerEntry, message: SchedulerToWorker): void {
    worker.outbox.push(message);
    this.#scheduleFlush();
  }

  /** Everything queued this turn goes out together, so one event's commands share packets. */
  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    process.nextTick(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    for (const w of this.#workers.values()) {
      if (w.outbox.length === 0) continue;
      const outbox = w.outbox;
      w.outbox = [];
      for (const message of outbox) sendQuietly(w.conn, message, this.#log);
    }
    for (const c of this.#clients.values()) {
      if (c.outbox.length === 0) continue;
      const outbox = c.outbox;
      c.outbox = [];
      for (const message of outbox) sendQuietly(c.conn, message, this.#log);
    }
  }
}

/** Array.isArray without widening a readonly array's element type to any. */
function isList(value: unknown): value is readonly unknown[] {
  return Array.isArray(value);
}

/** A peer that vanished mid-turn is noticed by its close handler; sending to it is moot. */
function sendQuietly<M extends { op: string }>(conn: Connection<M>, message: M, log: (line: string) => void): void {
  if (conn.state !== 'open') return;
  try {
    conn.send(message);
  } catch (error) {
    log(`could not send '${message.op}' to ${conn.remoteAddress}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

export type { TaskErrorInfo };
