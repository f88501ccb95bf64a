import { availableParallelism } from 'node:os';
import { InvalidArgumentError } from '../errors.js';
import type { ComputeOptions, Progress } from '../graph/runner.js';

export type { Progress } from '../graph/runner.js';

/** Options of a local run (ComputeOptions without `client`). */
export type LocalOptions = Omit<ComputeOptions, 'client'>;

export interface ResolvedLocalOptions {
  readonly scheduler: 'threads' | 'sync';
  readonly workers: number;
  readonly fuse: boolean;
  readonly signal: AbortSignal | undefined;
  readonly onProgress: ((progress: Progress) => void) | undefined;
}

export function resolveLocalOptions(options: LocalOptions = {}): ResolvedLocalOptions {
  // Options come from JavaScript callers too: check what the types promise.
  const raw: Record<string, unknown> = typeof options === 'object' ? { ...options } : {};
  if (typeof options !== 'object') throw new InvalidArgumentError('options must be an object');
  const { scheduler = 'threads', workers = availableParallelism(), fuse = true, signal, onProgress } = raw;
  if (scheduler !== 'threads' && scheduler !== 'sync') {
    throw new InvalidArgumentError(`options.scheduler must be 'threads' or 'sync', got ${JSON.stringify(scheduler)}`);
  }
  if (typeof workers !== 'number' || !Number.isInteger(workers) || workers < 1) {
    throw new InvalidArgumentError(`options.workers must be a positive integer, got ${JSON.stringify(workers)}`);
  }
  if (typeof fuse !== 'boolean') throw new InvalidArgumentError('options.fuse must be a boolean');
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidArgumentError('options.signal must be an AbortSignal');
  if (onProgress !== undefined && typeof onProgress !== 'function') throw new InvalidArgumentError('options.onProgress must be a function');
  return { scheduler, workers, fuse, signal, onProgress: onProgress as ResolvedLocalOptions['onProgress'] };
}
