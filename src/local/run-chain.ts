import { CancelledError } from '../errors.js';
import { type CallSpec, resolveArgs } from '../graph/call.js';

/** A step failed: which key, and what it threw. Internal; executors turn it into TaskError. */
export class StepFailure extends Error {
  readonly key: string;
  readonly error: unknown;
  constructor(key: string, error: unknown) {
    super(`task '${key}' failed`);
    this.key = key;
    this.error = error;
  }
}

type AnyFunction = (...args: unknown[]) => unknown;

/**
 * Runs a node's chain of steps (one step unless fused). Each step after the first has one
 * dependency, the previous step; the first step's come from `lookup` by position. Stays
 * synchronous until a step returns a promise, so plain functions pay nothing for async
 * support. Failures are thrown (or rejected) as StepFailure naming the step's key.
 */
export function runChain(
  steps: readonly CallSpec[],
  stepKeys: readonly string[],
  fnOf: (step: number) => Function,
  lookup: (dependency: number) => unknown,
  signal?: AbortSignal,
): unknown {
  let value: unknown;
  for (let s = 0; s < steps.length; s++) {
    if (s > 0) throwIfAborted(signal);
    const key = stepKeys[s]!;
    const prev = value;
    try {
      value = (fnOf(s) as AnyFunction)(...resolveArgs(steps[s]!, s === 0 ? lookup : () => prev));
    } catch (error) {
      throw new StepFailure(key, error);
    }
    if (isThenable(value)) return finishAsync(value, s, steps, stepKeys, fnOf, signal);
  }
  return value;
}

async function finishAsync(
  pending: PromiseLike<unknown>,
  from: number,
  steps: readonly CallSpec[],
  stepKeys: readonly string[],
  fnOf: (step: number) => Function,
  signal: AbortSignal | undefined,
): Promise<unknown> {
  let value: unknown;
  try {
    value = await pending;
  } catch (error) {
    throw new StepFailure(stepKeys[from]!, error);
  }
  for (let s = from + 1; s < steps.length; s++) {
    throwIfAborted(signal);
    const prev = value;
    try {
      value = await (fnOf(s) as AnyFunction)(...resolveArgs(steps[s]!, () => prev));
    } catch (error) {
      throw new StepFailure(stepKeys[s]!, error);
    }
  }
  return value;
}

/** Runs one task (a node that is not a fused chain); same contract as runChain. */
export function runTask(spec: CallSpec, key: string, fn: Function, lookup: (dependency: number) => unknown): unknown {
  let value: unknown;
  try {
    value = (fn as AnyFunction)(...resolveArgs(spec, lookup));
  } catch (error) {
    throw new StepFailure(key, error);
  }
  if (!isThenable(value)) return value;
  return Promise.resolve(value).catch((error: unknown) => {
    throw new StepFailure(key, error);
  });
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new CancelledError(undefined, { cause: signal.reason });
}

export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}
