/**
 * Specs as the scheduler holds them: an encoded spec (protocol/encoded-spec.ts) as the
 * string it arrived as, with the ids of the functions it names. Nothing here decodes a
 * spec: it goes to the worker as it came, and a task costs that string and one small
 * record rather than the objects of a decoded spec. Specs that came as objects are held
 * as they are.
 */
import type { FnRef } from '../functions/fn-ref.js';
import type { WireGraphTask } from '../protocol/messages.js';

export class HeldSpec {
  constructor(
    /** The spec as its client encoded it. */
    readonly encoded: string,
    /** Ids of the functions the spec names (one, or several for a fused chain). */
    readonly fns: string | readonly string[],
  ) {}

  /** Ids of the functions it names, as a list. */
  fnIds(): readonly string[] {
    return typeof this.fns === 'string' ? [this.fns] : this.fns;
  }
}

/**
 * Replaces, in place, each encoded spec of an update-graph's tasks with a HeldSpec; `fns`
 * is the message's list the tasks' indices refer to. An index that names no function is
 * left out (the spec then names one the worker lacks, and its task errs there, as a spec
 * naming an unknown function would).
 */
export function holdSpecs(tasks: readonly WireGraphTask[], fns: readonly FnRef[]): void {
  // Fused chains name several functions: tasks naming the same ones share one list, which
  // costs no array per task and lets dispatch tell a worker the list once, where it changes.
  let lists: Map<string, string | readonly string[]> | null = null;
  for (let i = 0; i < tasks.length; i++) {
    const task = tasks[i] as WireGraphTask;
    if (typeof task.spec !== 'string') continue;
    let ids: string | readonly string[];
    if (Array.isArray(task.fns)) {
      const name = task.fns.join();
      const known = (lists ??= new Map<string, string | readonly string[]>()).get(name);
      if (known === undefined) lists.set(name, (ids = fnIds(task.fns, fns)));
      else ids = known;
    } else ids = fnIds(task.fns, fns);
    (task as { spec: unknown }).spec = new HeldSpec(task.spec, ids);
  }
}

const NO_IDS: readonly string[] = Object.freeze([]);

function fnIds(indices: number | readonly number[] | undefined, fns: readonly FnRef[]): string | readonly string[] {
  if (typeof indices === 'number') return fns[indices]?.id ?? NO_IDS;
  if (!Array.isArray(indices)) return NO_IDS;
  const ids: string[] = [];
  for (const i of indices as readonly unknown[]) {
    const id = typeof i === 'number' ? fns[i]?.id : undefined;
    if (id !== undefined) ids.push(id);
  }
  return ids;
}
