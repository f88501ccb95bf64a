/**
 * Nodes packed for a thread (PackedNode): after the structured clone a thread receives,
 * each unpacks to a node whose call gets exactly the arguments the full node's would; the
 * shapes that do not pack travel whole; a malformed packed node is refused by name.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ProtocolError } from '../../src/errors.js';
import { resolveArgs } from '../../src/graph/call.js';
import { compile } from '../../src/graph/plan.js';
import { ref, task } from '../../src/graph/task.js';
import { packNode, wireNode } from '../../src/protocol/encode-task.js';
import { nodeOf } from '../../src/protocol/encoded-spec.js';
import type { FnRef } from '../../src/functions/fn-ref.js';
import type { PackedNode } from '../../src/protocol/task-spec.js';

const add = (a: number, b: number): number => a + b;
const inc = (x: number): number => x + 1;
const sum = (...xs: number[]): number => xs.reduce((a, b) => a + b, 0);
const pick = (o: { v: number }): number => o.v;

const graph = {
  a: task(inc, 1),
  b: task(inc, 2),
  'in-order': task(add, ref('a'), ref('b')),
  swapped: task(add, ref('b'), ref('a')),
  twice: task(add, ref('a'), ref('a')),
  mixed: task(add, ref('a'), 5),
  wide: task(sum, ref('a'), ref('b'), ref('in-order'), ref('swapped')),
  deep: task(pick, { v: ref('a') }),
  literal: 42,
  none: task(sum),
};
const keys = Object.keys(graph);
const values: Record<string, unknown> = { a: 2, b: 3, 'in-order': 5, swapped: 5 };

describe('packed nodes', () => {
  const plan = compile(graph, keys, { fuse: false });

  test('each node unpacks, after a structured clone, to one whose call gets the same arguments', () => {
    for (let j = 0; j < plan.keys.length; j++) {
      const key = plan.keys[j]!;
      const whole = wireNode(plan, j, j % 2 === 0, new Map());
      const fns = new Map<string, FnRef>();
      const sent = structuredClone(packNode(plan, j, j % 2 === 0, fns));
      const node = nodeOf(sent);
      assert.deepEqual(node.stepKeys, whole.stepKeys, key);
      assert.equal(node.out, whole.out, key);
      assert.equal(node.steps.length, 1, key);
      const [step] = node.steps;
      assert.equal(step!.fn, whole.steps[0]!.fn, key);
      assert.deepEqual(step!.deps, whole.steps[0]!.deps, key);
      const lookup = (d: number): unknown => values[step!.deps[d]!];
      assert.deepEqual(resolveArgs(step!, lookup), resolveArgs(whole.steps[0]!, (d) => values[whole.steps[0]!.deps[d]!]), key);
      assert.ok(fns.has(step!.fn), `${key}: its function is named for shipping`);
    }
  });

  test('calls whose arguments are their dependencies, and calls on no dependency, pack; the rest travel whole', () => {
    // Dependencies are listed in the order the arguments first name them, so `swapped` packs.
    const packed = plan.keys.filter((_, j) => Array.isArray(packNode(plan, j, false, new Map())));
    assert.deepEqual(packed.sort(), ['a', 'b', 'in-order', 'none', 'swapped', 'wide'].sort());
  });

  test('a malformed packed node is refused, naming what is wrong', () => {
    const bad: [unknown[], RegExp][] = [
      [[2, 'fn', 'k', 0, 'only-one'], /k: 1 dependencies for 2 arguments/],
      [[-1, 'fn', 'k', 0, 'not a list'], /k: no arguments/],
      [[1, 7, 'k', 0, 'd'], /malformed packed node/],
      [[1.5, 'fn', 'k', 0, 'd'], /malformed packed node/],
    ];
    for (const [node, message] of bad) assert.throws(() => nodeOf(node as unknown as PackedNode), (e: unknown) => e instanceof ProtocolError && message.test(e.message));
  });
});
