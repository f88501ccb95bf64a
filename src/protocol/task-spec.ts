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

/**
 * A one-call node in few parts, far cheaper to post to a thread than its WireNode (a
 * structured clone pays for every object and property name): `[n, fn, key, out, ...deps]`
 * when its n arguments are its n dependencies in that order, `[-1, fn, key, out, args]`
 * when it has none. Any other node travels as a WireNode (encode-task.ts, packNode).
 */
export type PackedNode = readonly [arity: number, fn: string, key: string, out: 0 | 1, ...rest: unknown[]];

/** What a task carries to the worker that runs it. */
export interface TaskSpec {
  readonly node: WireNode;
}

/** A spec as it travels: encoded by its client (encoded-spec.ts), or the object itself. */
export type WireSpec = TaskSpec | string;
