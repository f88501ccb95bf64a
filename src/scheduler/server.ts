/**
 * The scheduler's I/O shell: accepts workers and clients over the wire, turns their
 * messages into state-machine events, and sends the commands that come out. Decisions
 * live in SchedulerState; this file only moves bytes and keeps track of who is connected.
 * What watches it (the dashboard, the adaptive loop) attaches through plugins
 * (plugin.ts); the `Scheduler` users start (process/scheduler.ts) wires those on.
 *
 * It is the one place that holds every connection, which is why it is longer than the
 * rooms beside it: what needs no connection of its own lives there — dispatch.ts (commands
 * into messages), scatter.ts, requests.ts (relays, stories), functions.ts (shipping).
 *
 * ```ts
 * const server = await SchedulerServer.start({ port: 8786, token: 'secret' });
 * console.log(server.address); // tcp://127.0.0.1:8786
 * await server.close();
 * ```
 *
 * Why one file: it owns the connections and the one place events reach the core; dispatch,
 * scatter, relays, function shipping and plugins already live in rooms of their own.
 */
import { randomBytes } from 'node:crypto';
import { type Connection, type Hello, listen, type Server, type ServerTlsOptions } from '../comm/index.js';
import { isLoopback } from '../comm/http.js';
import { InvalidArgumentError, ProtocolError } from '../errors.js';
import { attemptAll, holdOpen, Resource } from '../lifecycle.js';
import { checkLogSink, createLog, type Log, type LogSink } from '../log.js';
import { checkOptions, optionNames } from '../options.js';
import {
  type ClientToScheduler,
  ROLE_CLIENT,
  ROLE_WORKER,
  type SchedulerToClient,
  type SchedulerToWorker,
  type StoreRef,
  storeHolderId,
  type TaskErrorInfo,
  type WorkerToScheduler,
} from '../protocol/messages.js';
import type { StoryEntry } from '../protocol/story.js';
import type { TaskSpec } from '../protocol/task-spec.js';
import { checkStore, type ResultStore, serveStoreRequest } from '../store/index.js';
import type { SchedulerEvent } from './events.js';
import { type ClientConn, type ClientEntry, dispatch, type DispatchContext, flushOutboxes, type WorkerConn, type WorkerEntry } from './dispatch.js';
import { FunctionShipping } from './functions.js';
import { fnIdList, graphTasks } from './held-spec.js';
import { ForwardedRequests } from './requests.js';
import { Scatters } from './scatter.js';
import { PluginSet, type SchedulerPlugin } from './plugin.js';
import { SchedulerState, type SchedulerSnapshot, type SchedulerStateOptions, type StateCounts, type TaskInfo } from './state.js';

export interface SchedulerServerOptions {
  /** Default 127.0.0.1; 0.0.0.0 accepts workers and clients from other machines. */
  readonly host?: string;
  /** Default 8786; 0 picks a free port. */
  readonly port?: number;
  /**
   * Peers must present it in the handshake. Required when `host` is not loopback: whoever
   * reaches the port runs code on the workers.
   */
  readonly token?: string;
  /**
   * Listen on a non-loopback host without a token. Anyone who reaches the port can then run
   * code on every worker; only for networks where every peer is trusted. Default false.
   */
  readonly insecureNoToken?: boolean;
  readonly tls?: ServerTlsOptions;
  /** Milliseconds between ticks (work stealing, worker time-to-live). Default 500. */
  readonly tickInterval?: number;
  /** Options of the state machine (saturation, allowedFailures, …). */
  readonly state?: SchedulerStateOptions;
  /** Where refused peers and other trouble are reported. Default: stderr. */
  readonly log?: LogSink;
  /**
   * Whether its sockets keep the process alive (default true). A scheduler embedded in a
   * user's script (a LocalCluster's) passes false, so the script ends when its work does.
   */
  readonly keepAlive?: boolean;
  /**
   * A result store (store/): workers that cannot be reached write their results there, so
   * those results outlive them. The scheduler deletes the keys it forgets; it does not
   * close the store. Default: none (such workers' results are relayed from the worker).
   */
  readonly store?: ResultStore;
}



/** The server's own option names, for the check at the door (the composed Scheduler adds its own). */
export const SCHEDULER_SERVER_OPTIONS = optionNames<SchedulerServerOptions>()(['host', 'port', 'token', 'insecureNoToken', 'tls', 'tickInterval', 'state', 'log', 'keepAlive', 'store']);

export class SchedulerServer extends Resource {
  readonly address: string;
  readonly #server: Server<WorkerToScheduler | SchedulerToWorker | ClientToScheduler | SchedulerToClient>;
  readonly #state: SchedulerState;
  readonly #log: Log;
  readonly #workers = new Map<string, WorkerEntry>();
  readonly #clients = new Map<string, ClientEntry>();
  readonly #functions = new FunctionShipping();
  readonly #scatters: Scatters<ClientEntry>;
  readonly #requests: ForwardedRequests;
  readonly #workerWaiters: (() => void)[] = [];
  readonly #plugins: PluginSet;
  readonly #tick: NodeJS.Timeout;
  /** Per worker being retired: told whether it left (true) or its retirement was given up. */
  readonly #departures = new Map<string, ((left: boolean) => void)[]>();
  #nextClient = 1;
  readonly #dispatchContext: DispatchContext = {
    workers: this.#workers,
    clients: this.#clients,
    functions: this.#functions,
    stimulus: '',
    retireAborted: (worker, reason) => {
      this.#log.warn('retirement given up; the worker stays, with its data', { worker, reason });
      this.#departed(worker, false);
    },
    freeFromStore: (store, keys) => {
      if (this.#storeRef?.holder === store) for (const key of keys) this.#storeDeletes.push(key);
    },
  };
  #tasksFinished = 0;
  #flushScheduled = false;
  readonly #store: ResultStore | null;
  /** How workers and clients are told of the store; null without one, or while it is lost. */
  #storeRef: StoreRef | null = null;
  readonly #storeListeners: (() => void)[] = [];
  /** Keys to delete from the store at the end of this turn. */
  #storeDeletes: string[] = [];

  private constructor(
    server: Server<WorkerToScheduler | SchedulerToWorker | ClientToScheduler | SchedulerToClient>,
    state: SchedulerState,
    tickInterval: number,
    log: Log,
    store: ResultStore | null,
  ) {
    super('the scheduler');
    this.#store = store;
    this.#server = server;
    this.address = server.address;
    this.#state = state;
    this.#log = log;
    this.#plugins = new PluginSet(log);
    this.#scatters = new Scatters<ClientEntry>({
      workers: () => [...this.#workers.keys()],
      // An adaptive loop (listening for work) will start a worker; a fixed cluster never will.
      mayWait: () => this.#plugins.has('workArrived'),
      send: (worker, message) => {
        const w = this.#workers.get(worker);
        if (w !== undefined) this.#toWorker(w, message);
      },
      held: (client, worker, keys) => this.#apply({ op: 'scatter', client: client.id, worker, keys }),
      answer: (client, id, error) => this.#toClient(client, { op: 'scattered', id, error }),
    });
    this.#requests = new ForwardedRequests({
      send: (worker, message) => {
        const w = this.#workers.get(worker);
        if (w === undefined) return false;
        this.#toWorker(w, message);
        return true;
      },
    });
    this.#tick = setInterval(() => this.#onTick(), tickInterval);
    this.#tick.unref();
    if (store !== null) this.#attachStore(store);
  }

  /**
   * The store joins as a holder. Losing it is a worker loss for what it held: those
   * results are recomputed from lineage. When it comes back it joins again, empty.
   */
  #attachStore(store: ResultStore): void {
    const ref: StoreRef = { holder: storeHolderId(store.address), address: store.address };
    this.#storeRef = ref;
    this.#apply({ op: 'add-store', store: ref.holder });
    this.#storeListeners.push(
      store.onLost((error) => {
        if (this.#storeRef === null || this.state !== 'running') return;
        this.#storeRef = null;
        this.#storeDeletes = [];
        this.#log.warn('lost the result store; the results it held are recomputed from their lineage', { store: store.address, reason: error.message });
        this.#apply({ op: 'remove-store', store: ref.holder });
      }),
      store.onRestored(() => {
        if (this.#storeRef !== null || this.state !== 'running') return;
        this.#log.info('the result store is back', { store: store.address });
        this.#storeRef = ref;
        this.#apply({ op: 'add-store', store: ref.holder });
      }),
    );
  }

  static async start(options: SchedulerServerOptions = {}): Promise<SchedulerServer> {
    checkOptions(options, SCHEDULER_SERVER_OPTIONS, 'SchedulerServer.start()');
    if (typeof (options as unknown) !== 'object' || (options as unknown) === null) throw new InvalidArgumentError('options must be an object');
    const tickInterval = options.tickInterval ?? 500;
    if (typeof tickInterval !== 'number' || !(tickInterval >= 1)) {
      throw new InvalidArgumentError(`options.tickInterval must be a number of milliseconds >= 1, got ${String(tickInterval)}`);
    }
    checkLogSink(options.log, 'SchedulerServer.start()');
    if (options.store !== undefined) checkStore(options.store, 'SchedulerServer.start(): options.store');
    const log = createLog('scheduler', options.log);
    const host = options.host ?? '127.0.0.1';
    if (options.insecureNoToken !== undefined && typeof options.insecureNoToken !== 'boolean') {
      throw new InvalidArgumentError('options.insecureNoToken must be a boolean');
    }
    if (!isLoopback(host) && options.token === undefined) {
      if (options.insecureNoToken !== true) {
        throw new InvalidArgumentError(
          `options.token is required to listen on ${host}: whoever reaches the port runs code on the workers ` +
            '(keep host 127.0.0.1, pass a token, or pass insecureNoToken: true on a network where every peer is trusted)',
        );
      }
      log.warn('listening on a non-loopback host WITHOUT a token: anyone who reaches the port can run code on the workers', { host });
    }
    const state = new SchedulerState(options.state ?? {});
    const started: { scheduler?: SchedulerServer } = {};
    const server = await listen<WorkerToScheduler | SchedulerToWorker | ClientToScheduler | SchedulerToClient>({
      host,
      // This shell gathers each turn's messages per peer itself; waiting longer only adds latency.
      batchInterval: 0,
      port: options.port ?? 8786,
      ...(options.token === undefined ? {} : { token: options.token }),
      ...(options.tls === undefined ? {} : { tls: options.tls }),
      ...(options.keepAlive === undefined ? {} : { keepAlive: options.keepAlive }),
      onConnection: (conn, hello) => {
        if (started.scheduler === undefined) {
          conn.destroy();
          return;
        }
        started.scheduler.#accept(conn, hello);
      },
      onRefused: ({ remoteAddress, error }) => log.warn('refused a peer', { peer: remoteAddress, reason: error.message }),
      onError: (error) => log.error(error.message),
    });
    const scheduler = new SchedulerServer(server, state, tickInterval, log, options.store ?? null);
    started.scheduler = scheduler;
    return scheduler;
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

  /** Everything a dashboard or an adaptive loop reads, in one object. O(workers + prefixes). */
  snapshot(): SchedulerSnapshot {
    return this.#state.snapshot();
  }

  /** One task's record, or undefined if the scheduler does not hold it. */
  taskInfo(key: string): TaskInfo | undefined {
    return this.#state.taskInfo(key);
  }

  /** Held tasks by state. */
  stateCounts(): StateCounts {
    return this.#state.stateCounts();
  }

  /** Tasks the scheduler holds (any state but forgotten). */
  get taskCount(): number {
    return this.#state.taskCount;
  }

  /** Workers the state machine counts (connected and registered). */
  get workerCount(): number {
    return this.#state.workerCount;
  }

  /** Scattered data waiting for a first worker to put it on. */
  get pendingScatters(): number {
    return this.#scatters.waiting;
  }

  /**
   * What happened to these keys, oldest first: the scheduler's transitions and each
   * worker's, with the stimulus behind each, on this process's clock.
   */
  async story(keys: readonly string[]): Promise<StoryEntry[]> {
    const own = this.#state.story(...keys);
    const theirs = await holdOpen(this.#requests.stories([...this.#workers.keys()], keys, (w) => this.#workers.get(w)?.clockOffset ?? 0));
    return [...own, ...theirs].sort((a, b) => a.at - b.at);
  }

  /**
   * Starts afresh: every client's tasks are cancelled and every result freed, then every
   * worker drops what it holds and replaces its threads (stopping what still runs).
   * Resolves once each worker answered; a worker that does not answer within 30 s is
   * removed from the cluster.
   */
  async restart(): Promise<void> {
    this.assertRunning();
    this.#apply({ op: 'restart', now: performance.now() });
    const silent = await holdOpen(this.#requests.restart([...this.#workers.keys()], 30_000));
    for (const id of silent) {
      this.#log.warn('worker did not restart within 30 s; it is removed', { worker: id });
      this.#workers.get(id)?.conn.destroy();
    }
  }

  /** Checks the state machine's invariants; throws InvariantError naming the first broken. */
  validate(): void {
    this.#state.validate();
  }

  /**
   * Attaches a plugin (dashboard, adaptive loop, metrics…); returns a function that
   * detaches it.
   */
  addPlugin(plugin: SchedulerPlugin): () => void {
    return this.#plugins.add(plugin);
  }

  /** Resolves once at least `n` workers are connected. */
  waitForWorkers(n: number, signal?: AbortSignal): Promise<void> {
    return holdOpen(this.#waitForWorkers(n, signal));
  }

  async #waitForWorkers(n: number, signal?: AbortSignal): Promise<void> {
    while (this.#workers.size < n) {
      this.assertRunning();
      signal?.throwIfAborted();
      await new Promise<void>((resolve) => {
        this.#workerWaiters.push(resolve);
        // An abort wakes the wait too, so it rejects instead of waiting on.
        signal?.addEventListener('abort', () => resolve(), { once: true });
      });
    }
  }

  /**
   * Gracefully retires workers (by id or name): the data only they hold moves to workers
   * that stay, then they are told to close. Resolves, once each has left or was kept, with
   * the ids of those that left; a worker whose data had nowhere to go stays, data and all.
   */
  retireWorkers(workers: readonly string[]): Promise<string[]> {
    const wanted = new Set(workers);
    const ids = [...this.#workers.values()].filter((w) => wanted.has(w.id) || wanted.has(w.name)).map((w) => w.id);
    const outcomes = ids.map(
      (id) =>
        new Promise<boolean>((resolve) => {
          const list = this.#departures.get(id);
          if (list === undefined) this.#departures.set(id, [resolve]);
          else list.push(resolve);
        }),
    );
    this.#apply({ op: 'retire-workers', workers: ids, now: performance.now() });
    return holdOpen(Promise.all(outcomes).then((left) => ids.filter((_, i) => left[i])));
  }

  #departed(id: string, left: boolean): void {
    const waiting = this.#departures.get(id);
    this.#departures.delete(id);
    if (waiting !== undefined) for (const resolve of waiting) resolve(left);
  }

  #onTick(): void {
    const now = performance.now();
    this.#apply({ op: 'tick', now });
    this.#plugins.call('tick', now);
    if (this.#functions.sweepDue) this.#sweepFunctions();
  }

  /**
   * Forgets shipped function sources no held task needs, so a long-lived scheduler that
   * is sent fresh functions all day holds only those of its current work. Amortised: a
   * sweep (one walk over the tasks) comes only once the table has doubled.
   */
  #sweepFunctions(): void {
    const used = new Set<string>();
    this.#state.forEachSpec((spec, fns) => {
      if (fns !== null) {
        for (const id of fnIdList(fns)) used.add(id);
        return;
      }
      const steps = (spec as Partial<TaskSpec>).node?.steps;
      if (steps !== undefined) for (const step of steps) used.add(step.fn);
    });
    const gone = this.#functions.sweep(used);
    // Workers drop nothing, but a function sent again is then sent to them again too.
    if (gone.length > 0) for (const w of this.#workers.values()) for (const id of gone) w.fns.delete(id);
  }

  /** Function sources the scheduler holds (for tests and metrics). */
  get functionCount(): number {
    return this.#functions.size;
  }

  /** Key prefixes the scheduler holds records of. */
  get prefixCount(): number {
    return this.#state.prefixCount;
  }

  /**
   * Closing stops accepting and closes every connection (workers see theirs close and
   * leave); plugins close first, while the scheduler still answers them.
   */
  protected async onClose(): Promise<void> {
    clearInterval(this.#tick);
    for (const stop of this.#storeListeners.splice(0)) stop();
    await attemptAll([
      () => this.#plugins.close(),
      () => {
        for (const id of [...this.#departures.keys()]) this.#departed(id, false);
        this.#scatters.close('the scheduler closed');
        this.#requests.close();
        this.#flush();
        for (const waiter of this.#workerWaiters.splice(0)) waiter();
      },
      () => this.#server.close(),
    ]);
  }

  /** Aborting drops every connection at once, without waiting for queued messages. */
  protected override async onDestroy(error?: Error): Promise<void> {
    clearInterval(this.#tick);
    for (const stop of this.#storeListeners.splice(0)) stop();
    await attemptAll([() => this.#plugins.close(), () => this.#server.destroy(error)]);
  }

  // ---- connections ----

  #accept(conn: Connection<WorkerToScheduler | SchedulerToWorker | ClientToScheduler | SchedulerToClient>, hello: Hello): void {
    if (this.state !== 'running') {
      conn.destroy();
      return;
    }
    // A peer that left right after its handshake is nobody to register, and no error.
    if (conn.state !== 'open') return;
    switch (hello.role) {
      case ROLE_WORKER:
        this.#acceptWorker(conn as WorkerConn);
        return;
      case ROLE_CLIENT:
        this.#acceptClient(conn as ClientConn);
        return;
      default:
        this.#log.warn('refused a peer', { peer: conn.remoteAddress, reason: `unknown role '${hello.role}'` });
        conn.destroy();
    }
  }

  #acceptWorker(conn: WorkerConn): void {
    let entry: WorkerEntry | undefined;
    conn.onMessage((message) => {
      const m = message as WorkerToScheduler;
      if (entry === undefined) {
        if (m.op !== 'register') throw new ProtocolError(`a worker's first message must be register, not '${m.op}'`);
        entry = this.#register(conn, m);
        return;
      }
      this.#onWorkerMessage(entry, m);
    });
    conn.onClose((reason) => {
      if (entry === undefined) return;
      // Closed from this side (the scheduler closing): the worker was not lost, it was let go.
      if (entry.leaving === 'lost' && reason.kind === 'closed' && reason.by === 'local') this.#log.info('worker left', { worker: entry.id, name: entry.name, reason: 'the scheduler closed' });
      else if (entry.leaving === 'lost') this.#log.warn('lost worker', { worker: entry.id, name: entry.name, reason: reason.kind === 'error' ? reason.error.message : 'its connection closed without a goodbye' });
      else this.#log.info(entry.leaving === 'retired' ? 'worker retired' : 'worker left', { worker: entry.id, name: entry.name });
      this.#dropWorker(entry);
    });
  }

  #register(conn: WorkerConn, m: Extract<WorkerToScheduler, { op: 'register' }>): WorkerEntry {
    if (typeof m.name !== 'string' || typeof m.nthreads !== 'number' || typeof m.memoryLimit !== 'number') {
      throw new ProtocolError('malformed register message');
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
    conn.send({ op: 'registered', id, ...(this.#store === null ? {} : { store: { holder: storeHolderId(this.#store.address), address: this.#store.address } }) });
    const now = performance.now();
    this.#log.info('worker joined', { worker: id, name: m.name, threads: m.nthreads });
    this.#apply({ op: 'add-worker', worker: id, name: m.name, nthreads: m.nthreads, memoryLimit: m.memoryLimit, now });
    this.#plugins.call('addWorker', entry, now);
    for (const waiter of this.#workerWaiters.splice(0)) waiter();
    this.#scatters.workerJoined();
    return entry;
  }

  #dropWorker(entry: WorkerEntry): void {
    if (this.#workers.get(entry.id) !== entry) return;
    this.#workers.delete(entry.id);
    this.#requests.workerLeft(entry.id);
    const now = performance.now();
    if (this.state === 'running') this.#apply({ op: 'remove-worker', worker: entry.id, reason: entry.leaving, now });
    this.#plugins.call('removeWorker', entry, entry.leaving, now);
    this.#departed(entry.id, true);
    // After the state machine forgot the worker: its unacknowledged shares go elsewhere.
    this.#scatters.workerLeft(entry.id);
  }

  #onWorkerMessage(entry: WorkerEntry, m: WorkerToScheduler): void {
    const worker = entry.id;
    switch (m.op) {
      case 'register':
        throw new ProtocolError('a worker registered twice on one connection');
      case 'tasks-finished': {
        const now = performance.now();
        // Written to the store as it is now; a store lost since holds nothing we count on.
        const stored = typeof m.stored === 'string' && m.stored === this.#storeRef?.holder ? m.stored : undefined;
        if (m.tickets !== undefined && !isTicketList(m.tickets)) throw new ProtocolError('malformed tasks-finished message: tickets must be a list of integers');
        this.#tasksFinished += m.keys.length;
        if (this.#plugins.has('taskFinished')) this.#reportFinished(entry, m);
        // One event for the report: one stimulus, and freed slots filled once.
        this.#apply({
          op: 'tasks-finished',
          worker,
          keys: m.keys,
          ...(m.tickets === undefined ? {} : { tickets: m.tickets }),
          nbytes: m.nbytes,
          startedAt: m.startedAt,
          finishedAt: m.finishedAt,
          now,
          ...(stored === undefined ? {} : { stored }),
        });
        return;
      }
      case 'task-erred': {
        const now = performance.now();
        const info = this.#state.taskInfo(m.key);
        if (info !== undefined && info.retries > 0 && info.processingOn === worker) {
          this.#log.info('task failed; trying again', { key: m.key, worker: entry.name, triesLeft: info.retries - 1, error: `${m.error.name}: ${m.error.message}` });
        }
        if (this.#plugins.has('taskErred')) {
          // When the worker says when it ran, that; else since the scheduler thinks it started.
          const { startedAt, finishedAt } = m;
          const ran = startedAt !== undefined && finishedAt !== undefined;
          const estimated = info !== undefined && Number.isFinite(info.startedAt) ? info.startedAt : now;
          const start = ran ? startedAt + entry.clockOffset : estimated;
          const stop = ran ? finishedAt + entry.clockOffset : now;
          this.#plugins.call('taskErred', { key: m.key, worker: entry, error: m.error, thread: m.thread ?? 0, start, stop });
        }
        this.#apply({ op: 'task-erred', worker, key: m.key, error: m.error, now });
        return;
      }
      case 'add-keys': {
        // A worker reports keys it fetched from a peer: transfers, for the dashboard.
        if (this.#plugins.has('dataMoved')) {
          const now = performance.now();
          for (const key of m.keys) this.#plugins.call('dataMoved', key, this.#state.taskInfo(key)?.nbytes ?? 0, entry, now);
        }
        this.#apply({ op: 'add-keys', worker, keys: m.keys });
        return;
      }
      case 'tasks-started': {
        if (typeof m.startedAt !== 'number') throw new ProtocolError('malformed tasks-started message: no startedAt');
        const startedAt = m.startedAt + entry.clockOffset;
        if (m.tickets !== undefined) {
          if (!isTicketList(m.tickets)) throw new ProtocolError('malformed tasks-started message: tickets must be a list of integers');
          this.#apply({ op: 'tasks-started', worker, tickets: m.tickets, startedAt });
        } else if (isList(m.keys)) this.#apply({ op: 'tasks-started', worker, keys: m.keys, startedAt });
        else throw new ProtocolError('malformed tasks-started message: neither keys nor tickets');
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
      case 'put-data-done':
        this.#scatters.acknowledged(m.id, worker, m.nbytes);
        return;
      case 'goodbye':
        if (entry.leaving === 'lost') entry.leaving = 'closed';
        return;
      case 'retire':
        entry.selfRetiring = true;
        this.#apply({ op: 'retire-workers', workers: [worker], now: performance.now() });
        return;
      case 'relay-get-data':
        this.#requests.relay(m.worker, m.keys, m.id, (reply) => this.#toWorker(entry, reply));
        return;
      case 'data':
        this.#requests.relayed(m.id, worker, m);
        return;
      case 'story-reply':
        this.#requests.storyPart(m.id, worker, m.entries);
        return;
      case 'restart-done':
        this.#requests.restarted(m.id, worker);
        return;
      case 'store-put':
      case 'store-get':
      case 'store-delete':
        serveStoreRequest(this.#store, m, (reply) => this.#toWorker(entry, reply));
        return;
      default: {
        const never: never = m;
        throw new ProtocolError(`unknown worker message '${(never as { op: string }).op}'`);
      }
    }
  }

  #acceptClient(conn: ClientConn): void {
    const entry: ClientEntry = { id: `client-${this.#nextClient++}-${randomBytes(3).toString('hex')}`, conn, outbox: [] };
    this.#clients.set(entry.id, entry);
    conn.send({ op: 'client-welcome', id: entry.id, ...(this.#store === null ? {} : { store: { holder: storeHolderId(this.#store.address), address: this.#store.address } }) });
    conn.onMessage((message) => this.#onClientMessage(entry, message as ClientToScheduler));
    conn.onClose(() => {
      this.#clients.delete(entry.id);
      this.#scatters.clientLeft(entry);
      if (this.state === 'running') this.#apply({ op: 'client-removed', client: entry.id });
    });
  }

  #onClientMessage(entry: ClientEntry, m: ClientToScheduler): void {
    const client = entry.id;
    switch (m.op) {
      case 'update-graph': {
        if (!isList(m.tasks) || !isList(m.wanted) || !isList(m.fns) || (m.more !== undefined && typeof m.more !== 'boolean')) {
          throw new ProtocolError('malformed update-graph message');
        }
        this.#functions.register(m.fns);
        this.#apply({
          op: 'update-graph',
          client,
          tasks: graphTasks(m.tasks, m.fns),
          wanted: m.wanted,
          ...(m.userPriority === undefined ? {} : { userPriority: m.userPriority }),
          ...(m.more === true ? { more: true } : {}),
          now: performance.now(),
        });
        // New work: an adaptive loop looks now rather than at its next tick.
        if (m.more !== true) this.#plugins.call('workArrived', performance.now());
        return;
      }
      case 'release-keys':
        this.#apply({ op: 'release-keys', client, keys: m.keys });
        return;
      case 'cancel':
        this.#apply({ op: 'cancel', client, keys: m.keys });
        return;
      case 'upload-module':
        if (typeof m.hash !== 'string' || !(m.code instanceof Uint8Array)) throw new ProtocolError('malformed upload-module message');
        this.#functions.upload(m.hash, m.code);
        return;
      case 'who-has': {
        const whoHas = m.keys.map((key) => this.#state.taskInfo(key)?.whoHas ?? null);
        this.#toClient(entry, { op: 'who-has-reply', id: m.id, whoHas });
        return;
      }
      case 'scatter':
        if (!isList(m.items)) throw new ProtocolError('malformed scatter message');
        if (this.#workers.size === 0) this.#plugins.call('workArrived', performance.now());
        this.#scatters.start(entry, m.id, m.items);
        return;
      case 'scaling-history':
        this.#toClient(entry, { op: 'scaling-history-reply', id: m.id, history: this.#plugins.scalingHistory(m.since) ?? null });
        return;
      case 'relay-get-data':
        this.#requests.relay(m.worker, m.keys, m.id, (reply) => this.#toClient(entry, reply));
        return;
      case 'story':
        void this.story(m.keys).then((entries) => this.#toClient(entry, { op: 'story-reply', id: m.id, entries }));
        return;
      case 'wait-for-workers': {
        const { id, n, timeoutMs } = m;
        if (!Number.isInteger(n) || typeof timeoutMs !== 'number') throw new ProtocolError('malformed wait-for-workers message');
        const signal = timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined;
        if (this.#workers.size < n) this.#plugins.call('workArrived', performance.now());
        void this.waitForWorkers(n, signal).then(
          () => this.#toClient(entry, { op: 'workers-ready', id, workers: this.#workers.size, error: null }),
          () => this.#toClient(entry, { op: 'workers-ready', id, workers: this.#workers.size, error: `${this.#workers.size} of ${n} workers connected after ${timeoutMs} ms` }),
        );
        return;
      }
      case 'missing-data':
        if (typeof m.key !== 'string' || typeof m.from !== 'string') throw new ProtocolError('malformed missing-data message');
        this.#apply({ op: 'missing-data', worker: client, key: m.key, from: m.from });
        return;
      case 'store-put':
      case 'store-get':
      case 'store-delete':
        serveStoreRequest(this.#store, m, (reply) => this.#toClient(entry, reply));
        return;
      case 'restart':
        void this.restart().then(
          () => this.#toClient(entry, { op: 'restarted', id: m.id, error: null }),
          (error: unknown) => this.#toClient(entry, { op: 'restarted', id: m.id, error: error instanceof Error ? error.message : String(error) }),
        );
        return;
      default: {
        const never: never = m;
        throw new ProtocolError(`unknown client message '${(never as { op: string }).op}'`);
      }
    }
  }

  // ---- the state machine and its commands ----

  #apply(event: SchedulerEvent): void {
    if (this.state !== 'running' && event.op !== 'remove-worker' && event.op !== 'client-removed') return;
    const commands = this.#state.handle(event);
    if (commands.length > 0) {
      const context = this.#dispatchContext;
      context.stimulus = this.#state.lastStimulus;
      for (const command of commands) dispatch(command, context);
    }
    this.#scheduleFlush();
  }

  /** Tells plugins of each finished task, its times moved onto this process's clock. */
  #reportFinished(worker: WorkerEntry, m: Extract<WorkerToScheduler, { op: 'tasks-finished' }>): void {
    const { keys, nbytes, startedAt, finishedAt, threads } = m;
    for (let i = 0; i < keys.length; i++) {
      this.#plugins.call('taskFinished', {
        key: keys[i]!,
        worker,
        thread: threads[i] ?? 0,
        start: (startedAt[i] ?? 0) + worker.clockOffset,
        stop: (finishedAt[i] ?? 0) + worker.clockOffset,
        nbytes: nbytes[i] ?? 0,
      });
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

  /**
   * Everything queued goes out together once the messages that arrived in this turn of the
   * event loop are handled: the packets read from every peer in one poll share the
   * packets sent, so a burst of reports from several workers costs one packet per peer,
   * not one per report (each costs a write, and on loopback the receiver's work too).
   */
  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(this.#flushNow);
  }

  readonly #flushNow = (): void => {
    this.#flushScheduled = false;
    this.#flush();
  };

  #flush(): void {
    flushOutboxes(this.#workers.values(), this.#clients.values(), this.#log);
    if (this.#storeDeletes.length > 0 && this.#store !== null) {
      const keys = this.#storeDeletes;
      this.#storeDeletes = [];
      // A key left behind expires with its time-to-live.
      this.#store.delete(keys).catch((error: unknown) => this.#log.warn('could not delete results from the store', { keys: keys.length, reason: error instanceof Error ? error.message : String(error) }));
    }
  }
}

/** Array.isArray without widening a readonly array's element type to any. */
function isList(value: unknown): value is readonly unknown[] {
  return Array.isArray(value);
}

/** Tickets as workers send them (-1: none). */
function isTicketList(value: unknown): value is readonly number[] {
  if (!Array.isArray(value)) return false;
  for (let i = 0; i < value.length; i++) if (!Number.isInteger(value[i])) return false;
  return true;
}

export type { TaskErrorInfo };
