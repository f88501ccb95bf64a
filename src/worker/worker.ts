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
 * Beside its data port it serves `GET /metrics` (Prometheus text) and `GET /health` on a
 * small HTTP server of its own (`metricsPort`), so a scraper need not go through the
 * scheduler.
 */
import type { Server as HttpServer } from 'node:http';
import { isIP } from 'node:net';
import { type Connection, ConnectionClosedError, connect, listen, parseAddress, type Server } from '../comm/index.js';
import { describeError, ProtocolError, UnserializableError } from '../errors.js';
import { BundleError } from '../functions/bundle.js';
import { attemptAll, Resource } from '../lifecycle.js';
import { BundleCache } from '../functions/bundle-cache.js';
import type { FnRef } from '../functions/fn-ref.js';
import { type JobReply, ThreadPool } from '../local/pool.js';
import { DataPeers } from '../protocol/data-peers.js';
import {
  BUNDLE_SCHEME,
  type DataReply,
  isDialable,
  type KeyValue,
  type PeerMessage,
  ROLE_WORKER,
  type SchedulerToWorker,
  type TaskErrorInfo,
  type WireComputeTask,
  type WorkerToScheduler,
} from '../protocol/messages.js';
import type { TaskSpec, WireNode } from '../protocol/task-spec.js';
import { type ResolvedWorkerOptions, resolveWorkerOptions, type WorkerOptions } from './options.js';
import { DataStore } from './data-store.js';
import { metricsText } from './metrics.js';
import { closeHttp, httpBase, startMetricsServer } from './metrics-server.js';
import { sizeOf } from './sizeof.js';

export type { WorkerOptions, WorkerTlsOptions } from './options.js';

type SchedulerConn = Connection<WorkerToScheduler | SchedulerToWorker>;
type PeerConn = Connection<PeerMessage>;

type TaskPhase = 'fetching' | 'ready' | 'running' | 'released';

interface WorkerTask {
  readonly key: string;
  readonly spec: TaskSpec;
  readonly deps: readonly string[];
  phase: TaskPhase;
  /** Dependencies not yet held here. */
  missing: number;
  /** Run alone: it was in a batch whose thread died. */
  solo: boolean;
}

interface Fetch {
  /** Holders not tried yet. */
  holders: string[];
  inFlight: boolean;
}

interface DataRequest {
  readonly holder: string;
  readonly keys: readonly string[];
}

// A batch per thread-sized share of what is ready, within these bounds: large enough that
// per-message costs vanish, small enough that results flow back while the rest runs.
const MAX_BATCH = 512;
// Batches handed to the pool per thread, so that the next is there when one ends.
const PIPELINE = 2;
// Peers asked at once for data.
const MAX_PEER_REQUESTS = 32;

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
  readonly #pool: ThreadPool;
  /** Results held here: in memory, or spilled to disk past the memory target. */
  readonly #data: DataStore;
  readonly #tasks = new Map<string, WorkerTask>();
  readonly #fns = new Map<string, FnRef>();
  /** Bundled modules saved here: hash → file URL once written. */
  readonly #modules = new Map<string, Promise<string>>();
  readonly #bundles = new BundleCache();
  #ready: WorkerTask[] = [];
  #readyHead = 0;
  #batchesInFlight = 0;
  readonly #fetches = new Map<string, Fetch>();
  readonly #waiters = new Map<string, WorkerTask[]>();
  readonly #requests = new Map<number, DataRequest>();
  readonly #peers: DataPeers;
  #nextRequest = 1;
  #paused = false;
  #retiring: Promise<void> | null = null;
  readonly #heartbeat: NodeJS.Timeout;

  // Totals for /metrics since the start.
  readonly #startedAt = performance.now();
  #tasksFinishedTotal = 0;
  #tasksErredTotal = 0;
  #taskSecondsTotal = 0;
  #transfersTotal = 0;
  #transferBytesTotal = 0;

  // Reports gathered over one turn of the event loop.
  #finishedKeys: string[] = [];
  #finishedBytes: number[] = [];
  #finishedStart: number[] = [];
  #finishedEnd: number[] = [];
  #finishedThread: number[] = [];
  #addedKeys: string[] = [];
  #reportScheduled = false;
  #pumpScheduled = false;

  private constructor(
    options: ResolvedWorkerOptions,
    scheduler: SchedulerConn,
    server: Server<PeerMessage> | null,
    metricsServer: HttpServer | null,
    id: string,
  ) {
    super('the worker');
    this.#options = options;
    this.name = options.name;
    this.#peers = new DataPeers({
      name: options.name,
      timeout: 10_000,
      ...(options.token === undefined ? {} : { token: options.token }),
      ...(options.tls === undefined ? {} : { tls: options.tls }),
      onError: (holder, error) => options.log(`could not fetch from ${holder}: ${describeError(error).message}`),
    });
    this.#scheduler = scheduler;
    this.#server = server;
    this.#metricsServer = metricsServer;
    this.id = id;
    this.address = server === null ? null : server.address;
    this.metricsLink = metricsServer === null ? null : `${httpBase(metricsServer)}/metrics`;
    this.#pool = new ThreadPool(options.nthreads);
    this.#data = new DataStore({
      memoryTarget: options.memoryTarget,
      ...(options.spillDirectory === undefined ? {} : { directory: options.spillDirectory }),
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
      const id = await new Promise<string>((resolve, reject) => {
        let registered = false;
        conn.onMessage((message) => {
          // Work may follow 'registered' in the same packet, before the worker exists.
          if (worker !== undefined) worker.#onSchedulerMessage(message as SchedulerToWorker);
          else if (registered) early.push(message as SchedulerToWorker);
          else if (message.op === 'registered') {
            registered = true;
            resolve(message.id);
          } else reject(new ProtocolError(`the scheduler answered register with '${message.op}'`));
        });
        conn.onClose(() => reject(new ConnectionClosedError('the scheduler closed the connection during registration')));
        conn.send({ op: 'register', name: resolved.name, nthreads: resolved.nthreads, memoryLimit: resolved.memoryLimit, address, timeOrigin: performance.timeOrigin });
      });
      worker = new Worker(resolved, conn, server, metricsServer, id);
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
    this.#toScheduler({ op: 'retire' });
    // The scheduler answers with close-worker once the data has moved (or cannot).
    const timer = setTimeout(() => void this.close(), timeout);
    timer.unref();
    await this.closed;
    clearTimeout(timer);
  }

  /** Says goodbye (so what it ran is not held against its tasks), then stops everything. */
  protected async onClose(): Promise<void> {
    clearInterval(this.#heartbeat);
    await attemptAll([
      () => {
        if (this.#scheduler.state === 'open') this.#scheduler.send({ op: 'goodbye' });
      },
      () => this.#scheduler.close(),
      () => this.#pool.destroy(this.closedError()),
      () => this.#server?.close(),
      () => (this.#metricsServer === null ? undefined : closeHttp(this.#metricsServer)),
      () => this.#peers.close(),
      () => this.#data.close(),
      () => this.#tasks.clear(),
    ]).catch((error: unknown) => this.#options.log(`closing: ${describeError(error).message}`));
  }

  /** Leaves at once: no goodbye, so the scheduler counts what it ran as lost with it. */
  protected override async onDestroy(error?: Error): Promise<void> {
    clearInterval(this.#heartbeat);
    await attemptAll([
      () => this.#scheduler.destroy(error),
      () => this.#pool.destroy(error ?? this.closedError()),
      () => this.#server?.destroy(error),
      () => (this.#metricsServer === null ? undefined : closeHttp(this.#metricsServer)),
      () => this.#peers.close(),
      () => this.#data.close(),
      () => this.#tasks.clear(),
    ]).catch(() => undefined);
  }

  /** The worker's `/metrics` body; undefined once it is closed. */
  #metricsText(): string | undefined {
    if (this.state === 'closed') return undefined;
    // A walk over the tasks held here, once per scrape: cheaper than keeping counts on every transition.
    let executing = 0;
    let ready = 0;
    for (const t of this.#tasks.values()) {
      if (t.phase === 'running') executing++;
      else if (t.phase === 'ready') ready++;
    }
    return metricsText({
      name: this.name,
      status: this.state === 'running' && this.#paused ? 'paused' : this.state,
      nthreads: this.#options.nthreads,
      memoryLimit: this.#options.memoryLimit,
      memory: { managed: this.#data.memoryBytes, spilled: this.#data.spilledBytes, process: process.memoryUsage.rss() },
      executing,
      ready,
      inMemory: this.#data.size,
      tasksFinishedTotal: this.#tasksFinishedTotal,
      tasksErredTotal: this.#tasksErredTotal,
      taskDurationSecondsSum: this.#taskSecondsTotal,
      taskDurationCount: this.#tasksFinishedTotal,
      transfersTotal: this.#transfersTotal,
      transferBytesTotal: this.#transferBytesTotal,
      uptimeSeconds: (performance.now() - this.#startedAt) / 1000,
    });
  }

  // ---- messages ----

  #onSchedulerMessage(m: SchedulerToWorker): void {
    if (this.state !== 'running') return;
    switch (m.op) {
      case 'registered':
        return;
      case 'load-fns':
        for (const fn of m.fns) this.#fns.set(fn.id, fn);
        return;
      case 'load-module':
        this.#saveModule(m.hash, m.code);
        return;
      case 'compute':
        for (const task of m.tasks) this.#addTask(task);
        this.#schedulePump();
        return;
      case 'free-keys':
        for (const key of m.keys) this.#free(key);
        return;
      case 'steal-request': {
        const t = this.#tasks.get(m.key);
        const accepted = t !== undefined && (t.phase === 'ready' || t.phase === 'fetching');
        if (accepted) this.#release(t);
        this.#toScheduler({ op: 'steal-response', key: m.key, accepted });
        return;
      }
      case 'replicate':
        for (const [key, holders] of m.keys) this.#need(key, holders);
        this.#pumpFetches();
        return;
      case 'close-worker':
        void this.close();
        return;
      case 'put-data': {
        const nbytes = m.items.map(([key, value]) => this.#store(key, value));
        this.#toScheduler({ op: 'put-data-done', id: m.id, nbytes });
        return;
      }
      case 'get-data':
        void this.#answer(m.id, m.keys).then((reply) => this.#reply(reply, (r) => this.#toScheduler(r)));
        return;
      case 'data':
        this.#onData(m);
        return;
      case 'story-request':
        this.#toScheduler({ op: 'story-reply', id: m.id, entries: [] });
        return;
      case 'restart':
        for (const key of [...this.#tasks.keys(), ...this.#data.keys()]) this.#free(key);
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
        void this.#answer(m.id, m.keys).then((reply) => {
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
        values.push([key, held.value]);
      } else if (!this.#data.has(key)) {
        missing.push(key);
      } else {
        try {
          // Spilled: read back from disk.
          values.push([key, await this.#data.get(key)]);
        } catch {
          // Freed while it was being read.
          missing.push(key);
        }
      }
    }
    return { op: 'data', id, values, missing };
  }

  /**
   * Writes a bundled module where the threads can import it, once per hash; the cache
   * checks the code against its hash first. Tasks that need it wait for the write.
   */
  #saveModule(hash: string, code: Uint8Array): void {
    if (this.#modules.has(hash)) return;
    const saved = this.#bundles.put(hash, code);
    // A refused or failed write surfaces as the task's error when a batch needs the module.
    saved.catch(() => undefined);
    this.#modules.set(hash, saved);
  }

  /** A bundled module's functions are imported from the file it was saved to. */
  async #localRef(fn: FnRef): Promise<FnRef> {
    if (fn.kind !== 'module' || !fn.url.startsWith(BUNDLE_SCHEME)) return fn;
    const saved = this.#modules.get(fn.url.slice(BUNDLE_SCHEME.length));
    if (saved === undefined) throw new BundleError(fn.url, `module ${fn.url} for ${fn.name} never reached this worker`);
    return { ...fn, url: await saved };
  }

  #toScheduler(message: WorkerToScheduler): void {
    if (this.#scheduler.state === 'open') this.#scheduler.send(message);
  }

  // ---- tasks ----

  #addTask(c: WireComputeTask): void {
    const existing = this.#tasks.get(c.key);
    if (existing !== undefined && existing.phase !== 'released') return;
    const held = this.#data.nbytes(c.key);
    if (held !== undefined) {
      // Already here (fetched as a dependency, say): it is finished as far as anyone cares.
      const now = performance.now();
      this.#reportFinished(c.key, held, now, now, 0);
      return;
    }
    const deps = c.dependencies.map(([key]) => key);
    const t: WorkerTask = { key: c.key, spec: c.spec, deps, phase: 'fetching', missing: 0, solo: false };
    this.#tasks.set(c.key, t);
    for (const [key, holders] of c.dependencies) {
      if (this.#data.has(key)) continue;
      t.missing++;
      let waiting = this.#waiters.get(key);
      if (waiting === undefined) this.#waiters.set(key, (waiting = []));
      waiting.push(t);
      this.#need(key, holders);
    }
    if (t.missing === 0) this.#makeReady(t);
    else this.#pumpFetches();
  }

  #makeReady(t: WorkerTask): void {
    t.phase = 'ready';
    this.#ready.push(t);
  }

  #release(t: WorkerTask): void {
    t.phase = 'released';
    if (this.#tasks.get(t.key) === t) this.#tasks.delete(t.key);
  }

  #free(key: string): void {
    this.#data.delete(key);
    const t = this.#tasks.get(key);
    if (t !== undefined) this.#release(t);
  }

  #store(key: string, value: unknown): number {
    const nbytes = sizeOf(value);
    this.#data.put(key, value, nbytes);
    return nbytes;
  }

  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    // After the current batch of messages, so a burst of compute messages forms big batches.
    process.nextTick(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  /** Hands ready tasks to the thread pool in batches. */
  #pump(): void {
    const nthreads = this.#options.nthreads;
    while (this.state === 'running' && this.#batchesInFlight < nthreads * PIPELINE) {
      const batch = this.#takeBatch(nthreads);
      if (batch.length === 0) return;
      this.#runBatch(batch);
    }
  }

  #takeBatch(nthreads: number): WorkerTask[] {
    const batch: WorkerTask[] = [];
    const ready = this.#ready;
    const available = ready.length - this.#readyHead;
    const size = Math.min(MAX_BATCH, Math.max(1, Math.ceil(available / (nthreads * PIPELINE))));
    while (this.#readyHead < ready.length && batch.length < size) {
      const t = ready[this.#readyHead++]!;
      if (t.phase !== 'ready') continue;
      if (t.solo && batch.length > 0) {
        this.#readyHead--;
        break;
      }
      batch.push(t);
      if (t.solo) break;
    }
    if (this.#readyHead > 1024 && this.#readyHead * 2 > ready.length) {
      this.#ready = ready.slice(this.#readyHead);
      this.#readyHead = 0;
    }
    return batch;
  }

  #runBatch(batch: WorkerTask[]): void {
    const nodes: WireNode[] = [];
    const fnIds = new Set<string>();
    const inputKeys = new Set<string>();
    const inputs: [string, unknown][] = [];
    const spilled: number[] = [];
    for (const t of batch) {
      t.phase = 'running';
      const node = t.spec.node;
      nodes.push(node.out ? node : { ...node, out: true });
      for (const step of node.steps) fnIds.add(step.fn);
      for (const dep of t.deps) {
        if (inputKeys.has(dep)) continue;
        inputKeys.add(dep);
        const held = this.#data.peek(dep);
        if (held === undefined) spilled.push(inputs.length);
        inputs.push([dep, held?.value]);
      }
    }
    const fns: FnRef[] = [];
    let bundled = false;
    for (const id of fnIds) {
      const fn = this.#fns.get(id);
      if (fn === undefined) continue;
      fns.push(fn);
      if (fn.kind === 'module' && fn.url.startsWith(BUNDLE_SCHEME)) bundled = true;
    }
    this.#batchesInFlight++;
    // Inputs spilled to disk are read back, and bundles written, first; the common case
    // stays synchronous.
    const ready =
      spilled.length === 0 && !bundled
        ? null
        : Promise.all([
            ...spilled.map(async (i) => {
              const input = inputs[i]!;
              input[1] = await this.#data.get(input[0]);
            }),
            ...fns.map(async (fn, i) => {
              fns[i] = await this.#localRef(fn);
            }),
          ]);
    const run = (): void => {
      this.#pool.run({ nodes, fns, inputs, transfer: [] }, this).then(
        (reply) => this.#onBatchDone(batch, reply),
        (error: unknown) => this.#onBatchLost(batch, error),
      );
    };
    if (ready === null) {
      run();
      return;
    }
    ready.then(run, (error: unknown) => {
      // A bundle that cannot be written or a spilled input that cannot be read: the tasks
      // cannot run here, and saying so beats retrying forever.
      this.#batchesInFlight--;
      if (this.state !== 'running') return;
      const info = describeError(error);
      for (const t of batch) {
        if (t.phase !== 'running') continue;
        this.#release(t);
        this.#reportErred(t.key, { kind: 'task', ...info });
      }
      this.#pump();
    });
  }

  #onBatchDone(batch: readonly WorkerTask[], reply: JobReply): void {
    this.#batchesInFlight--;
    if (this.state !== 'running') return;
    switch (reply.op) {
      case 'done': {
        const per = reply.elapsedMs / batch.length;
        const start = reply.startedAt - performance.timeOrigin;
        for (let i = 0; i < batch.length; i++) {
          const t = batch[i]!;
          if (t.phase !== 'running') continue;
          this.#tasks.delete(t.key);
          t.phase = 'released';
          this.#tasksFinishedTotal++;
          this.#taskSecondsTotal += per / 1000;
          const nbytes = this.#store(t.key, reply.results[i]);
          this.#reportFinished(t.key, nbytes, start + i * per, start + (i + 1) * per, reply.thread);
        }
        break;
      }
      case 'task-failed':
        this.#failOne(batch, reply.key, { kind: 'task', ...reply.error, key: reply.key });
        break;
      case 'unportable': {
        const e = new UnserializableError(reply.key, reply.path, reply.reason);
        this.#failOne(batch, reply.key, { kind: 'unserializable', name: e.name, message: e.message, stack: '', key: reply.key, path: reply.path, reason: reply.reason });
        break;
      }
      default: {
        const never: never = reply;
        throw new ProtocolError(`unknown thread reply '${(never as { op: string }).op}'`);
      }
    }
    this.#pump();
  }

  /** One task of the batch failed; the thread stopped there, so the others run again. */
  #failOne(batch: readonly WorkerTask[], stepKey: string, error: TaskErrorInfo): void {
    const culprit = batch.find((t) => t.spec.node.stepKeys.includes(stepKey)) ?? batch[0]!;
    const again: WorkerTask[] = [];
    for (const t of batch) {
      if (t.phase !== 'running') continue;
      if (t === culprit) {
        this.#release(t);
        this.#reportErred(t.key, error);
      } else {
        t.phase = 'ready';
        again.push(t);
      }
    }
    this.#requeueFront(again);
  }

  #onBatchLost(batch: readonly WorkerTask[], error: unknown): void {
    this.#batchesInFlight--;
    if (this.state !== 'running') return;
    const running = batch.filter((t) => t.phase === 'running');
    if (running.length > 1) {
      // Which task killed the thread is unknown: run each alone to find out.
      for (const t of running) {
        t.phase = 'ready';
        t.solo = true;
      }
      this.#requeueFront(running);
    } else {
      for (const t of running) {
        this.#release(t);
        const { message } = describeError(error);
        this.#reportErred(t.key, { kind: 'worker-lost', name: 'WorkerLostError', message, stack: '', key: t.key });
      }
    }
    this.#pump();
  }

  #requeueFront(tasks: readonly WorkerTask[]): void {
    if (tasks.length === 0) return;
    this.#ready = [...tasks, ...this.#ready.slice(this.#readyHead)];
    this.#readyHead = 0;
  }

  #reportErred(key: string, error: TaskErrorInfo): void {
    this.#tasksErredTotal++;
    this.#toScheduler({ op: 'task-erred', key, error });
  }

  #reportFinished(key: string, nbytes: number, startedAt: number, finishedAt: number, thread: number): void {
    this.#finishedKeys.push(key);
    this.#finishedThread.push(thread);
    this.#finishedBytes.push(nbytes);
    this.#finishedStart.push(startedAt);
    this.#finishedEnd.push(finishedAt);
    this.#scheduleReport();
  }

  #scheduleReport(): void {
    if (this.#reportScheduled) return;
    this.#reportScheduled = true;
    process.nextTick(() => {
      this.#reportScheduled = false;
      if (this.#finishedKeys.length > 0) {
        this.#toScheduler({
          op: 'tasks-finished',
          keys: this.#finishedKeys,
          nbytes: this.#finishedBytes,
          startedAt: this.#finishedStart,
          finishedAt: this.#finishedEnd,
          threads: this.#finishedThread,
        });
        this.#finishedKeys = [];
        this.#finishedBytes = [];
        this.#finishedStart = [];
        this.#finishedEnd = [];
        this.#finishedThread = [];
      }
      if (this.#addedKeys.length > 0) {
        this.#toScheduler({ op: 'add-keys', keys: this.#addedKeys });
        this.#addedKeys = [];
      }
    });
  }

  #sendHeartbeat(): void {
    if (this.state !== 'running') return;
    const rss = process.memoryUsage.rss();
    this.#toScheduler({ op: 'heartbeat', memory: { managed: this.#data.memoryBytes, spilled: this.#data.spilledBytes, process: rss } });
    // Past the pause threshold the worker finishes what it has but takes nothing new.
    const paused = rss > this.#options.memoryPause;
    if (paused !== this.#paused) {
      this.#paused = paused;
      if (!paused) this.#options.log(`memory fell below the pause threshold; running again`);
      else this.#options.log(`process memory ${rss} bytes is past the pause threshold ${this.#options.memoryPause}; pausing`);
      this.#toScheduler({ op: 'worker-status', status: paused ? 'paused' : 'running' });
    }
  }

  // ---- fetching dependencies ----

  #need(key: string, holders: readonly string[]): void {
    if (this.#data.has(key)) return;
    const others = holders.filter((h) => h !== this.id);
    const fetch = this.#fetches.get(key);
    if (fetch !== undefined) {
      for (const h of others) if (!fetch.holders.includes(h)) fetch.holders.push(h);
      return;
    }
    // A random holder first spreads the load of a popular key.
    const shuffled = others.slice();
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
    }
    this.#fetches.set(key, { holders: shuffled, inFlight: false });
  }

  /** Sends one get-data per holder for the keys waiting on it. */
  #pumpFetches(): void {
    if (this.state !== 'running') return;
    const byHolder = new Map<string, string[]>();
    for (const [key, fetch] of this.#fetches) {
      if (fetch.inFlight) continue;
      const holder = fetch.holders.shift();
      if (holder === undefined) {
        // Nobody left to ask: the scheduler, told of each miss, will reassign the task.
        this.#fetches.delete(key);
        continue;
      }
      fetch.inFlight = true;
      let keys = byHolder.get(holder);
      if (keys === undefined) byHolder.set(holder, (keys = []));
      keys.push(key);
    }
    let sent = 0;
    for (const [holder, keys] of byHolder) {
      if (sent++ >= MAX_PEER_REQUESTS) {
        // Put the rest back; they go out when answers come in.
        for (const key of keys) {
          const fetch = this.#fetches.get(key);
          if (fetch !== undefined) {
            fetch.inFlight = false;
            fetch.holders.unshift(holder);
          }
        }
        continue;
      }
      this.#request(holder, keys);
    }
  }

  #request(holder: string, keys: readonly string[]): void {
    const id = this.#nextRequest++;
    this.#requests.set(id, { holder, keys });
    if (!isDialable(holder)) {
      this.#toScheduler({ op: 'relay-get-data', id, worker: holder, keys });
      return;
    }
    void this.#peers.get(holder, keys).then((reply) => this.#onData({ ...reply, id }));
  }

  #onData(m: DataReply): void {
    const request = this.#requests.get(m.id);
    if (request === undefined) return;
    this.#requests.delete(m.id);
    if (this.state !== 'running') return;
    const arrived = new Set<string>();
    for (const [key, value] of m.values) {
      arrived.add(key);
      this.#fetches.delete(key);
      if (!this.#data.has(key)) {
        this.#transfersTotal++;
        this.#transferBytesTotal += this.#store(key, value);
        this.#addedKeys.push(key);
      }
      const waiting = this.#waiters.get(key);
      if (waiting === undefined) continue;
      this.#waiters.delete(key);
      for (const t of waiting) {
        if (t.phase === 'fetching' && --t.missing === 0) this.#makeReady(t);
      }
    }
    for (const key of request.keys) {
      if (arrived.has(key)) continue;
      this.#toScheduler({ op: 'missing-data', key, from: request.holder });
      const fetch = this.#fetches.get(key);
      if (fetch !== undefined) fetch.inFlight = false;
    }
    this.#scheduleReport();
    this.#pumpFetches();
    this.#schedulePump();
  }
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
