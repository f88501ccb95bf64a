import { IllegalStateError } from '../errors.js';
import type { Graph } from './graph.js';

/**
 * What computes a graph. Delayed values live in the graph layer and know nothing of
 * threads or clusters; the local executors register themselves here when loaded, and a
 * Client passed in options takes precedence.
 */
export interface GraphRunner {
  run(graph: Graph, keys: readonly string[], options: ComputeOptions): Promise<unknown[]>;
}

export interface Progress {
  readonly done: number;
  readonly total: number;
}

/** Something that computes graphs elsewhere, such as a cluster Client. */
export interface RemoteRunner {
  get(graph: Graph, keys: readonly string[]): Promise<unknown[]>;
}

/** Options of `get()`, `compute()` and `.compute()`. */
export interface ComputeOptions {
  /** 'threads' (default): all cores through worker threads. 'sync': one by one, in-process, for debugging. */
  readonly scheduler?: 'threads' | 'sync';
  /** Number of worker threads (default: the machine's available parallelism). */
  readonly workers?: number;
  /** Fuse linear chains of tasks into one (default true). */
  readonly fuse?: boolean;
  /** Cancels the computation; it rejects with CancelledError. */
  readonly signal?: AbortSignal;
  /** Called as nodes finish (at most every few milliseconds), and once at the end. */
  readonly onProgress?: (progress: Progress) => void;
  /** Compute on a cluster through this client instead of locally. */
  readonly client?: RemoteRunner;
}

let defaultRunner: GraphRunner | undefined;

export function setDefaultRunner(runner: GraphRunner): void {
  defaultRunner = runner;
}

export function getDefaultRunner(): GraphRunner {
  if (defaultRunner === undefined) throw new IllegalStateError('no executor is loaded; import from "tessera"');
  return defaultRunner;
}
