/**
 * Property tests: random DAGs computed by every local scheduler, with and without fusion,
 * must agree with a plain recursive evaluation, and must run exactly the tasks the
 * requested keys need (each once), never the others.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Ref, compile, get, ref, task, type Graph } from '../../src/index.js';
import { mulberry32 as prng } from '../helpers/random.js';


// Task functions travel as source, so each is self-contained. The first two arguments are
// a shared counter (a SharedArrayBuffer, so threads write to the same memory) and the
// node's slot in it: every run of a task is recorded, under sync and threads alike.
const mix = (counter: Int32Array, id: number, ...args: unknown[]): number => {
  Atomics.add(counter, id, 1);
  const s = JSON.stringify(args);
  let h = 17 + id;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) % 1000003;
  return h;
};
const mixAsync = async (counter: Int32Array, id: number, ...args: unknown[]): Promise<number> => {
  Atomics.add(counter, id, 1);
  await new Promise((resolve) => setTimeout(resolve, 0));
  const s = JSON.stringify(args);
  let h = 29 + id;
  for (let i = 0; i < s.length; i++) h = (h * 37 + s.charCodeAt(i)) % 1000033;
  return h;
};
const mixShape = (counter: Int32Array, id: number, ...args: unknown[]): { h: number; parts: unknown[]; nested: { ok: boolean } } => {
  Atomics.add(counter, id, 1);
  const s = JSON.stringify(args);
  let h = 43 + id;
  for (let i = 0; i < s.length; i++) h = (h * 41 + s.charCodeAt(i)) % 999983;
  return { h, parts: [h % 7, String(h), [h % 3]], nested: { ok: h % 2 === 0 } };
};
const poison = (counter: Int32Array, id: number, ...args: unknown[]): never => {
  Atomics.add(counter, id, 1);
  throw new Error(`task ${id} should have been culled (${args.length} args)`);
};

type Fn = (counter: Int32Array, id: number, ...args: unknown[]) => unknown;

interface Spec {
  /** For task nodes: the function, the counter slot, and the args after (counter, id). */
  readonly fn?: Fn;
  readonly id?: number;
  readonly args?: readonly unknown[];
  /** For literal nodes: the graph value (it may nest refs). */
  readonly literal?: unknown;
  readonly deps: readonly string[];
}

interface Case {
  readonly seed: number;
  readonly graph: Graph;
  readonly specs: ReadonlyMap<string, Spec>;
  readonly requested: readonly string[];
  readonly counter: Int32Array;
  readonly slots: number;
  readonly hasChain: boolean;
}

const MAX_SLOTS = 1024;

function build(seed: number): Case {
  const rnd = prng(seed);
  const int = (n: number): number => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const counter = new Int32Array(new SharedArrayBuffer(4 * MAX_SLOTS));
  const target = seed % 10 === 0 ? 1 : 1 + int(300);
  const specs = new Map<string, Spec>();
  const usable: string[] = []; // keys later nodes may depend on
  const chainInterior: string[] = [];
  let slots = 0;
  let hasChain = false;
  const newKey = (): string => (int(5) === 0 ? `node/${specs.size}:x-${seed}` : `n${specs.size}`);

  const randomLiteral = (): unknown => {
    switch (int(6)) {
      case 0: return int(1000) - 500;
      case 1: return `s${int(100)}`;
      case 2: return [int(10), int(10), 'z'];
      case 3: return { a: int(10), b: [true, null, { c: 'd' }] };
      case 4: return rnd() < 0.5 ? null : 1.5;
      default: return [];
    }
  };
  const wrapRef = (key: string): unknown => {
    switch (int(5)) {
      case 0:
      case 1: return ref(key);
      case 2: return [randomLiteral(), ref(key)];
      case 3: return { a: ref(key), b: [randomLiteral()] };
      default: return { deep: { deeper: [1, [ref(key)]] } };
    }
  };
  const randomArgs = (deps: readonly string[]): unknown[] => {
    const args: unknown[] = deps.map(wrapRef);
    for (let e = int(3); e > 0; e--) args.splice(int(args.length + 1), 0, randomLiteral());
    // Sometimes the same key twice: one dependency, two refs.
    if (deps.length > 0 && int(6) === 0) args.push(ref(pick(deps)));
    return args;
  };
  const pickFn = (): Fn => {
    const r = rnd();
    return r < 0.6 ? mix : r < 0.8 ? mixAsync : mixShape;
  };
  const addTask = (key: string, fn: Fn, deps: readonly string[], args?: unknown[]): void => {
    specs.set(key, { fn, id: slots++, args: args ?? randomArgs(deps), deps });
  };

  while (specs.size < target && slots < MAX_SLOTS - 80) {
    const roll = rnd();
    if (roll < 0.1) {
      // A literal graph value; sometimes a container nesting refs (an implicit identity task).
      const key = newKey();
      if (usable.length > 0 && int(2) === 0) {
        const a = pick(usable);
        const b = pick(usable);
        specs.set(key, { literal: [ref(a), { x: ref(b), y: [2, ref(a)] }], deps: [...new Set([a, b])] });
      } else {
        specs.set(key, { literal: randomLiteral(), deps: [] });
      }
      usable.push(key);
    } else if (roll < 0.16) {
      // A long linear chain: each link depends only on the previous one.
      hasChain = true;
      let prev = usable.length > 0 ? pick(usable) : undefined;
      const length = 5 + int(36);
      for (let l = 0; l < length; l++) {
        const key = newKey();
        const deps = prev === undefined ? [] : [prev];
        addTask(key, pickFn(), deps);
        if (l < length - 1) chainInterior.push(key);
        prev = key;
      }
      usable.push(prev!);
    } else {
      const fanIn = Math.min(int(4), usable.length);
      const deps = new Set<string>();
      while (deps.size < fanIn) deps.add(pick(usable));
      const key = newKey();
      addTask(key, pickFn(), [...deps]);
      usable.push(key);
    }
  }

  // Tasks that throw, placed where nothing requested depends on them: culling must drop them.
  const poisoned: string[] = [];
  for (let p = 1 + int(3); p > 0; p--) {
    const key = `poison-${specs.size}`;
    const deps = usable.length > 0 ? [pick(usable)] : [];
    addTask(key, poison, deps);
    poisoned.push(key);
    if (int(2) === 0) {
      // ...and something that depends on the poison, equally unrequested.
      const after = `after-poison-${specs.size}`;
      addTask(after, mix, [key]);
    }
  }

  let requested: string[];
  const r = rnd();
  if (r < 0.15) {
    requested = [...usable];
  } else {
    const count = 1 + int(Math.min(10, usable.length));
    // Later keys tend to need more of the graph; favour them.
    const late = usable.slice(Math.floor(usable.length / 2));
    requested = Array.from({ length: count }, () => pick(int(3) === 0 ? usable : late));
    if (chainInterior.length > 0 && int(3) === 0) requested.push(pick(chainInterior));
  }

  const entries: [string, unknown][] = [];
  for (const [key, spec] of specs) {
    entries.push([key, spec.fn === undefined ? spec.literal : task(spec.fn, counter, spec.id!, ...spec.args!)]);
  }
  // Shuffle the insertion order: a graph need not be topologically ordered.
  for (let i = entries.length - 1; i > 0; i--) {
    const j = int(i + 1);
    [entries[i], entries[j]] = [entries[j]!, entries[i]!];
  }
  const graph: Graph = seed % 2 === 0 ? new Map(entries) : Object.fromEntries(entries);
  return { seed, graph, specs, requested, counter, slots, hasChain };
}

/** Replaces refs by their values in arrays and plain objects. */
function resolve(value: unknown, values: ReadonlyMap<string, unknown>): unknown {
  if (value instanceof Ref) {
    assert.ok(values.has(value.key), `reference evaluation: ${value.key} not computed first`);
    return values.get(value.key);
  }
  if (Array.isArray(value)) return value.map((v: unknown) => resolve(v, values));
  if (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v, values)]));
  }
  return value;
}

/** The straightforward recursive evaluation the schedulers must agree with. */
async function reference(c: Case): Promise<unknown[]> {
  const values = new Map<string, unknown>();
  const scratch = new Int32Array(MAX_SLOTS);
  const evaluate = async (key: string): Promise<unknown> => {
    if (values.has(key)) return values.get(key);
    const spec = c.specs.get(key)!;
    for (const dep of spec.deps) await evaluate(dep);
    const value = spec.fn === undefined ? resolve(spec.literal, values) : await spec.fn(scratch, spec.id!, ...(resolve(spec.args, values) as unknown[]));
    values.set(key, value);
    return value;
  };
  const out: unknown[] = [];
  for (const key of c.requested) out.push(await evaluate(key));
  return out;
}

/** Every key the requested keys need, transitively. */
function needed(c: Case): Set<string> {
  const seen = new Set<string>();
  const stack = [...c.requested];
  while (stack.length > 0) {
    const key = stack.pop()!;
    if (seen.has(key)) continue;
    seen.add(key);
    stack.push(...c.specs.get(key)!.deps);
  }
  return seen;
}

const CONFIGS = [
  { scheduler: 'sync', fuse: true },
  { scheduler: 'sync', fuse: false },
  { scheduler: 'threads', fuse: true, workers: 2 },
  { scheduler: 'threads', fuse: false, workers: 2 },
] as const;

const SEEDS = Array.from({ length: 50 }, (_, i) => i + 1);
let fusedAway = 0;
let graphsWithChains = 0;

void describe('random DAGs agree with a reference evaluation', () => {
  for (const seed of SEEDS) {
    const c = build(seed);
    const need = needed(c);
    void test(`seed ${seed}: ${c.specs.size} nodes, ${c.requested.length} requested, ${need.size} needed`, async () => {
      const expected = await reference(c);
      for (const config of CONFIGS) {
        c.counter.fill(0);
        const actual = await get(c.graph, c.requested, config);
        assert.deepStrictEqual(actual, expected, `seed ${seed}, ${JSON.stringify(config)}`);
        for (const [key, spec] of c.specs) {
          if (spec.id === undefined) continue;
          const runs = Atomics.load(c.counter, spec.id);
          assert.equal(runs, need.has(key) ? 1 : 0, `seed ${seed}, ${JSON.stringify(config)}: task ${key} ran ${runs} times`);
        }
      }
      // A single key gives the bare value.
      assert.deepStrictEqual(await get(c.graph, c.requested[0]!, { scheduler: 'sync' }), expected[0]);

      const fused = compile(c.graph, c.requested).size;
      const unfused = compile(c.graph, c.requested, { fuse: false }).size;
      assert.equal(unfused, need.size, 'an unfused plan has one node per needed key');
      assert.ok(fused <= unfused);
      fusedAway += unfused - fused;
      if (c.hasChain) graphsWithChains++;
    });
  }

  void test('the random graphs exercised fusion', () => {
    assert.ok(graphsWithChains > 5, `only ${graphsWithChains} graphs had chains`);
    assert.ok(fusedAway > 50, `only ${fusedAway} nodes were fused away in all graphs`);
  });
});

void describe('fused chains', () => {
  const counter = new Int32Array(new SharedArrayBuffer(4 * 512));
  const chain = (length: number, asyncEvery: number): { graph: Map<string, unknown>; last: string } => {
    const graph = new Map<string, unknown>([['c0', 3]]);
    for (let i = 1; i <= length; i++) {
      const fn: Fn = i % asyncEvery === 0 ? mixAsync : mix;
      // Alternate top-level and nested refs to the previous link.
      const arg = i % 3 === 0 ? { prev: [ref(`c${i - 1}`)] } : ref(`c${i - 1}`);
      graph.set(`c${i}`, task(fn, counter, i, arg, i));
    }
    return { graph, last: `c${length}` };
  };

  void test('a 300-link chain fuses into one node and matches the unfused result', async () => {
    const { graph, last } = chain(300, 7);
    const plan = compile(graph, [last]);
    assert.equal(plan.size, 2, 'the literal and one fused node');
    assert.deepStrictEqual([...plan.keys].sort(), ['c0', last].sort());
    assert.equal(compile(graph, [last], { fuse: false }).size, 301);
    const results = [];
    for (const config of CONFIGS) {
      counter.fill(0);
      results.push(await get(graph, last, config));
      for (let i = 1; i <= 300; i++) assert.equal(Atomics.load(counter, i), 1, `link ${i} under ${JSON.stringify(config)}`);
    }
    for (const r of results) assert.equal(r, results[0]);
  });

  void test('requesting a link in the middle splits the chain and returns both', async () => {
    const { graph, last } = chain(40, 5);
    const plan = compile(graph, ['c20', last]);
    assert.equal(plan.size, 3);
    const [mid, end] = (await get(graph, ['c20', last], { workers: 2 })) as [number, number];
    assert.equal(mid, await get(graph, 'c20', { scheduler: 'sync', fuse: false }));
    assert.equal(end, await get(graph, last, { scheduler: 'sync', fuse: false }));
  });
});
