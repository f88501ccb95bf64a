/**
 * The part of a task that executors need to call it. Kept apart from task.ts so that
 * threads and workers load it without the parser that checks functions.
 */

/**
 * Where a ref sits inside a task's arguments: the path into the args array, and the
 * position of its key in the task's `dependencies`.
 */
export type RefSite = readonly [path: readonly (string | number)[], dependency: number];

/** What resolveArgs needs of a call: its arguments and where the refs sit in them. */
export interface CallSpec {
  readonly args: readonly unknown[];
  readonly argRefs: readonly number[] | null;
  readonly deepRefs: readonly RefSite[] | null;
}

/**
 * The arguments of a call with refs replaced by values from `lookup`, which takes a
 * position in the call's `dependencies`. Containers on the path of a nested ref are
 * copied, so the graph stays reusable.
 */
export function resolveArgs(t: CallSpec, lookup: (dependency: number) => unknown): unknown[] {
  const args = t.args.slice();
  const flat = t.argRefs;
  if (flat !== null) for (let k = 0; k < flat.length; k += 2) args[flat[k]!] = lookup(flat[k + 1]!);
  const deep = t.deepRefs;
  if (deep === null) return args;
  const copied = new Set<object>([args]);
  for (const [path, key] of deep) {
    let container: Record<string | number, unknown> = args as unknown as Record<number, unknown>;
    for (let i = 0; i < path.length - 1; i++) {
      const step = path[i]!;
      let child = container[step] as Record<string | number, unknown>;
      if (!copied.has(child)) {
        child = (Array.isArray(child) ? child.slice() : { ...child }) as Record<string | number, unknown>;
        copied.add(child);
        container[step] = child;
      }
      container = child;
    }
    container[path[path.length - 1]!] = lookup(key);
  }
  return args;
}
