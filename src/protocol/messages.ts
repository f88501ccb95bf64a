/**
 * The messages between clients, the scheduler and workers, one union per direction. The
 * state machine's events and commands (events.ts) are what the scheduler thinks in; these
 * are what travels. They differ where batching pays: many compute-task commands for one
 * worker travel as one `compute` message, many finished tasks as one `tasks-finished`.
 *
 * Workers are named by an id: their data address (`tcp://host:port`) when they listen for
 * peers, or `relay://…` when they cannot accept connections; their data then travels
 * through the scheduler (`relay-get-data`). A result store the scheduler has (store/) is a
 * holder too, named `store:ADDRESS`: workers and clients read from it directly.
 */
import type { FnRef } from '../functions/fn-ref.js';
import type { ScalingHistory } from './scaling.js';
import type { StoryEntry } from './story.js';
import type { WireSpec } from './task-spec.js';

/**
 * What went wrong, as the client rebuilds it: `task` — the task's function threw (a
 * TaskError); `worker-lost` — workers kept dying under it; `data-lost` — data with no
 * lineage (scattered) was lost; `unserializable` — its result cannot travel;
 * `missing-key` — it refers to a key nobody has. The client decides by `kind`, never by
 * `name`, which is whatever the user's code threw.
 */
export type TaskErrorKind = 'task' | 'worker-lost' | 'data-lost' | 'unserializable' | 'missing-key';

/** The parts of an error that travel: what a TaskError (or its kin) is rebuilt from. */
export interface TaskErrorInfo {
  readonly kind: TaskErrorKind;
  readonly name: string;
  readonly message: string;
  readonly stack: string;
  /** The task where it happened; dependents that err with it keep the root's key. */
  readonly key?: string;
  /** unserializable: where in the value, and why. */
  readonly path?: string;
  readonly reason?: string;
  /** missing-key: the key that is missing. */
  readonly missing?: string;
}

export interface WorkerMemory {
  /** Bytes of task results the worker holds in memory. */
  readonly managed: number;
  /** Bytes of task results spilled to disk. */
  readonly spilled: number;
  /** Resident size of the worker process. */
  readonly process: number;
}

/**
 * A task of an update-graph, as a tuple (no field names on the wire, one per task):
 * `[key, dependencies, spec, fns?, priority?, restrictions?, retries?]`. Fields after the
 * spec are left off at the end where absent and null between: most tasks are
 * `[key, dependencies, spec, fns]` or, from a graph, `[key, dependencies, spec, fns, priority]`.
 *
 * - dependencies: keys, or positions — a number names the task at that index among the
 *   graph's tasks (counted across its parts), which the scheduler finds without a lookup.
 * - spec: encoded by the client (encoded-spec.ts), which the scheduler forwards as it is,
 *   or the object.
 * - fns: with an encoded spec, the functions it names, as indices into the message's `fns`
 *   (the scheduler ships them to a worker before the task; it does not read the spec).
 * - priority: graph order (lower runs first); restrictions: worker ids or names the task
 *   may run on; retries: how many failures are retried.
 */
export type WireGraphTask = readonly [
  key: string,
  dependencies: readonly (string | number)[],
  spec: WireSpec,
  fns?: number | readonly number[] | null,
  priority?: number | null,
  restrictions?: readonly string[] | null,
  retries?: number,
];

/**
 * A task for a worker, as a tuple (no field names on the wire, one per task):
 * `[key, spec, dependencies, stimulus?, fns?]`. The stimulus (the scheduler event that sent
 * it, see story.ts) and, for an encoded spec, the ids of the functions it names are given
 * only where they differ from the previous task's in the same message (a null stimulus:
 * unchanged); the worker carries them forward, and so need not decode a spec to know what
 * its threads must load. A dependency the worker the message goes to alone holds is its key
 * alone; any other is `[key, holders]`, that worker named among them as SELF_HOLDER rather
 * than by its address.
 */
/** In a compute message's dependencies: the worker the message is for (see WireComputeTask). */
export const SELF_HOLDER = '';

/** A compute message's dependency: its key alone (held by the worker it goes to, alone) or [key, holders]. */
export type WireDependency = string | readonly [key: string, holders: readonly string[]];

/** The all-self holder list a dependency named by its key alone stands for. */
const ONLY_SELF: readonly string[] = Object.freeze([SELF_HOLDER]);

/** The key of a compute message's dependency, in either form. */
export function dependencyKey(dep: WireDependency): string {
  return typeof dep === 'string' ? dep : dep[0];
}

/** The holders of a compute message's dependency: SELF_HOLDER alone for one named by its key. */
export function dependencyHolders(dep: WireDependency): readonly string[] {
  return typeof dep === 'string' ? ONLY_SELF : dep[1];
}

export type WireComputeTask = readonly [
  key: string,
  /** As the client sent it: encoded (the worker decodes it), or the object. */
  spec: WireSpec,
  /** Per dependency: its key (held by this worker alone) or [key, holders]. */
  dependencies: readonly WireDependency[],
  stimulus?: string | null,
  fns?: string | readonly string[],
];

/** A value as it travels: key and value. */
export type KeyValue = readonly [string, unknown];

/**
 * The scheduler's result store, as it tells workers and clients of it: the holder id it
 * appears under among a key's holders, and the address to open it at (`redis://…`; a
 * `memory://…` store of another process is reached through the scheduler, `store-get`).
 */
export interface StoreRef {
  readonly holder: string;
  readonly address: string;
}

/** Store requests served by the scheduler, for those that cannot open its store themselves. */
export type StoreRequest =
  | { readonly op: 'store-put'; readonly id: number; readonly items: readonly (readonly [string, Uint8Array])[] }
  | { readonly op: 'store-get'; readonly id: number; readonly keys: readonly string[] }
  | { readonly op: 'store-delete'; readonly keys: readonly string[] };

/** The answer to store-put (`held`: true where this write won, false where the key was already there) or store-get (`values`, null where absent); `error` when the store failed. */
export interface StoreReply {
  readonly op: 'store-reply';
  readonly id: number;
  readonly values: readonly (Uint8Array | null)[];
  readonly held: readonly boolean[];
  readonly error: string | null;
}

// ---- client → scheduler ----------------------------------------------------------------

export type ClientToScheduler =
  | {
      readonly op: 'update-graph';
      readonly tasks: readonly WireGraphTask[];
      readonly wanted: readonly string[];
      /** Functions the tasks name by id; the scheduler passes each to a worker once. */
      readonly fns: readonly FnRef[];
      readonly userPriority?: number;
      /** More parts of this graph follow (see UpdateGraphEvent.more); `wanted` comes with the last. */
      readonly more?: boolean;
    }
  | { readonly op: 'release-keys'; readonly keys: readonly string[] }
  | { readonly op: 'cancel'; readonly keys: readonly string[] }
  /** A bundled module, sent once before the first graph that uses it (functions/bundle.ts makes it). */
  | { readonly op: 'upload-module'; readonly hash: string; readonly code: Uint8Array }
  | { readonly op: 'who-has'; readonly id: number; readonly keys: readonly string[] }
  | { readonly op: 'scatter'; readonly id: number; readonly items: readonly KeyValue[] }
  | { readonly op: 'scaling-history'; readonly id: number; readonly since: number }
  /** The story of these keys, from the scheduler and every worker. */
  | { readonly op: 'story'; readonly id: number; readonly keys: readonly string[] }
  /** Answer (workers-ready) once at least `n` workers are connected, or after `timeoutMs`. */
  | { readonly op: 'wait-for-workers'; readonly id: number; readonly n: number; readonly timeoutMs: number }
  /** Cancel every task of every client, free every result, restart every worker's threads. */
  | { readonly op: 'restart'; readonly id: number }
  /** A store named as a holder of `key` did not have it (or could not be read). */
  | { readonly op: 'missing-data'; readonly key: string; readonly from: string }
  | StoreRequest
  | RelayGetData;

/** Ask the scheduler to fetch keys from a worker that cannot accept connections. */
export interface RelayGetData {
  readonly op: 'relay-get-data';
  readonly id: number;
  readonly worker: string;
  readonly keys: readonly string[];
}

/** The answer to `get-data` (direct or relayed). */
export interface DataReply {
  readonly op: 'data';
  readonly id: number;
  readonly values: readonly KeyValue[];
  readonly missing: readonly string[];
}

// ---- scheduler → client ----------------------------------------------------------------

export type SchedulerToClient =
  | { readonly op: 'client-welcome'; readonly id: string; readonly store?: StoreRef }
  /**
   * Results now in memory; `workers[i]`, when given, is a worker holding `keys[i]`, so a
   * client gathers from it without asking the scheduler who has it first.
   */
  | { readonly op: 'keys-in-memory'; readonly keys: readonly string[]; readonly workers?: readonly string[] }
  | { readonly op: 'key-erred'; readonly key: string; readonly error: TaskErrorInfo }
  | { readonly op: 'key-lost'; readonly key: string; readonly error: TaskErrorInfo }
  | { readonly op: 'keys-cancelled'; readonly keys: readonly string[] }
  /** Holders per key asked for; null for a key the scheduler does not hold at all. */
  | { readonly op: 'who-has-reply'; readonly id: number; readonly whoHas: readonly (readonly string[] | null)[] }
  | { readonly op: 'scattered'; readonly id: number; readonly error: string | null }
  | { readonly op: 'scaling-history-reply'; readonly id: number; readonly history: ScalingHistory | null }
  | { readonly op: 'story-reply'; readonly id: number; readonly entries: readonly StoryEntry[] }
  | { readonly op: 'workers-ready'; readonly id: number; readonly workers: number; readonly error: string | null }
  | { readonly op: 'restarted'; readonly id: number; readonly error: string | null }
  | StoreReply
  | DataReply;

// ---- worker → scheduler ----------------------------------------------------------------

export type WorkerToScheduler =
  | {
      readonly op: 'register';
      readonly name: string;
      readonly nthreads: number;
      readonly memoryLimit: number;
      /** Where peers fetch data; null when the worker cannot accept connections. */
      readonly address: string | null;
      /** The worker's performance.timeOrigin, so its task times can be put on the scheduler's clock. */
      readonly timeOrigin?: number;
    }
  | {
      readonly op: 'tasks-finished';
      readonly keys: readonly string[];
      /** Per key, the ticket its compute gave it (-1: none); the scheduler finds the task by it. */
      readonly tickets?: readonly number[];
      readonly nbytes: readonly number[];
      readonly startedAt: readonly number[];
      readonly finishedAt: readonly number[];
      /** The worker thread (0 to nthreads - 1) that ran each, for the task stream's rows. */
      readonly threads: readonly number[];
      /** The holder id of the store these results were also written to (workers that cannot be reached). */
      readonly stored?: string;
    }
  | {
      readonly op: 'task-erred';
      readonly key: string;
      readonly error: TaskErrorInfo;
      /** When it ran, on the worker's clock, when it ran at all (see tasks-finished). */
      readonly startedAt?: number;
      readonly finishedAt?: number;
      readonly thread?: number;
    }
  | { readonly op: 'add-keys'; readonly keys: readonly string[] }
  /**
   * These tasks were handed to a thread at `startedAt` (the worker's clock): if the worker
   * dies now, they are suspects; tasks only queued there are not. Named by their keys, or
   * by their tickets when every one has one.
   */
  | { readonly op: 'tasks-started'; readonly keys?: readonly string[]; readonly tickets?: readonly number[]; readonly startedAt: number }
  | { readonly op: 'missing-data'; readonly key: string; readonly from: string }
  | { readonly op: 'heartbeat'; readonly memory: WorkerMemory }
  /** Paused (memory past the pause threshold): no new tasks, please; running again. */
  | { readonly op: 'worker-status'; readonly status: 'running' | 'paused' }
  | { readonly op: 'steal-response'; readonly key: string; readonly accepted: boolean }
  | { readonly op: 'put-data-done'; readonly id: number; readonly nbytes: readonly number[] }
  /** Leaving on purpose: what it ran is not held against its tasks. */
  | { readonly op: 'goodbye' }
  /** Asks to be retired: the scheduler moves what only it holds, then sends close-worker. */
  | { readonly op: 'retire' }
  /** Its threads were replaced and it holds nothing (the answer to restart). */
  | { readonly op: 'restart-done'; readonly id: number }
  /** Its story of the keys asked for; `at` on the worker's own clock. */
  | { readonly op: 'story-reply'; readonly id: number; readonly entries: readonly StoryEntry[] }
  | StoreRequest
  | RelayGetData
  | DataReply;

// ---- scheduler → worker ----------------------------------------------------------------

export type SchedulerToWorker =
  /** `store`: the scheduler's result store; a worker that cannot be reached writes its results there. */
  | { readonly op: 'registered'; readonly id: string; readonly store?: StoreRef }
  | { readonly op: 'load-fns'; readonly fns: readonly FnRef[] }
  /** A bundled module the next functions come from; `bundle:HASH` urls name it. */
  | { readonly op: 'load-module'; readonly hash: string; readonly code: Uint8Array }
  /**
   * `ticket`: the first task's ticket, the next task's one more, and so on. A ticket is the
   * compute's number with this worker, never reused; the worker's reports name the task by
   * it (tasks-started, tasks-finished), which spares the scheduler a lookup by key.
   */
  | { readonly op: 'compute'; readonly tasks: readonly WireComputeTask[]; readonly ticket?: number }
  | { readonly op: 'free-keys'; readonly keys: readonly string[]; readonly stimulus?: string }
  | { readonly op: 'steal-request'; readonly key: string; readonly stimulus?: string }
  | { readonly op: 'replicate'; readonly keys: readonly (readonly [string, readonly string[]])[]; readonly stimulus?: string }
  /** Tell the story of these keys (answer with story-reply). */
  | { readonly op: 'story-request'; readonly id: number; readonly keys: readonly string[] }
  /** Drop every task and result and start fresh threads (running tasks are stopped); answer restart-done. */
  | { readonly op: 'restart'; readonly id: number }
  | { readonly op: 'close-worker' }
  | { readonly op: 'put-data'; readonly id: number; readonly items: readonly KeyValue[] }
  | StoreReply
  | GetData
  | DataReply;

// ---- anyone → a worker's data port -----------------------------------------------------

export interface GetData {
  readonly op: 'get-data';
  readonly id: number;
  readonly keys: readonly string[];
}

export type PeerMessage = GetData | DataReply;

/** Module functions bundled by a client name their module `bundle:HASH` (functions/bundle.ts). */
export const BUNDLE_SCHEME = 'bundle:';

/** Worker ids that can be dialled; others are reached through the scheduler's relay. */
export function isDialable(worker: string): boolean {
  return worker.startsWith('tcp://') || worker.startsWith('tls://');
}

/** Store holders are named `store:ADDRESS`. */
export const STORE_HOLDER_PREFIX = 'store:';

/** The holder id of the store at `address`, without any password the address carries (ids are shown). */
export function storeHolderId(address: string): string {
  const at = address.indexOf('@');
  const scheme = address.indexOf('://');
  const shown = scheme >= 0 && at > scheme ? address.slice(0, scheme + 3) + address.slice(at + 1) : address;
  return STORE_HOLDER_PREFIX + shown;
}

/** Whether a holder id names a result store rather than a worker. */
export function isStoreHolder(holder: string): boolean {
  return holder.startsWith(STORE_HOLDER_PREFIX);
}

/** Names a connection's role in the handshake. */
export const ROLE_CLIENT = 'client';
export const ROLE_WORKER = 'worker';
export const ROLE_PEER = 'peer';
