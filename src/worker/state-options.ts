/** The worker core's options, checked once at the door and filled in. */
import { DEFAULT_MAX_MESSAGE_SIZE } from '../comm/framing.js';
import { InvalidArgumentError } from '../errors.js';

export interface WorkerStateOptions {
  /** The worker's id as the scheduler knows it: never asked for data it should hold itself. */
  readonly id: string;
  /** Threads of the pool the batches go to. */
  readonly nthreads: number;
  /** Process memory (bytes) past which the worker tells the scheduler it is paused. Default Infinity. */
  readonly memoryPause?: number;
  /** Data requests to peers in flight at once. Default 32. */
  readonly maxRequests?: number;
  /** Transitions kept for `story()`, newest replacing oldest. Default 100,000; 0 keeps none. */
  readonly transitionLogLength?: number;
  /** Check every invariant after every event (slow; for tests and debugging). Default false. */
  readonly validate?: boolean;
  /** Random numbers in [0, 1), for spreading fetches over holders. Default Math.random. */
  readonly random?: () => number;
  /** Largest message between processes (bytes): a result past it fails its task. Default the wire's message limit (TESSERA_MAX_MESSAGE_SIZE: half the machine's memory, at least 512 MiB). */
  readonly maxMessageBytes?: number;
}

export interface ResolvedStateOptions {
  readonly id: string;
  readonly nthreads: number;
  readonly memoryPause: number;
  readonly maxRequests: number;
  readonly transitionLogLength: number;
  readonly validate: boolean;
  readonly random: () => number;
  readonly maxMessageBytes: number;
}

export function resolveStateOptions(options: WorkerStateOptions): ResolvedStateOptions {
  if (typeof (options as unknown) !== 'object' || (options as unknown) === null) throw new InvalidArgumentError('options must be an object');
  if (typeof options.id !== 'string' || options.id === '') throw new InvalidArgumentError('options.id must be a non-empty string');
  const positiveInt = (name: string, v: number | undefined, dflt: number): number => {
    if (v === undefined) return dflt;
    if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(`options.${name} must be a positive integer`);
    return v;
  };
  const memoryPause = options.memoryPause ?? Infinity;
  if (typeof memoryPause !== 'number' || Number.isNaN(memoryPause) || memoryPause <= 0) {
    throw new InvalidArgumentError('options.memoryPause must be a positive number or Infinity');
  }
  const transitionLogLength = options.transitionLogLength ?? 100_000;
  if (!Number.isInteger(transitionLogLength) || transitionLogLength < 0) {
    throw new InvalidArgumentError('options.transitionLogLength must be a non-negative integer');
  }
  if (options.validate !== undefined && typeof options.validate !== 'boolean') throw new InvalidArgumentError('options.validate must be a boolean');
  if (options.random !== undefined && typeof options.random !== 'function') throw new InvalidArgumentError('options.random must be a function');
  return {
    id: options.id,
    nthreads: positiveInt('nthreads', options.nthreads, 1),
    memoryPause,
    maxRequests: positiveInt('maxRequests', options.maxRequests, 32),
    transitionLogLength,
    validate: options.validate ?? false,
    random: options.random ?? Math.random,
    maxMessageBytes: positiveInt('maxMessageBytes', options.maxMessageBytes, DEFAULT_MAX_MESSAGE_SIZE),
  };
}
