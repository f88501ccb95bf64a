/**
 * Seeded random DAGs for the chaos suite, each with its answer computed here, sequentially.
 *
 * A graph mixes small values, large typed arrays (so kills land mid-transfer and lost
 * results are expensive to make again), refs nested in arrays and objects, fan-in (up to
 * eight dependencies) and fan-out (hubs many tasks depend on). Every task function is
 * self-contained (it travels as source) and deterministic, so the reference evaluation —
 * the same functions called in this process, in order — is the only right answer.
 *
 * The graph values are built through `api` (the package's `task` and `ref`), so the same
 * generator feeds the tests (the sources) and the benchmark (the built package).
 */
import { mulberry32 } from '../helpers/random.js';

export interface GraphApi {
  readonly task: (fn: (...args: never[]) => unknown, ...args: unknown[]) => unknown;
  readonly ref: (key: string) => unknown;
}

export interface ChaosDag {
  readonly seed: number;
  readonly graph: Record<string, unknown>;
  /** Keys to ask for, and the answer for each, from the reference evaluation. */
  readonly keys: readonly string[];
  readonly expected: readonly unknown[];
  /** Tasks in the graph (literals not counted). */
  readonly tasks: number;
  /** Bytes of typed-array data the tasks make, all told. */
  readonly arrayBytes: number;
}

export interface DagShape {
  /** Tasks to aim for. Default 40. */
  readonly tasks?: number;
  /** Doubles in the largest array a task makes. Default 262,144 (2 MiB). */
  readonly maxArrayLength?: number;
  /** Milliseconds the slowest task sleeps. Default 60. */
  readonly maxSleepMs?: number;
}

// ---- the task functions (each self-contained: it travels as source) ----

/** A hash of any argument: numbers, strings, arrays, plain objects, typed arrays (sampled). */
const mix = (id: number, sleepMs: number, ...args: unknown[]): number => {
  if (sleepMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, sleepMs);
  let h = 17 + id;
  const feed = (x: number): void => {
    h = (Math.imul(h, 31) + (x | 0)) >>> 0;
  };
  const walk = (v: unknown): void => {
    if (typeof v === 'number') feed(Math.round(v * 1000));
    else if (typeof v === 'string') for (let i = 0; i < v.length; i++) feed(v.charCodeAt(i));
    else if (typeof v === 'boolean') feed(v ? 7 : 3);
    else if (v === null || v === undefined) feed(11);
    else if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
      const a = v as unknown as ArrayLike<number>;
      feed(a.length);
      const step = Math.max(1, Math.floor(a.length / 512));
      for (let i = 0; i < a.length; i += step) feed(Math.round(a[i]! * 1000));
    } else if (Array.isArray(v)) {
      feed(v.length);
      for (const x of v) walk(x);
    } else if (typeof v === 'object') {
      for (const k of Object.keys(v).sort()) {
        walk(k);
        walk((v as Record<string, unknown>)[k]);
      }
    }
  };
  walk(args);
  return h % 1_000_003;
};

/** A large Float64Array made from a seed and whatever came in. */
const makeArray = (id: number, sleepMs: number, length: number, ...args: unknown[]): Float64Array => {
  if (sleepMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, sleepMs);
  let s = id + 1;
  for (const a of args) s += typeof a === 'number' ? a : ArrayBuffer.isView(a) ? (a as unknown as ArrayLike<number>).length : 1;
  const out = new Float64Array(length);
  for (let i = 0; i < length; i++) out[i] = ((i * 2654435761 + s) % 1000) / 8;
  return out;
};

/** A new array from the first typed array it is given, shifted by the others' sums. */
const scaleArray = (id: number, sleepMs: number, ...args: unknown[]): Float64Array | number => {
  if (sleepMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, sleepMs);
  const arrays: ArrayLike<number>[] = [];
  const find = (v: unknown): void => {
    if (ArrayBuffer.isView(v) && !(v instanceof DataView)) arrays.push(v as unknown as ArrayLike<number>);
    else if (Array.isArray(v)) v.forEach(find);
    else if (typeof v === 'object' && v !== null) Object.values(v).forEach(find);
  };
  find(args);
  const first = arrays[0];
  if (first === undefined) return id;
  let shift = id;
  for (const a of arrays.slice(1)) shift += a.length > 0 ? a[a.length - 1]! : 0;
  const out = new Float64Array(first.length);
  for (let i = 0; i < first.length; i++) out[i] = first[i]! * 0.5 + shift;
  return out;
};

/** A nested value: a hash, an Int32Array, a string, and a copy of a small argument. */
const nest = (id: number, sleepMs: number, ...args: unknown[]): { h: number; parts: unknown[]; small: Int32Array; tag: { id: number } } => {
  if (sleepMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, sleepMs);
  let h = 43 + id;
  for (const a of args) h = (Math.imul(h, 41) + (typeof a === 'number' ? Math.round(a) : Array.isArray(a) ? a.length : ArrayBuffer.isView(a) ? a.byteLength : 5)) >>> 0;
  const small = new Int32Array(8);
  for (let i = 0; i < 8; i++) small[i] = (h >>> i) & 0xff;
  return { h: h % 999_983, parts: [h % 7, String(h % 1000), [h % 3, null]], small, tag: { id } };
};

type TaskFn = (id: number, sleepMs: number, ...args: never[]) => unknown;

// ---- the generator ----

/** A marker for a dependency while the graph is drawn; becomes `api.ref` or the value. */
class Dep {
  constructor(readonly key: string) {}
}

interface Node {
  readonly key: string;
  readonly fn: TaskFn;
  /** Arguments after (id, sleepMs), with Dep markers where the graph holds refs. */
  readonly args: readonly unknown[];
  readonly id: number;
  readonly sleepMs: number;
}

/** Replaces the Dep markers in `value`: by refs (the graph) or by values (the reference). */
function replace(value: unknown, by: (dep: Dep) => unknown): unknown {
  if (value instanceof Dep) return by(value);
  if (Array.isArray(value)) return value.map((v: unknown) => replace(v, by));
  if (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, replace(v, by)]));
  }
  return value;
}

/**
 * Draws graph `seed`: keys carry `prefix` (so runs on one scheduler never share keys), and
 * the answer comes from calling each function here, dependencies first.
 */
export function chaosDag(api: GraphApi, seed: number, prefix: string, shape: DagShape = {}): ChaosDag {
  const rnd = mulberry32(seed);
  const int = (n: number): number => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const target = shape.tasks ?? 40;
  const maxLength = shape.maxArrayLength ?? 262_144;
  const maxSleep = shape.maxSleepMs ?? 60;

  const nodes: Node[] = [];
  const arrays: string[] = []; // keys whose value is a typed array
  const hubs: string[] = []; // keys many later tasks depend on
  let arrayBytes = 0;
  const key = (kind: string): string => `${prefix}-${kind}-${nodes.length}`;
  const literal = (): unknown => {
    switch (int(5)) {
      case 0: return int(1000) - 500;
      case 1: return `s${int(100)}`;
      case 2: return [int(10), 'z', null];
      case 3: return { a: int(10), b: [true, { c: 'd' }] };
      default: return 1.25;
    }
  };
  // A dependency as the graph holds it: bare, or nested in arrays and objects.
  const wrap = (dep: string): unknown => {
    switch (int(5)) {
      case 0:
      case 1: return new Dep(dep);
      case 2: return [literal(), new Dep(dep)];
      case 3: return { a: new Dep(dep), b: [literal()] };
      default: return { deep: { deeper: [1, [new Dep(dep)]] } };
    }
  };
  const sleep = (): number => (int(3) === 0 ? 0 : int(maxSleep + 1));
  const add = (kind: string, fn: TaskFn, args: unknown[]): string => {
    const k = key(kind);
    nodes.push({ key: k, fn, args, id: nodes.length, sleepMs: sleep() });
    return k;
  };
  const depsFrom = (count: number): string[] => {
    const keys = nodes.map((n) => n.key);
    const out = new Set<string>();
    for (let i = 0; i < count && keys.length > 0; i++) {
      // Fan-out: a third of the dependencies go to a hub.
      out.add(hubs.length > 0 && int(3) === 0 ? pick(hubs) : pick(keys));
    }
    return [...out];
  };

  // Roots: some arrays, some small values.
  const roots = 2 + int(4);
  for (let r = 0; r < roots; r++) {
    if (int(2) === 0) {
      const length = 1024 + int(maxLength);
      arrayBytes += length * 8;
      arrays.push(add('make', makeArray, [length, literal()]));
    } else {
      add('root', mix, [literal(), literal()]);
    }
  }
  hubs.push(pick(nodes).key);

  while (nodes.length < target) {
    const roll = rnd();
    if (roll < 0.2 && arrays.length > 0) {
      // Pass a large array on: a transfer whenever the next task runs elsewhere.
      const deps = [pick(arrays), ...depsFrom(int(3))];
      const k = add('scale', scaleArray, [new Dep(deps[0]!), ...deps.slice(1).map(wrap)]);
      arrays.push(k);
    } else if (roll < 0.3) {
      const length = 1024 + int(maxLength);
      arrayBytes += length * 8;
      arrays.push(add('make', makeArray, [length, ...depsFrom(1 + int(2)).map(wrap)]));
    } else if (roll < 0.4) {
      // Fan-in: many dependencies into one.
      add('gather', mix, depsFrom(4 + int(5)).map(wrap));
    } else if (roll < 0.55) {
      add('nest', nest, [...depsFrom(1 + int(3)).map(wrap), literal()]);
    } else {
      const deps = depsFrom(1 + int(3));
      const args: unknown[] = deps.map(wrap);
      if (int(3) === 0) args.push(literal());
      add('mix', mix, args);
    }
    if (int(8) === 0) hubs.push(nodes[nodes.length - 1]!.key);
  }

  // The reference: nodes were drawn dependencies first, so one pass in order suffices.
  const values = new Map<string, unknown>();
  for (const n of nodes) {
    const args = replace(n.args, (d) => {
      if (!values.has(d.key)) throw new Error(`chaos dag ${seed}: ${d.key} used before it was computed`);
      return values.get(d.key);
    }) as never[];
    // No sleeping here: the value does not depend on it, and this process's event loop is
    // the scheduler's too (a LocalCluster's).
    values.set(n.key, n.fn(n.id, 0, ...args));
  }
  for (const n of nodes) if (n.fn === (scaleArray as TaskFn)) arrayBytes += (values.get(n.key) as { byteLength?: number }).byteLength ?? 0;

  // Ask for the sinks (nothing depends on them) and a few keys inside.
  const used = new Set<string>();
  const collect = (v: unknown): void => {
    replace(v, (d) => used.add(d.key));
  };
  for (const n of nodes) collect(n.args);
  const keys = nodes.filter((n) => !used.has(n.key)).map((n) => n.key);
  for (let i = int(3); i > 0; i--) keys.push(pick(nodes).key);
  const unique = [...new Set(keys)];

  const graph: Record<string, unknown> = {};
  for (const n of nodes) graph[n.key] = api.task(n.fn, n.id, n.sleepMs, ...(replace(n.args, (d) => api.ref(d.key)) as unknown[]));
  return { seed, graph, keys: unique, expected: unique.map((k) => values.get(k)), tasks: nodes.length, arrayBytes };
}
