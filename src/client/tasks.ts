/**
 * How the client's calls become graph tasks: `submit` and `map` calls (with their
 * options, checked at the door) and compiled plans, each task keyed and encoded as it
 * travels to the scheduler.
 */
import { InvalidArgumentError } from '../errors.js';
import type { FnRef } from '../functions/fn-ref.js';
import { fnRef } from '../functions/portable.js';
import { scoped } from '../functions/scope.js';
import type { Plan } from '../graph/plan.js';
import { isPlainObject, Ref, Task } from '../graph/task.js';
import { tokenize } from '../graph/tokenize.js';
import { checkOptions, optionNames } from '../options.js';
import { encodeSpec } from '../protocol/encoded-spec.js';
import { writeCallBase64 } from '../protocol/spec-writer.js';
import { wireNode, wireStep } from '../protocol/encode-task.js';
import type { ClientToScheduler, WireGraphTask } from '../protocol/messages.js';
import type { WireSpec } from '../protocol/task-spec.js';
import { Future } from './future.js';

export interface SubmitOptions {
  /** Key of the task. Default: the function's name and a token of the call (see `pure`). */
  readonly key?: string;
  /**
   * The same function and arguments give the same key, so a repeated call shares the first
   * one's result, as Dask's `pure=True`. Default true; false gives every call its own key
   * (for functions with side effects or randomness).
   */
  readonly pure?: boolean;
  /** Higher runs first. Default 0. */
  readonly priority?: number;
  /** Worker ids or names the task may run on. */
  readonly workers?: readonly string[];
  /** Times a failing task is tried again before it errs. Default 0. */
  readonly retries?: number;
  /** Values the function uses from its surroundings, by name; see `scoped`. */
  readonly scope?: Readonly<Record<string, unknown>>;
}

/** `map`'s options: those of `submit` but a key (each call gets its own). */
export type MapOptions = Omit<SubmitOptions, 'key'>;

export const SUBMIT_OPTIONS = optionNames<SubmitOptions>()(['key', 'pure', 'priority', 'workers', 'retries', 'scope']);
export const MAP_OPTIONS = optionNames<MapOptions>()(['pure', 'priority', 'workers', 'retries', 'scope']);

/** The tasks of a batch of calls of one function, ready for an update-graph message. */
export interface CallTasks {
  readonly tasks: WireGraphTask[];
  readonly keys: string[];
  readonly fns: FnRef[];
  readonly userPriority: number | undefined;
}

/**
 * One task per argument list: `fn(...args)`. Futures in the arguments (at any depth of
 * arrays and plain objects) become the task's dependencies.
 */
export function callTasks(
  fn: Function,
  argLists: readonly (readonly unknown[])[],
  options: SubmitOptions,
  where: string,
  uniqueSuffix: () => string,
): CallTasks {
  if (typeof fn !== 'function') throw new InvalidArgumentError(`${where} needs a function, got ${typeof fn}`);
  const { key, pure = true, priority, workers, retries, scope } = options;
  if (key !== undefined && (typeof key !== 'string' || key === '')) throw new InvalidArgumentError(`${where}: options.key must be a non-empty string`);
  if (typeof pure !== 'boolean') throw new InvalidArgumentError(`${where}: options.pure must be a boolean`);
  if (priority !== undefined && (typeof priority !== 'number' || Number.isNaN(priority))) throw new InvalidArgumentError(`${where}: options.priority must be a number`);
  if (workers !== undefined && (!Array.isArray(workers) || workers.some((w) => typeof w !== 'string'))) {
    throw new InvalidArgumentError(`${where}: options.workers must be an array of worker ids or names`);
  }
  if (retries !== undefined && (!Number.isInteger(retries) || retries < 0)) throw new InvalidArgumentError(`${where}: options.retries must be a non-negative integer`);
  const run = scope === undefined ? fn : scoped(fn, scope);
  const ref = fnRef(run);
  const prefix = ref.name === 'anonymous' ? 'task' : ref.name;
  const tasks: WireGraphTask[] = [];
  const keys: string[] = [];
  for (const args of argLists) {
    // Numbers, strings, booleans and nulls have no refs to find: the spec is written directly.
    const plain = isPlain(args);
    const callArgs = plain ? args : args.map(futureToRef);
    const taskKey = key ?? `${prefix}-${pure ? tokenize([ref.id, ...callArgs], keyOfRef) : uniqueSuffix()}`;
    keys.push(taskKey);
    // Written in its task: the key and the function (the message's first) travel beside it.
    const direct = plain ? writeCallBase64(args) : null;
    if (direct !== null) {
      tasks.push(callTask(taskKey, NO_DEPENDENCIES, direct, 0, workers, retries));
      continue;
    }
    const t = new Task(run, callArgs);
    const spec = { node: { steps: [wireStep(t)], stepKeys: [taskKey], out: true } };
    const encoded = encodeSpec(spec, taskKey, t.dependencies);
    // Encoded, its one function is the message's first; else the scheduler reads the spec.
    tasks.push(encoded === null ? callTask(taskKey, t.dependencies, spec, null, workers, retries) : callTask(taskKey, t.dependencies, encoded, 0, workers, retries));
  }
  return { tasks, keys, fns: [ref], userPriority: priority };
}

const NO_DEPENDENCIES: readonly string[] = Object.freeze([]);

/** A call's task as its tuple (WireGraphTask), which ends at its last field given. */
function callTask(
  key: string,
  dependencies: readonly string[],
  spec: WireSpec,
  fns: number | null,
  restrictions: readonly string[] | undefined,
  retries: number | undefined,
): WireGraphTask {
  if (retries !== undefined) return [key, dependencies, spec, fns, null, restrictions ?? null, retries];
  if (restrictions !== undefined) return [key, dependencies, spec, fns, null, restrictions];
  return [key, dependencies, spec, fns];
}

/** Whether every argument is a number, string, boolean or null. */
function isPlain(args: readonly unknown[]): boolean {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const type = typeof arg;
    if (type !== 'number' && type !== 'string' && type !== 'boolean' && arg !== null) return false;
  }
  return true;
}

/** A compiled plan's nodes as graph tasks, and the functions they name. */
export function planTasks(plan: Plan): { tasks: WireGraphTask[]; fns: FnRef[] } {
  const fns = new Map<string, FnRef>();
  // Each function's index in the message's list, in the order first named.
  const order = new Map<string, number>();
  const tasks = new Array<WireGraphTask>(plan.size);
  for (let j = 0; j < plan.size; j++) {
    const key = plan.keys[j]!;
    // By position in the plan (the scheduler's index of the graph), not by key.
    const dependencies: number[] = [];
    for (let p = plan.depStart[j]!; p < plan.depStart[j + 1]!; p++) dependencies.push(plan.depIdx[p]!);
    const spec = { node: wireNode(plan, j, true, fns) };
    const steps = spec.node.steps;
    let named: number | number[] = -1;
    for (let i = 0; i < steps.length; i++) {
      const id = steps[i]!.fn;
      let at = order.get(id);
      if (at === undefined) order.set(id, (at = order.size));
      if (steps.length === 1) named = at;
      else if (i === 0) named = [at];
      else (named as number[]).push(at);
    }
    // Encoded in its task, which names the steps' functions in order (`named`) beside it,
    // and the dependencies of a single step when they are the task's.
    const encoded = encodeSpec(spec, key, steps.length === 1 && namesPositions(plan, steps[0]!.deps, j) ? steps[0]!.deps : undefined);
    tasks[j] = encoded === null ? [key, dependencies, spec, null, j] : [key, dependencies, encoded, named, j];
  }
  return { tasks, fns: [...order.keys()].map((id) => fns.get(id)!) };
}

/** Whether `deps` are the keys of plan node `j`'s dependencies, in order. */
function namesPositions(plan: Plan, deps: readonly string[], j: number): boolean {
  const start = plan.depStart[j]!;
  if (plan.depStart[j + 1]! - start !== deps.length) return false;
  for (let i = 0; i < deps.length; i++) if (plan.keys[plan.depIdx[start + i]!] !== deps[i]) return false;
  return true;
}

/**
 * `map(fn, ...iterables, options?)`'s arguments: iterables zipped into argument lists, and
 * the options — a last argument that is a plain object, which no iterable is. Lists of
 * different lengths are an error, not a silent truncation.
 */
export function mapArguments(rest: readonly unknown[], where: string): { argLists: unknown[][]; options: MapOptions } {
  let options: MapOptions = {};
  let iterables = rest;
  const last = rest[rest.length - 1];
  if (last !== undefined && isPlainObject(last) && !(Symbol.iterator in last)) {
    options = last;
    iterables = rest.slice(0, -1);
  }
  checkOptions(options, MAP_OPTIONS, where);
  if (iterables.length === 0) throw new InvalidArgumentError(`${where} needs at least one iterable of arguments: map(fn, items) or map(fn, xs, ys)`);
  const lists = iterables.map((it, i) => {
    if (typeof it === 'string' || it === null || typeof it !== 'object' || !(Symbol.iterator in it)) {
      throw new InvalidArgumentError(`${where}: argument ${i + 2} must be an iterable of arguments (an array, a Set, a generator…), got ${describe(it)}`);
    }
    return Array.from(it as Iterable<unknown>);
  });
  const length = lists[0]!.length;
  const other = lists.findIndex((l) => l.length !== length);
  if (other >= 0) throw new InvalidArgumentError(`${where}: the iterables have different lengths (${lists.map((l) => l.length).join(' and ')}); give lists of one length`);
  const argLists = Array.from({ length }, (_, i) => lists.map((l) => l[i]));
  return { argLists, options };
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return 'a string (wrap it in an array to map over one value)';
  return typeof value;
}

function keyOfRef(value: unknown): string | undefined {
  return value instanceof Ref ? value.key : undefined;
}

/** Futures in arguments (at any depth of arrays and plain objects) become refs to their keys. */
export function futureToRef(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (value instanceof Future) return new Ref(value.key);
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    value.forEach((item: unknown, i) => {
      const sub = futureToRef(item);
      if (sub !== item) (copy ??= value.slice())[i] = sub;
    });
    return copy ?? value;
  }
  if (isPlainObject(value)) {
    let copy: Record<string, unknown> | undefined;
    for (const k of Object.keys(value)) {
      const sub = futureToRef(value[k]);
      if (sub !== value[k]) (copy ??= { ...value })[k] = sub;
    }
    return copy ?? value;
  }
  return value;
}

/**
 * Tasks per update-graph message: a larger graph travels in parts (`more: true` on all
 * but the last), so neither side ever holds it as one huge message — a million-task graph
 * would otherwise be a 100 MB buffer and a million decoded objects at once.
 */
export const GRAPH_PART_TASKS = 4096;

type UpdateGraph = Extract<ClientToScheduler, { op: 'update-graph' }>;

/**
 * Whether an update-graph is plain data, to be sent without the codec's walk for binary
 * values, errors and maps (Connection.sendPlain): every spec encoded, and no function
 * carrying values of its scope.
 */
export function isPlainGraph(message: UpdateGraph): boolean {
  for (const f of message.fns) if (f.kind === 'source' && f.scope !== undefined) return false;
  const tasks = message.tasks;
  for (let i = 0; i < tasks.length; i++) if (typeof (tasks[i] as WireGraphTask)[2] !== 'string') return false;
  return true;
}

/** The message as it travels: itself, or its parts, each with the graph's functions. */
export function graphParts(message: UpdateGraph, size = GRAPH_PART_TASKS): UpdateGraph[] {
  const { tasks } = message;
  if (tasks.length <= size) return [message];
  const parts: UpdateGraph[] = [];
  for (let from = 0; from < tasks.length; from += size) {
    const last = from + size >= tasks.length;
    parts.push(last ? { ...message, tasks: tasks.slice(from) } : { ...message, tasks: tasks.slice(from, from + size), wanted: [], more: true });
  }
  return parts;
}
