/**
 * What the worker's core (state.ts) is told and what it answers. Events come from the
 * scheduler's messages, from peers' data replies, from the thread pool and from the shell's
 * own clock; instructions are what the shell (worker.ts) then does: run a batch, ask a peer
 * for data, keep or drop a value, tell the scheduler something.
 *
 * Every event may carry the stimulus id of the scheduler message behind it; without one the
 * core makes one up from the event's kind. `now` is the worker's clock (performance.now()),
 * the only time the core knows.
 */
import type { KeyValue, TaskErrorInfo, WireDependency } from '../protocol/messages.js';
import type { WireSpec } from '../protocol/task-spec.js';

interface EventBase {
  readonly stimulus?: string | undefined;
  readonly now: number;
}

/**
 * A dependency as the scheduler names it: its key and the workers said to hold it, this
 * worker among them as its id or as SELF_HOLDER.
 */
export type DependencyHolders = readonly [key: string, holders: readonly string[]];

/**
 * A task's dependency in a compute message: its key alone when this worker is its one holder
 * (most are), else its key and holders.
 */
export type TaskDependency = WireDependency;

/** Compute `key` here, once its dependencies are here. */
export interface ComputeTaskEvent extends EventBase {
  readonly op: 'compute-task';
  readonly key: string;
  /** As the scheduler forwarded it: encoded by the client (decoded by the thread that runs it), or the object. */
  readonly spec: WireSpec;
  readonly dependencies: readonly TaskDependency[];
  /** Ids of the functions an encoded spec names, when the scheduler said (else the spec is read for them). */
  readonly fns?: readonly string[];
  /** The compute's ticket, when the scheduler gave one: the reports of the task name it. */
  readonly ticket?: number;
}

/** The scheduler no longer needs these here: results, tasks to run, data to fetch. */
export interface FreeKeysEvent extends EventBase {
  readonly op: 'free-keys';
  readonly keys: readonly string[];
}

/**
 * Give `key` up if it has not started, so another worker can run it. `cut`: the shell took
 * back the batch it waited in from there on (Executor.cut), so its thread will not start
 * it; the batch is cut first, as by batch-cut.
 */
export interface StealRequestEvent extends EventBase {
  readonly op: 'steal-request';
  readonly key: string;
  readonly cut?: { readonly batch: number; readonly cut: number };
}

/** Hold a copy of these keys (retirement moves data this way). */
export interface ReplicateEvent extends EventBase {
  readonly op: 'replicate';
  readonly keys: readonly DependencyHolders[];
}

/** Scattered data the scheduler puts here. */
export interface PutDataEvent extends EventBase {
  readonly op: 'put-data';
  readonly id: number;
  readonly items: readonly KeyValue[];
}

/** The answer to a gather instruction: what the holder sent; the rest it did not have. */
export interface GatherDoneEvent extends EventBase {
  readonly op: 'gather-done';
  readonly request: number;
  readonly values: readonly KeyValue[];
}

/** A batch ran to its end: one value per task, in order. */
export interface BatchDoneEvent extends EventBase {
  readonly op: 'batch-done';
  readonly batch: number;
  /** The pool's thread that ran it (0 to nthreads - 1). */
  readonly thread: number;
  readonly values: readonly unknown[];
  /** Each task's start and end on the worker's clock: [start0, end0, start1, end1, …]. */
  readonly times: ArrayLike<number>;
}

/** A task of a batch failed (`key` is the step that threw); the thread stopped there. */
export interface BatchTaskFailedEvent extends EventBase {
  readonly op: 'batch-task-failed';
  readonly batch: number;
  readonly key: string;
  readonly error: TaskErrorInfo;
}

/** The thread running a batch died: which task killed it is unknown. */
export interface BatchThreadDiedEvent extends EventBase {
  readonly op: 'batch-thread-died';
  readonly batch: number;
  readonly message: string;
}

/** A batch could not start here: a module it needs could not be written, an input not read back. */
export interface BatchUnrunnableEvent extends EventBase {
  readonly op: 'batch-unrunnable';
  readonly batch: number;
  readonly error: { readonly name: string; readonly message: string; readonly stack: string };
}

/**
 * The shell took back, for an idle thread, the tasks of a batch from position `cut` on,
 * which its thread will not start (Executor.takeBack): they are ready again.
 */
export interface BatchCutEvent extends EventBase {
  readonly op: 'batch-cut';
  readonly batch: number;
  readonly cut: number;
}

/** The process's resident memory, measured (each heartbeat; again after a GC when high). */
export interface MemorySampleEvent extends EventBase {
  readonly op: 'memory-sample';
  readonly process: number;
  /**
   * Bytes of results held in memory: what pausing lets the worker act on (spill them, or
   * wait for the scheduler to release them). Absent: taken to be some.
   */
  readonly managed?: number;
}

/**
 * The result store already held `key` when this worker wrote it: the task ran twice (a
 * duplicated or retried invocation, a report that was lost) and the other run's value was
 * written first. That value stands, and replaces the one here, so that tasks here, peers
 * and clients all read one value per key.
 */
export interface StoreKeptEvent extends EventBase {
  readonly op: 'store-kept';
  readonly key: string;
  readonly value: unknown;
}

/** The worker wants to leave once its data has moved. */
export interface RetireEvent extends EventBase {
  readonly op: 'retire';
}

/**
 * The shell's turn of messages is over: start what can start. Tasks made ready by a burst
 * of messages go to the threads together, in batches sized by how many there are.
 */
export interface PumpEvent extends EventBase {
  readonly op: 'pump';
}

export type WorkerEvent =
  | ComputeTaskEvent
  | FreeKeysEvent
  | StealRequestEvent
  | ReplicateEvent
  | PutDataEvent
  | GatherDoneEvent
  | BatchDoneEvent
  | BatchTaskFailedEvent
  | BatchThreadDiedEvent
  | BatchUnrunnableEvent
  | BatchCutEvent
  | MemorySampleEvent
  | StoreKeptEvent
  | RetireEvent
  | PumpEvent;

/** A task handed to a thread. */
export interface ExecuteTask {
  readonly key: string;
  /** Encoded (the thread decodes it) or the object. */
  readonly spec: WireSpec;
  /** Ids of the functions it names. */
  readonly fns: readonly string[];
  readonly dependencies: readonly string[];
}

export type WorkerInstruction =
  /** Run these tasks, in order, on one thread; `inputs` are the keys they need from the store. */
  /** `tickets`: the tasks' tickets, when every one has one (else null: their keys name them). */
  | { readonly op: 'execute'; readonly batch: number; readonly tasks: readonly ExecuteTask[]; readonly inputs: readonly string[]; readonly tickets: readonly number[] | null }
  /** Ask `holder` for `keys`; answer with gather-done. */
  | { readonly op: 'gather'; readonly request: number; readonly holder: string; readonly keys: readonly string[] }
  /**
   * Keep this value (a result computed, fetched or put here); `received` when it came from
   * elsewhere (a peer, the scheduler's relay, the store), not from a thread here.
   */
  | { readonly op: 'store'; readonly key: string; readonly value: unknown; readonly nbytes: number; readonly received?: true }
  /** Drop this value. */
  | { readonly op: 'delete-data'; readonly key: string }
  /** Tell the scheduler (gathered with others of the same turn). */
  | { readonly op: 'task-finished'; readonly key: string; readonly ticket: number; readonly nbytes: number; readonly startedAt: number; readonly finishedAt: number; readonly thread: number }
  | { readonly op: 'add-keys'; readonly keys: readonly string[] }
  /** Tell the scheduler now. */
  | { readonly op: 'task-erred'; readonly key: string; readonly error: TaskErrorInfo }
  | { readonly op: 'missing-data'; readonly key: string; readonly from: string }
  | { readonly op: 'steal-response'; readonly key: string; readonly accepted: boolean }
  | { readonly op: 'put-data-done'; readonly id: number; readonly nbytes: readonly number[] }
  | { readonly op: 'worker-status'; readonly status: 'running' | 'paused'; readonly process: number }
  | { readonly op: 'retire' };
