import { TaskError, describeError } from '../errors.js';
import type { Plan } from '../graph/plan.js';
import { assertPortable } from '../serialize/check-value.js';
import type { ResolvedLocalOptions } from './options.js';
import { StepFailure, isThenable, runChain, runTask, throwIfAborted } from './run-chain.js';

// The synchronous loop hands the event loop back this often, so an AbortSignal can fire.
const YIELD_EVERY_MS = 20;

/** Runs a plan in this thread, node by node in plan order. Returns the outputs' values. */
export async function runSync(plan: Plan, options: ResolvedLocalOptions): Promise<unknown[]> {
  const { size, tasks, fused, keys, literals, depStart, depIdx, dependentStart, isOutput } = plan;
  const results = new Array<unknown>(size);
  const waiting = new Int32Array(size);
  for (let i = 0; i < size; i++) waiting[i] = dependentStart[i + 1]! - dependentStart[i]!;
  // One closure for all nodes: `base` points at the current node's dependencies.
  let base = 0;
  const lookup = (dependency: number): unknown => results[depIdx[base + dependency]!];
  const signal = options.signal;
  let lastYield = performance.now();
  throwIfAborted(signal);

  for (let i = 0; i < size; i++) {
    const task = tasks[i];
    if (task == null) {
      results[i] = literals[i];
    } else {
      let value: unknown;
      base = depStart[i]!;
      try {
        const chain = fused.get(i);
        value = chain === undefined ? runTask(task, keys[i]!, task.fn, lookup) : runChain(chain.steps, chain.keys, (s) => chain.steps[s]!.fn, lookup, signal);
        if (isThenable(value)) value = await value;
      } catch (error) {
        if (error instanceof StepFailure) throw new TaskError(error.key, describeError(error.error), { cause: error.error });
        throw error;
      }
      assertPortable(value, keys[i]!);
      results[i] = value;
    }
    // Release what nobody else needs.
    for (let p = depStart[i]!; p < depStart[i + 1]!; p++) {
      const d = depIdx[p]!;
      if (--waiting[d]! === 0 && isOutput[d] === 0) results[d] = undefined;
    }
    if ((i & 1023) === 1023 && performance.now() - lastYield > YIELD_EVERY_MS) {
      await new Promise((resolve) => setImmediate(resolve));
      lastYield = performance.now();
      throwIfAborted(signal);
      options.onProgress?.({ done: i + 1, total: size });
    }
    throwIfAborted(signal);
  }
  options.onProgress?.({ done: size, total: size });
  return Array.from(plan.outputs, (j) => results[j]);
}
