/**
 * Built-in operations used by collections and reductions. They exist in every thread and
 * worker, so they travel as a name.
 */
export const builtins = {
  /** Returns its argument; the graph uses it for literals that nest refs. */
  identity: <T>(x: T): T => x,
  /** Builds an array from its arguments. */
  list: <T>(...xs: T[]): T[] => xs,
  /** Sums numbers (or bigints) of an array. */
  sum: (xs: readonly number[]): number => {
    let s = 0;
    for (const x of xs) s += x;
    return s;
  },
  add: (a: number, b: number): number => a + b,
  mul: (a: number, b: number): number => a * b,
  max: (xs: readonly number[]): number => Math.max(...xs),
  min: (xs: readonly number[]): number => Math.min(...xs),
  count: (xs: readonly unknown[]): number => xs.length,
  /** `obj[key]`: picks one element of a tuple or one field of a record. */
  getItem: (obj: Readonly<Record<string | number, unknown>>, key: string | number): unknown => obj[key],
  /** Concatenates arrays. */
  concat: <T>(...parts: readonly (readonly T[])[]): T[] => ([] as T[]).concat(...parts),
} as const;

export type BuiltinName = keyof typeof builtins;

export function isBuiltinName(name: string): name is BuiltinName {
  return Object.hasOwn(builtins, name);
}
