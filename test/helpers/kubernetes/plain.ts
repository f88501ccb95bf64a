/**
 * client-node types request bodies as its model classes, yet serializes any object of the
 * right shape: `plain<V1Node>({ metadata: { name } })` passes a literal where the class is
 * expected, with the class's fields still checked, and no instance pretended.
 */
export type Plain<T> = T extends Date | string | number | boolean | null | undefined
  ? T
  : T extends readonly (infer U)[]
    ? Plain<U>[]
    : T extends object
      ? { [K in keyof T]: Plain<T[K]> }
      : T;

export function plain<T>(value: Plain<T>): T {
  return value as T;
}
