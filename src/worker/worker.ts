/**
 * A worker process: registers with the scheduler, runs the tasks it is given in a pool of
 * threads (so its own event loop stays free for heartbeats and data transfer), keeps the
 * results in memory, fetches missing dependencies from the peers that hold them, and
 * serves its data to peers and clients.
 *
 * ```ts
 * const worker = await Worker.start({ scheduler: 'tcp://127.0.0.1:8786', nthreads: 2 });
 * await worker.closed;   // until the scheduler goes away or tells it to close
 * ```
 *
 * This is the shell: connections to the scheduler and peers, the data port, the threads,
 * the data store, heartbeats and the metrics server. What to run, fetch, keep or drop is
 * decided by the pure core (state.ts): messages become its events, its instructions become
 * sends. Beside its data port the worker serves `GET /metrics` (Prometheus text) and
 * `GET /health` on a small HTTP server of its own (`metricsPort`), so a scraper need not go
 * through the scheduler.
 *
 * Why one file: the shell turns each message into one event for the core and each
 * instruction into I/O, in one switch each; the data store, executor, metrics, spill and
 * lifetime live beside it.
 */
import type { Server as HttpServer } from 'node:http';
import { isIP } from 'node:net';
import { type Connection, ConnectionClosedError, connect, listen, parseAddress, type Server } from '../comm/index.js';
import { describeError, ProtocolError } from '../errors.js';
import { attemptAll, Resource } from '../lifecycle.js';
import { DataPeers } from '../protocol/data-peers.js';
import { BufferPool } from '../serialize/buffer-pool.js';
import {
  type DataReply,
  isDialable,
  isStoreHolder,
  type KeyValue,
  type PeerMessage,
  ROLE_WORKER,
  type SchedulerToWorker,
  type StoreRef,
  type WorkerToScheduler,
} from '../protocol/messages.js';
import { findMemoryStore, getValues, openStore, ProxyStore, putValues, type ResultStore } from '../store/index.js';
import { type ResolvedWorkerOptions, resolveWorkerOptions, type WorkerOptions } from './options.js';
import { DataStore } from './data-store.js';
import type { WorkerEvent, WorkerInstruction } from './events.js';
import { collectGarbage } from './gc.js';
import { Executor, RECYCLED_BYTES } from './executor.js';
import { FrameLender } from './frame-lender.js';
import { metricsText } from './metrics.js';
import { closeHttp, httpBase, startMetricsServer } from './metrics-server.js';
import { WorkerState } from './state.js';
import { TASK_STATE_NAMES } from './records.js';

export type { WorkerOptions, WorkerTlsOptions } from './options.js';

type SchedulerConn = Connection<WorkerToScheduler | SchedulerToWorker>;
type PeerConn = Connection<PeerMessage>;

// A full garbage collection pauses the process; past the pause threshold, one every 2 s at most.
const GC_NUDGE_INTERVAL_MS = 2000;

export class Worker extends Resource {
  readonly name: string;
  /** The id the scheduler knows this worker by: its data address, or relay://… */
  readonly id: string;
  readonly address: string | null;
  /** Where its Prometheus metrics are served (`http://host:port/metrics`), or null when off. */
  readonly metricsLink: string | null;

  readonly #options: ResolvedWorkerOptions;
  readonly #scheduler: SchedulerConn;
  readonly #server: Server<PeerMessage> | null;
  readonly #metricsServer: HttpServer | null;
  /** The decisions: what runs, what is fetched from whom, what is kept. */
  readonly #state: WorkerState;
  readonly #executor: Executor;
  /** Results held here: in memory, or spilled to disk past the memory target. */
  readonly #data: DataStore;
  readonly #peers: DataPeers;
  /** Lends the memory of fetched frames, when tasks run on threads (see FrameLender). */
  readonly #lender: FrameLender | null;
  /** Large buffers kept for reuse: the threads' copies and fetched frames let go. */
  readonly #buffers: BufferPool;
  #retiring: Promise<void> | null = null;
  readonly #heartbeat: NodeJS.Timeout;
  readonly #startedAt = performance.now();

  // Reports gathered over one turn of the event loop.
  #finishedKeys: string[] = [];
  #finishedBytes: number[] = [];
  #finishedStart: number[] = [];
  #finishedEnd: number[] = [];
  #finishedThread: number[] = [];
  #finishedTickets: number[] = [];
  #addedKeys: string[] = [];
  /** Reports said this turn and not yet sent, in the order they were said (see #report). */
  #held: WorkerToScheduler[] = [];
  #reportScheduled = false;
  #pumpScheduled = false;
  /** When the collector was last run for memory past the pause threshold. */
  #lastGc = -Infinity;

  // The scheduler's result store, when it has one (see #openStore).
  readonly #storeRef: StoreRef | null;
  #store: Promise<ResultStore | null> | null = null;
  #proxy: ProxyStore | null = null;
  /** After a failed open, when to try again (meanwhile the worker does without the store). */
  #storeRetryAt = 0;
  /** Finished here, to be written to the store before they are reported (a worker that cannot be reached). */
  #toStore: FinishedReport[] = [];
  readonly #storeWrites = new Set<Promise<void>>();
  /**
   * Keys finished here whose store write has not settled: until it has, the value here may
   * yet give way to another run's (see #putFirst), so nothing reads it.
   */
  readonly #unsettled = new Map<string, Unsettled>();

  private constructor(
    options: ResolvedWorkerOptions,
    scheduler: SchedulerConn,
    server: Server<PeerMessage> | null,
    metricsServer: HttpServer | null,
    id: string,
    storeRef: StoreRef | null,
  ) {
    super('the worker');
    this.#storeRef = storeRef;
    this.#options = options;
    this.name = options.name;
    // One pool of large buffers the worker is done with, for its threads' copies of inputs
    // and for the frames of values fetched from peers, taken back as those are let go.
    const buffers = (this.#buffers = new BufferPool(RECYCLED_BYTES));
    const lender = new FrameLender(buffers);
    this.#data = new DataStore({
      memoryTarget: options.memoryTarget,
      ...(options.spillDirectory === undefined ? {} : { directory: options.spillDirectory }),
      onLetGo: (lent) => lender.released(lent),
    });
    this.#executor = new Executor(options.nthreads, this.#data, buffers);
    // Only where tasks get copies of their inputs: a task run in this process could keep one.
    this.#lender = this.#executor.threaded ? lender : null;
    this.#peers = new DataPeers({
      name: options.name,
      timeout: 10_000,
      ...(options.token === undefined ? {} : { token: options.token }),
      ...(options.tls === undefined ? {} : { tls: options.tls }),
      ...(this.#lender === null ? {} : { frameMemory: this.#lender.memory }),
      onError: (holder, error) => options.log(`could not fetch from ${holder}: ${describeError(error).message}`),
    });
    this.#scheduler = scheduler;
    this.#server = server;
    this.#metricsServer = metricsServer;
    this.id = id;
    this.address = server === null ? null : server.address;
    this.metricsLink = metricsServer === null ? null : `${httpBase(metricsServer)}/metrics`;
    this.#state = new WorkerState({
      id,
      nthreads: options.nthreads,
      memoryPause: options.memoryPause,
      validate: options.validate,
    });
    this.#heartbeat = setInterval(() => this.#sendHeartbeat(), options.heartbeatInterval);
    this.#heartbeat.unref();
  }

  static async start(options: WorkerOptions): Promise<Worker> {
    const resolved = resolveWorkerOptions(options);
    const conn = await connect<WorkerToScheduler | SchedulerToWorker>(resolved.scheduler, {
      role: ROLE_WORKER,
      name: resolved.name,
      // Reports are gathered per turn here already; waiting longer only adds latency.
      batchInterval: 0,
      timeout: resolved.connectTimeout,
      ...(resolved.token === undefined ? {} : { token: resolved.token }),
      // A worker with TLS material for its own port may still report to a tcp:// scheduler.
      ...(resolved.tls === undefined || resolved.scheduler.startsWith('tcp://') ? {} : { tls: resolved.tls }),
    });
    let worker: Worker | undefined;
    let server: Server<PeerMessage> | null = null;
    let metricsServer: HttpServer | null = null;
    const early: SchedulerToWorker[] = [];
    try {
      // Listen where the scheduler reached us from: that interface is the one peers share.
      const host = resolved.host ?? localHost(conn.localAddress);
      if (resolved.metricsPort !== false) {
        metricsServer = await startMetricsServer(host, resolved.metricsPort, resolved.token, () => (worker === undefined ? undefined : worker.#metricsText()));
      }
      if (resolved.listen) {
        server = await listen<PeerMessage>({
          host,
          port: 0,
          // Peers wait on each answer: send it at once.
          batchInterval: 0,
          ...(resolved.token === undefined ? {} : { token: resolved.token }),
          ...(serverTls(resolved) ?? {}),
          onConnection: (peer) => {
            peer.onMessage((message) => {
              if (worker === undefined) throw new ProtocolError('a peer asked for data before the worker had registered');
              worker.#onPeerMessage(peer, message);
            });
          },
          onRefused: ({ remoteAddress, error }) => resolved.log(`refused peer ${remoteAddress}: ${error.message}`),
        });
      }
      const address = server === null ? null : server.address;
      const registered = await new Promise<{ id: string; store: StoreRef | null }>((resolve, reject) => {
        let registered = false;
        conn.onMessage((message) => {
          // Work may follow 'registered' in the same packet, before the worker exists.
          if (worker !== undefined) worker.#onSchedulerMessage(message as SchedulerToWorker);
          else if (registered) early.push(message as SchedulerToWorker);
          else if (message.op === 'registered') {
            registered = true;
            resolve({ id: message.id, store: message.store ?? null });
          } else reject(new ProtocolError(`the scheduler answered register with '${message.op}'`));
        });
        conn.onClose(() => reject(new ConnectionClosedError('the scheduler closed the connection during registration')));
        conn.send({ op: 'register', name: resolved.name, nthreads: resolved.nthreads, memoryLimit: resolved.memoryLimit, address, timeOrigin: performance.timeOrigin });
      });
      worker = new Worker(resolved, conn, server, metricsServer, registered.id, registered.store);
    } catch (error) {
      conn.destroy();
      await Promise.allSettled([server?.close(), metricsServer === null ? undefined : closeHttp(metricsServer)]);
      throw error;
    }
    const live = worker;
    for (const message of early) live.#onSchedulerMessage(message);
    conn.onClose(() => void live.close());
    return live;
  }


  /** Keys of the results this worker holds. */
  get keys(): string[] {
    return [...this.#data.keys()];
  }

  /** Bytes of results in memory and on disk. */
  get memory(): { readonly managed: number; readonly spilled: number } {
    return { managed: this.#data.memoryBytes, spilled: this.#data.spilledBytes };
  }

  /**
   * Leaves the cluster: says goodbye, stops its threads and closes every connection.
   * With `graceful`, first asks the scheduler to retire it, so results only it holds move
   * to other workers (waiting at most `timeout` ms, default 60 000). Idempotent.
   */
  override close(options: { readonly graceful?: boolean; readonly timeout?: number } = {}): Promise<void> {
    if (options.graceful === true && this.state === 'running' && this.#scheduler.state === 'open') {
      this.#retiring ??= this.#retire(options.timeout ?? 60_000);
      return this.#retiring;
    }
    return super.close();
  }

  async #retire(timeout: number): Promise<void> {
    this.#handle({ op: 'retire', now: performance.now() });
    // The scheduler answers with close-worker once the data has moved (or cannot).
    const timer = setTimeout(() => void this.close(), timeout);
    timer.unref();
    await this.closed;
    clearTimeout(timer);
  }

  /**
   * Resolves once every result finished so far is written to the store and reported (a
   * worker that cannot be reached; at once for others). A worker about to vanish awaits it.
   */
  async flushStore(): Promise<void> {
    if (this.#toStore.length > 0) this.#writeToStore();
    while (this.#storeWrites.size > 0) await Promise.allSettled([...this.#storeWrites]);
  }

  /** Says goodbye (so what it ran is not held against its tasks), then stops everything. */
  protected async onClose(): Promise<void> {
    clearInterval(this.#heartbeat);
    // Results on their way to the store get there (and are reported) before the goodbye.
    if (this.#scheduler.state === 'open') await this.flushStore();
    await attemptAll([
      () => {
        this.#toScheduler({ op: 'goodbye' });
      },
      () => this.#scheduler.close(),
      () => this.#executor.destroy(this.closedError()),
      () => this.#server?.close(),
      () => (this.#metricsServer === null ? undefined : closeHttp(this.#metricsServer)),
      () => this.#peers.close(),
      () => this.#data.close(),
      () => this.#closeStore(),
    ]).catch((error: unknown) => this.#options.log(`closing: ${describeError(error).message}`));
  }

  /** Leaves at once: no goodbye, so the scheduler counts what it ran as lost with it. */
  protected override async onDestroy(error?: Error): Promise<void> {
    clearInterval(this.#heartbeat);
    await attemptAll([
      () => this.#scheduler.destroy(error),
      () => this.#executor.destroy(error ?? this.closedError()),
      () => this.#server?.destroy(error),
      () => (this.#metricsServer === null ? undefined : closeHttp(this.#metricsServer)),
      () => this.#peers.close(),
      () => this.#data.close(),
      () => this.#closeStore(),
    ]).catch(() => undefined);
  }

  /** The worker's `/metrics` body; undefined once it is closed. */
  #metricsText(): string | undefined {
    if (this.state === 'closed') return undefined;
    const st = this.#state;
    return metricsText({
      name: this.name,
      status: this.state === 'running' && st.paused ? 'paused' : this.state,
      nthreads: this.#options.nthreads,
      memoryLimit: this.#options.memoryLimit,
      memory: { managed: this.#data.memoryBytes, spilled: this.#data.spilledBytes, process: process.memoryUsage.rss() },
      executing: st.count('running'),
      ready: st.count('ready'),
      inMemory: this.#data.size,
      tasksFinishedTotal: st.tasksFinishedTotal,
      tasksErredTotal: st.tasksErredTotal,
      taskDurationSecondsSum: st.taskSecondsTotal,
      taskDurationCount: st.tasksFinishedTotal,
      transfersTotal: st.transfersTotal,
      transferBytesTotal: st.transferBytesTotal,
      ...(this.#lender === null ? {} : { framesReusedTotal: this.#lender.reused }),
      reusableBytes: this.#buffers.bytes,
      uptimeSeconds: (performance.now() - this.#startedAt) / 1000,
    });
  }

  // ---- messages in: events for the core ----

  #onSchedulerMessage(m: SchedulerToWorker): void {
    if (this.state !== 'running') return;
    switch (m.op) {
      case 'registered':
        return;
      case 'load-fns':
        this.#executor.loadFns(m.fns);
        return;
      case 'load-module':
        this.#executor.saveModule(m.hash, m.code);
        return;
      case 'compute': {
        const now = performance.now();
        let stimulus: string | undefined;
        let fns: readonly string[] | undefined;
        // The first task's ticket, the next one's one more; none when not a whole number.
        let ticket = Number.isSafeInteger(m.ticket) && (m.ticket as number) >= 0 ? (m.ticket as number) : -1;
        for (const [key, spec, dependencies, given, givenFns] of m.tasks) {
          stimulus = given ?? stimulus;
          if (typeof givenFns === 'string') fns = [givenFns];
          else if (Array.isArray(givenFns)) fns = givenFns;
          this.#handle(typeof spec === 'string' && fns !== undefined ? { op: 'compute-task', key, spec, dependencies, now, stimulus, fns, ticket } : { op: 'compute-task', key, spec, dependencies, now, stimulus, ticket });
          if (ticket >= 0) ticket++;
        }
        return;
      }
      case 'free-keys':
        this.#handle({ op: 'free-keys', keys: m.keys, now: performance.now(), stimulus: m.stimulus });
        return;
      case 'steal-request': {
        // A task waiting in a batch behind others moves too, if its thread can still be
        // told to stop before it.
        const at = this.#state.batched(m.key);
        const cut = at !== null && this.#executor.cut(at.batch, at.index) ? { batch: at.batch, cut: at.index } : undefined;
        this.#handle({ op: 'steal-request', key: m.key, now: performance.now(), stimulus: m.stimulus, ...(cut === undefined ? {} : { cut }) });
        return;
      }
      case 'replicate':
        this.#handle({ op: 'replicate', keys: m.keys, now: performance.now(), stimulus: m.stimulus });
        return;
      case 'close-worker':
        void this.close();
        return;
      case 'put-data':
        this.#handle({ op: 'put-data', id: m.id, items: m.items, now: performance.now() });
        return;
      case 'get-data':
        void this.#answerSettled(m.id, m.keys).then((reply) => this.#reply(reply, (r) => this.#toScheduler(r)));
        return;
      case 'data':
        // A relayed answer to a gather: the request id is the core's.
        this.#handle({ op: 'gather-done', request: m.id, values: m.values, now: performance.now() });
        return;
      case 'story-request':
        this.#toScheduler({ op: 'story-reply', id: m.id, entries: this.#state.story(...m.keys) });
        return;
      case 'store-reply':
        this.#proxy?.answer(m);
        return;
      case 'restart':
        // Everything this worker knows is forgotten; a task still running finishes into nothing.
        this.#handle({ op: 'free-keys', keys: TASK_STATE_NAMES.flatMap((s) => this.#state.keysIn(s)), now: performance.now(), stimulus: `restart-${m.id}` });
        this.#toScheduler({ op: 'restart-done', id: m.id });
        return;
      default: {
        const never: never = m;
        throw new ProtocolError(`unknown scheduler message '${(never as { op: string }).op}'`);
      }
    }
  }

  #onPeerMessage(peer: PeerConn, m: PeerMessage): void {
    switch (m.op) {
      case 'get-data':
        void this.#answerSettled(m.id, m.keys).then((reply) => {
          if (peer.state === 'open') this.#reply(reply, (r) => peer.send(r));
        });
        return;
      case 'data':
        throw new ProtocolError('a peer sent data it was not asked for');
      default: {
        const never: never = m;
        throw new ProtocolError(`unknown peer message '${(never as { op: string }).op}'`);
      }
    }
  }

  /** Hands an event to the core and carries out what it says. */
  #handle(event: WorkerEvent): void {
    if (this.state !== 'running') return;
    const instructions = this.#state.handle(event);
    for (const instruction of instructions) this.#do(instruction);
    // What a burst of messages made ready starts together, after the burst.
    if (this.#state.wantsPump) this.#schedulePump();
    // Nothing ready and a thread idle: it takes back what another has not started.
    else if (this.#state.wantsTail && this.#executor.idleThreads > 0) {
      const cut = this.#executor.takeBack();
      if (cut !== null) this.#handle({ op: 'batch-cut', batch: cut.batch, cut: cut.cut, now: performance.now() });
    }
  }

  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    process.nextTick(() => {
      this.#pumpScheduled = false;
      this.#handle({ op: 'pump', now: performance.now() });
    });
  }

  // ---- instructions out ----

  #do(i: WorkerInstruction): void {
    switch (i.op) {
      case 'execute': {
        // Said as a thread begins the batch: if the process dies, the scheduler blames what
        // had started, not the tasks only queued here.
        const run = (): Promise<void> =>
          this.#executor.run(i.batch, i.tasks, i.inputs, this, (kept, following) => this.#started(i.tasks, i.tickets, kept, following)).then((event) => this.#handle(event));
        const waits = this.#settling(i.inputs);
        void (waits === null ? run() : waits.then(run));
        return;
      }
      case 'gather':
        if (isStoreHolder(i.holder)) {
          // Keys the store does not hold (or a store that fails) come back missing; the core reports them.
          void this.#readFromStore(i.keys).then((values) => this.#handle({ op: 'gather-done', request: i.request, values, now: performance.now() }));
        } else if (isDialable(i.holder)) {
          void this.#peers.get(i.holder, i.keys).then((reply) => this.#handle({ op: 'gather-done', request: i.request, values: reply.values, now: performance.now() }));
        } else {
          this.#toScheduler({ op: 'relay-get-data', id: i.request, worker: i.holder, keys: i.keys });
        }
        return;
      case 'store':
        this.#data.put(i.key, i.value, i.nbytes, i.received === true ? this.#lender?.held(i.value) : undefined);
        return;
      case 'delete-data':
        this.#data.delete(i.key);
        return;
      case 'task-finished':
        if (this.#writesToStore) {
          if (!this.#unsettled.has(i.key)) this.#unsettled.set(i.key, unsettled());
          this.#toStore.push({ key: i.key, nbytes: i.nbytes, startedAt: i.startedAt, finishedAt: i.finishedAt, thread: i.thread });
          this.#scheduleReport();
          return;
        }
        this.#finishedKeys.push(i.key);
        this.#finishedBytes.push(i.nbytes);
        this.#finishedStart.push(i.startedAt);
        this.#finishedEnd.push(i.finishedAt);
        this.#finishedThread.push(i.thread);
        this.#finishedTickets.push(i.ticket);
        this.#scheduleReport();
        return;
      case 'add-keys':
        for (const key of i.keys) this.#addedKeys.push(key);
        this.#scheduleReport();
        return;
      case 'task-erred':
      case 'missing-data':
      case 'steal-response':
      case 'put-data-done':
      case 'retire':
        this.#toScheduler(i);
        return;
      case 'worker-status':
        if (i.status === 'running') this.#options.log(`memory fell below the pause threshold; running again`);
        else this.#options.log(`process memory ${i.process} bytes is past the pause threshold ${this.#options.memoryPause}; pausing while results in memory are spilled or released`);
        this.#toScheduler({ op: 'worker-status', status: i.status });
        return;
      default: {
        const never: never = i;
        throw new ProtocolError(`unknown worker instruction '${(never as { op: string }).op}'`);
      }
    }
  }

  /**
   * Said as the thread begins the batch: if the process dies, the scheduler blames what had
   * started. A batch handed to an idle thread is said at once (the task may kill the process
   * next); one that begins as a thread's answer is handled (the batch ahead of it ended) is
   * said with that answer's report, at the end of this turn: one packet for both.
   * Only the batch's first `kept` tasks: those after were taken back (to run in another
   * batch, or stolen) before the thread began.
   */
  #started(tasks: readonly { readonly key: string }[], tickets: readonly number[] | null, kept: number, following: boolean): void {
    if (this.#scheduler.state !== 'open' || kept === 0) return;
    const startedAt = performance.now();
    const all = kept >= tasks.length;
    // What finished earlier in this turn is said first.
    this.#holdFinished();
    this.#held.push(
      tickets === null
        ? { op: 'tasks-started', keys: (all ? tasks : tasks.slice(0, kept)).map((t) => t.key), startedAt }
        : { op: 'tasks-started', tickets: all ? tickets : tickets.slice(0, kept), startedAt },
    );
    if (following) {
      this.#scheduleReport();
    } else {
      this.#report();
      this.#scheduler.flush();
    }
  }

  /** Sends a message after the reports said before it, so the scheduler hears them in order. */
  #toScheduler(message: WorkerToScheduler): void {
    if (this.#scheduler.state !== 'open') return;
    this.#report();
    this.#scheduler.send(message);
  }

  /**
   * Reports go out once the turn of the event loop that made them is done (setImmediate,
   * not the next tick: a thread's answer and the batch it begins arrive as one message
   * but are handled over several microtasks), so a turn costs the scheduler one packet.
   */
  #scheduleReport(): void {
    if (this.#reportScheduled) return;
    this.#reportScheduled = true;
    setImmediate(this.#onReportDue);
  }

  readonly #onReportDue = (): void => {
    this.#reportScheduled = false;
    if (this.#toStore.length > 0) this.#writeToStore();
    this.#report();
  };

  /** Sends the reports held, in the order they were said. */
  #report(): void {
    this.#holdFinished();
    if (this.#addedKeys.length > 0) {
      this.#held.push({ op: 'add-keys', keys: this.#addedKeys });
      this.#addedKeys = [];
    }
    if (this.#held.length === 0) return;
    const held = this.#held;
    this.#held = [];
    if (this.#scheduler.state !== 'open') return;
    // Keys, tickets and numbers: plain data, packed without the codec's walk.
    for (const message of held) this.#scheduler.sendPlain(message);
  }

  /** The tasks finished since the last report, as one held message. */
  #holdFinished(): void {
    if (this.#finishedKeys.length === 0) return;
    this.#held.push({
      op: 'tasks-finished',
      keys: this.#finishedKeys,
      nbytes: this.#finishedBytes,
      startedAt: this.#finishedStart,
      finishedAt: this.#finishedEnd,
      threads: this.#finishedThread,
      tickets: this.#finishedTickets,
    });
    this.#finishedKeys = [];
    this.#finishedBytes = [];
    this.#finishedStart = [];
    this.#finishedEnd = [];
    this.#finishedThread = [];
    this.#finishedTickets = [];
  }

  // ---- the result store ----

  /** A worker that cannot be reached keeps its results where they outlive it, when the scheduler has a store. */
  get #writesToStore(): boolean {
    return this.address === null && this.#storeRef !== null;
  }

  /** The store, opened on first use: directly when this process can, else through the scheduler. */
  #openStore(): Promise<ResultStore | null> {
    const ref = this.#storeRef;
    if (ref === null) return Promise.resolve(null);
    if (this.#store === null && performance.now() < this.#storeRetryAt) return Promise.resolve(null);
    this.#store ??= (async () => {
      if (ref.address.startsWith('memory://') && findMemoryStore(ref.address) === undefined) {
        const proxy = new ProxyStore(ref.address, (request) => {
          if (this.#scheduler.state !== 'open') throw new ConnectionClosedError('the connection to the scheduler is closed');
          this.#scheduler.send(request);
        });
        this.#proxy = proxy;
        this.#scheduler.onClose(() => proxy.disconnected(new ConnectionClosedError('the connection to the scheduler closed')));
        return proxy;
      }
      try {
        return await openStore(ref.address, { connectTimeoutMs: STORE_CONNECT_TIMEOUT_MS });
      } catch (error) {
        this.#options.log(`could not open ${ref.holder}; trying again in ${STORE_RETRY_MS / 1000} s: ${describeError(error).message}`);
        // The store may be back later; until then, nobody waits on it.
        this.#store = null;
        this.#storeRetryAt = performance.now() + STORE_RETRY_MS;
        return null;
      }
    })();
    return this.#store;
  }

  async #closeStore(): Promise<void> {
    const store = await this.#store;
    await store?.close();
  }

  /**
   * Writes what finished to the store, then reports it: held by the store where the store
   * holds the value held here — written by this worker, or adopted from an earlier write.
   */
  #writeToStore(): void {
    const batch = this.#toStore;
    this.#toStore = [];
    const write = (async () => {
      let stored: boolean[] = batch.map(() => false);
      let reported = batch;
      try {
        const store = await this.#openStore();
        // Freed while waiting: nobody wants it any more, so there is nothing to write or report.
        const { values } = await this.#answer(0, batch.map((r) => r.key));
        const held = new Map(values);
        reported = batch.filter((r) => held.has(r.key));
        if (store !== null && reported.length > 0) stored = await this.#putFirst(store, reported.map((r) => [r.key, held.get(r.key)] as const));
      } catch (error) {
        this.#options.log(`could not write results to the store; this worker holds them: ${describeError(error).message}`);
      }
      const holder = this.#storeRef?.holder;
      for (const inStore of [true, false]) {
        const part = reported.filter((_, i) => (stored[i] === true) === inStore);
        if (part.length === 0) continue;
        this.#toScheduler({
          op: 'tasks-finished',
          keys: part.map((r) => r.key),
          // An adopted value has its own size.
          nbytes: part.map((r) => this.#data.nbytes(r.key) ?? r.nbytes),
          startedAt: part.map((r) => r.startedAt),
          finishedAt: part.map((r) => r.finishedAt),
          threads: part.map((r) => r.thread),
          ...(inStore && holder !== undefined ? { stored: holder } : {}),
        });
      }
    })();
    this.#storeWrites.add(write);
    void write.finally(() => {
      this.#storeWrites.delete(write);
      for (const r of batch) {
        this.#unsettled.get(r.key)?.settle();
        this.#unsettled.delete(r.key);
      }
    });
  }

  /**
   * Writes values to the store, first write wins. Where another write of a key came first
   * (the task ran twice: a duplicated or retried invocation, a lost report), that value
   * stands: it is read back and replaces the one here, so tasks here, peers and clients all
   * read one value per key. Resolves, per item, whether the store holds the value held here.
   * A key that vanished between the lost write and the read (deleted, expired) is written
   * again, a few times at most; a read that fails leaves the key held here alone.
   */
  async #putFirst(store: ResultStore, items: readonly (readonly [string, unknown])[]): Promise<boolean[]> {
    const inStore = items.map(() => false);
    let todo = items.map((_, i) => i);
    for (let round = 0; round < PUT_ROUNDS && todo.length > 0; round++) {
      const outcomes = await putValues(store, todo.map((i) => items[i]!));
      const lost: number[] = [];
      todo.forEach((i, j) => {
        if (outcomes[j] === 'written') inStore[i] = true;
        else lost.push(i);
      });
      if (lost.length === 0) break;
      let found: Awaited<ReturnType<typeof getValues>>;
      try {
        found = await getValues(store, lost.map((i) => items[i]![0]));
      } catch (error) {
        this.#options.log(`could not read back results another run wrote first; this worker holds its own: ${describeError(error).message}`);
        break;
      }
      const index = new Map(lost.map((i) => [items[i]![0], i]));
      for (const [key, value] of found.values) {
        this.#options.log(`the result store held '${key}' already (computed twice, or fetched from there): its value replaces this worker's`);
        this.#handle({ op: 'store-kept', key, value, now: performance.now() });
        inStore[index.get(key)!] = true;
      }
      todo = found.missing.map((key) => index.get(key)!);
    }
    return inStore;
  }

  /** Waits, when any of `keys` is being written to the store, until those writes settle; null when none is. */
  #settling(keys: readonly string[]): Promise<void> | null {
    if (this.#unsettled.size === 0) return null;
    const waits: Promise<void>[] = [];
    for (const key of keys) {
      const u = this.#unsettled.get(key);
      if (u !== undefined) waits.push(u.settled);
    }
    return waits.length === 0 ? null : Promise.all(waits).then(() => undefined);
  }

  /** A data reply once the store writes of its keys settled: never a value about to be replaced. */
  async #answerSettled(id: number, keys: readonly string[]): Promise<DataReply> {
    const waits = this.#settling(keys);
    if (waits !== null) await waits;
    return this.#answer(id, keys);
  }

  /** Values of `keys` from the store; none when it cannot be read. */
  async #readFromStore(keys: readonly string[]): Promise<KeyValue[]> {
    try {
      const store = await this.#openStore();
      if (store === null) return [];
      return (await getValues(store, keys)).values;
    } catch (error) {
      this.#options.log(`could not read from the result store: ${describeError(error).message}`);
      return [];
    }
  }

  #sendHeartbeat(): void {
    if (this.state !== 'running') return;
    let rss = process.memoryUsage.rss();
    if (rss > this.#options.memoryPause) {
      // Nothing collects an idle heap: collect it, and measure again, before pausing. A
      // full collection is not free: at most one every GC_NUDGE_INTERVAL_MS.
      const now = performance.now();
      if (now - this.#lastGc >= GC_NUDGE_INTERVAL_MS) {
        this.#lastGc = now;
        if (collectGarbage()) rss = process.memoryUsage.rss();
      }
      // Still past it: results in memory go to disk first (least recently used first).
      if (rss > this.#options.memoryPause) this.#data.spill(rss - this.#options.memoryPause);
    }
    const managed = this.#data.memoryBytes;
    this.#toScheduler({ op: 'heartbeat', memory: { managed, spilled: this.#data.spilledBytes, process: rss } });
    // Past the pause threshold the worker finishes what it has but takes nothing new.
    this.#handle({ op: 'memory-sample', process: rss, managed, now: performance.now() });
  }

  // ---- serving data ----

  /** Sends a data reply; one that cannot be sent (too large, say) reports its keys missing. */
  #reply(reply: DataReply, send: (reply: DataReply) => void): void {
    try {
      send(reply);
    } catch (error) {
      this.#options.log(`could not send data: ${describeError(error).message}`);
      try {
        send({ op: 'data', id: reply.id, values: [], missing: [...reply.values.map(([key]) => key), ...reply.missing] });
      } catch {
        // The connection is gone; the asker hears of it from its close.
      }
    }
  }

  async #answer(id: number, keys: readonly string[]): Promise<DataReply> {
    const values: KeyValue[] = [];
    const missing: string[] = [];
    for (const key of keys) {
      const held = this.#data.peek(key);
      if (held !== undefined) {
        // From now on a socket may read it: its memory is never lent again.
        this.#lender?.sent(held.value);
        values.push([key, held.value]);
      } else if (!this.#data.has(key)) {
        missing.push(key);
      } else {
        try {
          // Spilled: read back from disk.
          const value = await this.#data.get(key);
          this.#lender?.sent(value);
          values.push([key, value]);
        } catch {
          // Freed while it was being read.
          missing.push(key);
        }
      }
    }
    return { op: 'data', id, values, missing };
  }
}

/** How long opening the store may take, and how long after a failure it is tried again. */
const STORE_CONNECT_TIMEOUT_MS = 3000;
const STORE_RETRY_MS = 5000;
/** Writes of one key that found it taken, then gone when read back, before giving up. */
const PUT_ROUNDS = 3;

/** A store write not settled yet, and the way to say it has. */
interface Unsettled {
  readonly settled: Promise<void>;
  readonly settle: () => void;
}

function unsettled(): Unsettled {
  let settle: () => void = () => undefined;
  const settled = new Promise<void>((resolve) => {
    settle = resolve;
  });
  return { settled, settle };
}

interface FinishedReport {
  readonly key: string;
  readonly nbytes: number;
  readonly startedAt: number;
  readonly finishedAt: number;
  readonly thread: number;
}

/**
 * The data port's TLS, when the worker has a certificate and key. No client certificates
 * are asked for: clients that trust the CA gather from it, and the token still applies.
 */
function serverTls(options: ResolvedWorkerOptions): { tls: { cert: string | Buffer; key: string | Buffer } } | undefined {
  const { cert, key } = options.tls ?? {};
  return cert === undefined || key === undefined ? undefined : { tls: { cert, key } };
}

/** The IP of a `tcp://ip:port` address, for listening on the same interface. */
function localHost(address: string): string {
  try {
    const { host } = parseAddress(address);
    return isIP(host) === 0 ? '127.0.0.1' : host;
  } catch {
    return '127.0.0.1';
  }
}
