/** Functions registered with fromModule travel by reference; threads import their module. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pack, unpack } from 'msgpackr';
import {
  CapturedVariableError,
  FunctionNotPortableError,
  InvalidArgumentError,
  TesseraError,
  builtins,
  delayed,
  fromModule,
  get,
  ref,
  task,
} from '../../src/index.js';
import { callCount, msgpackRoundTrip, notAnExport, statementCount } from '../fixtures/ops.js';

const SCHEDULERS = [{ scheduler: 'sync' }, { scheduler: 'threads', workers: 2 }] as const;

void describe('fromModule', () => {
  for (const options of SCHEDULERS) {
    void test(`module functions that use npm packages run (${options.scheduler})`, async () => {
      const graph = {
        source: 'const a = 1; let b = 2; function f() {}',
        count: task(statementCount, ref('source')),
        trip: task(msgpackRoundTrip, { list: [1, 'two', { three: 3 }], n: ref('count') }),
      };
      assert.deepStrictEqual(await get(graph, ['count', 'trip'], options), [3, { list: [1, 'two', { three: 3 }], n: 3 }]);
    });

    void test(`module functions mix with source functions and delayed (${options.scheduler})`, async () => {
      const count = delayed(statementCount);
      const double = delayed((x: number) => x * 2);
      assert.equal(await double(count('a; b; c; d')).compute(options), 8);
    });
  }

  void test('a thread imports the module itself, with its own module state', async () => {
    // Four independent calls in one graph; each thread counts its own calls.
    const graph: Record<string, unknown> = {};
    for (let i = 0; i < 4; i++) graph[`c${i}`] = task(callCount);
    const counts = (await get(graph, Object.keys(graph), { workers: 2 })) as number[];
    for (const c of counts) assert.ok(Number.isInteger(c) && c >= 1);
    // In the main thread, the module's state is untouched by what threads did.
    assert.equal(callCount(), 1);
  });

  void test('fromModule returns its argument and checks it', () => {
    // This file is the script node runs: fromModule refuses it (see below), so a module's URL.
    const moduleUrl = new URL('../fixtures/ops.ts', import.meta.url);
    const fns = { statementCount };
    assert.equal(fromModule(moduleUrl, fns), fns);
    assert.throws(() => fromModule('not a url', { statementCount }), InvalidArgumentError);
    assert.throws(() => fromModule(moduleUrl, { x: 3 as unknown as Function }), InvalidArgumentError);
    assert.throws(() => fromModule(moduleUrl, { sum: builtins.sum }), FunctionNotPortableError);
  });

  void test('fromModule refuses the script being run: importing it would run the program again', () => {
    const inScript = (x: number): number => x + 1;
    assert.throws(
      () => fromModule(import.meta.url, { inScript }),
      (e: unknown) => e instanceof InvalidArgumentError && /script being run/.test(e.message) && /scoped\(fn/.test(e.message),
    );
  });

  void test('a registered name that the module does not export fails in the thread, as a Tessera error', async () => {
    await assert.rejects(get({ x: task(notAnExport) }, 'x', { workers: 2 }), (e: unknown) => {
      assert.ok(e instanceof TesseraError, String(e));
      return true;
    });
  });
});

void describe('captured imports', () => {
  void test('a function capturing an import, without fromModule, is CapturedVariableError', () => {
    const roundTrip = (v: unknown): unknown => unpack(pack(v));
    assert.throws(
      () => task(roundTrip, 1),
      (e: unknown) => {
        assert.ok(e instanceof CapturedVariableError);
        assert.equal(e.functionName, 'roundTrip');
        assert.deepStrictEqual([...e.variables].sort(), ['pack', 'unpack']);
        assert.match(e.message, /'pack'/);
        assert.match(e.message, /fromModule/);
        return true;
      },
    );
    assert.throws(() => delayed(roundTrip), CapturedVariableError);
  });

  void test('the same function registered with fromModule passes the check', async () => {
    const local = { msgpackRoundTrip };
    assert.doesNotThrow(() => task(local.msgpackRoundTrip, 1));
    assert.equal(await get({ t: task(msgpackRoundTrip, 5) }, 't', { workers: 2 }), 5);
  });
});
