/**
 * The records the scheduler keeps: one per task, per worker and per key prefix.
 *
 * A million tasks may be held at once, so a task is one flat object with a fixed shape
 * (numbers, not tuples or strings, for its state and priority; arrays, not sets, for its
 * edges; nothing allocated until needed) and no closures.
 */
import type { FnIds, TaskErrorInfo, WorkerMemory } from './events.js';

// Task states, as small integers. WAITING..PROCESSING are contiguous: the "active" states,
// in which a task needs its dependencies (see TaskState.activeDependents).
export const RELEASED = 0;
export const WAITING = 1;
export const NO_WORKER = 2;
export const QUEUED = 3;
export const PROCESSING = 4;
export const MEMORY = 5;
export const ERRED = 6;
export const FORGOTTEN = 7;
export type TaskStateCode = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7;

export const TASK_STATE_NAMES = [
  'released',
  'waiting',
  'no-worker',
  'queued',
  'processing',
  'memory',
  'erred',
  'forgotten',
] as const;
export type TaskStateName = (typeof TASK_STATE_NAMES)[number];
/** The states a held task can be in (forgotten tasks are no longer held). */
export type HeldTaskStateName = Exclude<TaskStateName, 'forgotten'>;

export function isActive(state: TaskStateCode): boolean {
  return state >= WAITING && state <= PROCESSING;
}

/** TaskState.flags: the task's data was scattered; it has no lineage to recompute from. */
export const SCATTERED = 1;
/** TaskState.flags: its worker said it handed the task to a thread (task-started). */
export const STARTED = 2;
/**
 * TaskState.flags: named by a graph still arriving in parts, so kept (not forgotten) until
 * its last part; a second graph's pin is counted beside the records (SchedulerState.pins).
 */
export const PINNED = 4;

// A traversal stamp, shared by every record kind, so a walk marks what it has seen
// without a Set. Monotonic across scheduler instances, which only makes stamps unique.
let lastMark = 0;
export function nextMark(): number {
  lastMark = lastMark === Number.MAX_SAFE_INTEGER ? 1 : lastMark + 1;
  return lastMark;
}

const NO_TASKS: TaskState[] = Object.freeze([]) as unknown as TaskState[];
/** Shared empty edge list; replaced, never pushed to. */
export function noTasks(): TaskState[] {
  return NO_TASKS;
}

export { hasPrefix, keyPrefix, keyPrefixAfter } from '../protocol/key-prefix.js';

/**
 * Running ages below this (seconds) do not raise an estimate: a task is seen running from
 * its start until its report arrives, so tiny tasks seem to run for a message round trip
 * (a millisecond or more on a loaded machine), which would cap a worker's backlog of
 * microsecond tasks at a handful and bind them to the round trip again.
 */
export const MIN_TELLING_AGE = 0.05;

export class Prefix {
  readonly name: string;
  /** Moving average of measured durations in seconds; -1 until one of its tasks finished. */
  measured = -1;
  /** Moving average of its results' sizes in bytes; -1 until one of its tasks finished. */
  nbytes = -1;
  /** Mean age in seconds of its tasks running at the last tick (0 when none). */
  runningAge = 0;
  /** The estimate in use: the measure (or the default), raised to the running age. */
  duration: number;
  /** Held tasks by state code (forgotten is not counted). */
  readonly counts: number[] = [0, 0, 0, 0, 0, 0, 0, 0];
  // Scratch for the tick's age survey.
  ageSum = 0;
  ageCount = 0;

  constructor(name: string, defaultDuration: number) {
    this.name = name;
    this.duration = defaultDuration;
  }

  learn(seconds: number, defaultDuration: number): void {
    // Weighted towards history so one straggler does not swing placement, quick enough to
    // follow a change of regime within a handful of tasks.
    this.measured = this.measured < 0 ? seconds : 0.7 * this.measured + 0.3 * seconds;
    this.refresh(defaultDuration);
  }

  learnBytes(nbytes: number): void {
    this.nbytes = this.nbytes < 0 ? nbytes : 0.7 * this.nbytes + 0.3 * nbytes;
  }

  refresh(defaultDuration: number): void {
    const base = this.measured < 0 ? defaultDuration : this.measured;
    this.duration = this.runningAge > base && this.runningAge > MIN_TELLING_AGE ? this.runningAge : base;
  }
}

export class TaskState {
  readonly key: string;
  readonly prefix: Prefix;
  spec: unknown;
  /** With an encoded spec (a string), the ids of the functions it names; else null. */
  readonly fns: FnIds | null;
  /** Deduplicated; set once, when the graph that brought the task is linked. */
  dependencies: TaskState[];
  /** May still list forgotten dependents (lazily compacted; see deadDependents). */
  dependents: TaskState[] = NO_TASKS;
  /** How many of `dependents` are forgotten. */
  deadDependents = 0;
  /** How many dependents are in an active state (waiting..processing) and so need this. */
  activeDependents = 0;
  state: TaskStateCode = RELEASED;
  readonly userPriority: number;
  readonly generation: number;
  readonly order: number;
  /** Dependencies not yet in memory, while waiting. */
  waitingOn = 0;
  /** Replaced, never changed in place: a result with one holder shares that worker's `sole`. */
  whoHas: readonly WorkerState[] | null = null;
  processingOn: WorkerState | null = null;
  nbytes = -1;
  readonly restrictions: readonly string[] | null;
  retries: number;
  /** Workers that died while running it. */
  suspicious = 0;
  /** Clients that want the result; replaced, never changed in place (commands carry it). */
  wantedBy: readonly string[] | null = null;
  error: TaskErrorInfo | null = null;
  /**
   * When it started running (ms), null when unknown or not processing. Null, not NaN: a
   * field that only ever holds numbers holds each in a box of its own (16 B for every task
   * held); one that may hold null boxes only the times of tasks running.
   */
  startedAt: number | null = null;
  /** Bytes of dependencies its worker must fetch, while processing. */
  transferBytes = 0;
  heapIndex = -1;
  /** Its ticket with its worker while processing (see WorkerState.issueTicket), else -1. */
  ticket = -1;
  mark = 0;
  flags = 0;

  constructor(
    key: string,
    prefix: Prefix,
    spec: unknown,
    fns: FnIds | null,
    dependencies: TaskState[],
    userPriority: number,
    generation: number,
    order: number,
    restrictions: readonly string[] | null,
    retries: number,
  ) {
    this.key = key;
    this.prefix = prefix;
    this.spec = spec;
    this.fns = fns;
    this.dependencies = dependencies;
    this.userPriority = userPriority;
    this.generation = generation;
    this.order = order;
    this.restrictions = restrictions;
    this.retries = retries;
  }
}

/** Priority order: higher user priority, then earlier generation, then lower graph order. */
export function runsBefore(a: TaskState, b: TaskState): boolean {
  if (a.userPriority !== b.userPriority) return a.userPriority > b.userPriority;
  if (a.generation !== b.generation) return a.generation < b.generation;
  return a.order < b.order;
}

export function comparePriority(a: TaskState, b: TaskState): number {
  if (a.userPriority !== b.userPriority) return b.userPriority - a.userPriority;
  if (a.generation !== b.generation) return a.generation - b.generation;
  return a.order - b.order;
}

export type WorkerStatus = 'running' | 'paused' | 'closing' | 'closed';

export class WorkerState {
  readonly id: string;
  readonly name: string;
  readonly nthreads: number;
  readonly memoryLimit: number;
  /** Tasks it may hold in processing before queued tasks stop going to it. */
  readonly slots: number;
  status: WorkerStatus = 'running';
  /** What the worker last said of itself; status returns to it if a retirement is aborted. */
  reported: 'running' | 'paused' = 'running';
  readonly processing = new Set<TaskState>();
  // Processing tasks counted by prefix, as parallel arrays (a worker runs few prefixes at a
  // time), so occupancy follows every change of a prefix's estimate without a sweep.
  readonly processingPrefixes: Prefix[] = [];
  readonly processingCounts: number[] = [];
  /** Sum of transferBytes of its processing tasks. */
  transferBytes = 0;
  readonly hasWhat = new Set<TaskState>();
  /** Bytes of the task results it holds. */
  nbytes = 0;
  lastSeen: number;
  memory: WorkerMemory = { managed: 0, spilled: 0, process: 0 };
  /** Steals on their way to it. */
  stealIncoming = 0;
  /** While retiring: keys it alone held, and the worker each is being copied to. */
  retirePending: Map<TaskState, WorkerState> | null = null;
  /** While retiring: new results to find a home for. */
  retireFresh: TaskState[] | null = null;
  heapIndex = -1;
  // Scratch for placement and stealing.
  mark = 0;
  localBytes = 0;
  score = 0;

  /** `[id]`, shared by every command that names this worker as a key's one holder. */
  readonly alone: readonly string[];
  /** `[this]`, the whoHas of every result it alone holds. */
  readonly sole: readonly WorkerState[];
  // Tickets: every task sent here to compute gets the next number, and the worker's reports
  // name it by that number. Finding the task is then an array read rather than a hash of a
  // key string just decoded (a lookup in a million-key map costs about a microsecond).
  // Numbers are never reused, so a stale report finds nothing, never another task.
  #tickets: (TaskState | null)[] = [];
  /** The ticket number of #tickets[0]. */
  #ticketBase = 0;
  /** Entries before it are all answered. */
  #ticketHead = 0;

  constructor(id: string, name: string, nthreads: number, memoryLimit: number, slots: number, now: number) {
    this.id = id;
    this.alone = Object.freeze([id]);
    this.sole = Object.freeze([this]);
    this.name = name;
    this.nthreads = nthreads;
    this.memoryLimit = memoryLimit;
    this.slots = slots;
    this.lastSeen = now;
  }

  addPrefix(p: Prefix): void {
    const ps = this.processingPrefixes;
    const i = ps.indexOf(p);
    if (i >= 0) (this.processingCounts[i] as number)++;
    else {
      ps.push(p);
      this.processingCounts.push(1);
    }
  }

  /** Gives `ts`, now processing here, the next ticket. */
  issueTicket(ts: TaskState): void {
    ts.ticket = this.#ticketBase + this.#tickets.length;
    this.#tickets.push(ts);
  }

  /** `ts` no longer processes here: its ticket finds nothing from now on. */
  revokeTicket(ts: TaskState): void {
    const i = ts.ticket - this.#ticketBase;
    ts.ticket = -1;
    const tickets = this.#tickets;
    if (i < 0 || i >= tickets.length) return;
    tickets[i] = null;
    // Answered mostly in order: the answered run at the front is dropped, in chunks.
    let head = this.#ticketHead;
    while (head < tickets.length && tickets[head] === null) head++;
    if (head === tickets.length) {
      this.#ticketBase += head;
      this.#tickets = [];
      head = 0;
    } else if (head >= 1024 && head * 2 >= tickets.length) {
      this.#ticketBase += head;
      this.#tickets = tickets.slice(head);
      head = 0;
    }
    this.#ticketHead = head;
  }

  /** The task processing here under this ticket, if it still is. */
  ticketed(ticket: number): TaskState | undefined {
    const i = ticket - this.#ticketBase;
    return i >= 0 && i < this.#tickets.length ? (this.#tickets[i] ?? undefined) : undefined;
  }

  /** Tickets held by tasks still processing here (for invariant checks). */
  get ticketsHeld(): number {
    let n = 0;
    for (let i = this.#ticketHead; i < this.#tickets.length; i++) if (this.#tickets[i] !== null) n++;
    return n;
  }

  removePrefix(p: Prefix): void {
    const ps = this.processingPrefixes;
    const cs = this.processingCounts;
    const i = ps.indexOf(p);
    if (i < 0) return;
    const n = (cs[i] as number) - 1;
    if (n > 0) {
      cs[i] = n;
      return;
    }
    const last = ps.length - 1;
    ps[i] = ps[last] as Prefix;
    cs[i] = cs[last] as number;
    ps.pop();
    cs.pop();
  }
}

/** Seconds of work assigned to the worker: expected compute plus fetching. */
export function occupancy(ws: WorkerState, bandwidth: number): number {
  let s = ws.transferBytes / bandwidth;
  const ps = ws.processingPrefixes;
  const cs = ws.processingCounts;
  for (let i = 0; i < ps.length; i++) s += (ps[i] as Prefix).duration * (cs[i] as number);
  return s;
}
