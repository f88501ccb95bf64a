// A graph sent in parts (update-graph with `more`): held as it arrives, computed and
// pruned only when its last part is in, and never lost to what other clients do meanwhile.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { graphParts, isPlainGraph } from '../../src/client/tasks.js';
import type { FnRef } from '../../src/functions/fn-ref.js';
import type { WireGraphTask } from '../../src/protocol/messages.js';
import { addWorker, computes, finish, newState, only, stateOf, submit } from './helpers.js';

void describe('a graph in parts', () => {
  void test('nothing runs before the last part; dependencies may name later parts; order runs on across parts', () => {
    const s = newState({ validate: true });
    addWorker(s, 'w1', 2);
    // Part 1 names 'b', which only part 2 brings.
    assert.deepEqual(submit(s, [['a'], ['ab', ['a', 'b']]], [], { more: true }), []);
    assert.equal(stateOf(s, 'ab'), 'released');
    assert.deepEqual(submit(s, [['b'], ['c']], [], { more: true }), []);
    const last = submit(s, [['root', ['ab', 'c']], ['unused']], ['root']);
    // Root tasks go in graph order across parts: a (0), b (2), c (3).
    assert.deepEqual(computes(last), ['a@w1', 'b@w1', 'c@w1']);
    assert.equal(stateOf(s, 'unused'), undefined, 'what no wanted key needs is forgotten once the graph is whole');
    finish(s, 'w1', 'a');
    finish(s, 'w1', 'b');
    finish(s, 'w1', 'c');
    finish(s, 'w1', 'ab');
    const done = finish(s, 'w1', 'root', { nbytes: 8 });
    assert.deepEqual(only(done, 'key-in-memory').map((c) => c.key), ['root']);
  });

  void test('dependencies by position: in one message, or across parts, earlier or later, held tasks too', () => {
    const run = (byPosition: boolean): { order: string[]; memory: string[] } => {
      const s = newState({ validate: true, saturation: Infinity });
      addWorker(s, 'w1', 2);
      submit(s, [['held']], ['held'], { client: 'c2' });
      finish(s, 'w1', 'held', { nbytes: 8 });
      const dep = (key: string, position: number): string | number => (byPosition ? position : key);
      // Positions count across the graph's parts: held 0, a 1, ab 2 | b 3, c 4 | root 5.
      submit(s, [['held'], ['a'], ['ab', [dep('a', 1), dep('b', 3), dep('held', 0)]]], [], { more: true });
      submit(s, [['b'], ['c', [dep('a', 1)]]], [], { more: true });
      const order = computes(submit(s, [['root', [dep('ab', 2), dep('c', 4)]]], ['root']));
      const keys = ['a', 'b', 'c', 'ab', 'root'];
      for (const key of keys) order.push(...computes(finish(s, 'w1', key, { nbytes: 8 })));
      return { order, memory: keys.filter((key) => stateOf(s, key) === 'memory') };
    };
    assert.deepEqual(run(true), run(false));
    assert.deepEqual(run(true).memory, ['root']);
  });

  void test('a position no task of the graph has errs the task that named it', () => {
    const s = newState({ validate: true });
    addWorker(s, 'w1');
    const out = submit(s, [['x'], ['y', [0, 7]]], ['y']);
    const [erred] = only(out, 'key-erred');
    assert.equal(erred?.key, 'y');
    assert.match(erred.error.message, /#7/);
    // Within parts, one a later part could still bring waits for the last part.
    submit(s, [['p'], ['q', [1, 2]]], [], { more: true, client: 'c2' });
    assert.equal(stateOf(s, 'q'), 'released');
    const last = submit(s, [['r']], ['q'], { client: 'c2' });
    assert.deepEqual(only(last, 'key-erred'), [], 'position 2 is r, brought by the last part');
    assert.equal(stateOf(s, 'q'), 'waiting');
  });

  void test('a dependency no part brought errs the task that named it, naming the key, when the graph is whole', () => {
    const s = newState({ validate: true });
    addWorker(s, 'w1');
    submit(s, [['x', ['nowhere']]], [], { more: true });
    assert.equal(stateOf(s, 'x'), 'released', 'a later part may still bring it');
    const last = submit(s, [['y', ['x']]], ['y']);
    const erred = only(last, 'key-erred');
    assert.equal(erred.length, 1);
    assert.equal(erred[0]?.key, 'y');
    assert.match(erred[0].error.message, /nowhere/);
  });

  void test('a client that leaves half-way leaves nothing of its graph behind', () => {
    const s = newState({ validate: true });
    addWorker(s, 'w1');
    submit(s, [['shared']], ['shared'], { client: 'c2' });
    submit(s, [['p1'], ['p2', ['p1', 'shared']]], [], { client: 'c1', more: true });
    assert.equal(s.taskCount, 3);
    s.handle({ op: 'client-removed', client: 'c1' });
    assert.equal(s.taskCount, 1);
    assert.equal(stateOf(s, 'shared'), 'processing', "another client's task is untouched");
  });

  void test('a result another client releases while the graph arrives is kept for it, not recomputed', () => {
    const s = newState({ validate: true });
    addWorker(s, 'w1');
    submit(s, [['base']], ['base'], { client: 'c2' });
    finish(s, 'w1', 'base', { nbytes: 8 });
    // c1's first part names 'base' as a key and as a dependency.
    submit(s, [['base'], ['next', ['base']]], [], { client: 'c1', more: true });
    s.handle({ op: 'release-keys', client: 'c2', keys: ['base'] });
    assert.equal(stateOf(s, 'base'), 'memory', 'pinned by the arriving graph');
    const last = submit(s, [['top', ['next']]], ['top'], { client: 'c1' });
    assert.deepEqual(computes(last), ['next@w1'], 'base is used as it is');
  });

  void test('two arriving graphs naming one task each keep it until both are whole', () => {
    const s = newState({ validate: true });
    addWorker(s, 'w1');
    submit(s, [['t']], [], { client: 'c1', more: true });
    submit(s, [['u', ['t']]], [], { client: 'c2', more: true });
    submit(s, [], [], { client: 'c1' });
    assert.equal(stateOf(s, 't'), 'released', 'c2 still holds it');
    const last = submit(s, [], ['u'], { client: 'c2' });
    assert.deepEqual(computes(last), ['t@w1']);
  });
});

void describe('graphParts', () => {
  const fns: FnRef[] = [{ kind: 'source', id: 'f1', name: 'f', source: 'x => x' } as unknown as FnRef];
  const tasks = Array.from({ length: 5 }, (_, i): WireGraphTask => [`k${i}`, [], 'AA', 0]);

  void test('a small graph travels as it is', () => {
    const message = { op: 'update-graph' as const, tasks, wanted: ['k4'], fns };
    assert.deepEqual(graphParts(message, 5), [message]);
  });

  void test('a larger one in parts: each with the functions, `more` on all but the last, which alone wants', () => {
    const parts = graphParts({ op: 'update-graph', tasks, wanted: ['k4'], fns, userPriority: 3 }, 2);
    assert.deepEqual(
      parts.map((p) => [p.tasks.map((t) => t[0]), p.wanted, p.more, p.fns.length, p.userPriority]),
      [
        [['k0', 'k1'], [], true, 1, 3],
        [['k2', 'k3'], [], true, 1, 3],
        [['k4'], ['k4'], undefined, 1, 3],
      ],
    );
  });

  test('a graph of encoded specs is plain data; an object spec or a scoped function is not', () => {
    assert.equal(isPlainGraph({ op: 'update-graph', tasks, wanted: [], fns }), true);
    const objectSpec: WireGraphTask = ['k5', [], { node: { steps: [], stepKeys: [], out: true } }];
    assert.equal(isPlainGraph({ op: 'update-graph', tasks: [...tasks, objectSpec], wanted: [], fns }), false);
    const scoped = [{ kind: 'source', id: 'f2', name: 'g', expr: 'x => x', scope: { names: ['b'], values: [new Uint8Array(2)] } }] as FnRef[];
    assert.equal(isPlainGraph({ op: 'update-graph', tasks, wanted: [], fns: scoped }), false);
  });
});
