/**
 * A connection to a Tessera cluster from the user's process: submits tasks and graphs to
 * the scheduler, hands back Futures, and fetches results straight from the workers that
 * hold them (through the scheduler's relay for workers that cannot accept connections).
 *
 * ```ts
 * const client = await Client.connect('tcp://127.0.0.1:8786');
 * const f = client.submit((x: number) => x + 1, 10);
 * await f;                                            // 11
 * await client.gather(client.map((a: number, b: number) => a + b, [1, 2], [3, 4]));   // [4, 6]
 * await client.close();
 * ```
 *
 * Why one file: it is the public surface users read (submit, map, gather, scatter, persist,
 * progress, story, restart), each method short; gathering, task building and futures live
 * beside it.
 */
import { randomBytes } from 'node:crypto';
import { type ClientTlsOptions, type Connection, ConnectionClosedError, connect } from '../comm/index.js';
import { CancelledError, InvalidArgumentError, MissingKeyError, ProtocolError, ScatterError, TaskError, TesseraError, UnserializableError, WorkerLostError } from '../errors.js';
import { bundleModule, type ModuleBundle } from '../functions/bundle.js';
import type { FnRef } from '../functions/fn-ref.js';
import { Delayed, toGraph } from '../graph/delayed.js';
import { assertGraph, type Graph } from '../graph/graph.js';
import { compile, type Plan } from '../graph/plan.js';
import { attemptAll, closeAtExit, Resource } from '../lifecycle.js';
import { checkOptions, optionNames } from '../options.js';
import { DataPeers } from '../protocol/data-peers.js';
import {
  BUNDLE_SCHEME,
  type ClientToScheduler,
  type DataReply,
  isDialable,
  isStoreHolder,
  ROLE_CLIENT,
  type SchedulerToClient,
  type StoreRef,
  type TaskErrorInfo,
} from '../protocol/messages.js';
import { findMemoryStore, getValues, openStore, ProxyStore, type ResultStore } from '../store/index.js';
import type { ScalingHistory } from '../protocol/scaling.js';
import type { StoryEntry } from '../protocol/story.js';
import { CLUSTER_SUMMARY, clientBundle, type ClientSummary, DISPLAY, isSummarizedCluster, type SummarizedCluster } from '../notebook/cards.js';
import { INSPECT, type MimeBundle } from '../notebook/kernel.js';
import { NotebookProgress } from '../notebook/progress.js';
import { Future, type FutureOwner, type FutureStatus, keepAlive, type Lease } from './future.js';
import { FutureList } from './future-list.js';
import { collectFutures, type Gathered, rebuild } from './gather.js';
import { ProgressBar, type ProgressBarOptions } from './progress-bar.js';
import { callTasks, type CallTasks, GRAPH_PART_TASKS, graphParts, isPlainGraph, mapArguments, type MapOptions, planTasks, SUBMIT_OPTIONS, type SubmitOptions } from './tasks.js';

export type { MapOptions, SubmitOptions } from './tasks.js';

/** A Future as `asCompleted` yields it: all of it but `then`, so `for await` does not unwrap it. */
export type CompletedFuture<T> = Omit<Future<T>, 'then'>;

export interface ClientOptions {
  /** The cluster's token. Default: the cluster's own (a LocalCluster given), else $TESSERA_TOKEN. */
  readonly token?: string;
  /** Milliseconds to reach the scheduler (retrying while it starts). Default 10 000. */
  readonly timeout?: number;
  readonly name?: string;
  /**
   * For a tls:// scheduler with a private CA or client certificates; also used (without
   * `servername`) to gather from workers that serve their data over TLS.
   */
  readonly tls?: ClientTlsOptions;
  /**
   * Ship module functions (fromModule) as esbuild bundles, so workers need neither this
   * machine's files nor its node_modules (default true). With false, workers import the
   * module's file URL themselves, which works only where they share this file system.
   */
  readonly bundleModules?: boolean;
  /**
   * Fetch results from the workers (and the result store) directly, as Dask's
   * `direct_to_workers` (default true; a cluster given may say otherwise, as a
   * KubernetesCluster reached through a port-forward does). With false, everything travels
   * through the scheduler's connection: for a client that can reach the scheduler only.
   */
  readonly directToWorkers?: boolean;
  /**
   * A scheduler in this process (a LocalCluster's) is joined through memory rather than a
   * socket, as Dask's `inproc://`: the same handshake, but the messages of each task are
   * handed over as they are, not encoded and read back (default true). With false, it is
   * reached through its TCP port as from any other process.
   */
  readonly inProcess?: boolean;
}

const CLIENT_OPTIONS = optionNames<ClientOptions>()(['token', 'timeout', 'name', 'tls', 'bundleModules', 'directToWorkers', 'inProcess']);
const PROGRESS_OPTIONS = optionNames<Omit<ProgressBarOptions, 'total'>>()(['label', 'stream', 'plainInterval', 'redrawInterval', 'clock']);

/** Something with a scheduler's address: a LocalCluster (or any cluster), or a plain object. */
export interface HasAddress {
  readonly address: string;
  readonly token?: string | undefined;
  /** False when a client here can reach the scheduler but not its workers. */
  readonly directToWorkers?: boolean | undefined;
}

type SchedulerConn = Connection<ClientToScheduler | SchedulerToClient>;

interface PendingRequest {
  readonly resolve: (reply: SchedulerToClient | DataReply) => void;
  readonly reject: (error: Error) => void;
}

interface Waiter {
  resolve(): void;
  reject(error: Error): void;
}

interface KeyRecord {
  status: FutureStatus;
  error: Error | null;
  /** Futures (and internal holds) on this key. */
  refs: number;
  /** Who waits for the key to settle: null while no one does, one waiter, or a list of them. */
  waiters: Waiter | Waiter[] | null;
  /** A worker said to hold the result (keys-in-memory), '' when none was named. */
  holder: string;
}

function addWaiter(record: KeyRecord, waiter: Waiter): void {
  const waiters = record.waiters;
  if (waiters === null) record.waiters = waiter;
  else if (Array.isArray(waiters)) waiters.push(waiter);
  else record.waiters = [waiters, waiter];
}

// A result that has no holder (its worker just died) is asked for again after a pause.
const WHO_HAS_RETRY_MS = 50;

/** Where `Client.connect()` looks when given no address, as the CLI does. */
const ADDRESS_VARIABLE = 'TESSERA_SCHEDULER_ADDRESS';
const TOKEN_VARIABLE = 'TESSERA_TOKEN';

export class Client extends Resource implements FutureOwner {
  readonly id: string;
  readonly #conn: SchedulerConn;
  readonly #keys = new Map<string, KeyRecord>();
  /** Futures dropped without release(): each lets go of its key as it is collected. */
  readonly #registry = new FinalizationRegistry<Lease>((lease) => {
    if (!lease.released) this.#decref(lease.key);
  });
  readonly #requests = new Map<number, PendingRequest>();
  readonly #peers: DataPeers;
  /** Whether results come from workers and the store directly, or through the scheduler. */
  readonly directToWorkers: boolean;
  readonly #tag = randomBytes(4).toString('hex');
  #counter = 0;
  #nextRequest = 1;
  #toRelease: string[] = [];
  readonly #bundleModules: boolean;
  /** Bundles by module URL, made once per client. */
  readonly #bundles = new Map<string, Promise<ModuleBundle | null>>();
  readonly #uploaded = new Set<string>();
  /**
   * The last message waiting its turn (a graph whose bundles are being made, a scatter not
   * yet held), if any: graphs queue behind it, so they go out in order and a task never
   * reaches the scheduler before the data it names.
   */
  #graphQueue: Promise<void> | null = null;
  #releaseScheduled = false;
  /** Waits on the cluster under way: while any, the connection keeps the process alive. */
  #holds = 0;
  /** The scheduler's result store, when it has one: gathered from directly. */
  readonly #storeRef: StoreRef | null;
  #store: Promise<ResultStore | null> | null = null;
  #proxy: ProxyStore | null = null;
  /** The scheduler's address, and the cluster object connected through (for the card). */
  #address = '';
  #cluster: SummarizedCluster | undefined;

  private constructor(id: string, conn: SchedulerConn, options: ClientOptions, token: string | undefined, storeRef: StoreRef | null) {
    super('the client');
    this.id = id;
    this.#storeRef = storeRef;
    this.#conn = conn;
    this.#bundleModules = options.bundleModules ?? true;
    this.directToWorkers = options.directToWorkers ?? true;
    // Nothing of the client keeps the process alive but a wait on the cluster (#hold): a
    // script that is done ends, and closeAtExit closes the client on the way out.
    conn.unref();
    this.#peers = new DataPeers({
      keepAlive: false,
      ...(token === undefined ? {} : { token }),
      ...(options.tls === undefined ? {} : { tls: options.tls }),
    });
  }

  /**
   * Connects to a scheduler: by address (`tcp://host:8786`), through a cluster object
   * (`Client.connect(cluster)`, which also brings its token), or — with no address — to
   * $TESSERA_SCHEDULER_ADDRESS, as the CLI does. The token defaults to $TESSERA_TOKEN.
   */
  static async connect(target?: string | HasAddress, options: ClientOptions = {}): Promise<Client> {
    checkOptions(options, CLIENT_OPTIONS, 'Client.connect()');
    if (options.token !== undefined && typeof options.token !== 'string') throw new InvalidArgumentError('Client.connect(): options.token must be a string');
    if (options.bundleModules !== undefined && typeof options.bundleModules !== 'boolean') throw new InvalidArgumentError('Client.connect(): options.bundleModules must be a boolean');
    if (options.directToWorkers !== undefined && typeof options.directToWorkers !== 'boolean') throw new InvalidArgumentError('Client.connect(): options.directToWorkers must be a boolean');
    if (options.inProcess !== undefined && typeof options.inProcess !== 'boolean') throw new InvalidArgumentError('Client.connect(): options.inProcess must be a boolean');
    let address: string;
    let clusterToken: string | undefined;
    let clusterDirect: boolean | undefined;
    if (target === undefined) {
      const fromEnv = process.env[ADDRESS_VARIABLE];
      if (fromEnv === undefined || fromEnv === '') {
        throw new InvalidArgumentError(`Client.connect() was given no address and ${ADDRESS_VARIABLE} is not set: pass the scheduler's address (tcp://host:8786) or a cluster`);
      }
      address = fromEnv;
    } else if (typeof target === 'string') {
      address = target;
    } else if (typeof target === 'object' && typeof (target as Partial<HasAddress>).address === 'string') {
      address = target.address;
      clusterToken = target.token;
      clusterDirect = target.directToWorkers;
    } else {
      throw new InvalidArgumentError('Client.connect() takes an address (tcp://host:8786), a cluster, or nothing (TESSERA_SCHEDULER_ADDRESS)');
    }
    const envToken = process.env[TOKEN_VARIABLE];
    const token = options.token ?? clusterToken ?? (envToken === '' ? undefined : envToken);
    const conn = await connect<ClientToScheduler | SchedulerToClient>(address, {
      role: ROLE_CLIENT,
      // Requests wait on their answers; graphs are one message each anyway.
      batchInterval: 0,
      inProcess: options.inProcess ?? true,
      ...(token === undefined ? {} : { token }),
      ...(options.timeout === undefined ? {} : { timeout: options.timeout }),
      ...(options.name === undefined ? {} : { name: options.name }),
      ...(options.tls === undefined ? {} : { tls: options.tls }),
    });
    let client: Client | undefined;
    const early: SchedulerToClient[] = [];
    try {
      const welcome = await new Promise<{ id: string; store: StoreRef | null }>((resolve, reject) => {
        conn.onMessage((message) => {
          const m = message as SchedulerToClient;
          if (client !== undefined) client.#onMessage(m);
          else if (m.op === 'client-welcome') resolve({ id: m.id, store: m.store ?? null });
          else early.push(m);
        });
        conn.onClose(() => reject(new ConnectionClosedError('the scheduler closed the connection before welcoming this client')));
      });
      client = new Client(welcome.id, conn, { ...options, directToWorkers: options.directToWorkers ?? clusterDirect ?? true }, token, welcome.store);
    } catch (error) {
      conn.destroy();
      throw error;
    }
    const live = client;
    live.#address = address;
    if (isSummarizedCluster(target)) live.#cluster = target;
    for (const m of early) live.#onMessage(m);
    conn.onClose(() => live.#onDisconnect());
    closeAtExit(live);
    return live;
  }

  // ---- submitting ----

  /**
   * Runs `fn(...args)` on the cluster. Arguments may be Futures (at any depth of arrays and
   * plain objects); they become the task's inputs. The same function and arguments give
   * the same Future key, so repeating a call shares its result (see `submitWith` for `pure`).
   */
  submit<A extends unknown[], R>(fn: (...args: A) => R, ...args: { [I in keyof A]: A[I] | Future<A[I]> }): Future<Awaited<R>> {
    return this.#submit(callTasks(fn, [args], {}, 'submit()', () => this.#uniqueSuffix()))[0] as Future<Awaited<R>>;
  }

  /** `submit` with options first: key, pure, priority, workers, retries, scope. */
  submitWith<A extends unknown[], R>(options: SubmitOptions, fn: (...args: A) => R, ...args: { [I in keyof A]: A[I] | Future<A[I]> }): Future<Awaited<R>> {
    checkOptions(options, SUBMIT_OPTIONS, 'submitWith()');
    return this.#submit(callTasks(fn, [args], options, 'submitWith()', () => this.#uniqueSuffix()))[0] as Future<Awaited<R>>;
  }

  /**
   * One task per element: `fn(a[i], b[i], …)` over one or more iterables of equal length,
   * as Dask's `map`. Options may come last, as a plain object (no iterable is one), or
   * first through `mapWith`.
   *
   * ```ts
   * client.map((x: number) => x * 2, [1, 2, 3]);
   * client.map((a: number, b: number) => a + b, [1, 2], [3, 4], { priority: 1 });
   * ```
   */
  map<T, R>(fn: (item: T) => R, items: Iterable<T | Future<T>>, options?: MapOptions): FutureList<Awaited<R>>;
  map<T1, T2, R>(fn: (a: T1, b: T2) => R, a: Iterable<T1 | Future<T1>>, b: Iterable<T2 | Future<T2>>, options?: MapOptions): FutureList<Awaited<R>>;
  map<T1, T2, T3, R>(
    fn: (a: T1, b: T2, c: T3) => R,
    a: Iterable<T1 | Future<T1>>,
    b: Iterable<T2 | Future<T2>>,
    c: Iterable<T3 | Future<T3>>,
    options?: MapOptions,
  ): FutureList<Awaited<R>>;
  map(fn: Function, ...iterablesAndOptions: unknown[]): FutureList;
  map(fn: Function, ...rest: unknown[]): FutureList {
    const { argLists, options } = mapArguments(rest, 'map()');
    return FutureList.fromFutures(this.#submit(callTasks(fn, argLists, options, 'map()', () => this.#uniqueSuffix())));
  }

  /** `map` with options first: `mapWith({ retries: 2 }, fn, xs, ys)`. */
  mapWith(options: MapOptions, fn: Function, ...iterables: readonly Iterable<unknown>[]): FutureList {
    if (typeof options !== 'object' || (options as unknown) === null) throw new InvalidArgumentError('mapWith() takes its options first: mapWith({ … }, fn, items)');
    const { argLists } = mapArguments(iterables, 'mapWith()');
    checkOptions(options, SUBMIT_OPTIONS.filter((k) => k !== 'key'), 'mapWith()');
    return FutureList.fromFutures(this.#submit(callTasks(fn, argLists, options, 'mapWith()', () => this.#uniqueSuffix())));
  }

  #submit(call: CallTasks): Future[] {
    this.assertRunning();
    const futures = call.keys.map((key) => this.#future(key));
    const priority = call.userPriority === undefined ? {} : { userPriority: call.userPriority };
    const { tasks, keys, fns } = call;
    if (tasks.length <= GRAPH_PART_TASKS) {
      this.#send({ op: 'update-graph', tasks, wanted: keys, fns, ...priority });
      return futures;
    }
    // Calls are independent of one another: a long map goes as several graphs, each wanted
    // on its own, so that the first calls run while the rest are still on their way.
    for (let from = 0; from < tasks.length; from += GRAPH_PART_TASKS) {
      const to = from + GRAPH_PART_TASKS;
      this.#send({ op: 'update-graph', tasks: tasks.slice(from, to), wanted: keys.slice(from, to), fns, ...priority });
    }
    return futures;
  }

  /**
   * Starts computing lazy values on the cluster and keeps the results there: a Future per
   * value, at once (as Dask's `client.persist`); `await` one for its value.
   */
  persist<T>(value: Delayed<T>): Future<T>;
  persist(values: readonly Delayed[]): FutureList;
  persist(value: Delayed | readonly Delayed[]): Future | FutureList {
    const list = Array.isArray(value) ? (value as readonly Delayed[]) : [value as Delayed];
    for (const d of list) if (!(d instanceof Delayed)) throw new InvalidArgumentError('persist() takes Delayed values');
    const keys = [...new Set(list.map((d) => d.key))];
    const futures = this.#submitPlan(compile(toGraph(...list), keys), keys);
    const byKey = new Map(keys.map((k, i) => [k, futures[i]!]));
    const out = list.map((d) => byKey.get(d.key)!);
    // A value given twice gets the same Future object in both places.
    return Array.isArray(value) ? FutureList.fromFutures(out) : out[0]!;
  }

  /** Like persist, for one value: the computation starts now, and `await` gives the result. */
  compute<T>(value: Delayed<T>): Future<T> {
    return this.persist(value);
  }

  /**
   * Computes keys of a graph on the cluster and returns their values, as the local get()
   * does; `delayed(…).compute({ client })` comes here. Intermediate results are released.
   */
  async get(graph: Graph, keys: readonly string[]): Promise<unknown[]> {
    this.assertRunning();
    assertGraph(graph);
    if (!Array.isArray(keys)) throw new InvalidArgumentError('keys must be an array of strings');
    const unique = [...new Set(keys)];
    const futures = this.#submitPlan(compile(graph, unique), unique);
    try {
      const values = await this.#gatherKeys(unique);
      const byKey = new Map(unique.map((k, i) => [k, values[i]]));
      return keys.map((k) => byKey.get(k));
    } finally {
      for (const f of futures) f.release();
    }
  }

  #submitPlan(plan: Plan, wanted: readonly string[]): Future[] {
    this.assertRunning();
    const { tasks, fns } = planTasks(plan);
    const futures = wanted.map((key) => this.#future(key));
    this.#send({ op: 'update-graph', tasks, wanted, fns });
    return futures;
  }

  /**
   * Puts data into worker memory, as Dask's `scatter`: an array gives an array of Futures,
   * a plain object an object of Futures, anything else one Future — at once. The data is
   * placed in the background; tasks submitted meanwhile wait for it, and a failure to
   * place it (no workers) is each Future's error (ScatterError).
   *
   * ```ts
   * const [a, b] = client.scatter([bigArray, otherArray]);
   * const table = client.scatter(lookup);            // one Future
   * await client.submit(sum, a);
   * ```
   */
  scatter<T>(values: readonly T[]): FutureList<T>;
  scatter<T extends Record<string, unknown>>(values: T): { [K in keyof T]: Future<T[K]> };
  scatter<T>(value: T): Future<T>;
  scatter(values: unknown): unknown {
    this.assertRunning();
    const entries: [string, unknown][] = [];
    const futureOf = (value: unknown): Future => {
      const key = `scatter-${this.#uniqueSuffix()}`;
      entries.push([key, value]);
      return this.#future(key);
    };
    let out: unknown;
    if (Array.isArray(values)) out = FutureList.fromFutures(values.map(futureOf));
    else if (typeof values === 'object' && values !== null && Object.getPrototypeOf(values) === Object.prototype) {
      out = Object.fromEntries(Object.entries(values).map(([name, v]) => [name, futureOf(v)]));
    } else out = futureOf(values);
    if (entries.length > 0) this.#scatterEntries(entries);
    return out;
  }

  #scatterEntries(items: readonly [string, unknown][]): void {
    this.#enqueue(async () => {
      let error: string | null;
      try {
        const reply = await this.#ask((id) => ({ op: 'scatter', id, items }));
        error = reply.op === 'scattered' ? reply.error : `unexpected answer '${reply.op}'`;
      } catch (e) {
        error = e instanceof Error ? e.message : String(e);
      }
      if (error === null) return;
      const failure = new ScatterError(`scatter failed: ${error}`);
      for (const [key] of items) {
        const record = this.#keys.get(key);
        if (record !== undefined && record.status === 'pending') this.#settle(record, 'error', failure);
      }
    });
  }

  // ---- results ----

  /**
   * The values of futures: an array of Futures gives an array of values, and so does any
   * structure of arrays and plain objects with Futures inside, rebuilt with their values.
   * Rejects with the first error (TaskError, CancelledError, …).
   */
  gather<T>(futures: T): Promise<Gathered<T>>;
  gather(futures: unknown): Promise<unknown> {
    const found = collectFutures(futures);
    if (found.length === 0 && !(futures instanceof Future)) {
      if (!Array.isArray(futures) && (typeof futures !== 'object' || futures === null)) {
        return Promise.reject(new InvalidArgumentError('gather() takes Futures: one, an array, or arrays and objects holding them'));
      }
    }
    const unique = [...new Set(found.map((f) => f.key))];
    // The callback holds the futures until their values are here (see Future.result).
    return this.#gatherKeys(unique).then((values) => {
      keepAlive(found);
      // A flat list of distinct Futures (a map's), the common case, is its values in order.
      if (unique.length === found.length && Array.isArray(futures) && futures.length === found.length && futures.every((f) => f instanceof Future)) return values;
      const byKey = new Map(unique.map((k, i) => [k, values[i]]));
      return rebuild(futures, byKey);
    });
  }

  /** Resolves when every future is done (finished, erred or cancelled). */
  async wait(futures: readonly Future[]): Promise<void> {
    await Promise.all(futures.map((f) => this.#whenDone(f.key).catch(() => undefined)));
    // Held until here, so that none is collected (and released) while waited for.
    keepAlive(futures);
  }

  /**
   * Yields the futures as they complete (finished or failed), in completion order:
   * `for await (const f of client.asCompleted(fs)) console.log(f.key, await f.result())`.
   * (An iterator rather than an async generator, whose `yield` would await each Future and
   * yield its value; typed without `then` so that `for await` keeps it a Future.)
   */
  asCompleted<T>(futures: Iterable<Future<T>>): AsyncIterableIterator<CompletedFuture<T>> {
    const list = [...futures];
    const done: Future<T>[] = [];
    let wake: (() => void) | null = null;
    for (const f of list) {
      void this.#whenDone(f.key).then(
        () => undefined,
        () => undefined,
      ).then(() => {
        done.push(f);
        wake?.();
      });
    }
    let yielded = 0;
    const iterator: AsyncIterableIterator<CompletedFuture<T>> = {
      next: async (): Promise<IteratorResult<CompletedFuture<T>>> => {
        if (yielded === list.length) return { done: true, value: undefined };
        while (done.length === 0) await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
        yielded++;
        return { done: false, value: done.shift()! };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /**
   * A progress bar over the futures until each is done (finished, erred or cancelled):
   * in a notebook's kernel, one display updated in place; elsewhere (or given a `stream`),
   * a terminal bar. Resolves then; never rejects for a task's error.
   */
  async progress(futures: readonly Future[], options: Omit<ProgressBarOptions, 'total'> = {}): Promise<void> {
    checkOptions(options, PROGRESS_OPTIONS, 'progress()');
    const inNotebook =
      options.stream === undefined
        ? NotebookProgress.create({
            total: futures.length,
            ...(options.label === undefined ? {} : { label: options.label }),
            ...(options.redrawInterval === undefined ? {} : { redrawInterval: options.redrawInterval }),
            ...(options.clock === undefined ? {} : { clock: options.clock }),
          })
        : undefined;
    const bar = inNotebook ?? new ProgressBar({ ...options, total: futures.length });
    let done = 0;
    let erred = 0;
    bar.update(0, 0);
    await Promise.all(
      futures.map((f) =>
        this.#whenDone(f.key).then(
          () => bar.update(++done, erred),
          () => bar.update(++done, ++erred),
        ),
      ),
    );
    await bar.finish();
    keepAlive(futures);
  }

  // ---- how it shows itself: a card in a notebook, text elsewhere ----

  #summary(): ClientSummary {
    return { id: this.id, state: this.state, address: this.#address, futures: this.#keys.size, cluster: this.#cluster?.[CLUSTER_SUMMARY]() };
  }

  [DISPLAY](): MimeBundle {
    return clientBundle(this.#summary());
  }

  [INSPECT](): string {
    return clientBundle(this.#summary())['text/plain']!;
  }

  // ---- the cluster ----

  /**
   * Resolves once at least `n` workers are connected, as Dask's `wait_for_workers`; rejects
   * with a TesseraError after `timeout` milliseconds (default: wait as long as it takes).
   */
  async waitForWorkers(n: number, options: { readonly timeout?: number } = {}): Promise<void> {
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`waitForWorkers(n): n must be a non-negative integer, got ${String(n)}`);
    checkOptions(options, ['timeout'], 'waitForWorkers()');
    const timeout = options.timeout ?? Infinity;
    if (typeof timeout !== 'number' || !(timeout > 0)) throw new InvalidArgumentError('waitForWorkers(): options.timeout must be a positive number of milliseconds');
    const reply = await this.#ask((id) => ({ op: 'wait-for-workers', id, n, timeoutMs: Number.isFinite(timeout) ? timeout : -1 }));
    if (reply.op !== 'workers-ready') throw new ProtocolError(`expected workers-ready, got '${reply.op}'`);
    if (reply.error !== null) throw new TesseraError(`waitForWorkers(${n}): ${reply.error}`, 'ERR_TIMEOUT');
  }

  /**
   * Starts afresh, as Dask's `restart`: every task of every client is cancelled and every
   * result freed, and each worker replaces its threads (stopping tasks still running).
   * Futures held anywhere reject with CancelledError.
   */
  async restart(): Promise<void> {
    const reply = await this.#ask((id) => ({ op: 'restart', id }));
    if (reply.op !== 'restarted') throw new ProtocolError(`expected restarted, got '${reply.op}'`);
    if (reply.error !== null) throw new TesseraError(`restart failed: ${reply.error}`, 'ERR_RESTART');
  }

  /**
   * The adaptive loop's record: samples of workers requested / running / closing and tasks
   * queued / processing, and every scaling decision with its reason, newer than `since`
   * (scheduler clock, ms). Null when the cluster is not adaptive.
   */
  async scalingHistory(since = -Infinity): Promise<ScalingHistory | null> {
    const reply = await this.#ask((id) => ({ op: 'scaling-history', id, since: Number.isFinite(since) ? since : -1e300 }));
    if (reply.op !== 'scaling-history-reply') throw new ProtocolError(`expected scaling-history-reply, got '${reply.op}'`);
    return reply.history;
  }

  /**
   * What happened to these keys (or futures), oldest first: every transition in the
   * scheduler and on the workers, with the stimulus that caused it and the worker
   * involved — why a task ran twice, where its result went. As far back as the
   * transition logs reach.
   */
  async story(...keys: readonly (string | Future)[]): Promise<StoryEntry[]> {
    const names = keys.map((k) => (k instanceof Future ? k.key : k));
    if (names.some((k) => typeof k !== 'string')) throw new InvalidArgumentError('story() takes keys (strings) or Futures');
    const reply = await this.#ask((id) => ({ op: 'story', id, keys: names }));
    if (reply.op !== 'story-reply') throw new ProtocolError(`expected story-reply, got '${reply.op}'`);
    return [...reply.entries];
  }

  /** Stops these computations; their futures' result() rejects with CancelledError. */
  async cancel(futures: readonly Future[]): Promise<void> {
    await this.cancelKeys(futures.map((f) => f.key));
  }

  // ---- FutureOwner ----

  /** @internal */
  statusOf(key: string): FutureStatus {
    return this.#keys.get(key)?.status ?? 'cancelled';
  }

  /** @internal */
  errorOf(key: string): Error | null {
    const record = this.#keys.get(key);
    return record === undefined || (record.status !== 'error' && record.status !== 'lost') ? null : record.error;
  }

  /** @internal */
  resultOf(key: string): Promise<unknown> {
    return this.#gatherKeys([key]).then((values) => values[0]);
  }

  /** @internal */
  cancelKeys(keys: readonly string[]): Promise<void> {
    if (this.state !== 'running') return Promise.resolve();
    for (const key of keys) {
      const record = this.#keys.get(key);
      // A finished result is released by the cancel too: asking for it later is asking for
      // something cancelled, not something a worker lost.
      if (record === undefined || record.status === 'cancelled') continue;
      this.#settle(record, 'cancelled', new CancelledError(`task '${key}' was cancelled by the client`));
    }
    this.#send({ op: 'cancel', keys });
    return Promise.resolve();
  }

  /** @internal */
  releaseFuture(future: Future): void {
    this.#decref(future.key);
  }

  // ---- closing ----

  /** Disconnecting: the cluster releases everything this client held; what waits here is cancelled. */
  protected async onClose(): Promise<void> {
    this.#failAll(new CancelledError('the client closed'));
    await attemptAll([() => this.#conn.close(), () => this.#peers.close(), () => this.#closeStore()]);
  }

  protected override async onDestroy(error?: Error): Promise<void> {
    this.#failAll(error ?? new CancelledError('the client was destroyed'));
    this.#conn.destroy(error);
    await attemptAll([() => this.#peers.close(), () => this.#closeStore()]);
  }

  #onDisconnect(): void {
    if (this.state === 'running') void this.destroy(new ConnectionClosedError('the connection to the scheduler was lost'));
  }

  #failAll(error: Error): void {
    for (const record of this.#keys.values()) if (record.status === 'pending') this.#settle(record, 'cancelled', error);
    for (const request of this.#requests.values()) request.reject(error);
    this.#requests.clear();
  }

  // ---- internals ----

  #uniqueSuffix(): string {
    return `${this.#tag}${(this.#counter++).toString(36)}`;
  }

  #send(message: ClientToScheduler): void {
    this.assertRunning();
    if (message.op === 'update-graph') {
      this.#sendGraph(message);
      return;
    }
    this.#conn.send(message);
  }

  /** Runs `step` after the messages already waiting their turn; graphs queue behind it. */
  #enqueue(step: () => Promise<void>): void {
    const queued = (this.#graphQueue ?? Promise.resolve()).then(step);
    this.#graphQueue = queued;
    void queued.finally(() => {
      if (this.#graphQueue === queued) this.#graphQueue = null;
    });
  }

  /**
   * Graphs whose module functions are not bundled yet wait for esbuild, and graphs after a
   * scatter wait for its data to be held; graphs go out in the order they were submitted.
   */
  #sendGraph(message: Extract<ClientToScheduler, { op: 'update-graph' }>): void {
    const needsBundle = this.#bundleModules && message.fns.some((f) => f.kind === 'module' && f.url.startsWith('file:'));
    if (!needsBundle && this.#graphQueue === null) {
      this.#flushReleases();
      this.#sendParts(message);
      return;
    }
    this.#enqueue(async () => {
      const fns = needsBundle ? await Promise.all(message.fns.map((f) => this.#portable(f))) : message.fns;
      if (this.state !== 'running' || this.#conn.state !== 'open') return;
      this.#flushReleases();
      this.#sendParts({ ...message, fns });
    });
  }

  #sendParts(message: Extract<ClientToScheduler, { op: 'update-graph' }>): void {
    const plain = isPlainGraph(message);
    for (const part of graphParts(message)) {
      if (plain) this.#conn.sendPlain(part);
      else this.#conn.send(part);
    }
  }

  /** A module function as it travels: its module bundled and uploaded once, named by hash. */
  async #portable(fn: FnRef): Promise<FnRef> {
    if (fn.kind !== 'module' || !fn.url.startsWith('file:')) return fn;
    let pending = this.#bundles.get(fn.url);
    if (pending === undefined) {
      pending = bundleModule(fn.url).catch((error: unknown) => {
        // Still works where the workers share this machine's files (a LocalCluster).
        process.emitWarning(`${error instanceof Error ? error.message : String(error)}; workers will import ${fn.url} directly`, 'TesseraWarning');
        return null;
      });
      this.#bundles.set(fn.url, pending);
    }
    const bundle = await pending;
    if (bundle === null) return fn;
    if (!this.#uploaded.has(bundle.hash) && this.#conn.state === 'open') {
      this.#uploaded.add(bundle.hash);
      this.#conn.send({ op: 'upload-module', hash: bundle.hash, code: bundle.code });
    }
    return { ...fn, url: `${BUNDLE_SCHEME}${bundle.hash}` };
  }

  /** A Future on `key`, whose task is being sent (again): a cancelled or lost record waits anew. */
  #future(key: string): Future {
    let record = this.#keys.get(key);
    if (record === undefined) {
      record = { status: 'pending', error: null, refs: 0, waiters: null, holder: '' };
      this.#keys.set(key, record);
    } else if (record.status === 'cancelled' || record.status === 'lost') {
      record.status = 'pending';
      record.error = null;
    }
    record.refs++;
    const future = new Future(key, this);
    this.#registry.register(future, Future.leaseOf(future));
    return future;
  }

  #decref(key: string): void {
    const record = this.#keys.get(key);
    if (record === undefined || --record.refs > 0) return;
    this.#keys.delete(key);
    if (this.state !== 'running') return;
    this.#toRelease.push(key);
    if (this.#releaseScheduled) return;
    this.#releaseScheduled = true;
    // Releases of one turn travel together.
    setImmediate(() => this.#flushReleases());
  }

  /**
   * Sends pending releases. Also called before every graph goes out: a new graph may reuse
   * key names of one just released (two get() calls on different graphs with keys 'a',
   * 'b'…), and the scheduler must forget the old results before it sees the new tasks, or
   * it would take them for the same results.
   */
  #flushReleases(): void {
    this.#releaseScheduled = false;
    if (this.#toRelease.length === 0) return;
    // Keys wanted again by the graph about to go out are released too: the release goes
    // first, so the scheduler forgets the old task and takes the new one as it is.
    const keys = this.#toRelease;
    this.#toRelease = [];
    if (this.state === 'running' && this.#conn.state === 'open') this.#conn.sendPlain({ op: 'release-keys', keys });
  }

  #onMessage(m: SchedulerToClient): void {
    switch (m.op) {
      case 'client-welcome':
        return;
      case 'keys-in-memory': {
        const { keys, workers } = m;
        for (let i = 0; i < keys.length; i++) {
          const record = this.#keys.get(keys[i]!);
          if (record === undefined) continue;
          record.holder = workers?.[i] ?? '';
          this.#settle(record, 'finished', null);
        }
        return;
      }
      case 'key-erred': {
        const record = this.#keys.get(m.key);
        if (record !== undefined) this.#settle(record, 'error', remoteError(m.key, m.error));
        return;
      }
      case 'key-lost': {
        const record = this.#keys.get(m.key);
        if (record !== undefined) this.#settle(record, 'lost', new WorkerLostError(m.key, m.error.message));
        return;
      }
      case 'keys-cancelled':
        for (const key of m.keys) {
          const record = this.#keys.get(key);
          // Finished results are cancelled too (a restart frees them): asking for one later
          // is asking for something cancelled, not something lost.
          if (record !== undefined && record.status !== 'cancelled') this.#settle(record, 'cancelled', new CancelledError(`task '${key}' was cancelled`));
        }
        return;
      case 'store-reply':
        this.#proxy?.answer(m);
        return;
      case 'who-has-reply':
      case 'scaling-history-reply':
      case 'story-reply':
      case 'workers-ready':
      case 'restarted':
      case 'scattered':
      case 'data': {
        const request = this.#requests.get(m.id);
        if (request === undefined) return;
        this.#requests.delete(m.id);
        request.resolve(m);
        return;
      }
      default: {
        const never: never = m;
        throw new ProtocolError(`unknown scheduler message '${(never as { op: string }).op}'`);
      }
    }
  }

  #settle(record: KeyRecord, status: FutureStatus, error: Error | null): void {
    record.status = status;
    record.error = error;
    const waiters = record.waiters;
    if (waiters === null) return;
    record.waiters = null;
    if (!Array.isArray(waiters)) {
      if (error === null) waiters.resolve();
      else waiters.reject(error);
      return;
    }
    for (const w of waiters) {
      if (error === null) w.resolve();
      else w.reject(error);
    }
  }

  #whenDone(key: string): Promise<void> {
    const record = this.#keys.get(key);
    if (record === undefined) return Promise.reject(new CancelledError(`the future '${key}' was released`));
    switch (record.status) {
      case 'finished':
        return Promise.resolve();
      case 'pending':
        return this.#hold(new Promise((resolve, reject) => addWaiter(record, { resolve, reject })));
      case 'error':
      case 'cancelled':
      case 'lost':
        return Promise.reject(record.error ?? new CancelledError(`task '${key}' was cancelled`));
      default: {
        const never: never = record.status;
        return Promise.reject(new TesseraError(`unknown status ${String(never)}`));
      }
    }
  }

  /** Sends a request carrying a fresh id and resolves with the reply bearing it. */
  #ask(make: (id: number) => ClientToScheduler): Promise<SchedulerToClient | DataReply> {
    return this.#hold(
      new Promise((resolve, reject) => {
        if (this.state !== 'running') {
          reject(this.closedError());
          return;
        }
        const id = this.#nextRequest++;
        this.#requests.set(id, { resolve, reject });
        this.#conn.send(make(id));
      }),
    );
  }

  /** Keeps the process alive until `waiting` settles: someone awaits the cluster. */
  #hold<T>(waiting: Promise<T>): Promise<T> {
    if (this.#holds++ === 0) this.#conn.ref();
    return waiting.finally(() => {
      if (--this.#holds === 0) this.#conn.unref();
    });
  }

  #gatherKeys(keys: readonly string[]): Promise<unknown[]> {
    return this.#hold(this.#fetchKeys(keys));
  }

  /**
   * The keys' records once every key is finished, or rejects with the first key's error, as
   * `Promise.all` of #whenDone would: one promise and one waiter shared by all the keys
   * rather than a promise per key, which for a gather of many results was most of what it
   * cost.
   */
  #allDone(keys: readonly string[]): Promise<KeyRecord[]> {
    // Each key looked up once: in a map of many keys every lookup is a cache miss.
    const records = new Array<KeyRecord>(keys.length);
    for (let i = 0; i < keys.length; i++) {
      const record = this.#keys.get(keys[i]!);
      const status = record?.status;
      // Erred, cancelled, lost or released: #whenDone rejects with why.
      if (status !== 'finished' && status !== 'pending') return this.#whenDone(keys[i]!).then(() => this.#allDone(keys));
      records[i] = record!;
    }
    let pending = 0;
    let waiter: Waiter | undefined;
    const done = new Promise<void>((resolve, reject) => {
      waiter = {
        resolve: () => {
          if (--pending === 0) resolve();
        },
        reject,
      };
    });
    for (const record of records) {
      if (record.status === 'finished') continue;
      pending++;
      addWaiter(record, waiter!);
    }
    return pending === 0 ? Promise.resolve(records) : this.#hold(done.then(() => records));
  }

  async #fetchKeys(keys: readonly string[]): Promise<unknown[]> {
    const records = await this.#allDone(keys);
    const values = new Map<string, unknown>();
    let remaining: string[] = [];
    // First from the holders named with keys-in-memory, when every key has one: no who-has
    // round trip. A holder answers in the order asked, so its values are matched to the
    // keys by position (each checked); what it no longer holds is asked for as below.
    const byHolder = new Map<string, number[]>();
    for (let i = 0; i < keys.length; i++) {
      const holder = records[i]!.holder;
      if (holder === '') {
        byHolder.clear();
        break;
      }
      let list = byHolder.get(holder);
      if (list === undefined) byHolder.set(holder, (list = []));
      list.push(i);
    }
    if (byHolder.size > 0) {
      const groups = [...byHolder.values()];
      const replies = await Promise.all([...byHolder].map(([holder, list]) => this.#fetch(holder, list.map((i) => keys[i]!))));
      const found = new Array<unknown>(keys.length);
      for (let g = 0; g < groups.length; g++) {
        const got = replies[g]!.values;
        let next = 0;
        for (const i of groups[g]!) {
          const pair = got[next];
          if (pair !== undefined && pair[0] === keys[i]) {
            found[i] = pair[1];
            next++;
          } else {
            remaining.push(keys[i]!);
            records[i]!.holder = '';
          }
        }
      }
      if (remaining.length === 0) return found;
      for (let i = 0; i < keys.length; i++) if (records[i]!.holder !== '') values.set(keys[i]!, found[i]);
    } else {
      remaining = [...keys];
    }
    while (remaining.length > 0) {
      this.assertRunning();
      const reply = await this.#ask((id) => ({ op: 'who-has', id, keys: remaining }));
      if (reply.op !== 'who-has-reply') throw new ProtocolError(`expected who-has-reply, got '${reply.op}'`);
      const byHolder = new Map<string, string[]>();
      let homeless = false;
      for (let i = 0; i < remaining.length; i++) {
        const key = remaining[i]!;
        const holders = reply.whoHas[i];
        if (holders === null || holders === undefined) {
          // The scheduler forgot it: nobody can produce it any more.
          const record = this.#keys.get(key);
          if (record !== undefined) this.#settle(record, 'lost', new WorkerLostError(key, `the cluster no longer holds '${key}'`));
          continue;
        }
        if (holders.length === 0) {
          homeless = true;
          continue;
        }
        // A store or a worker that can be dialled, rather than a relay through the scheduler.
        const direct = holders.filter((h) => isStoreHolder(h) || this.#dialable(h));
        const choices = direct.length > 0 ? direct : holders;
        const holder = choices[Math.floor(Math.random() * choices.length)]!;
        let list = byHolder.get(holder);
        if (list === undefined) byHolder.set(holder, (list = []));
        list.push(key);
      }
      for (const key of remaining) {
        const record = this.#keys.get(key);
        if (record?.status === 'lost' && record.error !== null) throw record.error;
      }
      const replies = await Promise.all([...byHolder].map(([holder, list]) => this.#fetch(holder, list)));
      for (const r of replies) for (const [key, value] of r.values) values.set(key, value);
      remaining = remaining.filter((k) => !values.has(k));
      if (remaining.length > 0) {
        // Lost with a worker and being recomputed, or moved: ask again, and fail on errors.
        await Promise.all(remaining.map((k) => this.#whenDone(k)));
        if (homeless || replies.some((r) => r.missing.length > 0)) await new Promise((resolve) => setTimeout(resolve, WHO_HAS_RETRY_MS));
      }
    }
    return keys.map((k) => values.get(k));
  }

  #fetch(holder: string, keys: readonly string[]): Promise<DataReply> {
    if (isStoreHolder(holder)) return this.#fetchFromStore(holder, keys);
    if (!this.#dialable(holder)) {
      return this.#ask((id) => ({ op: 'relay-get-data', id, worker: holder, keys })).then((reply) => {
        if (reply.op !== 'data') throw new ProtocolError(`expected data, got '${reply.op}'`);
        return reply;
      });
    }
    // An unreachable holder is as good as a holder without the keys: the caller asks again.
    return this.#peers.get(holder, keys);
  }
  #dialable(holder: string): boolean {
    return this.directToWorkers && isDialable(holder);
  }

  /**
   * Reads from the scheduler's result store. What it does not hold (or a store that cannot
   * be read) is reported missing, so the scheduler stops naming the store for it and
   * recomputes it if need be; the gather asks again.
   */
  async #fetchFromStore(holder: string, keys: readonly string[]): Promise<DataReply> {
    let reply: DataReply = { op: 'data', id: 0, values: [], missing: [...keys] };
    try {
      const store = await this.#openStore();
      if (store !== null) {
        const { values, missing } = await getValues(store, keys);
        reply = { op: 'data', id: 0, values, missing };
      }
    } catch {
      // Reported missing below.
    }
    if (this.#conn.state === 'open') for (const key of reply.missing) this.#conn.send({ op: 'missing-data', key, from: holder });
    return reply;
  }

  /** The store, opened on first use: directly when this process can, else through the scheduler. */
  #openStore(): Promise<ResultStore | null> {
    const ref = this.#storeRef;
    if (ref === null) return Promise.resolve(null);
    this.#store ??= (async () => {
      const reachable = this.directToWorkers && !(ref.address.startsWith('memory://') && findMemoryStore(ref.address) === undefined);
      if (!reachable) {
        const proxy = new ProxyStore(ref.address, (request) => {
          if (this.#conn.state !== 'open') throw new ConnectionClosedError('the connection to the scheduler is closed');
          this.#conn.send(request);
        });
        this.#proxy = proxy;
        return proxy;
      }
      try {
        return await openStore(ref.address, { connectTimeoutMs: 3000 });
      } catch {
        this.#store = null;
        return null;
      }
    })();
    return this.#store;
  }

  async #closeStore(): Promise<void> {
    const store = await this.#store;
    await store?.close();
  }

}

/** The error a future's result() rejects with, by what went wrong (never by the remote name). */
function remoteError(key: string, info: TaskErrorInfo): Error {
  switch (info.kind) {
    case 'task':
      return new TaskError(info.key ?? key, info);
    case 'worker-lost':
    case 'data-lost':
      return new WorkerLostError(info.key ?? key, info.message);
    case 'unserializable':
      return new UnserializableError(info.key ?? key, info.path ?? '', info.reason ?? info.message);
    case 'missing-key':
      return new MissingKeyError(info.key ?? '', info.missing ?? key);
    default: {
      const unknown: never = info.kind;
      return new ProtocolError(`the scheduler reported an error of unknown kind '${String(unknown)}' for '${key}'`);
    }
  }
}

