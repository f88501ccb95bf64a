/**
 * What a direct-mode invocation carries and answers. Lambda's payloads are JSON, so the
 * batch and its values travel as the project's codec records (store/values.ts) in base64;
 * large inputs, and results that would not fit the answer, travel through the result store
 * by key instead. Checked at the function's door, as the worker-mode event is.
 */
import { InvalidArgumentError } from '../../errors.js';
import { decodeValue, encodeValue } from '../../store/index.js';

/** Batches of ready tasks for one function invocation. */
export interface DirectInvocation {
  readonly op: 'direct';
  /** The result store's address, reachable from the function (redis://…). */
  readonly store: string;
  /** Each batch's nodes and the functions they name: codec records, base64. Run in turn, each as a thread runs a batch. */
  readonly batches: readonly string[];
  /** Inputs of every batch inline: [key, codec record in base64]. */
  readonly inputs: readonly (readonly [key: string, value: string])[];
  /** Inputs in the store: [key, the store key holding its record]. */
  readonly stored: readonly (readonly [key: string, storeKey: string])[];
  /** Bundled modules the functions come from, by hash; their code is in the store under moduleKey(hash). */
  readonly modules: readonly string[];
  /** Bytes of results the answer may carry inline (base64 counted); the rest stay in the store only. */
  readonly inlineBytes: number;
}

/** How each batch ended, in order, as the function answers. */
export interface DirectInvocationResult {
  readonly op: 'direct';
  readonly batches: readonly DirectBatchResult[];
}

/** How one batch ended. */
export type DirectBatchResult =
  | {
      readonly status: 'done';
      /**
       * Per task, the record the store holds for its key — the first written, whoever wrote
       * it — in base64; null where it is left in the store for the caller to read.
       */
      readonly values: readonly (string | null)[];
      /** Bytes of each task's record in the store. */
      readonly nbytes: readonly number[];
      /** Each task's start and end, in ms since the epoch: [start0, end0, start1, end1, …]. */
      readonly times: readonly number[];
    }
  | { readonly status: 'task-failed'; readonly key: string; readonly error: { readonly name: string; readonly message: string; readonly stack: string } }
  | { readonly status: 'unportable'; readonly key: string; readonly path: string; readonly reason: string }
  /** The batch could not run there (an input missing from the store, a module that cannot be saved, a thread that died). */
  | { readonly status: 'unrunnable'; readonly message: string };

/** Where a bundled module's code waits for direct invocations. */
export function moduleKey(hash: string): string {
  return `lambda-module:${hash}`;
}

/** A value as a codec record in base64, for a JSON payload. */
export function toBase64(value: unknown): string {
  return Buffer.from(encodeValue(value)).toString('base64');
}

export function fromBase64(text: string): unknown {
  return decodeValue(Buffer.from(text, 'base64'));
}

export function parseDirectInvocation(event: unknown): DirectInvocation {
  if (typeof event !== 'object' || event === null) throw new InvalidArgumentError('the invocation event must be an object');
  const e = event as Record<string, unknown>;
  if (e['op'] !== 'direct') throw new InvalidArgumentError(`the invocation event's op must be 'direct', got ${JSON.stringify(e['op'])}`);
  const store = e['store'];
  if (typeof store !== 'string' || !/^rediss?:\/\//.test(store)) throw new InvalidArgumentError('a direct invocation needs store: a redis:// address the function can reach');
  const batches = e['batches'];
  if (!Array.isArray(batches) || batches.length === 0 || !batches.every((b) => typeof b === 'string' && b !== '')) {
    throw new InvalidArgumentError('a direct invocation needs batches: encoded batches, at least one');
  }
  const pairs = (name: string): (readonly [string, string])[] => {
    const list = e[name] ?? [];
    if (!Array.isArray(list) || !list.every((p) => Array.isArray(p) && p.length === 2 && typeof p[0] === 'string' && typeof p[1] === 'string')) {
      throw new InvalidArgumentError(`a direct invocation's ${name} must be a list of [key, string] pairs`);
    }
    return list as (readonly [string, string])[];
  };
  const modules = e['modules'] ?? [];
  if (!Array.isArray(modules) || !modules.every((m) => typeof m === 'string' && /^[0-9a-f]{64}$/.test(m))) {
    throw new InvalidArgumentError("a direct invocation's modules must be a list of bundle hashes");
  }
  const inlineBytes = e['inlineBytes'] ?? 0;
  if (typeof inlineBytes !== 'number' || !(inlineBytes >= 0)) throw new InvalidArgumentError("a direct invocation's inlineBytes must be a non-negative number");
  return { op: 'direct', store, batches: batches as string[], inputs: pairs('inputs'), stored: pairs('stored'), modules: modules as string[], inlineBytes };
}
