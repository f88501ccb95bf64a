/** Which functions travel as source, and that what travels behaves the same. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { get, task } from '../../src/index.js';

const SCHEDULERS = [{ scheduler: 'sync' }, { scheduler: 'threads', workers: 2 }] as const;

void describe('portable functions', () => {
  for (const options of SCHEDULERS) {
    void test(`arrows, function declarations, async functions and methods travel (${options.scheduler})`, async () => {
      function declared(x: number): number {
        return x * 10;
      }
      const obj = {
        method(x: number): number {
          return x + 0.5;
        },
        async asyncMethod(x: number): Promise<number> {
          await Promise.resolve();
          return -x;
        },
      };
      const withDefault = (x: number, y = 7): number => x + y;
      const graph = {
        arrow: task((x: number) => x + 1, 1),
        declared: task(declared, 2),
        // Method syntax is the point here; the methods do not use `this`.
        // eslint-disable-next-line @typescript-eslint/unbound-method
        method: task(obj.method, 3),
        // eslint-disable-next-line @typescript-eslint/unbound-method
        asyncMethod: task(obj.asyncMethod, 4),
        asyncArrow: task(async (x: number) => Promise.resolve(x * x), 5),
        defaults: task(withDefault, 1),
        destructuring: task(({ a, b: [c] }: { a: number; b: number[] }) => a + c!, { a: 1, b: [2] }),
        rest: task((...xs: number[]) => xs.length, 1, 2, 3),
      };
      assert.deepStrictEqual(await get(graph, Object.keys(graph), options), [2, 20, 3.5, -4, 25, 8, 3, 3]);
    });
  }

  void test('the same function object is checked once, and distinct ones separately', () => {
    const f = (x: number): number => x;
    const a = task(f, 1);
    const b = task(f, 2);
    assert.equal(a.ref.id, b.ref.id);
    const g = (x: number): number => x + 1;
    assert.notEqual(task(g, 1).ref.id, a.ref.id);
  });

  for (const options of SCHEDULERS) {
    void test(
      `a function with a named inner helper travels when run through tsx (${options.scheduler})`,
      async () => {
        const withHelper = (xs: number[]): number => {
          const square = (v: number): number => v * v;
          function half(v: number): number {
            return v / 2;
          }
          return xs.map(square).map(half).reduce((s, v) => s + v, 0);
        };
        assert.equal(await get({ h: task(withHelper, [2, 4]) }, 'h', options), 10);
      },
    );
  }
});
