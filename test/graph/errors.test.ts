/** Errors found while building or compiling a graph, before anything runs. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parse } from 'acorn';
import {
  CapturedVariableError,
  CycleError,
  FunctionNotPortableError,
  MissingKeyError,
  TesseraError,
  compile,
  delayed,
  get,
  ref,
  task,
} from '../../src/index.js';

const inc = (x: number): number => x + 1;
const add = (a: number, b: number): number => a + b;
const SCHEDULERS = [{ scheduler: 'sync' }, { scheduler: 'threads', workers: 2 }] as const;

void describe('MissingKeyError', () => {
  void test('a ref to a key that is not in the graph', async () => {
    const graph = { a: task(inc, 1), b: task(add, ref('a'), ref('nope')), c: task(inc, ref('b')) };
    for (const options of SCHEDULERS) {
      const error = await get(graph, 'c', options).then(
        () => assert.fail('should have rejected'),
        (e: unknown) => e,
      );
      assert.ok(error instanceof MissingKeyError);
      assert.ok(error instanceof TesseraError);
      assert.equal(error.key, 'b');
      assert.equal(error.missing, 'nope');
      assert.equal(error.code, 'ERR_MISSING_KEY');
      assert.match(error.message, /'nope'/);
    }
  });

  void test('a ref nested in arguments or in a literal', () => {
    assert.throws(
      () => compile({ a: task(inc, { deep: [ref('gone')] } as never) }, ['a']),
      (e: unknown) => e instanceof MissingKeyError && e.key === 'a' && e.missing === 'gone',
    );
    assert.throws(
      () => compile({ lit: [1, { x: ref('gone') }] }, ['lit']),
      (e: unknown) => e instanceof MissingKeyError && e.key === 'lit' && e.missing === 'gone',
    );
  });

  void test('requesting a key that is not in the graph', async () => {
    for (const options of SCHEDULERS) {
      await assert.rejects(get({ a: 1 }, ['a', 'zzz'], options), (e: unknown) => {
        assert.ok(e instanceof MissingKeyError);
        assert.equal(e.key, '');
        assert.equal(e.missing, 'zzz');
        assert.match(e.message, /'zzz'/);
        return true;
      });
    }
    await assert.rejects(get(new Map([['a', 1]]), 'b', { scheduler: 'sync' }), MissingKeyError);
  });

  void test('an inherited property is not a key', async () => {
    await assert.rejects(get({ a: 1 }, 'toString', { scheduler: 'sync' }), MissingKeyError);
  });

  void test('a missing key in a part of the graph that is not needed is no error', async () => {
    const graph = { a: task(inc, 1), broken: task(inc, ref('nope')) };
    assert.equal(await get(graph, 'a', { scheduler: 'sync' }), 2);
  });
});

void describe('CycleError', () => {
  void test('lists exactly the keys on the cycle', async () => {
    const graph = {
      entry: task(inc, ref('a')),
      a: task(inc, ref('b')),
      b: task(add, ref('leaf'), ref('c')),
      c: task(inc, ref('a')),
      leaf: 1,
    };
    for (const options of SCHEDULERS) {
      await assert.rejects(get(graph, 'entry', options), (e: unknown) => {
        assert.ok(e instanceof CycleError);
        assert.equal(e.code, 'ERR_GRAPH_CYCLE');
        assert.deepStrictEqual([...e.keys].sort(), ['a', 'b', 'c']);
        // In order along the cycle, from wherever it was entered.
        const i = e.keys.indexOf('a');
        assert.deepStrictEqual([...e.keys.slice(i), ...e.keys.slice(0, i)], ['a', 'b', 'c']);
        for (const k of ['a', 'b', 'c']) assert.ok(e.message.includes(k));
        return true;
      });
    }
  });

  void test('a task that refers to itself', () => {
    assert.throws(
      () => compile(new Map([['self', task(inc, ref('self'))]]), ['self']),
      (e: unknown) => e instanceof CycleError && e.keys.length === 1 && e.keys[0] === 'self',
    );
  });

  void test('a cycle through a literal that nests refs', () => {
    assert.throws(
      () => compile({ x: [ref('y')], y: task(inc, { v: ref('x') } as never) }, ['y']),
      (e: unknown) => e instanceof CycleError && [...e.keys].sort().join() === 'x,y',
    );
  });

  void test('a diamond is not a cycle', async () => {
    const graph = { top: 1, l: task(inc, ref('top')), r: task(inc, ref('top')), bottom: task(add, ref('l'), ref('r')) };
    assert.equal(await get(graph, 'bottom', { scheduler: 'sync' }), 4);
  });
});

void describe('CapturedVariableError', () => {
  const offset = 3;
  const scale = 2;
  const withOffset = (x: number): number => x + offset;
  const withBoth = (x: number): number => x * scale + offset;

  void test('task() throws at graph-building time, naming the variable', () => {
    assert.throws(
      () => task(withOffset, 1),
      (e: unknown) => {
        assert.ok(e instanceof CapturedVariableError);
        assert.ok(e instanceof TesseraError);
        assert.equal(e.code, 'ERR_CAPTURED_VARIABLE');
        assert.equal(e.functionName, 'withOffset');
        assert.deepStrictEqual(e.variables, ['offset']);
        assert.match(e.message, /'offset'/);
        return true;
      },
    );
  });

  void test('several variables are all named', () => {
    assert.throws(
      () => task(withBoth, 1),
      (e: unknown) => e instanceof CapturedVariableError && [...e.variables].sort().join() === 'offset,scale',
    );
  });

  void test('delayed(fn) throws at once, before any call', () => {
    assert.throws(() => delayed(withOffset), (e: unknown) => e instanceof CapturedVariableError && e.variables.includes('offset'));
  });

  void test('an anonymous function, an imported binding, and a captured function', () => {
    assert.throws(
      () => task((x: number) => x + offset, 1),
      (e: unknown) => e instanceof CapturedVariableError && e.variables[0] === 'offset' && e.message.includes('offset'),
    );
    const countStatements = (s: string): number => parse(s, { ecmaVersion: 'latest' }).body.length;
    assert.throws(
      () => task(countStatements, 'a;'),
      (e: unknown) => e instanceof CapturedVariableError && e.variables.includes('parse'),
    );
    assert.throws(() => task((x: number) => inc(x), 1), (e: unknown) => e instanceof CapturedVariableError && e.variables.includes('inc'));
  });

  void test('locals, parameters and globals are not captures', async () => {
    const fine = (xs: number[]): number => {
      let total = 0;
      for (const x of xs) {
        const y = x * 2;
        total += y;
      }
      return [total].map((t) => t + 1)[0]!;
    };
    assert.equal(await get({ a: task(fine, [1, 2]) }, 'a', { workers: 2 }), 7);
  });
});

void describe('FunctionNotPortableError', () => {
  const check = (fn: Function, name: RegExp): void => {
    assert.throws(
      () => task(fn as () => unknown),
      (e: unknown) => {
        assert.ok(e instanceof FunctionNotPortableError, String(e));
        assert.equal(e.code, 'ERR_FUNCTION_NOT_PORTABLE');
        assert.match(e.functionName, name);
        assert.match(e.message, name);
        return true;
      },
    );
    assert.throws(() => delayed(fn), FunctionNotPortableError);
  };

  void test('a bound function', () => {
    check(inc.bind(null), /bound inc/);
  });

  void test('a class', () => {
    class Widget {
      size = 1;
    }
    check(Widget, /Widget/);
  });

  void test('a native function', () => {
    check(Math.sqrt, /sqrt/);
  });

  void test('a non-function', () => {
    assert.throws(() => task(42 as never), TesseraError);
  });
});

void describe('standard globals travel', () => {
  const usesGlobals = async (x: number): Promise<unknown> => {
    const arr = new Float64Array([x, Math.sqrt(x * x), Math.PI]);
    const copy = structuredClone({ list: Array.from(arr), when: new Date(0) });
    const parsed = JSON.parse(JSON.stringify(copy)) as { list: number[] };
    const waited = await new Promise<number>((resolve) => setTimeout(() => {
        resolve(parsed.list[0]! + 1);
      }, 5));
    return { waited, list: parsed.list, isDate: copy.when instanceof Date, n: Number.parseInt('12', 10), m: new Map([[1, 2]]).size };
  };

  for (const options of SCHEDULERS) {
    void test(`Math, JSON, Float64Array, structuredClone, setTimeout in a Promise (${options.scheduler})`, async () => {
      assert.deepStrictEqual(await get({ a: task(usesGlobals, 4) }, 'a', options), {
        waited: 5,
        list: [4, 4, Math.PI],
        isDate: true,
        n: 12,
        m: 1,
      });
    });
  }
});
