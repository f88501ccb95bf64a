/**
 * Specs as the scheduler holds them: an encoded spec (protocol/encoded-spec.ts) is kept as
 * the string it arrived as, beside the ids of the functions it names. Nothing here decodes
 * a spec: it goes to the worker as it came, and a task costs that string rather than the
 * objects of a decoded spec. Specs that came as objects are held as they are.
 */
import type { FnRef } from '../functions/fn-ref.js';
import type { WireGraphTask } from '../protocol/messages.js';
import type { FnIds, GraphTask } from './events.js';

/** The ids of a task's functions as a list. */
export function fnIdList(fns: FnIds): readonly string[] {
  return typeof fns === 'string' ? [fns] : fns;
}

/**
 * The update-graph's tasks as the state takes them: each encoded spec's `fns` (indices
 * into the message's list `fns`) become the functions' ids, in place — the tasks are the
 * message's own objects, so a million of them cost no copy. An index that names no
 * function is left out (the spec then names one the worker lacks, and its task errs there,
 * as a spec naming an unknown function would).
 */
export function holdSpecs(tasks: readonly WireGraphTask[], fns: readonly FnRef[]): readonly GraphTask[] {
  // Fused chains name several functions: tasks naming the same ones share one list, which
  // costs no array per task and lets dispatch tell a worker the list once, where it changes.
  let lists: Map<string, FnIds> | null = null;
  for (let i = 0; i < tasks.length; i++) {
    const task = tasks[i] as WireGraphTask;
    let ids: FnIds | undefined;
    if (typeof task.spec !== 'string') {
      // An object spec names its functions itself; indices beside it mean nothing.
      if (task.fns === undefined) continue;
      ids = undefined;
    } else if (Array.isArray(task.fns)) {
      const name = task.fns.join();
      const known = (lists ??= new Map<string, FnIds>()).get(name);
      if (known === undefined) lists.set(name, (ids = fnIds(task.fns, fns)));
      else ids = known;
    } else ids = fnIds(task.fns, fns);
    (task as { fns: unknown }).fns = ids;
  }
  return tasks as readonly unknown[] as readonly GraphTask[];
}

const NO_IDS: readonly string[] = Object.freeze([]);

function fnIds(indices: number | readonly number[] | undefined, fns: readonly FnRef[]): FnIds {
  if (typeof indices === 'number') return fns[indices]?.id ?? NO_IDS;
  if (!Array.isArray(indices)) return NO_IDS;
  const ids: string[] = [];
  for (const i of indices as readonly unknown[]) {
    const id = typeof i === 'number' ? fns[i]?.id : undefined;
    if (id !== undefined) ids.push(id);
  }
  return ids;
}
