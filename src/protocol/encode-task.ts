/**
 * Plan nodes and calls as they travel (task-spec.ts). Both the local executor and the
 * client encode here, so what a thread runs is the same whoever sent it.
 */
import { builtins } from '../functions/builtins.js';
import type { FnRef } from '../functions/fn-ref.js';
import { fnRef } from '../functions/portable.js';
import type { Plan } from '../graph/plan.js';
import type { Task } from '../graph/task.js';
import type { PackedNode, WireNode, WireStep } from './task-spec.js';

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

/**
 * Plan node `j` packed (PackedNode) when it is one call whose arguments are its
 * dependencies in order, or one with no dependencies; else its WireNode. As wireNode, the
 * function it names is added to `fns`.
 */
export function packNode(plan: Plan, j: number, out: boolean, fns: Map<string, FnRef>): PackedNode | WireNode {
  const task = plan.tasks[j];
  if (task === null || task === undefined || task.deepRefs !== null || plan.fused.has(j)) return wireNode(plan, j, out, fns);
  const deps = task.dependencies;
  const refs = task.argRefs;
  const n = deps.length;
  if (refs === null) {
    if (n > 0) return wireNode(plan, j, out, fns);
    fns.set(task.ref.id, task.ref);
    return [-1, task.ref.id, plan.keys[j]!, out ? 1 : 0, task.args];
  }
  if (task.args.length !== n || refs.length !== 2 * n) return wireNode(plan, j, out, fns);
  for (let k = 0; k < n; k++) if (refs[2 * k] !== k || refs[2 * k + 1] !== k) return wireNode(plan, j, out, fns);
  fns.set(task.ref.id, task.ref);
  return [n, task.ref.id, plan.keys[j]!, out ? 1 : 0, ...deps];
}
