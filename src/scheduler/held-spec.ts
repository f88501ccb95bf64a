/**
 * Specs as the scheduler holds them: an encoded spec (protocol/encoded-spec.ts) is kept as
 * the string it arrived as, beside the ids of the functions it names. Nothing here decodes
 * a spec: it goes to the worker as it came, and a task costs that string rather than the
 * objects of a decoded spec. Specs that came as objects are held as they are.
 */
import { ProtocolError } from '../errors.js';
import type { FnRef } from '../functions/fn-ref.js';
import type { WireGraphTask } from '../protocol/messages.js';
import type { FnIds, GraphTask } from './events.js';

/** The ids of a task's functions as a list. */
export function fnIdList(fns: FnIds): readonly string[] {
  return typeof fns === 'string' ? [fns] : fns;
}

/**
 * The update-graph's tasks (tuples, WireGraphTask) as the state takes them, each checked:
 * a malformed one is a ProtocolError naming it. An encoded spec's `fns` (indices into the
 * message's list `fns`) become the functions' ids. An index that names no function
 * becomes an id no function has, in its place — a spec in its task takes its steps'
 * functions by position — and the task errs on its worker, as a spec naming an unknown
 * function would.
 */
export function graphTasks(tasks: readonly WireGraphTask[], fns: readonly FnRef[]): GraphTask[] {
  // Fused chains name several functions: tasks naming the same ones share one list, which
  // costs no array per task and lets dispatch tell a worker the list once, where it changes.
  let lists: Map<string, FnIds> | null = null;
  const out = new Array<GraphTask>(tasks.length);
  for (let i = 0; i < tasks.length; i++) {
    const task = tasks[i] as WireGraphTask;
    const problem = malformed(task);
    if (problem !== null) throw new ProtocolError(`update-graph task ${i} is malformed: ${problem}`);
    const [key, dependencies, spec, indices, priority, restrictions, retries] = task;
    let ids: FnIds | undefined;
    // An object spec names its functions itself; indices beside it mean nothing.
    if (typeof spec !== 'string') ids = undefined;
    else if (indices === undefined || indices === null) ids = NO_IDS;
    else if (typeof indices !== 'number') {
      const name = indices.join();
      const known = (lists ??= new Map<string, FnIds>()).get(name);
      if (known === undefined) lists.set(name, (ids = fnIds(indices, fns)));
      else ids = known;
    } else ids = fns[indices]?.id ?? unknownFn(indices);
    // Every field, absent or not: one shape for all the tasks the state reads.
    out[i] = {
      key,
      dependencies,
      spec,
      fns: ids,
      priority: priority ?? undefined,
      restrictions: restrictions ?? undefined,
      retries,
    };
  }
  return out;
}

/** What is wrong with a wire task, or null. */
function malformed(task: unknown): string | null {
  if (!Array.isArray(task) || task.length < 3) return 'not [key, dependencies, spec, …]';
  const [key, dependencies, , fns, priority, restrictions, retries] = task as unknown[];
  if (typeof key !== 'string') return 'its key is not a string';
  if (!Array.isArray(dependencies)) return `${key}: its dependencies are not a list`;
  for (const d of dependencies as unknown[]) if (typeof d !== 'string' && typeof d !== 'number') return `${key}: a dependency is neither a key nor a position`;
  if (fns !== undefined && fns !== null && typeof fns !== 'number' && !isNumbers(fns)) return `${key}: its functions are not indices`;
  if (priority !== undefined && priority !== null && typeof priority !== 'number') return `${key}: its priority is not a number`;
  if (restrictions !== undefined && restrictions !== null && !isStrings(restrictions)) return `${key}: its restrictions are not worker names`;
  if (retries !== undefined && typeof retries !== 'number') return `${key}: its retries are not a number`;
  return null;
}

function isNumbers(list: unknown): boolean {
  if (!Array.isArray(list)) return false;
  for (const x of list as unknown[]) if (typeof x !== 'number') return false;
  return true;
}

function isStrings(list: unknown): boolean {
  if (!Array.isArray(list)) return false;
  for (const x of list as unknown[]) if (typeof x !== 'string') return false;
  return true;
}

const NO_IDS: readonly string[] = Object.freeze([]);

function fnIds(indices: readonly number[], fns: readonly FnRef[]): FnIds {
  return indices.map((i) => fns[i]?.id ?? unknownFn(i));
}

/** The id in place of index `i`, which names no function of the message: no function has it. */
function unknownFn(i: number): string {
  return `#${i} (no function of its update-graph has this index)`;
}
