/**
 * A task as it travels to whatever runs it — a thread of the local executor or a
 * worker's thread on a cluster: one node (a fused chain of calls, or one call), each step
 * naming its function by id with its arguments and where the refs sit in them. Types only
 * (the browser page and the scheduler's events share them); encode-task.ts makes them.
 */
import type { RefSite } from '../graph/call.js';

/** One step of a node: the function by id, args with refs in place. */
export interface WireStep {
  readonly fn: string;
  /** Keys of the step's dependencies; refs in `sites` point into this list. */
  readonly deps: readonly string[];
  readonly args: readonly unknown[];
  readonly argRefs: readonly number[] | null;
  readonly deepRefs: readonly RefSite[] | null;
}

export interface WireNode {
  readonly steps: readonly WireStep[];
  readonly stepKeys: readonly string[];
  /** True when the result must come back: someone outside the batch needs it. */
  readonly out: boolean;
}

/** What a task carries to the worker that runs it. */
export interface TaskSpec {
  readonly node: WireNode;
}

/** A spec as it travels: encoded by its client (encoded-spec.ts), or the object itself. */
export type WireSpec = TaskSpec | string;
