/**
 * Plan nodes and calls as they travel (task-spec.ts). Both the local executor and the
 * client encode here, so what a thread runs is the same whoever sent it.
 */
import { builtins } from '../functions/builtins.js';
import type { FnRef } from '../functions/fn-ref.js';
import { fnRef } from '../functions/portable.js';
import type { Plan } from '../graph/plan.js';
import type { Task } from '../graph/task.js';
import type { WireNode, WireStep } from './task-spec.js';

/** One call as a step; its function is added to `fns` (by id) for shipping. */
export function wireStep(t: Task, fns?: Map<string, FnRef>): WireStep {
  fns?.set(t.ref.id, t.ref);
  return { fn: t.ref.id, deps: t.dependencies, args: t.args, argRefs: t.argRefs, deepRefs: t.deepRefs };
}

const identityRef = fnRef(builtins.identity);

/**
 * Plan node `j` as a wire node: its (fused) steps, or — for a literal in the graph — the
 * literal returned by the identity built-in. The functions it names are added to `fns`.
 */
export function wireNode(plan: Plan, j: number, out: boolean, fns: Map<string, FnRef>): WireNode {
  const key = plan.keys[j]!;
  const task = plan.tasks[j];
  if (task === null || task === undefined) {
    fns.set(identityRef.id, identityRef);
    return { steps: [{ fn: identityRef.id, deps: [], args: [plan.literals[j]], argRefs: null, deepRefs: null }], stepKeys: [key], out };
  }
  const chain = plan.fused.get(j);
  if (chain === undefined) return { steps: [wireStep(task, fns)], stepKeys: [key], out };
  return { steps: chain.steps.map((t) => wireStep(t, fns)), stepKeys: chain.keys, out };
}
