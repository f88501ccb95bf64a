import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { builtins, delayed, get, ref, task } from '../../src/index.js';

const SCHEDULERS = [{ scheduler: 'sync' }, { scheduler: 'threads', workers: 2 }, { scheduler: 'threads', workers: 2, fuse: false }] as const;

// The generic signatures do not infer through task(); the function objects are the built-ins.
const concat = builtins.concat as (...parts: unknown[]) => unknown[];

void describe('built-in operations as task functions', () => {
  const graph = {
    a: 3,
    b: task(builtins.add, ref('a'), 4),
    c: task(builtins.mul, ref('b'), ref('a')),
    xs: task(builtins.list, ref('a'), ref('b'), ref('c')),
    sum: task(builtins.sum, ref('xs')),
    sumLiteral: task(builtins.sum, [1, 2, ref('a')]),
    max: task(builtins.max, ref('xs')),
    min: task(builtins.min, ref('xs')),
    count: task(builtins.count, ref('xs')),
    second: task(builtins.getItem, ref('xs'), 1),
    field: task(builtins.getItem, { name: 'x', value: ref('c') }, 'value'),
    joined: task(concat, ref('xs'), [100], []),
    same: task(builtins.identity, { nested: [ref('a')] }),
  };
  const expected = {
    b: 7,
    c: 21,
    xs: [3, 7, 21],
    sum: 31,
    sumLiteral: 6,
    max: 21,
    min: 3,
    count: 3,
    second: 7,
    field: 21,
    joined: [3, 7, 21, 100],
    same: { nested: [3] },
  };

  for (const options of SCHEDULERS) {
    void test(`all built-ins compute (${JSON.stringify(options)})`, async () => {
      const keys = Object.keys(expected);
      const values = await get(graph, keys, options);
      assert.deepStrictEqual(Object.fromEntries(keys.map((k, i) => [k, values[i]])), expected);
    });
  }

  void test('built-ins work with delayed', async () => {
    const add = delayed(builtins.add);
    const list = delayed(builtins.list);
    const sum = delayed(builtins.sum, { name: 'total' });
    const total = sum(list(add(1, 2), add(3, 4), 5));
    assert.match(total.key, /^total-/);
    assert.equal(await total.compute({ scheduler: 'sync' }), 15);
    assert.equal(await total.compute({ workers: 2 }), 15);
  });

  void test('built-ins behave as documented on edge inputs', async () => {
    const g = {
      emptySum: task(builtins.sum, []),
      emptyList: task(builtins.list),
      emptyConcat: task(concat),
      nestedConcat: task(concat, [[1]], [[2]]),
    };
    assert.deepStrictEqual(await get(g, Object.keys(g), { workers: 2 }), [0, [], [], [[1], [2]]]);
  });
});
