/**
 * The scheduler's core: a pure, synchronous state machine. `handle(event)` applies one
 * event and returns the commands it implies; there is no I/O, no timer and no clock here
 * (time arrives in events), so the same core runs in unit tests, in simulations of
 * thousands of workers and in the server.
 *
 * ```ts
 * const state = new SchedulerState({ saturation: 1.1 });
 * state.handle({ op: 'add-worker', worker: 'tcp://w1', name: 'w1', nthreads: 2, memoryLimit: 4e9, now: 0 });
 * const commands = state.handle({
 *   op: 'update-graph', client: 'c1', now: 0, wanted: ['add-1'],
 *   tasks: [
 *     { key: 'inc-1', dependencies: [], spec: incSpec },
 *     { key: 'add-1', dependencies: ['inc-1'], spec: addSpec },
 *   ],
 * }); // → [{ op: 'compute-task', worker: 'tcp://w1', key: 'inc-1', ... }]
 * ```
 *
 * Task life, as in Dask: released → waiting → (queued | no-worker) → processing → memory,
 * or erred; a task nobody needs any more is released (its data freed) and, once nothing
 * depends on it, forgotten. A task is "needed" while a client wants it or a dependent in
 * an active state (waiting, no-worker, queued, processing) does; that single count is what
 * frees intermediate results as soon as their last dependent has finished.
 *
 * Why one file: the transitions are one state machine over the same records (as Dask's
 * scheduler is); placement, stealing, retirement, snapshots and validation already live in
 * rooms of their own, and splitting the transitions would scatter one table of rules.
 */
import { InvalidArgumentError } from '../errors.js';
import { missingKeyError, scatteredLostError, workerLostError } from './error-info.js';
import { resolveOptions, type ResolvedOptions, type SchedulerStateOptions } from './options.js';
import { countsOf, type PrefixSnapshot, type SchedulerSnapshot, type StateCounts, type TaskInfo, type WorkerSnapshot } from './snapshot.js';

export type { SchedulerStateOptions } from './options.js';
export { emptyStateCounts } from './snapshot.js';
export type { PrefixSnapshot, SchedulerSnapshot, StateCounts, TaskInfo, WorkerSnapshot } from './snapshot.js';
import type {
  AddWorkerEvent,
  CancelEvent,
  DependencyLocation,
  FnIds,
  GraphTask,
  RetireWorkersEvent,
  ScatterEvent,
  SchedulerCommand,
  SchedulerEvent,
  StealResponseEvent,
  TaskErredEvent,
  TaskErrorInfo,
  UpdateGraphEvent,
} from './events.js';
import { RunQueue } from './priority-queue.js';
import { Retirements } from './retirement.js';
import { SELF_HOLDER } from '../protocol/messages.js';
import { TransitionLog, type StoryEntry } from '../protocol/story.js';
import { validateState } from './validate.js';
import { decideWorker, hasRoom, isRootish, WorkerPool } from './placement.js';
import { planSteals } from './stealing.js';
import {
  comparePriority,
  ERRED,
  FORGOTTEN,
  isActive,
  keyPrefixAfter,
  MEMORY,
  nextMark,
  NO_WORKER,
  noTasks,
  occupancy,
  Prefix,
  PINNED,
  PROCESSING,
  QUEUED,
  RELEASED,
  runsBefore,
  SCATTERED,
  STARTED,
  TASK_STATE_NAMES,
  TaskState,
  WAITING,
  WorkerState,
  type HeldTaskStateName,
  type TaskStateCode,
} from './records.js';

interface StealRecord {
  readonly victim: WorkerState;
  /** null: the victim is retiring; place the task afresh. */
  readonly thief: WorkerState | null;
  readonly at: number;
}

/** A client's graph whose parts are still arriving (UpdateGraphEvent.more). */
interface ArrivingGraph {
  readonly generation: number;
  /** Tasks of the earlier parts, for the default order of the next part's tasks. */
  count: number;
  /** The tasks its parts created, pinned. */
  readonly created: TaskState[];
  /** Tasks held before it that it names (as keys or dependencies), pinned. */
  readonly named: Set<TaskState>;
  /** Created tasks with a dependency named in no part so far, and their dependency names. */
  readonly unlinked: [TaskState, readonly (string | number)[]][];
  /** Every task of the parts so far (created or held before), by position in the graph. */
  readonly positions: TaskState[];
}

/** `holders` without `h`, as a new list (whoHas is replaced, never changed in place). */
function without(holders: readonly WorkerState[], h: WorkerState): readonly WorkerState[] {
  return holders.length === 1 ? NO_HOLDERS : holders.filter((x) => x !== h);
}

/** The first of a task's holders, or null. */
function firstHolder(ts: TaskState): string | null {
  const holders = ts.whoHas;
  return holders === null || holders.length === 0 ? null : (holders[0] as WorkerState).id;
}

const NO_LOCATIONS: readonly never[] = Object.freeze([]);
const NO_IDS: readonly string[] = Object.freeze([]);
const NO_HOLDERS: readonly WorkerState[] = Object.freeze([]);

/** Dropped prefixes whose measured duration is remembered. */
const PREFIX_HISTORY = 1000;

export class SchedulerState {
  readonly options: Readonly<ResolvedOptions>;
  private readonly defaultDuration: number;
  private readonly queuing: boolean;
  private readonly backlogSeconds: number;

  private readonly tasks = new Map<string, TaskState>();
  /** Prefixes with a held task; one whose last task is forgotten is dropped (see dropPrefix). */
  private readonly prefixes = new Map<string, Prefix>();
  /** The prefix of the last task taken in, checked first for the next (newTask). */
  private lastPrefix: Prefix | null = null;
  /**
   * Measured durations of dropped prefixes, oldest first, at most PREFIX_HISTORY: a prefix
   * that comes back starts from what was learned, while fresh names each run (keys like
   * 'leaf-<run>-<i>') cannot grow the scheduler without bound.
   */
  private readonly prefixHistory = new Map<string, number>();
  private readonly workers = new Map<string, WorkerState>();
  private readonly workersByName = new Map<string, WorkerState>();
  private readonly clients = new Map<string, Set<TaskState>>();
  /** Graphs arriving in parts, by client. */
  private readonly arriving = new Map<string, ArrivingGraph>();
  /** Pins beyond the first (the PINNED flag), for a task named by two arriving graphs. */
  private readonly pins = new Map<TaskState, number>();
  /** Root-ish tasks ready to run, highest priority on top. */
  private readonly queue = new RunQueue<TaskState>(runsBefore);
  private readonly pool = new WorkerPool();
  /** Result stores, by holder id: holders that run nothing and outlive workers. */
  private readonly stores = new Map<string, WorkerState>();
  private readonly unrunnable = new Set<TaskState>();
  private readonly steals = new Map<TaskState, StealRecord>();
  private readonly retiring: Retirements;
  private readonly counts: number[] = [0, 0, 0, 0, 0, 0, 0, 0];
  /** Prefixes given a running age at the last tick. */
  private aged: Prefix[] = [];
  private generation = 0;
  private now = 0;
  private totalThreads = 0;
  /** The stimulus of the event being handled: every transition and command it causes is its. */
  private stimulus = '';
  private stimuli = 0;
  private readonly log: TransitionLog;

  // Per-event work lists.
  private out: SchedulerCommand[] = [];
  private readonly ready: TaskState[] = [];
  private readonly releases: TaskState[] = [];
  /** Scratch for linking a task's dependencies. */
  private readonly scratch: TaskState[] = [];
  /** The open free-keys command per worker, appended to until another command goes there. */
  private readonly openFree = new Map<WorkerState, string[]>();

  constructor(options: SchedulerStateOptions = {}) {
    this.options = resolveOptions(options);
    this.defaultDuration = this.options.defaultTaskDurationMs / 1000;
    this.queuing = Number.isFinite(this.options.saturation);
    this.backlogSeconds = this.options.backlogMs / 1000;
    this.log = new TransitionLog(this.options.transitionLogLength, TASK_STATE_NAMES);
    this.retiring = new Retirements({
      pool: this.pool,
      send: (ws, command) => this.toWorker(ws, command),
      emit: (command) => this.out.push(command),
      retired: (ws) => this.removeWorker(ws, 'retired'),
      rejoin: (ws) => {
        this.pool.add(ws);
        this.retryUnrunnable();
      },
    });
  }

  /**
   * Apply one event; returns the commands it implies, in order. Every command returned was
   * caused by this event: the shell sends them on with its stimulus (`lastStimulus`).
   */
  handle(event: SchedulerEvent): SchedulerCommand[] {
    this.stimulus = event.stimulus ?? `${event.op}-${++this.stimuli}`;
    switch (event.op) {
      case 'add-worker':
        this.advance(event.now);
        this.addWorker(event);
        break;
      case 'remove-worker': {
        this.advance(event.now);
        const ws = this.workers.get(event.worker);
        if (ws !== undefined) this.removeWorker(ws, event.reason);
        break;
      }
      case 'add-store':
        if (!this.stores.has(event.store)) this.addStore(event.store);
        break;
      case 'remove-store': {
        const store = this.stores.get(event.store);
        if (store !== undefined) this.removeStore(store);
        break;
      }
      case 'update-graph':
        this.advance(event.now);
        this.updateGraph(event);
        break;
      case 'task-started': {
        const ws = this.workers.get(event.worker);
        if (ws !== undefined) this.taskStarted(ws, event.key, event.startedAt);
        break;
      }
      case 'tasks-started': {
        const ws = this.workers.get(event.worker);
        if (ws === undefined) break;
        const { tickets, keys, startedAt } = event;
        if (tickets !== undefined) for (let i = 0; i < tickets.length; i++) this.ticketStarted(ws, tickets[i] as number, i === 0 ? startedAt : null);
        else if (keys !== undefined) for (let i = 0; i < keys.length; i++) this.taskStarted(ws, keys[i] as string, i === 0 ? startedAt : null);
        break;
      }
      case 'task-finished': {
        this.advance(event.now);
        const ws = this.workers.get(event.worker);
        if (ws !== undefined) this.taskFinished(ws, event.key, event.ticket ?? -1, event.nbytes, event.startedAt, event.finishedAt, event.now, event.stored);
        break;
      }
      case 'tasks-finished': {
        this.advance(event.now);
        const ws = this.workers.get(event.worker);
        if (ws === undefined) break;
        const { keys, tickets, nbytes, startedAt, finishedAt, now, stored } = event;
        for (let i = 0; i < keys.length; i++) {
          this.taskFinished(ws, keys[i] as string, tickets?.[i] ?? -1, nbytes[i] ?? 0, startedAt[i] ?? 0, finishedAt[i] ?? 0, now, stored);
        }
        break;
      }
      case 'task-erred':
        this.advance(event.now);
        this.taskErred(event);
        break;
      case 'add-keys': {
        const ws = this.workers.get(event.worker);
        if (ws !== undefined) for (const key of event.keys) this.addReplica(ws, key);
        break;
      }
      case 'missing-data':
        this.missingData(event.key, event.from);
        break;
      case 'release-keys':
        for (const key of event.keys) {
          const ts = this.tasks.get(key);
          if (ts !== undefined) this.unwant(ts, event.client, true);
        }
        break;
      case 'client-removed':
        this.clientRemoved(event.client);
        break;
      case 'cancel':
        this.cancel(event);
        break;
      case 'scatter':
        this.scatter(event);
        break;
      case 'heartbeat': {
        this.advance(event.now);
        const ws = this.workers.get(event.worker);
        if (ws !== undefined) {
          ws.lastSeen = event.now;
          ws.memory = event.memory;
        }
        break;
      }
      case 'worker-status':
        this.workerStatus(event.worker, event.status);
        break;
      case 'steal-response':
        this.stealResponse(event);
        break;
      case 'retire-workers':
        this.advance(event.now);
        this.retireWorkers(event);
        break;
      case 'tick':
        this.advance(event.now);
        this.tick();
        break;
      case 'restart':
        this.advance(event.now);
        for (const [client, wanted] of [...this.clients]) this.cancel({ op: 'cancel', client, keys: [...wanted].map((ts) => ts.key) });
        break;
      default: {
        const unknown: never = event;
        throw new InvalidArgumentError(`unknown scheduler event ${JSON.stringify((unknown as { op: unknown }).op)}`);
      }
    }
    this.settle();
    const out = this.out;
    this.out = [];
    this.openFree.clear();
    if (this.options.validate) this.validate();
    return out;
  }

  /** The stimulus id of the last event handled (given with it, or made up from its op). */
  get lastStimulus(): string {
    return this.stimulus;
  }

  /**
   * What happened to these keys, oldest first: each transition with the stimulus that
   * caused it and the worker involved, as far back as the transition log reaches.
   */
  story(...keys: readonly string[]): StoryEntry[] {
    return this.log.story(new Set(keys), 'scheduler');
  }

  /** Checks every invariant of the bookkeeping; throws InvariantError naming the first broken. O(everything). */
  validate(): void {
    validateState({
      tasks: this.tasks,
      workers: this.workers,
      stores: this.stores,
      queue: this.queue,
      pool: this.pool,
      unrunnable: this.unrunnable,
      counts: this.counts,
      clients: this.clients,
    });
  }

  // -------------------------------------------------------------------------------------
  // Queries
  // -------------------------------------------------------------------------------------

  /**
   * Seconds of work left in waiting, no-worker, queued and processing tasks: each counted
   * at its prefix's estimate, which running tasks raise as they outlast it. O(prefixes).
   */
  expectedRemainingWork(): number {
    let s = 0;
    for (const p of this.prefixes.values()) {
      const c = p.counts;
      const n = (c[WAITING] as number) + (c[NO_WORKER] as number) + (c[QUEUED] as number) + (c[PROCESSING] as number);
      if (n > 0) s += n * p.duration;
    }
    return s;
  }

  /** Seconds of work assigned to workers, estimated. O(workers). */
  totalOccupancy(): number {
    let s = 0;
    for (const ws of this.workers.values()) s += occupancy(ws, this.options.bandwidth);
    return s;
  }

  /** Held tasks by state. O(1). */
  stateCounts(): StateCounts {
    return countsOf(this.counts);
  }

  get taskCount(): number {
    return this.tasks.size;
  }

  /**
   * Calls `visit` with the spec of every held task (a task in memory keeps its spec to be
   * recomputed) and, for an encoded one, the ids of its functions. O(tasks).
   */
  forEachSpec(visit: (spec: unknown, fns: FnIds | null) => void): void {
    for (const ts of this.tasks.values()) if (ts.spec !== null && ts.spec !== undefined) visit(ts.spec, ts.fns);
  }

  /** Prefixes with a held task (forgotten ones are dropped; their measured durations kept in a bounded history). */
  get prefixCount(): number {
    return this.prefixes.size;
  }

  get workerCount(): number {
    return this.workers.size;
  }

  hasWorker(worker: string): boolean {
    return this.workers.has(worker);
  }

  /**
   * Up to `n` idle workers (nothing processing, not already leaving) to retire on
   * scale-down, those holding the fewest bytes first: they cost least to drain.
   * O(workers log workers).
   */
  workersToRetire(n: number): string[] {
    const idle: WorkerState[] = [];
    for (const ws of this.workers.values()) {
      if ((ws.status === 'running' || ws.status === 'paused') && ws.processing.size === 0) idle.push(ws);
    }
    idle.sort((a, b) => a.nbytes - b.nbytes || a.hasWhat.size - b.hasWhat.size);
    return idle.slice(0, Math.max(0, n)).map((ws) => ws.id);
  }

  /** One task's record, or undefined if the scheduler does not hold it. */
  taskInfo(key: string): TaskInfo | undefined {
    const ts = this.tasks.get(key);
    if (ts === undefined) return undefined;
    return {
      key: ts.key,
      prefix: ts.prefix.name,
      state: TASK_STATE_NAMES[ts.state] as HeldTaskStateName,
      priority: [ts.userPriority, ts.generation, ts.order],
      dependencies: ts.dependencies.map((d) => d.key),
      dependents: ts.dependents.filter((d) => d.state !== FORGOTTEN).map((d) => d.key),
      whoHas: ts.whoHas === null ? [] : ts.whoHas.map((w) => w.id),
      processingOn: ts.processingOn === null ? null : ts.processingOn.id,
      startedAt: ts.processingOn === null || ts.startedAt === null ? Number.NaN : ts.startedAt,
      nbytes: ts.nbytes,
      wantedBy: ts.wantedBy === null ? [] : [...ts.wantedBy],
      restrictions: ts.restrictions ?? [],
      retries: ts.retries,
      suspicious: ts.suspicious,
      error: ts.error,
    };
  }

  /** A worker holding the key's result (the first to have it), or null. O(1), no allocation. */
  holderOf(key: string): string | null {
    const ts = this.tasks.get(key);
    return ts === undefined ? null : firstHolder(ts);
  }

  /** Keys of the tasks in `state`. O(tasks); for debugging and tests. */
  keysIn(state: HeldTaskStateName): string[] {
    const out: string[] = [];
    for (const ts of this.tasks.values()) if (TASK_STATE_NAMES[ts.state] === state) out.push(ts.key);
    return out;
  }

  /** Everything a dashboard or the adaptive scaler needs, in one object. O(workers + prefixes). */
  snapshot(): SchedulerSnapshot {
    const bw = this.options.bandwidth;
    const workers: WorkerSnapshot[] = [];
    for (const ws of this.workers.values()) {
      workers.push({
        worker: ws.id,
        name: ws.name,
        status: ws.status,
        nthreads: ws.nthreads,
        memoryLimit: ws.memoryLimit,
        processing: ws.processing.size,
        inMemory: ws.hasWhat.size,
        nbytes: ws.nbytes,
        occupancy: occupancy(ws, bw),
        memory: ws.memory,
        lastSeen: ws.lastSeen,
      });
    }
    const prefixes: PrefixSnapshot[] = [];
    for (const p of this.prefixes.values()) {
      prefixes.push({ prefix: p.name, duration: p.duration, measured: p.measured >= 0, counts: countsOf(p.counts) });
    }
    return {
      now: this.now,
      tasks: this.tasks.size,
      byState: countsOf(this.counts),
      workers,
      prefixes,
      totalThreads: this.totalThreads,
      stealsInFlight: this.steals.size,
      retiring: this.retiring.ids(),
      clients: this.clients.size,
      expectedRemainingWork: this.expectedRemainingWork(),
    };
  }

  // -------------------------------------------------------------------------------------
  // Events
  // -------------------------------------------------------------------------------------

  private advance(now: number): void {
    if (now > this.now) this.now = now;
  }

  private addWorker(e: AddWorkerEvent): void {
    const existing = this.workers.get(e.worker);
    // The same address registering again is a restart: whatever it held or ran is gone.
    if (existing !== undefined) this.removeWorker(existing, 'lost');
    const nthreads = Math.max(1, Math.floor(e.nthreads));
    const slots = this.queuing ? Math.max(1, Math.ceil(nthreads * this.options.saturation)) : Infinity;
    const ws = new WorkerState(e.worker, e.name, nthreads, e.memoryLimit, slots, e.now);
    this.workers.set(ws.id, ws);
    if (e.name !== e.worker) this.workersByName.set(e.name, ws);
    this.totalThreads += nthreads;
    this.pool.add(ws);
    this.retryUnrunnable();
  }

  private removeWorker(ws: WorkerState, reason: 'lost' | 'retired' | 'closed'): void {
    if (ws.status === 'closed') return;
    this.retiring.forget(ws);
    ws.status = 'closed';
    this.pool.remove(ws);
    this.workers.delete(ws.id);
    if (this.workersByName.get(ws.name) === ws) this.workersByName.delete(ws.name);
    this.totalThreads -= ws.nthreads;
    this.openFree.delete(ws);
    if (this.steals.size > 0) {
      for (const [ts, rec] of this.steals) if (rec.victim === ws || rec.thief === ws) this.dropSteal(ts, rec);
    }

    // Its copies are gone; a key with no copy left is lost.
    const lost = this.dropCopies(ws);
    ws.nbytes = 0;

    // What it was running goes back to waiting (with every input still in memory, so far),
    // unless workers keep dying under the task. When the worker said which tasks had
    // started, only those are suspects: tasks queued behind them did not kill it. When it
    // said of none (it does not report, or died before its report got out), every task it
    // held is, so that a task that kills at once is still caught.
    const rerun: TaskState[] = [];
    const failed: TaskState[] = [];
    let known = false;
    for (const ts of ws.processing) {
      if ((ts.flags & STARTED) !== 0) {
        known = true;
        break;
      }
    }
    for (const ts of [...ws.processing]) {
      const suspect = !known || (ts.flags & STARTED) !== 0;
      this.unassign(ts);
      if (reason === 'lost' && suspect) ts.suspicious++;
      this.setState(ts, WAITING);
      ts.waitingOn = 0;
      if (ts.suspicious > this.options.allowedFailures) failed.push(ts);
      else rerun.push(ts);
    }
    for (const ts of lost) this.dataLost(ts);
    for (const ts of rerun) if (ts.state === WAITING && ts.waitingOn === 0) this.ready.push(ts);
    for (const ts of failed) if (ts.state === WAITING) this.err(ts, workerLostError(ts), false);
    for (const ts of lost) this.recomputeOrRelease(ts);

    this.retiring.workerGone(ws);
  }

  private addStore(id: string): void {
    const store = new WorkerState(id, id, 0, Infinity, 0, this.now);
    // Paused, for good: a holder whose copies count (retirement need not move them) but
    // which placement and stealing never choose to run anything.
    store.status = 'paused';
    store.reported = 'paused';
    this.stores.set(id, store);
  }

  /** A store went away: its copies are gone, and a key with no copy left is recomputed. */
  private removeStore(store: WorkerState): void {
    this.stores.delete(store.id);
    store.status = 'closed';
    const lost = this.dropCopies(store);
    store.nbytes = 0;
    for (const ts of lost) this.dataLost(ts);
    for (const ts of lost) this.recomputeOrRelease(ts);
  }

  private updateGraph(e: UpdateGraphEvent): void {
    const client = e.client;
    const specs = e.tasks;
    let parts = this.arriving.get(client);
    if (parts === undefined && e.more === true) {
      parts = { generation: ++this.generation, count: 0, created: [], named: new Set(), unlinked: [], positions: [] };
      this.arriving.set(client, parts);
    }
    const generation = parts === undefined ? ++this.generation : parts.generation;
    const offset = parts === undefined ? 0 : parts.count;
    const userPriority = e.userPriority ?? 0;
    const created: TaskState[] = [];
    const createdFrom: GraphTask[] = [];
    // Dependencies given by position find their task here.
    const positions = parts === undefined ? new Array<TaskState>(specs.length) : parts.positions;
    for (let i = 0; i < specs.length; i++) {
      const g = specs[i] as GraphTask;
      // A key already held keeps its record: same key, same result.
      const held = this.tasks.get(g.key);
      if (held !== undefined) {
        positions[offset + i] = held;
        if (parts !== undefined) this.pinNamed(parts, held);
        continue;
      }
      const restrictions =
        g.restrictions !== undefined && g.restrictions.length > 0 ? [...new Set(g.restrictions)] : null;
      const retries = g.retries !== undefined && g.retries > 0 ? Math.floor(g.retries) : 0;
      const ts = this.newTask(g.key, g.spec, typeof g.spec === 'string' ? (g.fns ?? null) : null, userPriority, generation, g.priority ?? offset + i, restrictions, retries);
      positions[offset + i] = ts;
      created.push(ts);
      createdFrom.push(g);
    }
    if (parts !== undefined) {
      parts.count += specs.length;
      for (const ts of created) {
        ts.flags |= PINNED;
        parts.created.push(ts);
      }
    }
    // Link once every key of the batch exists, so dependencies may come in any order.
    // Arrays grown by push keep room for 16 more; a held graph keeps them exact.
    const grown = new Set<TaskState>();
    for (let i = 0; i < created.length; i++) {
      const ts = created[i] as TaskState;
      const names = (createdFrom[i] as GraphTask).dependencies;
      if (names.length === 0) continue;
      const missing = this.link(ts, names, positions, grown, parts, e.more === true);
      if (missing === null) continue;
      if (e.more === true) (parts as ArrivingGraph).unlinked.push([ts, names]);
      else this.missingDependency(ts, missing);
    }
    for (const d of grown) d.dependents = d.dependents.slice();
    if (e.more === true) return;
    if (parts !== undefined) this.lastPart(client, parts);

    for (const key of e.wanted) {
      const ts = this.tasks.get(key);
      if (ts === undefined) {
        this.out.push({ op: 'key-erred', clients: [client], key, error: missingKeyError('', key) });
        continue;
      }
      this.want(ts, client);
      if (ts.state === MEMORY) this.out.push({ op: 'key-in-memory', clients: [client], key, nbytes: ts.nbytes, holder: firstHolder(ts) });
      else if (ts.state === ERRED) this.out.push({ op: 'key-erred', clients: [client], key, error: ts.error as TaskErrorInfo });
      else if (ts.state === RELEASED) this.compute(ts);
    }
    // Whatever no wanted key leads to is forgotten again.
    for (const ts of parts === undefined ? created : parts.created) {
      if (ts.state === RELEASED || ts.state === ERRED) this.releases.push(ts);
    }
  }

  /**
   * Links `ts` to the held tasks `names` name (deduplicated) and returns null; or, when a
   * name is not held, returns it — after linking the others unless `defer`, which leaves
   * `ts` untouched for a later part to link. A task held before an arriving graph that
   * this links to is pinned by that graph. A number names the task at that position of
   * the graph (`positions`). The dependencies keep the order of `names`, less repeats and
   * `ts` itself: a spec may leave its step's dependency keys to its task on that promise
   * (spec-writer.ts), and the worker is sent them in this order.
   */
  private link(
    ts: TaskState,
    names: readonly (string | number)[],
    positions: readonly TaskState[],
    grown: Set<TaskState>,
    parts: ArrivingGraph | undefined,
    defer: boolean,
  ): string | null {
    const mark = nextMark();
    const deps = this.scratch;
    deps.length = 0;
    let missing: string | null = null;
    for (const name of names) {
      const d = typeof name === 'number' ? positions[name] : this.tasks.get(name);
      if (d === undefined) {
        missing ??= typeof name === 'number' ? `#${name} (no task of the graph has that position)` : name;
        if (defer) return missing;
        continue;
      }
      if (d.mark === mark || d === ts) continue;
      d.mark = mark;
      deps.push(d);
    }
    for (let i = 0; i < deps.length; i++) {
      const d = deps[i] as TaskState;
      if (parts !== undefined && d.generation !== parts.generation) this.pinNamed(parts, d);
      if (d.dependents === noTasks()) d.dependents = [ts];
      else {
        d.dependents.push(ts);
        grown.add(d);
      }
    }
    ts.dependencies = deps.slice();
    return missing;
  }

  private missingDependency(ts: TaskState, missing: string): void {
    this.setState(ts, ERRED);
    ts.error = missingKeyError(ts.key, missing);
  }

  /** The last part of `client`'s graph arrived: link what named later parts, and unpin. */
  private lastPart(client: string, parts: ArrivingGraph): void {
    this.arriving.delete(client);
    const grown = new Set<TaskState>();
    for (const [ts, names] of parts.unlinked) {
      const missing = this.link(ts, names, parts.positions, grown, parts, false);
      if (missing !== null) this.missingDependency(ts, missing);
    }
    for (const d of grown) d.dependents = d.dependents.slice();
    for (const ts of parts.created) this.unpin(ts, false);
    for (const ts of parts.named) this.unpin(ts, true);
  }

  /** A client left while its graph was arriving: what the parts held is let go. */
  private dropParts(client: string): void {
    const parts = this.arriving.get(client);
    if (parts === undefined) return;
    this.arriving.delete(client);
    for (const ts of parts.created) this.unpin(ts, true);
    for (const ts of parts.named) this.unpin(ts, true);
  }

  private pinNamed(parts: ArrivingGraph, ts: TaskState): void {
    if (parts.named.has(ts)) return;
    parts.named.add(ts);
    if ((ts.flags & PINNED) === 0) ts.flags |= PINNED;
    else this.pins.set(ts, (this.pins.get(ts) ?? 1) + 1);
  }

  /** Drops one pin; with the last, the task is looked at again (if `review`) like any other. */
  private unpin(ts: TaskState, review: boolean): void {
    const n = this.pins.get(ts);
    if (n !== undefined) {
      if (n === 2) this.pins.delete(ts);
      else this.pins.set(ts, n - 1);
      return;
    }
    ts.flags &= ~PINNED;
    if (review) this.releases.push(ts);
  }

  /** Handed to a thread; `startedAt` null when it waits there behind another task. */
  private taskStarted(ws: WorkerState, key: string, startedAt: number | null): void {
    const ts = this.tasks.get(key);
    if (ts !== undefined && ts.processingOn === ws) {
      if (startedAt !== null) ts.startedAt = startedAt;
      ts.flags |= STARTED;
    }
  }

  /** As taskStarted, the task named by its ticket (a stale ticket finds nothing). */
  private ticketStarted(ws: WorkerState, ticket: number, startedAt: number | null): void {
    const ts = ws.ticketed(ticket);
    if (ts !== undefined) {
      if (startedAt !== null) ts.startedAt = startedAt;
      ts.flags |= STARTED;
    }
  }

  /** `ticket`: the one its compute carried, -1 when unknown; a stale one falls back on the key. */
  private taskFinished(ws: WorkerState, key: string, ticket: number, nbytes: number, startedAt: number, finishedAt: number, now: number, stored: string | undefined): void {
    ws.lastSeen = now;
    const ts = ticket < 0 ? undefined : ws.ticketed(ticket);
    if (ts !== undefined && ts.key === key) this.ranOn(ws, ts, nbytes, startedAt, finishedAt);
    else this.finished(ws, key, nbytes, startedAt, finishedAt, now);
    // Written to a store too: a copy there (or, if the result is not wanted, deleted there).
    const store = stored === undefined ? undefined : this.stores.get(stored);
    if (store !== undefined) this.addReplica(store, key);
  }

  private finished(ws: WorkerState, key: string, nbytes: number, startedAt: number, finishedAt: number, now: number): void {
    ws.lastSeen = now;
    const ts = this.tasks.get(key);
    if (ts === undefined) {
      this.free(ws, key);
      return;
    }
    if (ts.state === PROCESSING && ts.processingOn === ws) {
      this.ranOn(ws, ts, nbytes, startedAt, finishedAt);
    } else if (ts.state === MEMORY) {
      this.addReplica(ws, key);
    } else {
      // Stale: it no longer runs there (released, moved, recomputing); drop the copy.
      this.free(ws, key);
    }
  }

  /** `ts`, processing on `ws`, finished there. */
  private ranOn(ws: WorkerState, ts: TaskState, nbytes: number, startedAt: number, finishedAt: number): void {
    const seconds = (finishedAt - startedAt) / 1000;
    if (seconds >= 0 && Number.isFinite(seconds)) ts.prefix.learn(seconds, this.defaultDuration);
    if (nbytes >= 0) ts.prefix.learnBytes(nbytes);
    this.unassign(ts);
    this.toMemory(ts, ws, nbytes);
  }

  private taskErred(e: TaskErredEvent): void {
    const ws = this.workers.get(e.worker);
    if (ws === undefined) return;
    ws.lastSeen = e.now;
    const ts = this.tasks.get(e.key);
    if (ts === undefined || ts.state !== PROCESSING || ts.processingOn !== ws) return;
    this.unassign(ts);
    if (ts.retries > 0) {
      ts.retries--;
      this.setState(ts, WAITING);
      this.rewait(ts);
      return;
    }
    this.err(ts, e.error, false);
  }

  private addReplica(ws: WorkerState, key: string): void {
    const ts = this.tasks.get(key);
    if (ts === undefined || ts.state !== MEMORY || ts.whoHas === null) {
      // A copy of something not in memory is dropped, unless the worker is computing it
      // (free-keys would cancel that).
      if (ts === undefined || ts.processingOn !== ws) this.free(ws, key);
      return;
    }
    if (ts.whoHas.includes(ws)) return;
    ts.whoHas = [...ts.whoHas, ws];
    // A copy elsewhere is part of where the result went.
    this.log.record(ts.key, MEMORY, MEMORY, this.stimulus, this.now, ws.id);
    ws.hasWhat.add(ts);
    if (ts.nbytes > 0) ws.nbytes += ts.nbytes;
    if (this.retiring.size > 0 && ws.status !== 'closing') {
      // A copy landed on a worker that stays: retiring holders no longer need to move it.
      for (const h of ts.whoHas) if (h.retirePending !== null) h.retirePending.delete(ts);
    }
  }

  /** Takes `holder` off the holders of everything it held; returns the tasks left with no copy. */
  private dropCopies(holder: WorkerState): TaskState[] {
    const lost: TaskState[] = [];
    for (const ts of holder.hasWhat) {
      const holders = ts.whoHas;
      if (holders === null || !holders.includes(holder)) continue;
      ts.whoHas = without(holders, holder);
      if (ts.whoHas.length === 0) lost.push(ts);
    }
    holder.hasWhat.clear();
    return lost;
  }

  private missingData(key: string, from: string): void {
    const ts = this.tasks.get(key);
    const holder = this.workers.get(from) ?? this.stores.get(from);
    if (ts === undefined || holder === undefined || ts.state !== MEMORY || ts.whoHas === null) return;
    if (!ts.whoHas.includes(holder)) return;
    ts.whoHas = without(ts.whoHas, holder);
    holder.hasWhat.delete(ts);
    if (ts.nbytes > 0) holder.nbytes -= ts.nbytes;
    if (holder.retirePending !== null) holder.retirePending.delete(ts);
    if (ts.whoHas.length === 0) {
      this.dataLost(ts);
      this.recomputeOrRelease(ts);
    }
  }

  private clientRemoved(client: string): void {
    this.dropParts(client);
    const wanted = this.clients.get(client);
    if (wanted === undefined) return;
    this.clients.delete(client);
    for (const ts of wanted) this.unwant(ts, client, false);
  }

  private cancel(e: CancelEvent): void {
    for (const key of e.keys) {
      const ts = this.tasks.get(key);
      if (ts !== undefined && this.unwant(ts, e.client, true)) {
        this.out.push({ op: 'key-cancelled', clients: [e.client], key });
      }
    }
  }

  private scatter(e: ScatterEvent): void {
    const ws = this.workers.get(e.worker);
    for (const { key, nbytes } of e.keys) {
      if (ws === undefined) {
        const error: TaskErrorInfo = {
          kind: 'data-lost',
          key,
          name: 'WorkerLostError',
          message: `scattered data '${key}' went to worker '${e.worker}', which the scheduler does not know`,
          stack: '',
        };
        this.out.push({ op: 'key-lost', clients: [e.client], key, error });
        continue;
      }
      let ts = this.tasks.get(key);
      if (ts === undefined) {
        ts = this.newTask(key, undefined, null, 0, ++this.generation, 0, null, 0);
        ts.flags |= SCATTERED;
      }
      this.want(ts, e.client);
      if (ts.state === MEMORY) {
        this.addReplica(ws, key);
        this.out.push({ op: 'key-in-memory', clients: [e.client], key, nbytes: ts.nbytes, holder: firstHolder(ts) });
        continue;
      }
      if (isActive(ts.state)) this.leaveActiveState(ts);
      this.toMemory(ts, ws, nbytes);
    }
  }

  private workerStatus(worker: string, status: 'running' | 'paused'): void {
    const ws = this.workers.get(worker);
    if (ws === undefined) return;
    ws.reported = status;
    if (ws.status === 'closing' || ws.status === 'closed' || ws.status === status) return;
    ws.status = status;
    if (status === 'paused') {
      this.pool.remove(ws);
    } else {
      this.pool.add(ws);
      this.retryUnrunnable();
    }
  }

  private stealResponse(e: StealResponseEvent): void {
    const ts = this.tasks.get(e.key);
    if (ts === undefined) return;
    let rec = this.steals.get(ts);
    if (rec !== undefined && rec.victim.id === e.worker) this.dropSteal(ts, rec);
    else rec = undefined;
    // Even a late answer to an expired request counts: if the worker gave the task up, it
    // is no longer running there.
    if (!e.accepted || ts.state !== PROCESSING || ts.processingOn?.id !== e.worker) return;
    this.unassign(ts);
    const thief = rec === undefined ? null : rec.thief;
    if (thief !== null && thief.status === 'running' && this.workers.get(thief.id) === thief) {
      this.assign(ts, thief);
    } else {
      this.setState(ts, WAITING);
      this.rewait(ts);
    }
  }

  private retireWorkers(e: RetireWorkersEvent): void {
    const leaving: WorkerState[] = [];
    for (const id of e.workers) {
      const ws = this.workers.get(id);
      if (ws === undefined || ws.status === 'closing' || ws.status === 'closed') continue;
      this.pool.remove(ws);
      this.retiring.begin(ws);
      leaving.push(ws);
    }
    if (leaving.length === 0) return;
    // Copies already on their way to a worker that is now leaving need another home.
    for (const ws of leaving) this.retiring.workerGone(ws);
    // Ask for back what they have not started; what they run, they finish.
    for (const ws of leaving) {
      for (const ts of ws.processing) {
        if (this.steals.has(ts) || ts.startedAt !== null) continue;
        this.steals.set(ts, { victim: ws, thief: null, at: this.now });
        this.toWorker(ws, { op: 'steal-request', worker: ws.id, key: ts.key });
      }
    }
  }

  private tick(): void {
    const now = this.now;
    const ttl = this.options.workerTtlMs;
    if (Number.isFinite(ttl)) {
      for (const ws of [...this.workers.values()]) {
        if (now - ws.lastSeen > ttl) {
          this.toWorker(ws, { op: 'close-worker', worker: ws.id, reason: 'lost' });
          this.removeWorker(ws, 'lost');
        }
      }
    }
    this.surveyRunningAges(now);
    if (this.steals.size > 0) {
      const timeout = this.options.stealTimeoutMs;
      for (const [ts, rec] of this.steals) if (now - rec.at > timeout) this.dropSteal(ts, rec);
    }
    if (this.options.workStealing) {
      for (const plan of planSteals(this.workers.values(), this.steals, this.options.bandwidth)) {
        this.steals.set(plan.task, { victim: plan.victim, thief: plan.thief, at: now });
        this.toWorker(plan.victim, { op: 'steal-request', worker: plan.victim.id, key: plan.task.key });
      }
    }
  }

  /**
   * Tasks running longer than their prefix's estimate raise it: a prefix's estimate is at
   * least the mean age of its running tasks, so the first minutes of a job of long tasks
   * are not planned at the default duration. O(processing tasks).
   */
  private surveyRunningAges(now: number): void {
    const previous = this.aged;
    const aged: Prefix[] = [];
    for (const ws of this.workers.values()) {
      for (const ts of ws.processing) {
        const started = ts.startedAt;
        if (started === null) continue;
        const p = ts.prefix;
        if (p.ageCount === 0) aged.push(p);
        p.ageSum += now - started;
        p.ageCount++;
      }
    }
    for (const p of previous) if (p.ageCount === 0) {
      p.runningAge = 0;
      p.refresh(this.defaultDuration);
    }
    for (const p of aged) {
      p.runningAge = p.ageSum / p.ageCount / 1000;
      p.ageSum = 0;
      p.ageCount = 0;
      p.refresh(this.defaultDuration);
    }
    this.aged = aged;
  }

  // -------------------------------------------------------------------------------------
  // Transitions
  // -------------------------------------------------------------------------------------

  private newTask(
    key: string,
    spec: unknown,
    fns: FnIds | null,
    userPriority: number,
    generation: number,
    order: number,
    restrictions: readonly string[] | null,
    retries: number,
  ): TaskState {
    const last = this.lastPrefix;
    const name = keyPrefixAfter(key, last === null ? '' : last.name);
    let prefix = last !== null && name === last.name ? last : this.prefixes.get(name);
    if (prefix === undefined) {
      prefix = new Prefix(name, this.defaultDuration);
      const measured = this.prefixHistory.get(name);
      if (measured !== undefined) {
        this.prefixHistory.delete(name);
        prefix.measured = measured;
        prefix.refresh(this.defaultDuration);
      }
      this.prefixes.set(name, prefix);
    }
    this.lastPrefix = prefix;
    const ts = new TaskState(key, prefix, spec, fns, noTasks(), userPriority, generation, order, restrictions, retries);
    this.tasks.set(key, ts);
    prefix.counts[RELEASED] = (prefix.counts[RELEASED] as number) + 1;
    this.counts[RELEASED] = (this.counts[RELEASED] as number) + 1;
    return ts;
  }

  private setState(ts: TaskState, state: TaskStateCode): void {
    const old = ts.state;
    const pc = ts.prefix.counts;
    const gc = this.counts;
    if (old !== FORGOTTEN) {
      pc[old] = (pc[old] as number) - 1;
      gc[old] = (gc[old] as number) - 1;
    }
    if (state !== FORGOTTEN) {
      pc[state] = (pc[state] as number) + 1;
      gc[state] = (gc[state] as number) + 1;
    } else if (old !== FORGOTTEN && pc.every((n) => n === 0)) {
      this.dropPrefix(ts.prefix);
    }
    ts.state = state;
    const worker = state === PROCESSING ? ts.processingOn : state === MEMORY && ts.whoHas !== null ? ts.whoHas[0] : undefined;
    this.log.record(ts.key, old, state, this.stimulus, this.now, worker === undefined || worker === null ? null : worker.id);
  }

  /** The prefix's last task is forgotten: its record goes, what it measured is remembered. */
  private dropPrefix(prefix: Prefix): void {
    if (this.prefixes.get(prefix.name) !== prefix) return;
    this.prefixes.delete(prefix.name);
    if (this.lastPrefix === prefix) this.lastPrefix = null;
    if (prefix.measured < 0) return;
    this.prefixHistory.set(prefix.name, prefix.measured);
    if (this.prefixHistory.size > PREFIX_HISTORY) {
      const oldest = this.prefixHistory.keys().next().value;
      if (oldest !== undefined) this.prefixHistory.delete(oldest);
    }
  }

  /** Released → waiting for `root` and, first, every released task its lineage needs. */
  private compute(root: TaskState): void {
    const mark = nextMark();
    const stack: TaskState[] = [root];
    while (stack.length > 0) {
      const ts = stack[stack.length - 1] as TaskState;
      if (ts.state !== RELEASED) {
        stack.pop();
        continue;
      }
      if (ts.mark !== mark) {
        ts.mark = mark;
        let pushed = false;
        for (const d of ts.dependencies) {
          // A marked dependency still released is on the stack below: a cycle; skip it.
          if (d.state === RELEASED && d.mark !== mark) {
            stack.push(d);
            pushed = true;
          }
        }
        if (pushed) continue;
      }
      stack.pop();
      this.enterWaiting(ts);
    }
  }

  private enterWaiting(ts: TaskState): void {
    if ((ts.flags & SCATTERED) !== 0) {
      this.err(ts, scatteredLostError(ts), true);
      return;
    }
    let missing = 0;
    let erred: TaskState | null = null;
    const deps = ts.dependencies;
    for (let i = 0; i < deps.length; i++) {
      const d = deps[i] as TaskState;
      d.activeDependents++;
      if (d.state === MEMORY) continue;
      if (d.state === ERRED) erred = d;
      else missing++;
    }
    this.setState(ts, WAITING);
    if (erred !== null) {
      this.err(ts, erred.error as TaskErrorInfo, false);
      return;
    }
    ts.waitingOn = missing;
    if (missing === 0) this.ready.push(ts);
  }

  /** For a task now in waiting: count what it waits for; ready if nothing. */
  private rewait(ts: TaskState): void {
    let missing = 0;
    const deps = ts.dependencies;
    for (let i = 0; i < deps.length; i++) if ((deps[i] as TaskState).state !== MEMORY) missing++;
    ts.waitingOn = missing;
    if (missing === 0) this.ready.push(ts);
  }

  /** Places ready tasks in priority order: root-ish ones into the queue, the rest on workers. */
  private placeReady(): void {
    const ready = this.ready;
    if (ready.length === 0) return;
    if (ready.length > 1) ready.sort(comparePriority);
    const bw = this.options.bandwidth;
    for (let i = 0; i < ready.length; i++) {
      const ts = ready[i] as TaskState;
      if (ts.state !== WAITING || ts.waitingOn !== 0) continue;
      if (this.queuing && isRootish(ts)) {
        this.setState(ts, QUEUED);
        this.queue.push(ts);
        continue;
      }
      if (!this.queuing && ts.restrictions === null && ts.dependencies.length === 0) {
        const ws = this.pool.leastLoaded();
        if (ws !== undefined) {
          this.assign(ts, ws);
          continue;
        }
      }
      const ws = decideWorker(ts, this.pool, ts.restrictions === null ? null : this.resolve(ts.restrictions), bw);
      if (ws !== null) this.assign(ts, ws);
      else {
        this.setState(ts, NO_WORKER);
        this.unrunnable.add(ts);
      }
    }
    ready.length = 0;
  }

  /**
   * Hands queued tasks, best first, to the least loaded workers while they have room: slots,
   * a free thread for a long task, or a backlog of short ones (placement.ts, hasRoom). The
   * least loaded by count may be the one busy with a long task while the next has room
   * for short ones, so the top of the pool's heap (the least loaded and its two children,
   * among which is the second least loaded) is asked, never a sweep.
   */
  private fillSlots(): void {
    const queue = this.queue;
    const pool = this.pool;
    const backlog = this.backlogSeconds;
    const bandwidth = this.options.bandwidth;
    while (queue.size > 0) {
      const next = queue.peek() as TaskState;
      let ws = pool.at(0);
      if (ws === undefined) return;
      if (!hasRoom(ws, next, backlog, bandwidth)) {
        const a = pool.at(1);
        const b = pool.at(2);
        if (a !== undefined && hasRoom(a, next, backlog, bandwidth)) ws = a;
        else if (b !== undefined && hasRoom(b, next, backlog, bandwidth)) ws = b;
        else return;
      }
      this.assign(queue.pop() as TaskState, ws);
    }
  }

  private resolve(names: readonly string[]): WorkerState[] {
    const out: WorkerState[] = [];
    for (const n of names) {
      const ws = this.workers.get(n) ?? this.workersByName.get(n);
      if (ws !== undefined) out.push(ws);
    }
    return out;
  }

  private retryUnrunnable(): void {
    if (this.unrunnable.size === 0) return;
    for (const ts of this.unrunnable) {
      this.setState(ts, WAITING);
      ts.waitingOn = 0;
      this.ready.push(ts);
    }
    this.unrunnable.clear();
  }

  /** → processing on `ws`, and the compute-task command. */
  private assign(ts: TaskState, ws: WorkerState): void {
    ts.processingOn = ws;
    ws.processing.add(ts);
    ws.issueTicket(ts);
    ws.addPrefix(ts.prefix);
    const deps = ts.dependencies;
    let transfer = 0;
    let locations: readonly DependencyLocation[] = NO_LOCATIONS;
    if (deps.length > 0) {
      const locs = new Array<DependencyLocation>(deps.length);
      for (let i = 0; i < deps.length; i++) {
        const d = deps[i] as TaskState;
        const holders = d.whoHas;
        if (holders === null) locs[i] = [d.key, NO_IDS];
        else if (holders.length === 1) {
          // One holder (most keys): the key alone when it is this worker, else a shared list.
          const h = holders[0] as WorkerState;
          if (h === ws) locs[i] = d.key;
          else {
            locs[i] = [d.key, h.alone];
            if (d.nbytes > 0) transfer += d.nbytes;
          }
        } else {
          let local = false;
          const all = new Array<string>(holders.length);
          for (let j = 0; j < holders.length; j++) {
            const h = holders[j] as WorkerState;
            if (h === ws) local = true;
            all[j] = h === ws ? SELF_HOLDER : h.id;
          }
          if (!local && d.nbytes > 0) transfer += d.nbytes;
          locs[i] = [d.key, all];
        }
      }
      locations = locs;
    }
    ts.transferBytes = transfer;
    ws.transferBytes += transfer;
    // Without a task-started report, a task sent to a worker with a free thread is taken to
    // start now; one queued behind others has an unknown start.
    ts.startedAt = ws.processing.size <= ws.nthreads ? this.now : null;
    this.setState(ts, PROCESSING);
    this.pool.changed(ws);
    this.toWorker(ws, {
      op: 'compute-task',
      worker: ws.id,
      key: ts.key,
      ticket: ts.ticket,
      spec: ts.spec,
      fns: ts.fns,
      dependencies: locations,
    });
  }

  /** Takes a processing task off its worker's books (no command). */
  private unassign(ts: TaskState): void {
    const ws = ts.processingOn;
    if (ws === null) return;
    ts.processingOn = null;
    ts.flags &= ~STARTED;
    ws.processing.delete(ts);
    ws.revokeTicket(ts);
    ws.removePrefix(ts.prefix);
    ws.transferBytes -= ts.transferBytes;
    ts.transferBytes = 0;
    ts.startedAt = null;
    this.pool.changed(ws);
    if (this.steals.size > 0) {
      const rec = this.steals.get(ts);
      if (rec !== undefined) this.dropSteal(ts, rec);
    }
  }

  private dropSteal(ts: TaskState, rec: StealRecord): void {
    this.steals.delete(ts);
    if (rec.thief !== null) rec.thief.stealIncoming--;
  }

  /** Leaves queued / no-worker / processing bookkeeping (state unchanged; counts untouched). */
  private leaveActiveState(ts: TaskState): void {
    switch (ts.state) {
      case QUEUED:
        this.queue.remove(ts);
        break;
      case NO_WORKER:
        this.unrunnable.delete(ts);
        break;
      case PROCESSING: {
        const ws = ts.processingOn;
        if (ws !== null) {
          this.unassign(ts);
          this.free(ws, ts.key);
        }
        break;
      }
      default:
        break;
    }
  }

  /** An active task no longer counts as needing its dependencies. */
  private releaseDependencies(ts: TaskState): void {
    const deps = ts.dependencies;
    for (let i = 0; i < deps.length; i++) {
      const d = deps[i] as TaskState;
      if (--d.activeDependents === 0) this.releases.push(d);
    }
  }

  /** → memory on `ws` (the caller has left the previous state's bookkeeping). */
  private toMemory(ts: TaskState, ws: WorkerState, nbytes: number): void {
    const wasActive = isActive(ts.state);
    ts.nbytes = nbytes;
    ts.whoHas = ws.sole;
    ws.hasWhat.add(ts);
    if (nbytes > 0) ws.nbytes += nbytes;
    ts.waitingOn = 0;
    ts.error = null;
    this.setState(ts, MEMORY);
    if (wasActive) this.releaseDependencies(ts);
    const dependents = ts.dependents;
    for (let i = 0; i < dependents.length; i++) {
      const d = dependents[i] as TaskState;
      if (d.state === WAITING && --d.waitingOn === 0) this.ready.push(d);
    }
    if (ts.wantedBy !== null) {
      this.out.push({ op: 'key-in-memory', clients: ts.wantedBy, key: ts.key, nbytes, holder: ws.id });
    } else if (ts.activeDependents === 0) {
      this.releases.push(ts);
    }
    if (ws.retireFresh !== null) ws.retireFresh.push(ts);
  }

  /** A task in memory lost its last copy: → released; whoever counted on it waits again. */
  private dataLost(ts: TaskState): void {
    ts.whoHas = null;
    this.setState(ts, RELEASED);
    const dependents = ts.dependents;
    for (let i = 0; i < dependents.length; i++) {
      const d = dependents[i] as TaskState;
      switch (d.state) {
        case WAITING:
          d.waitingOn++;
          break;
        case QUEUED:
        case NO_WORKER:
        case PROCESSING:
          this.leaveActiveState(d);
          this.setState(d, WAITING);
          this.rewait(d);
          break;
        default:
          break;
      }
    }
  }

  private recomputeOrRelease(ts: TaskState): void {
    if (ts.state !== RELEASED) return;
    if (ts.wantedBy !== null || ts.activeDependents > 0) this.compute(ts);
    else this.releases.push(ts);
  }

  /** → erred, and every active task downstream with it. */
  private err(root: TaskState, rootError: TaskErrorInfo, lost: boolean): void {
    // Dependents err with the root's error, its key included: the cause stays named.
    const error = rootError.key === undefined ? { ...rootError, key: root.key } : rootError;
    const stack: TaskState[] = [root];
    while (stack.length > 0) {
      const ts = stack.pop() as TaskState;
      const state = ts.state;
      if (state === ERRED || state === MEMORY || state === FORGOTTEN) continue;
      const wasActive = isActive(state);
      if (wasActive) this.leaveActiveState(ts);
      this.setState(ts, ERRED);
      ts.error = error;
      ts.waitingOn = 0;
      if (wasActive) this.releaseDependencies(ts);
      if (ts.wantedBy !== null) {
        const clients = ts.wantedBy;
        if (lost && ts === root) this.out.push({ op: 'key-lost', clients, key: ts.key, error });
        else this.out.push({ op: 'key-erred', clients, key: ts.key, error });
      } else {
        this.releases.push(ts);
      }
      const dependents = ts.dependents;
      for (let i = 0; i < dependents.length; i++) {
        const d = dependents[i] as TaskState;
        if (isActive(d.state)) stack.push(d);
      }
    }
  }

  /** Releases and forgets what nobody needs any more; cascades down the lineage. */
  private drainReleases(): void {
    const releases = this.releases;
    while (releases.length > 0) {
      const ts = releases.pop() as TaskState;
      const state = ts.state;
      if (state === FORGOTTEN || ts.wantedBy !== null || ts.activeDependents > 0 || (ts.flags & PINNED) !== 0) continue;
      if (isActive(state)) {
        this.leaveActiveState(ts);
        this.setState(ts, RELEASED);
        ts.waitingOn = 0;
        this.releaseDependencies(ts);
      } else if (state === MEMORY) {
        this.dropData(ts);
        this.setState(ts, RELEASED);
      }
      if (ts.dependents.length === ts.deadDependents) this.forget(ts);
    }
  }

  private dropData(ts: TaskState): void {
    const holders = ts.whoHas;
    ts.whoHas = null;
    if (holders === null) return;
    for (let i = 0; i < holders.length; i++) {
      const ws = holders[i] as WorkerState;
      ws.hasWhat.delete(ts);
      if (ts.nbytes > 0) ws.nbytes -= ts.nbytes;
      if (ws.retirePending !== null) ws.retirePending.delete(ts);
      this.free(ws, ts.key);
    }
  }

  private forget(ts: TaskState): void {
    this.setState(ts, FORGOTTEN);
    if (this.tasks.get(ts.key) === ts) this.tasks.delete(ts.key);
    ts.spec = undefined;
    ts.error = null;
    const deps = ts.dependencies;
    for (let i = 0; i < deps.length; i++) {
      const d = deps[i] as TaskState;
      d.deadDependents++;
      // Compact lazily, so forgetting many dependents of one task stays O(1) each.
      if (d.deadDependents > 8 && d.deadDependents * 2 > d.dependents.length) {
        d.dependents = d.dependents.filter((x) => x.state !== FORGOTTEN);
        d.deadDependents = 0;
      }
      this.releases.push(d);
    }
  }

  private want(ts: TaskState, client: string): void {
    // Never changed in place, but replaced: commands carry the list itself (key-in-memory).
    if (ts.wantedBy === null) ts.wantedBy = [client];
    else if (!ts.wantedBy.includes(client)) ts.wantedBy = [...ts.wantedBy, client];
    else return;
    let set = this.clients.get(client);
    if (set === undefined) {
      set = new Set();
      this.clients.set(client, set);
    }
    set.add(ts);
  }

  /** Drops the client's want; returns whether it had one. */
  private unwant(ts: TaskState, client: string, updateClient: boolean): boolean {
    const wanted = ts.wantedBy;
    if (wanted === null) return false;
    const i = wanted.indexOf(client);
    if (i < 0) return false;
    if (wanted.length === 1) {
      ts.wantedBy = null;
      this.releases.push(ts);
    } else ts.wantedBy = wanted.filter((c) => c !== client);
    if (updateClient) {
      const set = this.clients.get(client);
      if (set !== undefined) {
        set.delete(ts);
        if (set.size === 0) this.clients.delete(client);
      }
    }
    return true;
  }

  // -------------------------------------------------------------------------------------
  // Output
  // -------------------------------------------------------------------------------------

  private settle(): void {
    do {
      if (this.releases.length > 0) this.drainReleases();
      if (this.ready.length > 0) this.placeReady();
      if (this.queue.size > 0) this.fillSlots();
    } while (this.retiring.size > 0 && this.retiring.progress());
  }

  private toWorker(ws: WorkerState, command: SchedulerCommand): void {
    if (this.openFree.size > 0) this.openFree.delete(ws);
    this.out.push(command);
  }

  private free(ws: WorkerState, key: string): void {
    if (ws.status === 'closed') return;
    const open = this.openFree.get(ws);
    if (open !== undefined) {
      open.push(key);
      return;
    }
    const keys = [key];
    this.openFree.set(ws, keys);
    this.out.push({ op: 'free-keys', worker: ws.id, keys });
  }
}
