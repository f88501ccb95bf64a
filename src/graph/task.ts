import { InvalidArgumentError } from '../errors.js';
import type { FnRef } from '../functions/fn-ref.js';
import { fnRef } from '../functions/portable.js';

/** A reference to the result of another key in the graph. */
export class Ref {
  readonly key: string;
  constructor(key: string) {
    this.key = key;
  }
}

export function ref(key: string): Ref {
  if (typeof key !== 'string' || key === '') throw new InvalidArgumentError(`ref() needs a non-empty string key, got ${String(key)}`);
  return new Ref(key);
}

/**
 * Where a ref sits inside a task's arguments: the path into the args array, and the
 * position of its key in the task's `dependencies`.
 */
export type RefSite = readonly [path: readonly (string | number)[], dependency: number];

/**
 * One call: a function and its arguments, where arguments may nest refs at any depth in
 * arrays and plain objects. Refs are located once, here, so executors never walk
 * arguments again.
 */
export class Task<R = unknown> {
  declare readonly __result?: R;
  readonly fn: Function;
  readonly ref: FnRef;
  readonly args: readonly unknown[];
  /** Distinct keys this task depends on, in order of first appearance. */
  readonly dependencies: readonly string[];
  /** Every ref in the arguments; null when there are none. */
  readonly sites: readonly RefSite[] | null;
  /** True when all refs are top-level arguments (the common, fast case). */
  readonly flat: boolean;

  constructor(fn: Function, args: readonly unknown[]) {
    this.fn = fn;
    this.ref = fnRef(fn);
    this.args = args;
    const found: FoundRef[] = [];
    for (let i = 0; i < args.length; i++) findRefs(args[i], [i], found);
    if (found.length === 0) {
      this.sites = null;
      this.dependencies = NO_DEPENDENCIES;
      this.flat = true;
      return;
    }
    const dependencies: string[] = [];
    const sites: RefSite[] = [];
    let flat = true;
    for (const [path, key] of found) {
      let pos = dependencies.indexOf(key);
      if (pos < 0) pos = dependencies.push(key) - 1;
      sites.push([path, pos]);
      if (path.length !== 1) flat = false;
    }
    this.sites = sites;
    this.dependencies = dependencies;
    this.flat = flat;
  }
}

/** A task: `task(fn, ...args)`. Arguments may be literals, `ref(key)`, or nest refs. */
export function task<A extends unknown[], R>(fn: (...args: A) => R, ...args: { [I in keyof A]: A[I] | Ref | unknown }): Task<Awaited<R>> {
  return new Task<Awaited<R>>(fn, args);
}

const NO_DEPENDENCIES: readonly string[] = [];

type FoundRef = readonly [path: readonly (string | number)[], key: string];

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function findRefs(value: unknown, path: (string | number)[], out: FoundRef[]): void {
  if (typeof value !== 'object' || value === null) return;
  if (value instanceof Ref) {
    out.push([path, value.key]);
  } else if (Array.isArray(value)) {
    // Arrays of numbers are common and long; look at them only if they can hold refs.
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (typeof item === 'object' && item !== null) findRefs(item, [...path, i], out);
    }
  } else if (isPlainObject(value)) {
    for (const k of Object.keys(value)) {
      const item = value[k];
      if (typeof item === 'object' && item !== null) findRefs(item, [...path, k], out);
    }
  }
}

/** True if a literal (array or plain object) nests refs and so must be computed. */
export function containsRefs(value: unknown): boolean {
  const out: FoundRef[] = [];
  findRefs(value, [], out);
  return out.length > 0;
}

/**
 * The arguments of a task with refs replaced by values from `lookup`, which takes a
 * position in `dependencies`. Containers on the
 * path of a nested ref are copied, so the graph stays reusable.
 */
export interface CallSpec {
  readonly args: readonly unknown[];
  readonly sites: readonly RefSite[] | null;
  readonly flat: boolean;
}

export function resolveArgs(t: CallSpec, lookup: (dependency: number) => unknown): unknown[] {
  const sites = t.sites;
  const args = t.args.slice();
  if (sites === null) return args;
  if (t.flat) {
    for (const [path, key] of sites) args[path[0] as number] = lookup(key);
    return args;
  }
  const copied = new Set<object>([args]);
  for (const [path, key] of sites) {
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
