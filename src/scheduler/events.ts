/**
 * What goes into and comes out of the scheduler's state machine (`SchedulerState.handle`).
 *
 * The I/O shell turns wire messages into events and commands into wire messages; the
 * machine itself never sees a socket or a clock. Times are milliseconds (`now`,
 * `startedAt`, `finishedAt`), sizes are bytes, and workers are named by the id they
 * registered with (their address).
 */

import type { TaskErrorInfo, WireDependency, WorkerMemory } from '../protocol/messages.js';

export type { TaskErrorInfo, WorkerMemory };

/**
 * Every event may carry a stimulus id, which the transitions it causes record and the
 * messages its commands become carry on (see story.ts). Without one, the state machine
 * makes one up from the event's op.
 */
export interface Stimulated {
  readonly stimulus?: string;
}

/** Ids of the functions an encoded spec names: one, or several for a fused chain. */
export type FnIds = string | readonly string[];

/** One task of a submitted graph. */
export interface GraphTask {
  readonly key: string;
  /** Keys, or positions of tasks in the same graph (across its parts; see WireGraphTask). */
  readonly dependencies: readonly (string | number)[];
  /** Opaque to the scheduler; handed to the worker in `compute-task`. */
  readonly spec: unknown;
  /** With a spec encoded as a string: the ids of the functions it names (held-spec.ts). */
  readonly fns?: FnIds | undefined;
  /** Graph order: lower runs first among tasks of equal user priority and generation. */
  readonly priority?: number | undefined;
  /** Worker ids (or names) the task may run on. */
  readonly restrictions?: readonly string[] | undefined;
  /** How many times a failure is retried before the task errs. */
  readonly retries?: number | undefined;
}

// ---------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------

export interface AddWorkerEvent extends Stimulated {
  readonly op: 'add-worker';
  readonly worker: string;
  readonly name: string;
  readonly nthreads: number;
  readonly memoryLimit: number;
  readonly now: number;
}

export interface RemoveWorkerEvent extends Stimulated {
  readonly op: 'remove-worker';
  readonly worker: string;
  /** 'lost' counts against the tasks it was running (see `allowedFailures`); the others do not. */
  readonly reason: 'lost' | 'retired' | 'closed';
  readonly now: number;
}

/**
 * A result store joins as a holder: results written to it outlive the worker that wrote
 * them. It runs nothing; it is never placed on.
 */
export interface AddStoreEvent extends Stimulated {
  readonly op: 'add-store';
  /** Its holder id (`store:ADDRESS`). */
  readonly store: string;
}

/** The store was lost (its server went away): what only it held is recomputed from lineage. */
export interface RemoveStoreEvent extends Stimulated {
  readonly op: 'remove-store';
  readonly store: string;
}

export interface UpdateGraphEvent extends Stimulated {
  readonly op: 'update-graph';
  readonly client: string;
  readonly tasks: readonly GraphTask[];
  /** Keys whose results the client wants; may name keys submitted earlier. */
  readonly wanted: readonly string[];
  /** Higher runs first. Default 0. */
  readonly userPriority?: number;
  /**
   * More parts of this graph follow from the same client: its tasks are held (and may name
   * keys of later parts) but nothing is computed or forgotten until the last part, whose
   * `wanted` and `userPriority` are the graph's. A large graph sent in parts is never one
   * huge message in memory.
   */
  readonly more?: boolean;
  readonly now: number;
}

/** Optional: the worker began executing the task (improves duration estimates). */
export interface TaskStartedEvent extends Stimulated {
  readonly op: 'task-started';
  readonly worker: string;
  readonly key: string;
  readonly startedAt: number;
}

export interface TaskFinishedEvent extends Stimulated {
  readonly op: 'task-finished';
  readonly worker: string;
  readonly key: string;
  /** The ticket its compute-task carried, when the worker says: found without a lookup by key. */
  readonly ticket?: number;
  readonly nbytes: number;
  readonly startedAt: number;
  readonly finishedAt: number;
  readonly now: number;
  /** The store (holder id) the worker also wrote the result to. */
  readonly stored?: string;
}

/**
 * The tasks of one worker report: task-finished for each, in order, as one event — one
 * stimulus, and the freed slots filled once all of them are counted.
 */
export interface TasksFinishedEvent extends Stimulated {
  readonly op: 'tasks-finished';
  readonly worker: string;
  readonly keys: readonly string[];
  /** Per key, its compute-task's ticket, when the worker says (-1: unknown). */
  readonly tickets?: readonly number[];
  /** Per key, as in task-finished; a missing entry counts as 0. */
  readonly nbytes: readonly number[];
  readonly startedAt: readonly number[];
  readonly finishedAt: readonly number[];
  readonly now: number;
  /** The store (holder id) the worker also wrote these results to. */
  readonly stored?: string;
}

/**
 * Tasks handed to one thread together, to run in this order (optional, as task-started
 * is): named by their keys, or by the tickets their compute-task commands carried. The
 * first started at `startedAt`; the others wait behind it on that thread, so they are
 * suspects if the worker dies, but have not started: the worker may still give them up
 * to a steal.
 */
export interface TasksStartedEvent extends Stimulated {
  readonly op: 'tasks-started';
  readonly worker: string;
  readonly keys?: readonly string[];
  readonly tickets?: readonly number[];
  readonly startedAt: number;
}

export interface TaskErredEvent extends Stimulated {
  readonly op: 'task-erred';
  readonly worker: string;
  readonly key: string;
  readonly error: TaskErrorInfo;
  readonly now: number;
}

/** The worker now holds copies of these keys (after fetching them from peers). */
export interface AddKeysEvent extends Stimulated {
  readonly op: 'add-keys';
  readonly worker: string;
  readonly keys: readonly string[];
}

/** `worker` (or a client) asked `from` (a worker or a store) for `key` and `from` did not have it. */
export interface MissingDataEvent extends Stimulated {
  readonly op: 'missing-data';
  readonly worker: string;
  readonly key: string;
  readonly from: string;
}

export interface ReleaseKeysEvent extends Stimulated {
  readonly op: 'release-keys';
  readonly client: string;
  readonly keys: readonly string[];
}

export interface ClientRemovedEvent extends Stimulated {
  readonly op: 'client-removed';
  readonly client: string;
}

/** Like release-keys, and the client is told `key-cancelled` for each key it held. */
export interface CancelEvent extends Stimulated {
  readonly op: 'cancel';
  readonly client: string;
  readonly keys: readonly string[];
}

/** Data the client put directly on a worker. It has no lineage: if lost, it is lost. */
export interface ScatterEvent extends Stimulated {
  readonly op: 'scatter';
  readonly client: string;
  readonly worker: string;
  readonly keys: ReadonlyArray<{ readonly key: string; readonly nbytes: number }>;
}

export interface HeartbeatEvent extends Stimulated {
  readonly op: 'heartbeat';
  readonly worker: string;
  readonly now: number;
  readonly memory: WorkerMemory;
}

/** Paused workers keep what they run and hold but get no new tasks. */
export interface WorkerStatusEvent extends Stimulated {
  readonly op: 'worker-status';
  readonly worker: string;
  readonly status: 'running' | 'paused';
}

/** The victim's answer to a `steal-request`: did it give the task up? */
export interface StealResponseEvent extends Stimulated {
  readonly op: 'steal-response';
  readonly worker: string;
  readonly key: string;
  readonly accepted: boolean;
}

/** Graceful: move away what only these workers hold, then `close-worker` each. */
export interface RetireWorkersEvent extends Stimulated {
  readonly op: 'retire-workers';
  readonly workers: readonly string[];
  readonly now: number;
}

/** Start afresh: every client's every task is cancelled and every result freed. */
export interface RestartEvent extends Stimulated {
  readonly op: 'restart';
  readonly now: number;
}

/** Periodic: work stealing, worker time-to-live, stale steals, running-time estimates. */
export interface TickEvent extends Stimulated {
  readonly op: 'tick';
  readonly now: number;
}

export type SchedulerEvent =
  | AddWorkerEvent
  | RemoveWorkerEvent
  | AddStoreEvent
  | RemoveStoreEvent
  | UpdateGraphEvent
  | TaskStartedEvent
  | TasksStartedEvent
  | TaskFinishedEvent
  | TasksFinishedEvent
  | TaskErredEvent
  | AddKeysEvent
  | MissingDataEvent
  | ReleaseKeysEvent
  | ClientRemovedEvent
  | CancelEvent
  | ScatterEvent
  | HeartbeatEvent
  | WorkerStatusEvent
  | StealResponseEvent
  | RetireWorkersEvent
  | RestartEvent
  | TickEvent;

// ---------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------

/**
 * Where a dependency of a task can be fetched from, as its worker is told it (a wire
 * compute task's dependency): its key alone when that worker is its one holder (a task
 * placed beside its data, as most are), else `[key, holders]` with the worker the task goes
 * to named among the holders as SELF_HOLDER, not by its id. It travels as the state made it.
 */
export type DependencyLocation = WireDependency;

export interface ComputeTaskCommand {
  readonly op: 'compute-task';
  readonly worker: string;
  readonly key: string;
  /**
   * This compute's number with its worker (0, 1, 2, … per worker, never reused): the
   * worker's reports may name the task by it.
   */
  readonly ticket: number;
  readonly spec: unknown;
  /** With an encoded spec (a string), the ids of the functions it names; else null. */
  readonly fns: FnIds | null;
  readonly dependencies: readonly DependencyLocation[];
}

/** Drop these keys: cancel them if queued or running, delete their data if held (from a store too). */
export interface FreeKeysCommand {
  readonly op: 'free-keys';
  readonly worker: string;
  readonly keys: readonly string[];
}

/** Give this task up if it has not started; answer with `steal-response`. */
export interface StealRequestCommand {
  readonly op: 'steal-request';
  readonly worker: string;
  readonly key: string;
}

/** The target worker should fetch these keys and report them with `add-keys`. */
export interface ReplicateCommand {
  readonly op: 'replicate';
  readonly worker: string;
  readonly keys: ReadonlyArray<{ readonly key: string; readonly whoHas: readonly string[] }>;
}

export interface CloseWorkerCommand {
  readonly op: 'close-worker';
  readonly worker: string;
  /** Retired (its data moved), or dropped after a silence longer than the worker TTL. */
  readonly reason: 'retired' | 'lost';
}

/** A retirement was given up because the worker alone holds data no other worker can take. */
export interface RetireAbortedCommand {
  readonly op: 'retire-aborted';
  readonly worker: string;
  readonly reason: string;
}

export interface KeyInMemoryCommand {
  readonly op: 'key-in-memory';
  readonly clients: readonly string[];
  readonly key: string;
  readonly nbytes: number;
  /** A worker (or store) holding it, the first to have had it: clients gather from it. */
  readonly holder: string | null;
}

export interface KeyErredCommand {
  readonly op: 'key-erred';
  readonly clients: readonly string[];
  readonly key: string;
  readonly error: TaskErrorInfo;
}

export interface KeyCancelledCommand {
  readonly op: 'key-cancelled';
  readonly clients: readonly string[];
  readonly key: string;
}

/** Scattered data was lost with its worker and cannot be recomputed. */
export interface KeyLostCommand {
  readonly op: 'key-lost';
  readonly clients: readonly string[];
  readonly key: string;
  readonly error: TaskErrorInfo;
}

export type WorkerCommand =
  | ComputeTaskCommand
  | FreeKeysCommand
  | StealRequestCommand
  | ReplicateCommand
  | CloseWorkerCommand;

export type ClientCommand = KeyInMemoryCommand | KeyErredCommand | KeyCancelledCommand | KeyLostCommand;

export type SchedulerCommand = WorkerCommand | ClientCommand | RetireAbortedCommand;
