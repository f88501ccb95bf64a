/**
 * Tessera: parallel and distributed computing for TypeScript.
 *
 * ```ts
 * import { delayed, compute } from 'tessera';
 *
 * const inc = delayed((x: number) => x + 1);
 * const add = delayed((a: number, b: number) => a + b);
 * const total = add(inc(1), inc(2));   // nothing runs yet
 * await total.compute();               // 5, on all local cores
 * ```
 */
export { delayed, compute, computeWith, toGraph, Delayed } from './graph/delayed.js';
export type { Lazy, DelayedOptions, ComputeOptions, Computed } from './graph/delayed.js';
export { task, ref, Task, Ref } from './graph/task.js';
export type { Graph } from './graph/graph.js';
export { compile } from './graph/plan.js';
export type { Plan, PlanOptions } from './graph/plan.js';
export { fromModule } from './functions/portable.js';
export { builtins } from './functions/builtins.js';
export type { BuiltinName } from './functions/builtins.js';
export type { FnRef } from './functions/fn-ref.js';
export { get } from './local/get.js';
export type { GetOptions, RemoteRunner } from './local/get.js';
export type { LocalOptions, Progress } from './local/options.js';
export { shutdownThreads } from './local/pool.js';
export {
  TesseraError,
  InvalidArgumentError,
  MissingKeyError,
  CycleError,
  CapturedVariableError,
  FunctionNotPortableError,
  UnserializableError,
  TaskError,
  CancelledError,
  WorkerLostError,
} from './errors.js';
