/**
 * The worker's core: a pure, synchronous state machine, as the scheduler's is.
 * `handle(event)` applies one event and returns the instructions it implies; there is no
 * I/O, no timer and no clock here (time arrives in events), so the same core runs in the
 * worker process and in tests that throw thousands of random events at it.
 *
 * ```ts
 * const state = new WorkerState({ id: 'tcp://10.0.0.5:40123', nthreads: 2 });
 * state.handle({ op: 'compute-task', key: 'add-1', spec, dependencies: [['inc-1', ['tcp://10.0.0.6:40777']]], now });
 * state.handle({ op: 'pump', now });
 * // → [{ op: 'gather', request: 1, holder: 'tcp://10.0.0.6:40777', keys: ['inc-1'] }]
 * state.handle({ op: 'gather-done', request: 1, values: [['inc-1', 2]], now });
 * state.handle({ op: 'pump', now });
 * // → [{ op: 'execute', batch: 1, tasks: [{ key: 'add-1', … }], inputs: ['inc-1'] }]
 * ```
 *
 * It decides what the seed's worker decided inline: which dependencies to fetch from whom
 * (holders tried in turn, a bounded number of requests at once), which ready tasks go to a
 * thread together (batches sized by what is ready, re-runs alone after a thread died, a
 * failed task sending the rest of its batch back), what to keep and what to drop, how to
 * answer steal requests and replicate requests, when to say it is paused. Every transition
 * is logged with the stimulus that caused it, for `story()`.
 *
 * Longer than most files here, on purpose: it is one state machine, and each transition
 * reads best beside the others that touch the same records, counts and log. What can
 * stand alone lives beside it: records.ts (the records and states), ready-queue.ts and
 * fetch-queue.ts, state-options.ts, story.ts (the log), validate.ts (the invariants).
 *
 * Why one file: every transition of a worker's task touches the same records and queues;
 * the records, options, story and validation already live beside it.
 */
import { InvalidArgumentError, ProtocolError, UnserializableError } from '../errors.js';
import { fnIdsOf, specOf } from '../protocol/encoded-spec.js';
import { dependencyHolders, dependencyKey, SELF_HOLDER, type TaskErrorInfo } from '../protocol/messages.js';
import type {
  BatchDoneEvent,
  ComputeTaskEvent,
  ExecuteTask,
  GatherDoneEvent,
  PutDataEvent,
  ReplicateEvent,
  WorkerEvent,
  WorkerInstruction,
} from './events.js';
import {
  ERRED,
  FETCH,
  FLIGHT,
  isActive,
  isFetching,
  MEMORY,
  MISSING,
  READY,
  RELEASED,
  RUNNING,
  TASK_STATE_NAMES,
  type TaskStateCode,
  WAITING,
  WorkerTask,
  type WorkerTaskStateName,
} from './records.js';
import { FetchQueue } from './fetch-queue.js';
import { ReadyQueue } from './ready-queue.js';
import { resolveStateOptions, type WorkerStateOptions } from './state-options.js';
import { sizeOf } from './sizeof.js';
import { travelProblem } from './travel.js';
import { TransitionLog, type StoryEntry } from '../protocol/story.js';
import { validateWorkerState } from './validate.js';

export type { WorkerStateOptions } from './state-options.js';

// A batch per thread-sized share of what is ready, within these bounds: large enough that
// per-message costs vanish, small enough that results flow back while the rest runs.
export const MAX_BATCH = 512;
// Batches handed to the pool per thread, so that the next is there when one ends.
export const PIPELINE = 2;

const NO_FNS: readonly string[] = Object.freeze([]);

/** What an event that implies nothing returns (most compute-task events): one array for all. */
const NOTHING: readonly WorkerInstruction[] = Object.freeze([]);

interface Request {
  readonly holder: string;
  readonly keys: readonly string[];
}

export class WorkerState {
  readonly id: string;
  readonly nthreads: number;
  readonly memoryPause: number;
  readonly #maxMessageBytes: number;
  readonly maxRequests: number;
  readonly #validate: boolean;
  readonly #random: () => number;
  readonly #tasks = new Map<string, WorkerTask>();
  readonly #counts = new Int32Array(TASK_STATE_NAMES.length);
  readonly #ready = new ReadyQueue();
  readonly #fetchQueue = new FetchQueue();
  readonly #batches = new Map<number, WorkerTask[]>();
  readonly #requests = new Map<number, Request>();
  #nextBatch = 0;
  #nextRequest = 0;
  #paused = false;
  #retiring = false;
  readonly #log: TransitionLog;
  /** The stimulus of the event being handled; made up from its kind on first use when it came without one. */
  #stimulus: string | null = null;
  #stimulusOp = '';
  #stimuli = 0;
  #now = 0;
  #out: WorkerInstruction[] = [];
  /** Keys the scheduler is to hear are here, told in one add-keys at the end of the event. */
  #added: string[] | null = null;

  // Totals since the start, for metrics.
  tasksFinishedTotal = 0;
  tasksErredTotal = 0;
  taskSecondsTotal = 0;
  transfersTotal = 0;
  transferBytesTotal = 0;

  constructor(options: WorkerStateOptions) {
    const o = resolveStateOptions(options);
    this.id = o.id;
    this.nthreads = o.nthreads;
    this.maxRequests = o.maxRequests;
    this.memoryPause = o.memoryPause;
    this.#maxMessageBytes = o.maxMessageBytes;
    this.#validate = o.validate;
    this.#random = o.random;
    this.#log = new TransitionLog(o.transitionLogLength, TASK_STATE_NAMES);
  }

  /** Applies one event; returns the instructions it implies, in order. */
  handle(event: WorkerEvent): readonly WorkerInstruction[] {
    this.#stimulus = event.stimulus ?? null;
    this.#stimulusOp = event.op;
    if (event.now > this.#now) this.#now = event.now;
    switch (event.op) {
      case 'compute-task':
        this.#computeTask(event);
        break;
      case 'free-keys':
        for (const key of event.keys) {
          const t = this.#tasks.get(key);
          if (t !== undefined) this.#release(t);
        }
        break;
      case 'steal-request': {
        // Only what has not started moves: a running task's work would be lost.
        if (event.cut !== undefined) this.#batchCut(event.cut.batch, event.cut.cut);
        const t = this.#tasks.get(event.key);
        const accepted = t !== undefined && (t.state === WAITING || t.state === READY);
        if (accepted) this.#release(t);
        this.#out.push({ op: 'steal-response', key: event.key, accepted });
        // The rest of a cut batch goes out again.
        if (event.cut !== undefined) this.#pump();
        break;
      }
      case 'replicate':
        this.#replicate(event);
        break;
      case 'put-data':
        this.#putData(event);
        break;
      case 'gather-done':
        this.#gatherDone(event);
        this.#pumpFetches();
        break;
      case 'batch-done':
        this.#batchDone(event);
        this.#pump();
        break;
      case 'batch-task-failed':
        this.#batchTaskFailed(event.batch, event.key, event.error);
        this.#pump();
        break;
      case 'batch-thread-died':
        this.#batchThreadDied(event.batch, event.message);
        this.#pump();
        break;
      case 'batch-cut':
        this.#batchCut(event.batch, event.cut);
        this.#pump();
        break;
      case 'batch-unrunnable': {
        for (const t of this.#endBatch(event.batch)) this.#err(t, { kind: 'task', ...event.error });
        this.#pump();
        break;
      }
      case 'memory-sample': {
        // Past the pause threshold the worker finishes what it has but is given nothing new,
        // while it holds results it can act on. Memory it holds none of (a heap not yet
        // collected, a leak) does not shrink by waiting: paused then, it would never run again.
        const paused = event.process > this.memoryPause && (event.managed === undefined || event.managed > 0);
        if (paused !== this.#paused) {
          this.#paused = paused;
          this.#out.push({ op: 'worker-status', status: paused ? 'paused' : 'running', process: event.process });
        }
        break;
      }
      case 'store-kept': {
        // Only a value still here is replaced: one freed meanwhile is nobody's.
        const t = this.#tasks.get(event.key);
        if (t?.state === MEMORY) {
          this.#store(t, event.value);
          // Logged as a transition of its own, so the key's story says its value changed and why.
          this.#setState(t, MEMORY, null);
        }
        break;
      }
      case 'retire':
        if (!this.#retiring) {
          this.#retiring = true;
          this.#out.push({ op: 'retire' });
        }
        break;
      case 'pump':
        this.#pump();
        break;
      default: {
        const never: never = event;
        throw new InvalidArgumentError(`unknown worker event ${JSON.stringify((never as { op: unknown }).op)}`);
      }
    }
    if (this.#added !== null) {
      this.#out.push({ op: 'add-keys', keys: this.#added });
      this.#added = null;
    }
    const out = this.#out;
    if (out.length > 0) this.#out = [];
    if (this.#validate) this.validate();
    return out.length > 0 ? out : NOTHING;
  }

  /** The stimulus id of the last event handled (given with it, or made up from its kind). */
  get lastStimulus(): string {
    return (this.#stimulus ??= `${this.#stimulusOp}-${++this.#stimuli}`);
  }

  /** What happened to these keys here, oldest first, on the worker's clock. */
  story(...keys: readonly string[]): StoryEntry[] {
    return this.#log.story(new Set(keys), this.id);
  }

  /** Checks every invariant of the bookkeeping; throws InvariantError naming the first broken. O(everything). */
  validate(): void {
    validateWorkerState({
      id: this.id,
      tasks: this.#tasks,
      counts: this.#counts,
      ready: this.#ready.entries(),
      fetchQueue: this.#fetchQueue.entries(),
      batches: this.#batches,
      requests: this.#requests,
      maxBatches: this.nthreads * PIPELINE,
      maxRequests: this.maxRequests,
    });
  }

  /** The state of `key` here, or undefined when the core holds nothing of it. */
  stateOf(key: string): WorkerTaskStateName | undefined {
    const t = this.#tasks.get(key);
    return t === undefined ? undefined : TASK_STATE_NAMES[t.state];
  }

  /** Keys in one state. */
  keysIn(state: WorkerTaskStateName): string[] {
    const code = TASK_STATE_NAMES.indexOf(state);
    const out: string[] = [];
    for (const t of this.#tasks.values()) if (t.state === code) out.push(t.key);
    return out;
  }

  /** How many keys are in each state. */
  count(state: WorkerTaskStateName): number {
    return this.#counts[TASK_STATE_NAMES.indexOf(state)]!;
  }

  get paused(): boolean {
    return this.#paused;
  }

  get retiring(): boolean {
    return this.#retiring;
  }

  /**
   * Where task `key` waits in the batch handed to a thread (its position), for a steal to
   * cut it out if the thread has not got to it; null when it is in no batch.
   */
  batched(key: string): { readonly batch: number; readonly index: number } | null {
    const t = this.#tasks.get(key);
    if (t === undefined || t.state !== RUNNING) return null;
    const index = this.#batches.get(t.batch)?.indexOf(t) ?? -1;
    return index < 0 ? null : { batch: t.batch, index };
  }

  /** Batches handed to threads and not answered yet. */
  get batchesInFlight(): number {
    return this.#batches.size;
  }

  /** Data requests to peers not answered yet. */
  get requestsInFlight(): number {
    return this.#requests.size;
  }

  /**
   * Whether an idle thread should take work back from a batch (the shell asks the threads
   * how far each batch has got): nothing is ready, and there is room for another batch.
   */
  get wantsTail(): boolean {
    return this.#counts[READY]! === 0 && this.#batches.size > 0 && this.#batches.size < this.nthreads * PIPELINE;
  }

  /** Whether a pump event would start something: ready tasks and a free thread, or data to ask for. */
  get wantsPump(): boolean {
    return (this.#counts[READY]! > 0 && this.#batches.size < this.nthreads * PIPELINE) || (this.#counts[FETCH]! > 0 && this.#requests.size < this.maxRequests);
  }

  // ---- computing ----

  #computeTask(e: ComputeTaskEvent): void {
    // Checked before anything changes: a malformed compute leaves the state as it was.
    for (const dep of e.dependencies) {
      if (typeof dep !== 'string' && !(Array.isArray(dep) && typeof dep[0] === 'string' && Array.isArray(dep[1]))) {
        throw new ProtocolError(`the compute of '${e.key}' names a dependency that is neither a key nor [key, holders]`);
      }
    }
    const t = this.#tasks.get(e.key);
    if (t === undefined) {
      const created = new WorkerTask(e.key);
      created.ticket = e.ticket ?? -1;
      this.#tasks.set(e.key, created);
      this.#startComputing(created, e);
      return;
    }
    // The scheduler's latest compute of it is the one it knows.
    t.ticket = e.ticket ?? -1;
    switch (t.state) {
      case MEMORY:
        // Already here (fetched as a dependency, say): finished as far as anyone cares.
        this.#hold(t, false);
        this.#out.push({ op: 'task-finished', key: t.key, ticket: t.ticket, nbytes: t.nbytes, startedAt: this.#now, finishedAt: this.#now, thread: 0 });
        return;
      case WAITING:
        // Asked again: the scheduler may know holders it did not name before.
        for (const dep of e.dependencies) {
          const d = this.#tasks.get(dependencyKey(dep));
          if (d !== undefined && t.deps.includes(d) && isFetching(d.state)) this.#addHolders(d, dependencyHolders(dep));
        }
        return;
      case READY:
      case RUNNING:
        return;
      case FETCH:
      case FLIGHT:
      case MISSING:
        // Data we were fetching is now ours to compute; what is in flight may still win.
        t.replica = false;
        t.clearHolders();
        this.#startComputing(t, e);
        return;
      default:
        return;
    }
  }

  #startComputing(t: WorkerTask, e: ComputeTaskEvent): void {
    t.spec = e.spec;
    // Told with the task, or read from the spec (the object's, or one decoded here).
    t.fns = e.fns ?? fnIdsOf(specOf(e.spec, undefined, t.key).node);
    const deps: WorkerTask[] = [];
    const keys: string[] = [];
    let waitingOn = 0;
    // In the order given, duplicates and the task itself dropped (a spec may leave its step's
    // dependency keys to these: spec-writer.ts); by a scan for the few most tasks have, a set beyond.
    const seen = e.dependencies.length > 16 ? new Set<string>() : null;
    for (const dep of e.dependencies) {
      const key = dependencyKey(dep);
      if (key === t.key) continue;
      if (seen === null ? keys.includes(key) : seen.has(key)) continue;
      seen?.add(key);
      let d = this.#tasks.get(key);
      if (d === undefined) {
        d = new WorkerTask(key);
        this.#tasks.set(key, d);
      }
      deps.push(d);
      keys.push(key);
      d.needers++;
      if (d.state === MEMORY) continue;
      waitingOn++;
      (d.waiters ??= new Set()).add(t);
      if (d.state === RELEASED || isFetching(d.state)) this.#addHolders(d, dependencyHolders(dep));
    }
    t.deps = deps;
    t.dependencies = keys;
    t.waitingOn = waitingOn;
    if (waitingOn === 0) this.#makeReady(t);
    else this.#setState(t, WAITING, null);
  }

  #makeReady(t: WorkerTask): void {
    this.#setState(t, READY, null);
    this.#ready.push(t);
  }

  /** Hands ready tasks to the threads, and asks peers for what is to be fetched. */
  #pump(): void {
    this.#pumpFetches();
    const maxBatches = this.nthreads * PIPELINE;
    while (this.#batches.size < maxBatches && this.#counts[READY]! > 0) {
      // A thread-sized share of what is ready, within bounds (see MAX_BATCH).
      const batch = this.#ready.take(Math.min(MAX_BATCH, Math.ceil(this.#counts[READY]! / maxBatches)));
      if (batch.length === 0) break;
      const id = ++this.#nextBatch;
      const tasks: ExecuteTask[] = [];
      let tickets: number[] | null = [];
      const inputs = batch.length === 1 ? null : new Set<string>();
      for (const t of batch) {
        t.batch = id;
        this.#setState(t, RUNNING, null);
        tasks.push({ key: t.key, spec: t.spec!, fns: t.fns, dependencies: t.dependencies });
        if (t.ticket < 0) tickets = null;
        else tickets?.push(t.ticket);
        if (inputs !== null) for (const key of t.dependencies) inputs.add(key);
      }
      this.#batches.set(id, batch);
      this.#out.push({ op: 'execute', batch: id, tasks, inputs: inputs === null ? batch[0]!.dependencies : [...inputs], tickets });
    }
  }

  /** The batch's tasks still running in it; the batch is over. */
  #endBatch(id: number): WorkerTask[] {
    const batch = this.#batches.get(id);
    if (batch === undefined) return [];
    this.#batches.delete(id);
    return batch.filter((t) => t.state === RUNNING && t.batch === id);
  }

  #batchDone(e: BatchDoneEvent): void {
    const batch = this.#batches.get(e.batch);
    if (batch === undefined) return;
    this.#batches.delete(e.batch);
    for (let i = 0; i < batch.length; i++) {
      const t = batch[i]!;
      // Freed or stolen meanwhile: its result is nobody's.
      if (t.state !== RUNNING || t.batch !== e.batch) continue;
      const startedAt = e.times[2 * i] ?? this.#now;
      const finishedAt = e.times[2 * i + 1] ?? this.#now;
      const value = e.values[i];
      const size = sizeOf(value);
      // A result that could never be sent fails now, once, rather than at every request.
      const problem = travelProblem(value, this.#maxMessageBytes);
      if (problem !== null) {
        const error = new UnserializableError(t.key, problem.path, problem.reason);
        this.#err(t, { kind: 'unserializable', name: error.name, message: error.message, stack: '', key: t.key, path: problem.path, reason: problem.reason });
        continue;
      }
      this.#leaveActive(t);
      const nbytes = this.#store(t, value, size);
      this.#toMemory(t, null);
      t.held = true;
      this.tasksFinishedTotal++;
      this.taskSecondsTotal += Math.max(0, finishedAt - startedAt) / 1000;
      this.#out.push({ op: 'task-finished', key: t.key, ticket: t.ticket, nbytes, startedAt, finishedAt, thread: e.thread });
    }
  }

  /** One task of the batch failed; the thread stopped there, so the others run again. */
  #batchTaskFailed(id: number, stepKey: string, error: TaskErrorInfo): void {
    const running = this.#endBatch(id);
    if (running.length === 0) return;
    // The key a thread names is a step's: the task itself, or one of its fused chain.
    const culprit = running.find((t) => t.key === stepKey) ?? running.find((t) => specOf(t.spec!, t.fns, t.key, t.dependencies).node.stepKeys.includes(stepKey)) ?? running[0]!;
    const again: WorkerTask[] = [];
    for (const t of running) {
      if (t === culprit) this.#err(t, error);
      else again.push(t);
    }
    this.#requeueFront(again);
  }

  /** The batch's tasks from `cut` on will not run on its thread: they are ready again. */
  #batchCut(id: number, cut: number): void {
    const batch = this.#batches.get(id);
    if (batch === undefined || !(cut >= 0) || cut >= batch.length) return;
    // The batch keeps its head only, which its thread answers for; cut whole (it had not
    // left the queue), it is over.
    const tail = batch.splice(cut).filter((t) => t.state === RUNNING && t.batch === id);
    if (cut === 0) this.#batches.delete(id);
    this.#requeueFront(tail);
  }

  #batchThreadDied(id: number, message: string): void {
    const running = this.#endBatch(id);
    if (running.length > 1) {
      // Which task killed the thread is unknown: run each alone to find out.
      for (const t of running) t.solo = true;
      this.#requeueFront(running);
      return;
    }
    for (const t of running) this.#err(t, { kind: 'worker-lost', name: 'WorkerLostError', message, stack: '', key: t.key });
  }

  #requeueFront(tasks: readonly WorkerTask[]): void {
    for (const t of tasks) this.#setState(t, READY, null);
    this.#ready.pushFront(tasks);
  }

  #err(t: WorkerTask, error: TaskErrorInfo): void {
    this.#leaveActive(t);
    this.#setState(t, ERRED, null);
    this.tasksErredTotal++;
    this.#out.push({ op: 'task-erred', key: t.key, error });
    this.#afterLeaving(t);
  }

  // ---- fetching ----

  /** Adds holders to ask for a fetched key; a key with none left to ask is missing. */
  #addHolders(d: WorkerTask, holders: readonly string[]): void {
    const fresh: string[] = [];
    for (const h of holders) {
      if (h === this.id || h === SELF_HOLDER) {
        // Said to be here, and it is not: the scheduler should know.
        this.#out.push({ op: 'missing-data', key: d.key, from: this.id });
      } else if (!d.holders.includes(h) && !fresh.includes(h)) {
        fresh.push(h);
      }
    }
    // In random order, so the load of a popular key spreads over its holders.
    for (let i = fresh.length - 1; i > 0; i--) {
      const j = Math.floor(this.#random() * (i + 1));
      [fresh[i], fresh[j]] = [fresh[j]!, fresh[i]!];
    }
    if (fresh.length > 0) d.holders = d.holders.length === 0 ? fresh : [...d.holders, ...fresh];
    if (d.state === RELEASED || d.state === MISSING) {
      if (d.holders.length > 0) this.#toFetch(d, null);
      else if (d.state === RELEASED) this.#setState(d, MISSING, null);
    }
  }

  #toFetch(d: WorkerTask, holder: string | null): void {
    this.#setState(d, FETCH, holder);
    this.#fetchQueue.push(d);
  }

  /** Asks peers for what is to be fetched, while requests are free. */
  #pumpFetches(): void {
    const free = this.maxRequests - this.#requests.size;
    if (this.#fetchQueue.length === 0 || free <= 0) return;
    for (const [holder, group] of this.#fetchQueue.take(free)) {
      const request = ++this.#nextRequest;
      const keys: string[] = [];
      for (const d of group) {
        d.holders = d.holders.slice(1);
        d.request = request;
        this.#setState(d, FLIGHT, holder);
        keys.push(d.key);
      }
      this.#requests.set(request, { holder, keys });
      this.#out.push({ op: 'gather', request, holder, keys });
    }
  }

  #gatherDone(e: GatherDoneEvent): void {
    const request = this.#requests.get(e.request);
    if (request === undefined) return;
    this.#requests.delete(e.request);
    const arrived = new Set<string>();
    for (const [key, value] of e.values) {
      arrived.add(key);
      this.#arrived(key, value, request.holder);
    }
    for (const key of request.keys) {
      if (arrived.has(key)) continue;
      this.#out.push({ op: 'missing-data', key, from: request.holder });
      const d = this.#tasks.get(key);
      if (d === undefined || d.state !== FLIGHT || d.request !== e.request) continue;
      // The next holder, if any is left; else it is missing until the scheduler names one.
      if (d.holders.length > 0) this.#toFetch(d, null);
      else if (d.needers > 0) this.#setState(d, MISSING, null);
      else this.#forget(d);
    }
  }

  /** Data from a peer: kept while a record here still wants it. */
  #arrived(key: string, value: unknown, holder: string): void {
    const t = this.#tasks.get(key);
    if (t === undefined) return;
    if (isFetching(t.state)) {
      const nbytes = this.#store(t, value, undefined, true);
      this.transfersTotal++;
      this.transferBytesTotal += nbytes;
      this.#toMemory(t, holder);
      this.#hold(t, true);
    } else if (t.state === WAITING || t.state === READY) {
      // Fetched before it became ours to compute: computed, then, as far as anyone cares.
      this.#leaveActive(t);
      const nbytes = this.#store(t, value, undefined, true);
      this.transfersTotal++;
      this.transferBytesTotal += nbytes;
      this.#toMemory(t, holder);
      t.held = true;
      this.#out.push({ op: 'task-finished', key, ticket: t.ticket, nbytes, startedAt: this.#now, finishedAt: this.#now, thread: 0 });
    }
  }

  #replicate(e: ReplicateEvent): void {
    for (const [key, holders] of e.keys) {
      let t = this.#tasks.get(key);
      if (t === undefined) {
        t = new WorkerTask(key);
        this.#tasks.set(key, t);
      }
      if (t.state === MEMORY) {
        // Here already: said again, since the scheduler waits to hear it.
        t.held = false;
        this.#hold(t, true);
      } else if (t.state === RELEASED || isFetching(t.state)) {
        t.replica = true;
        this.#addHolders(t, holders);
        // Nobody to ask and no task here waiting: the scheduler was told, and moves on.
        if (t.state === MISSING && t.needers === 0) this.#forget(t);
      }
      // Computing it here already: it will be here soon enough.
    }
  }

  #putData(e: PutDataEvent): void {
    const nbytes: number[] = [];
    for (const [key, value] of e.items) {
      let t = this.#tasks.get(key);
      if (t === undefined) {
        t = new WorkerTask(key);
        this.#tasks.set(key, t);
      }
      if (isActive(t.state)) this.#leaveActive(t);
      nbytes.push(this.#store(t, value));
      if (t.state !== MEMORY) this.#toMemory(t, null);
      // The scheduler counts it here from the answer.
      t.held = true;
    }
    this.#out.push({ op: 'put-data-done', id: e.id, nbytes });
  }

  // ---- holding and letting go ----

  #store(t: WorkerTask, value: unknown, size?: number, received = false): number {
    const nbytes = size ?? sizeOf(value);
    t.nbytes = nbytes;
    this.#out.push(received ? { op: 'store', key: t.key, value, nbytes, received } : { op: 'store', key: t.key, value, nbytes });
    return nbytes;
  }

  /** → memory; tasks waiting on it may be ready now. */
  #toMemory(t: WorkerTask, from: string | null): void {
    t.spec = null;
    t.fns = NO_FNS;
    t.clearHolders();
    t.replica = false;
    t.solo = false;
    this.#setState(t, MEMORY, from);
    const waiters = t.waiters;
    t.waiters = null;
    if (waiters === null) return;
    for (const w of waiters) if (--w.waitingOn === 0) this.#makeReady(w);
  }

  /** The scheduler counts this worker among the key's holders (from here on, or again). */
  #hold(t: WorkerTask, tell: boolean): void {
    if (t.held) return;
    t.held = true;
    if (!tell) return;
    (this.#added ??= []).push(t.key);
  }

  /** The scheduler no longer wants it here (free-keys, an accepted steal). */
  #release(t: WorkerTask): void {
    switch (t.state) {
      case WAITING:
      case READY:
      case RUNNING:
        this.#leaveActive(t);
        this.#afterLeaving(t);
        return;
      case MEMORY:
        t.held = false;
        if (t.needers === 0) this.#forget(t);
        return;
      case FETCH:
      case FLIGHT:
      case MISSING:
        t.replica = false;
        if (t.needers === 0) this.#forget(t);
        return;
      default:
        return;
    }
  }

  /** A task leaves waiting, ready or running: it no longer needs its dependencies. */
  #leaveActive(t: WorkerTask): void {
    t.spec = null;
    t.fns = NO_FNS;
    t.solo = false;
    const deps = t.deps;
    t.clearDependencies();
    t.waitingOn = 0;
    for (const d of deps) {
      d.waiters?.delete(t);
      // Needed by nobody here any more: dropped, unless the scheduler counts on it here
      // (held), or wants a copy and there is a holder left to ask.
      if (--d.needers === 0) {
        if (d.state === MEMORY ? !d.held : d.state === MISSING || (isFetching(d.state) && !d.replica)) this.#forget(d);
      }
    }
  }

  /** After a computed task is released or erred: tasks here still waiting on it wait for a fetch. */
  #afterLeaving(t: WorkerTask): void {
    if (t.needers > 0) this.#setState(t, MISSING, null);
    else this.#forget(t);
  }

  #forget(t: WorkerTask): void {
    if (t.state === MEMORY) this.#out.push({ op: 'delete-data', key: t.key });
    this.#setState(t, RELEASED, null);
    this.#tasks.delete(t.key);
  }

  #setState(t: WorkerTask, to: TaskStateCode, worker: string | null): void {
    const from = t.state;
    // Released and erred records are not held: only the states in between are counted.
    if (from !== RELEASED && from !== ERRED) this.#counts[from]!--;
    if (to !== RELEASED && to !== ERRED) this.#counts[to]!++;
    t.state = to;
    this.#log.record(t.key, from, to, this.lastStimulus, this.#now, worker);
  }
}
