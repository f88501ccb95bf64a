import { randomBytes } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';
import { checkOptions, optionNames } from '../options.js';
import { builtins } from '../functions/builtins.js';
import { fnRef } from '../functions/portable.js';
import { scoped } from '../functions/scope.js';
import { type ComputeOptions, getDefaultRunner } from './runner.js';
import { Ref, Task, isPlainObject } from './task.js';
import { tokenize } from './tokenize.js';

/** A value or a lazy value of the same type, at any depth of arrays and plain objects. */
export type Lazy<T> =
  | T
  | Delayed<T>
  | (T extends readonly unknown[] ? { [I in keyof T]: Lazy<T[I]> } : T extends Record<string, unknown> ? { [K in keyof T]: Lazy<T[K]> } : never);

export interface DelayedOptions {
  /** Prefix of the keys of this function's calls (default: the function's name). */
  readonly name?: string;
  /** Same function and arguments give the same key, so the work is shared (default false). */
  readonly pure?: boolean;
  /**
   * Values the function uses from its surroundings, by name: checked and copied now, they
   * travel with it (`delayed((x) => x * scale, { scope: { scale } })`). See `scoped`.
   */
  readonly scope?: Readonly<Record<string, unknown>>;
}


/**
 * A lazy value: the result of a call that has not run yet. Passing it to another delayed
 * call builds the graph; `.compute()` runs it.
 */
export class Delayed<T = unknown> {
  declare readonly __type?: T;
  readonly key: string;
  /** The task, or the literal value behind a `delayed(value)`. */
  readonly task: Task | undefined;
  readonly value: unknown;
  readonly dependencies: readonly Delayed[];

  constructor(key: string, task: Task | undefined, value: unknown, dependencies: readonly Delayed[]) {
    this.key = key;
    this.task = task;
    this.value = value;
    this.dependencies = dependencies;
  }

  /** The graph that computes this value: every key it needs, and nothing else. */
  graph(): Map<string, unknown> {
    return toGraph(this);
  }

  compute(options: ComputeOptions = {}): Promise<T> {
    return getDefaultRunner().run(this.graph(), [this.key], options).then((values) => values[0] as T);
  }
}

/** Merges the graphs of several lazy values into one. */
export function toGraph(...values: readonly Delayed[]): Map<string, unknown> {
  const graph = new Map<string, unknown>();
  const stack = [...values];
  while (stack.length > 0) {
    const d = stack.pop()!;
    if (graph.has(d.key)) continue;
    graph.set(d.key, d.task ?? d.value);
    for (const dep of d.dependencies) if (!graph.has(dep.key)) stack.push(dep);
  }
  return graph;
}

const DELAYED_OPTIONS = optionNames<DelayedOptions>()(['name', 'pure', 'scope']);

// Unique keys: a per-process prefix (so two clients never collide on a cluster) + a counter.
const processTag = randomBytes(4).toString('hex');
let counter = 0;

/**
 * Makes a function lazy: calling the result builds a task instead of running it. Arguments
 * may be lazy values, at any depth inside arrays and plain objects.
 *
 * ```ts
 * const inc = delayed((x: number) => x + 1);
 * const two = inc(1);              // Delayed<number>, nothing ran
 * await two.compute();             // 2
 * ```
 *
 * With a value instead of a function, `delayed(value)` wraps it as a lazy literal.
 */
export function delayed<A extends unknown[], R>(
  fn: (...args: A) => R,
  options?: DelayedOptions,
): (...args: { [I in keyof A]: Lazy<A[I]> }) => Delayed<Awaited<R>>;
export function delayed<T>(value: T, options?: DelayedOptions): Delayed<T>;
export function delayed(fnOrValue: unknown, options: DelayedOptions = {}): unknown {
  checkOptions(options, DELAYED_OPTIONS, 'delayed()');
  const { name, pure = false, scope } = options;
  if (name !== undefined && (typeof name !== 'string' || name === '')) {
    throw new InvalidArgumentError('delayed(): options.name must be a non-empty string');
  }
  if (typeof fnOrValue !== 'function') {
    if (scope !== undefined) throw new InvalidArgumentError('delayed(): options.scope applies to functions, and this is a value');
    const deps: Delayed[] = [];
    const value = substitute(fnOrValue, deps);
    const prefix = name ?? 'literal';
    const key = `${prefix}-${tokenize([value], keyOfDelayed)}`;
    if (deps.length === 0) return new Delayed(key, undefined, fnOrValue, []);
    return new Delayed(key, new Task(builtins.identity, [value]), undefined, dedupe(deps));
  }
  const fn = scope === undefined ? fnOrValue : scoped(fnOrValue, scope);
  const prefix = name ?? (fn.name === '' ? 'task' : fn.name);
  // Check that the function can travel now, at graph-building time.
  new Task(fn, []);
  return (...args: unknown[]): Delayed => {
    const deps: Delayed[] = [];
    const substituted = args.map((a) => substitute(a, deps));
    const key = pure ? `${prefix}-${tokenize([fnRef(fn).id, ...args], keyOfDelayed)}` : `${prefix}-${processTag}${(counter++).toString(36)}`;
    return new Delayed(key, new Task(fn, substituted), undefined, dedupe(deps));
  };
}

/** Computes several lazy values together, sharing their common work. */
export function compute<T extends readonly unknown[]>(...values: T): Promise<{ -readonly [I in keyof T]: Computed<T[I]> }>;
export function compute(...values: unknown[]): Promise<unknown[]> {
  return computeWith(values, {});
}

/** `compute()` with options: `computeWith([a, b], { scheduler: 'sync' })`. */
export function computeWith<T extends readonly unknown[]>(values: T, options: ComputeOptions): Promise<{ -readonly [I in keyof T]: Computed<T[I]> }>;
export async function computeWith(values: readonly unknown[], options: ComputeOptions): Promise<unknown[]> {
  const lazies = values.filter((v): v is Delayed => v instanceof Delayed);
  if (lazies.length === 0) return [...values];
  const keys = [...new Set(lazies.map((d) => d.key))];
  const results = await getDefaultRunner().run(toGraph(...lazies), keys, options);
  const byKey = new Map(keys.map((k, i) => [k, results[i]]));
  return values.map((v) => (v instanceof Delayed ? byKey.get(v.key) : v));
}

export type Computed<T> = T extends Delayed<infer U> ? U : T;

function keyOfDelayed(value: unknown): string | undefined {
  return value instanceof Delayed ? value.key : value instanceof Ref ? value.key : undefined;
}

/** Replaces lazy values by refs to their keys, copying only containers that hold one. */
function substitute(value: unknown, deps: Delayed[]): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (value instanceof Delayed) {
    deps.push(value);
    return new Ref(value.key);
  }
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (typeof item !== 'object' || item === null) continue;
      const sub = substitute(item, deps);
      if (sub !== item) (copy ??= value.slice())[i] = sub;
    }
    return copy ?? value;
  }
  if (isPlainObject(value)) {
    let copy: Record<string, unknown> | undefined;
    for (const k of Object.keys(value)) {
      const item = value[k];
      const sub = substitute(item, deps);
      if (sub !== item) (copy ??= { ...value })[k] = sub;
    }
    return copy ?? value;
  }
  return value;
}

function dedupe(deps: Delayed[]): Delayed[] {
  return deps.length <= 1 ? deps : [...new Map(deps.map((d) => [d.key, d])).values()];
}
