import type { FnRef } from '../functions/fn-ref.js';
import type { NodeToRun } from '../protocol/encoded-spec.js';

/** Messages from the main thread to a pool thread. */
export type ToThread = {
  readonly op: 'run';
  readonly id: number;
  /** Functions this thread has not seen yet. */
  readonly fns: readonly FnRef[];
  /** Nodes, or specs as their client encoded them, alone or in their task (encoded-spec.ts), which the thread decodes. */
  readonly nodes: readonly NodeToRun[];
  /** Every node's result comes back, whatever its `out` says. */
  readonly returnAll: boolean;
  /** Values of keys computed elsewhere that this batch needs. */
  readonly inputs: readonly (readonly [string, unknown])[];
  /**
   * The inputs' large buffers are copies made for this batch alone (a worker's): those
   * no result refers to come back, moved, in `recycled`, to take later copies.
   */
  readonly recycle: boolean;
};

export interface RemoteError {
  readonly name: string;
  readonly message: string;
  readonly stack: string;
}

/** Messages from a pool thread to the main thread. */
export type FromThread =
  | {
      readonly op: 'done';
      readonly id: number;
      readonly results: readonly unknown[];
      /** When the batch started, in ms since the epoch (each thread has its own performance clock). */
      readonly startedAt: number;
      readonly elapsedMs: number;
      /**
       * Each node's own start and end, in ms since the epoch: [start0, end0, start1, end1, …]
       * in the order the nodes were sent, so a batch's slow task is told from its fast ones.
       */
      readonly times: readonly number[];
      /** The inputs' large buffers, when the job asked for them back (`recycle`). */
      readonly recycled?: readonly ArrayBuffer[];
    }
  | { readonly op: 'task-failed'; readonly id: number; readonly key: string; readonly error: RemoteError }
  | { readonly op: 'unportable'; readonly id: number; readonly key: string; readonly path: string; readonly reason: string }
  | { readonly op: 'batch-failed'; readonly id: number; readonly error: RemoteError };
