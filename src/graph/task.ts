import { InvalidArgumentError } from '../errors.js';
import type { FnRef } from '../functions/fn-ref.js';
import { fnRef } from '../functions/portable.js';
import { portabilityProblem } from '../serialize/check-value.js';
import type { CallSpec, RefSite } from './call.js';

/** A reference to the result of another key in the graph. */
export class Ref {
  readonly key: string;
  constructor(key: string) {
    this.key = key;
  }
}

export function ref(key: string): Ref {
  if (typeof key !== 'string' || key === '') throw new InvalidArgumentError(`ref() needs a non-empty string key, got ${JSON.stringify(key)}`);
  return new Ref(key);
}


/**
 * One call: a function and its arguments, where arguments may nest refs at any depth in
 * arrays and plain objects. Refs are located once, here, so executors never walk
 * arguments again. Graphs hold millions of these, so the layout is compact: top-level refs
 * are one flat array of (argument index, dependency position) pairs.
 */
export class Task<R = unknown> implements CallSpec {
  declare readonly __result?: R;
  readonly fn: Function;
  readonly ref: FnRef;
  readonly args: readonly unknown[];
  /** Distinct keys this task depends on, in order of first appearance. */
  readonly dependencies: readonly string[];
  readonly argRefs: readonly number[] | null;
  readonly deepRefs: readonly RefSite[] | null;

  constructor(fn: Function, args: readonly unknown[]) {
    this.fn = fn;
    this.ref = fnRef(fn);
    this.args = args;
    this.argRefs = null;
    this.deepRefs = null;
    this.dependencies = NO_DEPENDENCIES;
    let dependencies: string[] | undefined;
    let argRefs: number[] | undefined;
    let deepRefs: RefSite[] | undefined;
    const position = (key: string): number => {
      dependencies ??= [];
      const pos = dependencies.indexOf(key);
      return pos >= 0 ? pos : dependencies.push(key) - 1;
    };
    for (let i = 0; i < args.length; i++) {
      const arg = args[i];
      if (typeof arg !== 'object' || arg === null) {
        if (typeof arg === 'function' || typeof arg === 'symbol') refuseArgument(fn, i, { path: '', reason: `is a ${typeof arg}` });
        continue;
      }
      if (arg instanceof Ref) {
        (argRefs ??= []).push(i, position(arg.key));
        continue;
      }
      // Arguments travel by structured clone: what would arrive changed is refused now.
      const problem = portabilityProblem(arg, isRef);
      if (problem !== null) refuseArgument(fn, i, problem);
      const found: FoundRef[] = [];
      findRefs(arg, [i], found);
      for (const [path, key] of found) (deepRefs ??= []).push([path, position(key)]);
    }
    if (dependencies !== undefined) this.dependencies = dependencies;
    if (argRefs !== undefined) this.argRefs = argRefs;
    if (deepRefs !== undefined) this.deepRefs = deepRefs;
  }
}

function isRef(value: object): boolean {
  return value instanceof Ref;
}

function refuseArgument(fn: Function, index: number, problem: { path: string; reason: string }): never {
  const name = fn.name === '' ? 'the function' : fn.name;
  const what = problem.path === '' ? `argument ${index}` : `argument ${index} at ${problem.path}`;
  const hint = problem.reason.startsWith('is a Promise') ? 'await it first, or pass a lazy value' : 'pass plain data, or build the object inside the task';
  throw new InvalidArgumentError(`${what} of ${name} cannot travel to another thread or machine: it ${problem.reason}; ${hint}`);
}

/** A value, or a ref standing for one, at any depth of arrays and plain objects. */
export type Refable<T> =
  | T
  | Ref
  | (T extends readonly unknown[] ? { [I in keyof T]: Refable<T[I]> } : T extends Record<string, unknown> ? { [K in keyof T]: Refable<T[K]> } : never);

/** A task: `task(fn, ...args)`. Arguments may be literals, `ref(key)`, or nest refs. */
export function task<A extends unknown[], R>(fn: (...args: A) => R, ...args: { [I in keyof A]: Refable<A[I]> }): Task<Awaited<R>> {
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
