import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Delayed, InvalidArgumentError, Ref, compute, computeWith, delayed, get, ref, task, toGraph } from '../../src/index.js';

const inc = (x: number): number => x + 1;
const add = (a: number, b: number): number => a + b;
const double = (x: number): number => 2 * x;

void describe('get()', () => {
  const graph = { x: task(inc, 1), y: task(add, ref('x'), 10), z: 7 };

  void test('one key gives its value, an array of keys gives an array', async () => {
    assert.equal(await get(graph, 'y', { scheduler: 'sync' }), 12);
    assert.deepStrictEqual(await get(graph, ['x', 'y', 'z'], { scheduler: 'sync' }), [2, 12, 7]);
    assert.equal(await get(graph, 'y', { workers: 2 }), 12);
    assert.deepStrictEqual(await get(graph, ['y', 'x'], { workers: 2 }), [12, 2]);
  });

  void test('an array of one key gives an array of one value; no keys gives []', async () => {
    assert.deepStrictEqual(await get(graph, ['x'], { scheduler: 'sync' }), [2]);
    assert.deepStrictEqual(await get(graph, [], { scheduler: 'sync' }), []);
    assert.deepStrictEqual(await get(graph, [], { workers: 2 }), []);
  });

  void test('the same key twice is computed once and returned twice', async () => {
    const counter = new Int32Array(new SharedArrayBuffer(4));
    const counted = (c: Int32Array, v: number): number => {
      Atomics.add(c, 0, 1);
      return v * 3;
    };
    const g = { a: task(counted, counter, 5) };
    for (const options of [{ scheduler: 'sync' }, { workers: 2 }] as const) {
      counter[0] = 0;
      assert.deepStrictEqual(await get(g, ['a', 'a'], options), [15, 15]);
      assert.equal(counter[0], 1);
    }
  });

  void test('Map graphs work like plain-object graphs', async () => {
    const m = new Map<string, unknown>([
      ['x', task(inc, 1)],
      ['y', task(add, ref('x'), 10)],
      ['literal', { a: [1, 2] }],
    ]);
    assert.deepStrictEqual(await get(m, ['y', 'literal'], { scheduler: 'sync' }), [12, { a: [1, 2] }]);
    assert.deepStrictEqual(await get(m, ['y', 'literal'], { workers: 2 }), [12, { a: [1, 2] }]);
  });

  void test('literal values nesting refs are computed; a bare ref is an alias', async () => {
    const g = { a: task(inc, 1), b: [ref('a'), { c: ref('a'), d: [3, ref('a')] }], alias: ref('b') };
    for (const options of [{ scheduler: 'sync' }, { workers: 2 }] as const) {
      assert.deepStrictEqual(await get(g, ['b', 'alias'], options), [
        [2, { c: 2, d: [3, 2] }],
        [2, { c: 2, d: [3, 2] }],
      ]);
    }
    // The graph is reusable: resolving refs did not write into it.
    assert.ok(g.b[0] instanceof Ref);
    assert.ok((g.b[1] as { c: unknown }).c instanceof Ref);
  });

  void test('refs nested in task arguments are resolved without touching the graph', async () => {
    const sum = (xs: { v: unknown[] }, more: unknown[]): number => [...xs.v, ...more].reduce((s: number, x) => s + (x as number), 0);
    const args = { v: [1, ref('a')] };
    const g = { a: task(inc, 1), b: task(sum, args, [ref('a'), ref('a')]) };
    assert.equal(await get(g, 'b', { scheduler: 'sync' }), 7);
    assert.equal(await get(g, 'b', { workers: 2 }), 7);
    assert.ok(args.v[1] instanceof Ref, 'the arguments object still holds the ref');
  });

  void test('bad arguments are InvalidArgumentError', async () => {
    await assert.rejects(get([] as never, 'a'), InvalidArgumentError);
    await assert.rejects(get(null as never, 'a'), InvalidArgumentError);
    await assert.rejects(get({ a: 1 }, 3 as never), InvalidArgumentError);
    await assert.rejects(get({ a: 1 }, 'a', { scheduler: 'fast' as never }), InvalidArgumentError);
    await assert.rejects(get({ a: 1 }, 'a', { workers: 0 }), InvalidArgumentError);
    await assert.rejects(get({ a: 1 }, 'a', { workers: 1.5 }), InvalidArgumentError);
    assert.throws(() => ref(''), InvalidArgumentError);
  });
});

void describe('delayed and compute', () => {
  void test('delayed calls build a graph that compute() runs', async () => {
    const dInc = delayed(inc);
    const dAdd = delayed(add);
    const total = dAdd(dInc(1), dInc(2));
    assert.ok(total instanceof Delayed);
    assert.equal(await total.compute({ scheduler: 'sync' }), 5);
    assert.equal(await total.compute({ workers: 2 }), 5);
    assert.equal(await total.compute(), 5);
  });

  void test('compute() and computeWith() compute several values, passing non-lazy ones through', async () => {
    const dInc = delayed(inc);
    const a = dInc(1);
    const b = delayed(double)(a);
    assert.deepStrictEqual(await compute(a, b, 'plain', 4), [2, 4, 'plain', 4]);
    assert.deepStrictEqual(await computeWith([b, a, b], { scheduler: 'sync' }), [4, 2, 4]);
    assert.deepStrictEqual(await computeWith([b, a], { workers: 2, fuse: false }), [4, 2]);
    assert.deepStrictEqual(await compute(1, 'x'), [1, 'x']);
  });

  void test('shared work runs once', async () => {
    const counter = new Int32Array(new SharedArrayBuffer(4));
    const counted = delayed((c: Int32Array, v: number): number => {
      Atomics.add(c, 0, 1);
      return v;
    });
    const shared = counted(counter, 10);
    const left = delayed(inc)(shared);
    const right = delayed(double)(shared);
    assert.deepStrictEqual(await computeWith([left, right], { scheduler: 'sync' }), [11, 20]);
    assert.equal(counter[0], 1);
    counter[0] = 0;
    assert.deepStrictEqual(await computeWith([left, right], { workers: 2 }), [11, 20]);
    assert.equal(counter[0], 1);
  });

  void test('Delayed values nested in arrays and plain objects are computed first', async () => {
    const dInc = delayed(inc);
    const combine = delayed((xs: number[], o: { a: number; b: { c: number[] } }, k: number): number => xs[0]! * 100 + xs[1]! * 10 + o.a + o.b.c[0]! + k);
    const result = combine([dInc(1), dInc(2)], { a: dInc(3), b: { c: [dInc(4)] } }, 1000);
    assert.equal(await result.compute({ scheduler: 'sync' }), 200 + 30 + 4 + 5 + 1000);
    assert.equal(await result.compute({ workers: 2 }), 1239);
  });

  void test('delayed(value) is a lazy literal, and may nest Delayed values', async () => {
    const lit = delayed({ a: 1 });
    assert.deepStrictEqual(await lit.compute({ scheduler: 'sync' }), { a: 1 });
    const nested = delayed([delayed(inc)(1), { b: delayed(inc)(2) }]);
    assert.deepStrictEqual(await nested.compute({ scheduler: 'sync' }), [2, { b: 3 }]);
    assert.deepStrictEqual(await nested.compute({ workers: 2 }), [2, { b: 3 }]);
  });

  void test('pure: same function and arguments give the same key; different arguments a different key', () => {
    const pInc = delayed(inc, { pure: true });
    const a1 = pInc(1);
    const a2 = pInc(1);
    const b = pInc(2);
    assert.equal(a1.key, a2.key);
    assert.notEqual(a1.key, b.key);
    assert.equal(pInc(a1).key, pInc(a2).key, 'same Delayed arguments, same key');
    assert.notEqual(pInc(a1).key, pInc(b).key);
    assert.equal(delayed(inc, { pure: true })({ v: [1, 2] } as never).key, pInc({ v: [1, 2] } as never).key);
    assert.notEqual(pInc({ v: [1, 2] } as never).key, pInc({ v: [1, 3] } as never).key);
    // A different function with the same arguments is different work.
    assert.notEqual(delayed(double, { pure: true })(1).key, a1.key);
    assert.match(a1.key, /^inc-/, 'keys are prefixed by the function name');
    assert.match(delayed(inc, { pure: true, name: 'step' })(1).key, /^step-/);
  });

  void test('pure calls are shared in the graph', async () => {
    const pInc = delayed(inc, { pure: true });
    const total = delayed(add)(pInc(1), pInc(1));
    assert.equal(Object.keys(Object.fromEntries(total.graph())).length, 2);
    assert.equal(await total.compute({ scheduler: 'sync' }), 4);
  });

  void test('impure calls get unique keys, even with equal arguments', () => {
    const dInc = delayed(inc);
    const keys = new Set([dInc(1).key, dInc(1).key, dInc(1).key, delayed(inc)(1).key]);
    assert.equal(keys.size, 4);
  });

  void test('.graph() and toGraph() hold exactly the keys needed', () => {
    const dInc = delayed(inc);
    const a = dInc(1);
    const b = dInc(2);
    const c = delayed(add)(a, a);
    const d = delayed(double)(b);
    const unrelated = dInc(99);
    assert.deepStrictEqual(new Set(c.graph().keys()), new Set([a.key, c.key]));
    assert.deepStrictEqual(new Set(d.graph().keys()), new Set([b.key, d.key]));
    assert.deepStrictEqual(new Set(toGraph(c, d).keys()), new Set([a.key, b.key, c.key, d.key]));
    assert.ok(!toGraph(c, d).has(unrelated.key));
    assert.deepStrictEqual([...a.graph().keys()], [a.key]);
  });

  void test('a Delayed graph can be computed with get() by key', async () => {
    const a = delayed(inc)(1);
    const c = delayed(add)(a, 40);
    assert.deepStrictEqual(await get(toGraph(c), [c.key, a.key], { scheduler: 'sync' }), [42, 2]);
  });

  void test('delayed() rejects a bad name', () => {
    assert.throws(() => delayed(inc, { name: '' }), InvalidArgumentError);
  });
});
