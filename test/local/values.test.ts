/** Values crossing threads: every structured-clone kind, and large buffers. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { get, ref, task } from '../../src/index.js';

const SCHEDULERS = [{ scheduler: 'sync' }, { scheduler: 'threads', workers: 2 }] as const;

// Built inside the task (the function travels as source), consumed by another task.
const makeValues = (): Record<string, unknown> => {
  const cyclic: Record<string, unknown> = { name: 'loop' };
  cyclic.self = cyclic;
  const buffer = new ArrayBuffer(8);
  new Uint8Array(buffer).set([1, 2, 3, 4, 5, 6, 7, 8]);
  return {
    map: new Map<unknown, unknown>([['a', 1], [2, { deep: [new Date(5)] }]]),
    set: new Set([1, 'two', 3n]),
    date: new Date(Date.UTC(2024, 1, 29, 12, 0, 0)),
    bigint: 2n ** 70n,
    negativeZero: -0,
    special: [NaN, Infinity, -Infinity, undefined, null],
    int8: Int8Array.of(-128, 0, 127),
    uint8: Uint8Array.of(0, 255),
    clamped: Uint8ClampedArray.of(0, 255),
    int16: Int16Array.of(-32768, 32767),
    uint16: Uint16Array.of(65535),
    int32: Int32Array.of(-(2 ** 31), 2 ** 31 - 1),
    uint32: Uint32Array.of(2 ** 32 - 1),
    float32: Float32Array.of(1.5, -0.25),
    float64: Float64Array.of(Math.PI, Number.MIN_VALUE),
    bigint64: BigInt64Array.of(-(2n ** 63n)),
    biguint64: BigUint64Array.of(2n ** 64n - 1n),
    dataView: new DataView(buffer, 2, 4),
    arrayBuffer: buffer,
    error: new Error('plain', { cause: 'why' }),
    rangeError: new RangeError('out of range'),
    regexp: /a+b/giu,
    boxed: [Object(1) as unknown, Object('s') as unknown, Object(true) as unknown],
    nested: { a: [{ b: { c: [1, [2, [3, { d: 'e' }]]] } }] },
    sparse: [1, , 3] as unknown[], // eslint-disable-line no-sparse-arrays
    cyclic,
    text: 'ünïcødé ✓ \u{1F600}',
  };
};
const identity = (x: unknown): unknown => x;

function checkValues(v: Record<string, unknown>): void {
  const expected = makeValues();
  // Errors: compare the parts structured clone keeps.
  for (const k of ['error', 'rangeError'] as const) {
    const e = v[k];
    assert.ok(e instanceof Error, `${k} is an Error`);
    assert.equal(e.name, (expected[k] as Error).name);
    assert.equal(e.message, (expected[k] as Error).message);
  }
  assert.ok(v.rangeError instanceof RangeError);
  const rest = (o: Record<string, unknown>): Record<string, unknown> => {
    const others: Record<string, unknown> = { ...o, cyclicName: (o.cyclic as { name: string }).name };
    delete others.error;
    delete others.rangeError;
    delete others.cyclic;
    return others;
  };
  assert.deepStrictEqual(rest(v), rest(expected));
  const cyclic = v.cyclic as { self: unknown };
  assert.equal(cyclic.self, cyclic, 'a cycle stays a cycle');
  assert.ok(Object.is(v.negativeZero, -0));
  assert.equal((v.dataView as DataView).getUint8(0), 3);
  assert.ok(!(1 in (v.sparse as unknown[])), 'a hole stays a hole');
}

void describe('structured-clone values', () => {
  for (const options of SCHEDULERS) {
    void test(`every kind survives as a result and as an input (${options.scheduler})`, async () => {
      const graph = { made: task(makeValues), passed: task(identity, ref('made')) };
      const [made, passed] = (await get(graph, ['made', 'passed'], { ...options, fuse: false })) as Record<string, unknown>[];
      checkValues(made!);
      checkValues(passed!);
      // Only the requested keys, fused.
      checkValues((await get(graph, 'passed', options)) as Record<string, unknown>);
    });

    void test(`literal graph values survive (${options.scheduler})`, async () => {
      const literal = { when: new Date(3), tags: new Set(['x']), n: 10n, bytes: Uint8Array.of(9, 8) };
      const graph = { lit: literal, copy: task(identity, ref('lit')), inArgs: task(identity, { v: [literal] }) };
      const [lit, copy, inArgs] = await get(graph, ['lit', 'copy', 'inArgs'], options);
      assert.deepStrictEqual(lit, literal);
      assert.deepStrictEqual(copy, literal);
      assert.deepStrictEqual(inArgs, { v: [literal] });
      assert.deepStrictEqual(literal.bytes, Uint8Array.of(9, 8), 'the caller’s literal is intact');
    });
  }
});

const N = 1 << 20; // 8 MiB of float64
const ramp = (n: number): Float64Array => {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = i;
  return a;
};
const sumOf = (a: Float64Array, gate = 0): number => {
  let s = gate;
  for (let i = 0; i < a.length; i++) s += a[i]!;
  return s;
};
const maxOf = (a: Float64Array): number => {
  let m = -Infinity;
  for (let i = 0; i < a.length; i++) m = Math.max(m, a[i]!);
  return m;
};
const zero = (): number => 0;
const same = (a: Float64Array): Float64Array => a;
const RAMP_SUM = (N * (N - 1)) / 2;

/** A producer, fillers that make the consumers land in other batches, and consumers. */
function bigGraph(extra: Record<string, unknown> = {}): Record<string, unknown> {
  const graph: Record<string, unknown> = { big: task(ramp, N), gate: task(zero), ...extra };
  for (let i = 0; i < 8; i++) graph[`f${i}`] = task(zero);
  graph.sum = task(sumOf, ref('big'), ref('gate'));
  graph.max = task(maxOf, ref('big'));
  return graph;
}
const FILLERS = Array.from({ length: 8 }, (_, i) => `f${i}`);

void describe('large buffers', () => {
  for (const fuse of [true, false]) {
    void test(`an 8 MiB Float64Array made in one task and summed in another (fuse: ${fuse})`, async () => {
      const graph = bigGraph();
      const keys = [...FILLERS, 'sum', 'max'];
      const results = await get(graph, keys, { workers: 2, fuse });
      assert.deepStrictEqual(results.slice(-2), [RAMP_SUM, N - 1]);
      assert.deepStrictEqual(await get(graph, 'sum', { scheduler: 'sync', fuse }), RAMP_SUM);
    });

    void test(`the producer's array is also returned intact when requested (fuse: ${fuse})`, async () => {
      const graph = bigGraph();
      const [big, sum, max] = (await get(graph, [...FILLERS, 'big', 'sum', 'max'], { workers: 2, fuse })).slice(-3) as [Float64Array, number, number];
      assert.ok(big instanceof Float64Array);
      assert.equal(big.length, N);
      assert.equal(big[N - 1], N - 1);
      assert.equal(sum, RAMP_SUM);
      assert.equal(max, N - 1);
    });
  }

  void test(
    'a result that shares its buffer with another result stays intact when that one moves to a consumer',
    async () => {
      // `alias` returns the very array `big` returned; both come back in one reply as one
      // object. `sum`'s batch then takes big's buffer, detaching `alias` too.
      const graph = bigGraph({ alias: task(same, ref('big')) });
      const keys = ['f0', 'f1', 'f2', 'f3', 'f4', 'f5', 'alias', 'sum'];
      const results = await get(graph, keys, { workers: 2, fuse: false });
      const alias = results[6] as Float64Array;
      assert.equal(results[7], RAMP_SUM);
      assert.equal(alias.length, N, 'the returned array was detached');
      assert.equal(alias[12345], 12345);
    },
  );

  void test('a large literal is not taken from the caller', async () => {
    const literal = ramp(N);
    const graph: Record<string, unknown> = { lit: literal, gate: task(zero), sum: task(sumOf, ref('lit'), ref('gate')), max: task(maxOf, ref('lit')) };
    for (let i = 0; i < 8; i++) graph[`f${i}`] = task(zero);
    const results = await get(graph, [...FILLERS, 'sum', 'max'], { workers: 2, fuse: false });
    assert.deepStrictEqual(results.slice(-2), [RAMP_SUM, N - 1]);
    assert.equal(literal.length, N, 'the literal was detached');
    assert.equal(literal[N - 1], N - 1);
  });

  void test('a large array passed as a task argument is not taken from the caller', async () => {
    const arg = ramp(N);
    const results = await get({ s: task(sumOf, arg), m: task(maxOf, arg) }, ['s', 'm'], { workers: 2 });
    assert.deepStrictEqual(results, [RAMP_SUM, N - 1]);
    assert.equal(arg.length, N);
  });
});
