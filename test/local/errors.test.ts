/** Errors raised while a graph runs, under both local schedulers. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TaskError, TesseraError, UnserializableError, delayed, get, ref, task } from '../../src/index.js';
import { makePoint, wrapPoint } from '../fixtures/ops.js';

const SCHEDULERS = [{ scheduler: 'sync' }, { scheduler: 'threads', workers: 2 }] as const;
const inc = (x: number): number => x + 1;

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => assert.fail(`expected a rejection, got ${JSON.stringify(value)}`),
    (error: unknown) => error,
  );
}

function explodeOnSeven(x: number): number {
  if (x === 7) throw new RangeError(`bad input ${x}`);
  return x;
}

async function rejectLater(x: number): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 5));
  throw new TypeError(`async failure ${x}`);
}

void describe('TaskError', () => {
  for (const options of SCHEDULERS) {
    void test(`a throwing task (${options.scheduler})`, async () => {
      const graph = { a: task(inc, 6), boom: task(explodeOnSeven, ref('a')), after: task(inc, ref('boom')), other: task(inc, 1) };
      const error = await rejection(get(graph, ['after', 'other'], { ...options, fuse: false }));
      assert.ok(error instanceof TaskError, String(error));
      assert.ok(error instanceof TesseraError);
      assert.equal(error.code, 'ERR_TASK_FAILED');
      assert.equal(error.key, 'boom');
      assert.equal(error.remoteName, 'RangeError');
      assert.equal(error.remoteMessage, 'bad input 7');
      assert.match(error.remoteStack, /explodeOnSeven/);
      assert.match(error.message, /boom/);
      assert.match(error.stack ?? '', /explodeOnSeven/);
    });

    void test(`the failing step of a fused chain is named (${options.scheduler})`, async () => {
      const graph = { a: task(inc, 5), b: task(inc, ref('a')), boom: task(explodeOnSeven, ref('b')), c: task(inc, ref('boom')), d: task(inc, ref('c')) };
      const error = await rejection(get(graph, 'd', options));
      assert.ok(error instanceof TaskError);
      assert.equal(error.key, 'boom');
      assert.equal(error.remoteName, 'RangeError');
    });

    void test(`an async task that rejects (${options.scheduler})`, async () => {
      const graph = { a: task(inc, 1), bad: task(rejectLater, ref('a')), c: task(inc, ref('bad')) };
      for (const fuse of [true, false]) {
        const error = await rejection(get(graph, 'c', { ...options, fuse }));
        assert.ok(error instanceof TaskError, String(error));
        assert.equal(error.key, 'bad');
        assert.equal(error.remoteName, 'TypeError');
        assert.equal(error.remoteMessage, 'async failure 2');
        assert.match(error.remoteStack, /rejectLater/);
      }
    });

    void test(`a thrown non-Error value (${options.scheduler})`, async () => {
      const throwsString = (): never => {
        // eslint-disable-next-line @typescript-eslint/only-throw-error
        throw 'plain string';
      };
      const error = await rejection(get({ s: task(throwsString) }, 's', options));
      assert.ok(error instanceof TaskError);
      assert.equal(error.key, 's');
      assert.equal(error.remoteName, 'NonErrorThrown');
      assert.match(error.remoteMessage, /plain string/);
    });

    void test(`delayed: the failing call's key is reported (${options.scheduler})`, async () => {
      const bad = delayed(explodeOnSeven)(7);
      const total = delayed(inc)(bad);
      const error = await rejection(total.compute(options));
      assert.ok(error instanceof TaskError);
      assert.equal(error.key, bad.key);
    });
  }
});

void describe('UnserializableError', () => {
  const returnsFunction = (): unknown => (x: number) => x;
  const returnsSymbol = (): unknown => Symbol('tag');
  const returnsNestedFunction = (): unknown => ({ a: [1, { f: Math.max }] });

  for (const options of SCHEDULERS) {
    const check = async (graph: Record<string, unknown>, request: string, key: string, path: string, reason: RegExp): Promise<void> => {
      const error = await rejection(get(graph, request, options));
      assert.ok(error instanceof UnserializableError, String(error));
      assert.ok(error instanceof TesseraError);
      assert.equal(error.code, 'ERR_UNSERIALIZABLE');
      assert.equal(error.key, key);
      assert.equal(error.path, path);
      assert.match(error.reason, reason);
      assert.match(error.message, new RegExp(`'${key}'`));
    };

    void test(`a function result (${options.scheduler})`, async () => {
      await check({ fnResult: task(returnsFunction) }, 'fnResult', 'fnResult', '', /function/);
      await check({ nested: task(returnsNestedFunction) }, 'nested', 'nested', '.a[1].f', /function/);
    });

    void test(`a class instance (${options.scheduler})`, async () => {
      await check({ point: task(makePoint, 3, 4) }, 'point', 'point', '', /Point/);
      await check({ wrapped: task(wrapPoint, 1) }, 'wrapped', 'wrapped', '.items[1].p', /Point/);
    });

    void test(`a symbol (${options.scheduler})`, async () => {
      await check({ sym: task(returnsSymbol) }, 'sym', 'sym', '', /symbol/);
      // Consumed inside the same thread batch, the symbol is caught where it leaves: either
      // as sym's result or at [1] of the literal that holds it.
      const error = await rejection(get({ box: task((x: number) => ({ x }), 1), sym: task(returnsSymbol), both: [ref('box'), ref('sym')] }, 'both', options));
      assert.ok(error instanceof UnserializableError, String(error));
      assert.ok((error.key === 'sym' && error.path === '') || (error.key === 'both' && error.path === '[1]'), `${error.key} ${error.path}`);
      assert.match(error.reason, /symbol/);
    });

    void test(`an unportable result consumed in a fused chain (${options.scheduler})`, async () => {
      // The result is requested by name, so it must travel back whatever the batching.
      await check({ fnResult: task(returnsFunction), after: task((f: unknown) => typeof f, ref('fnResult')) }, 'fnResult', 'fnResult', '', /function/);
    });
  }
});
