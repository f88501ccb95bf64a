/**
 * Encoded specs at the scheduler: held as they came, forwarded to workers unchanged, and
 * the functions they name shipped to each worker once.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ProtocolError } from '../../src/errors.js';
import type { FnRef } from '../../src/functions/fn-ref.js';
import { decodeSpec, encodeSpec } from '../../src/protocol/encoded-spec.js';
import { SELF_HOLDER, type SchedulerToWorker, type WireGraphTask } from '../../src/protocol/messages.js';
import type { TaskSpec } from '../../src/protocol/task-spec.js';
import { dispatch, type DispatchContext, flushOutboxes, type WorkerEntry } from '../../src/scheduler/dispatch.js';
import { FunctionShipping } from '../../src/scheduler/functions.js';
import { graphTasks } from '../../src/scheduler/held-spec.js';

const fns: FnRef[] = [
  { kind: 'source', id: 'src:one', name: 'one', expr: '(x) => x' },
  { kind: 'source', id: 'src:two', name: 'two', expr: '(x) => x + 1' },
] as unknown as FnRef[];

function spec(fnIds: readonly string[], key: string): TaskSpec {
  return { node: { steps: fnIds.map((fn) => ({ fn, deps: [], args: [key], argRefs: null, deepRefs: null })), stepKeys: fnIds.map((_, i) => `${key}-${i}`), out: true } };
}

describe('held specs', () => {
  test('encoded specs are held as they came and name their functions by id; object specs stay', () => {
    const a = spec(['src:one'], 'a');
    const b = spec(['src:one', 'src:two'], 'b');
    const c = spec(['src:two'], 'c');
    const tasks: WireGraphTask[] = [
      ['a', [], encodeSpec(a)!, 0],
      ['b', [], encodeSpec(b)!, [0, 1]],
      ['c', [], c],
      ['d', [], encodeSpec(a)!, 7],
      ['e', [], c, 1],
    ];
    const held = graphTasks(tasks, fns);
    assert.deepEqual(held.map((t) => t.key), ['a', 'b', 'c', 'd', 'e']);
    const [ha, hb, hc, hd] = held.map((t) => [t.spec, t.fns] as const);
    assert.equal(ha?.[0], encodeSpec(a));
    assert.deepEqual(decodeSpec(ha[0] as string), a);
    assert.deepEqual(decodeSpec(hb?.[0] as string), b);
    assert.equal(hc?.[0], c);
    assert.equal(ha[1], 'src:one');
    assert.deepEqual(hb?.[1], ['src:one', 'src:two']);
    assert.equal(hc[1], undefined);
    assert.match(hd?.[1] as string, /^#7 \(no function of its update-graph has this index\)$/, 'an index naming no function names none');
    assert.equal(held[4]?.fns, undefined, 'indices beside an object spec are dropped');
    // A chain's functions are taken by step: an unknown index keeps its place.
    const [chain] = graphTasks([['f', [], encodeSpec(b)!, [0, 7, 1]]], fns);
    assert.deepEqual(chain?.fns, ['src:one', '#7 (no function of its update-graph has this index)', 'src:two']);
  });

  test('a task travels as a tuple whose fields after the spec are left off at the end', () => {
    const held = graphTasks(
      [
        ['a', [], 'AA', 0],
        ['b', ['a', 0], 'AA', 0, 4],
        ['c', [], 'AA', 0, null, ['w1']],
        ['d', [], 'AA', null, null, null, 2],
      ],
      fns,
    );
    assert.deepEqual(
      held.map((t) => [t.key, t.dependencies, t.fns, t.priority, t.restrictions, t.retries]),
      [
        ['a', [], 'src:one', undefined, undefined, undefined],
        ['b', ['a', 0], 'src:one', 4, undefined, undefined],
        ['c', [], 'src:one', undefined, ['w1'], undefined],
        ['d', [], [], undefined, undefined, 2],
      ],
    );
  });

  test('a malformed task is a protocol error naming it and what is wrong', () => {
    const bad: [unknown, RegExp][] = [
      [{ key: 'a', dependencies: [], spec: 'AA' }, /task 0 is malformed: not \[key, dependencies, spec/],
      [['a', []], /not \[key, dependencies, spec/],
      [[7, [], 'AA'], /its key is not a string/],
      [['a', 'b', 'AA'], /a: its dependencies are not a list/],
      [['a', [{}], 'AA'], /a: a dependency is neither a key nor a position/],
      [['a', [], 'AA', 'f'], /a: its functions are not indices/],
      [['a', [], 'AA', 0, '1'], /a: its priority is not a number/],
      [['a', [], 'AA', 0, null, [1]], /a: its restrictions are not worker names/],
      [['a', [], 'AA', 0, null, null, '2'], /a: its retries are not a number/],
    ];
    for (const [task, message] of bad) {
      assert.throws(() => graphTasks([task as WireGraphTask], fns), (error: unknown) => error instanceof ProtocolError && message.test(error.message));
    }
  });

  test('tasks naming the same functions share one list, told a worker once per message', () => {
    const chain = spec(['src:one', 'src:two'], 'x');
    const tasks = ['x-1', 'x-2', 'x-3'].map((key): WireGraphTask => [key, [], encodeSpec(chain)!, [0, 1]]);
    const held = graphTasks(tasks, fns);
    assert.equal(held[0]!.fns, held[2]!.fns);
    const worker = { id: 'w1', name: 'w1', fns: new Set<string>(['src:one', 'src:two']), modules: new Set<string>(), outbox: [] as SchedulerToWorker[] } as unknown as WorkerEntry;
    const ctx = { workers: new Map([['w1', worker]]), clients: new Map(), functions: new FunctionShipping(), stimulus: 's-1' } as unknown as DispatchContext;
    held.forEach((h, ticket) => dispatch({ op: 'compute-task', worker: 'w1', key: h.key, ticket, spec: h.spec, fns: h.fns ?? null, dependencies: [] }, ctx));
    const [compute] = worker.outbox.filter((m) => m.op === 'compute');
    assert.deepEqual(compute?.tasks.map((t) => t[4]), [['src:one', 'src:two'], undefined, undefined]);
  });

  test('a held spec goes to the worker as it came, after the functions it lacks, each once', () => {
    const tasks: WireGraphTask[] = [
      ['a', [], encodeSpec(spec(['src:one'], 'a'))!, 0],
      ['b', [], encodeSpec(spec(['src:one', 'src:two'], 'b'))!, [0, 1]],
    ];
    const held = graphTasks(tasks, fns);
    const functions = new FunctionShipping();
    functions.register(fns);
    const worker = { id: 'w1', name: 'w1', fns: new Set<string>(), modules: new Set<string>(), outbox: [] as SchedulerToWorker[] } as unknown as WorkerEntry;
    const ctx = { workers: new Map([['w1', worker]]), clients: new Map(), functions, stimulus: 's-1' } as unknown as DispatchContext;
    let ticket = 0;
    for (const t of held) dispatch({ op: 'compute-task', worker: 'w1', key: t.key, ticket: ticket++, spec: t.spec, fns: t.fns ?? null, dependencies: [] }, ctx);
    const ops = worker.outbox.map((m) => (m.op === 'load-fns' ? `load-fns ${m.fns.map((f) => f.id).join()}` : m.op));
    assert.deepEqual(ops, ['load-fns src:one', 'compute', 'load-fns src:two', 'compute']);
    const sent = worker.outbox.filter((m) => m.op === 'compute').flatMap((m) => m.tasks);
    assert.deepEqual(sent.map(([, spec]) => decodeSpec(spec as string)), [spec(['src:one'], 'a'), spec(['src:one', 'src:two'], 'b')]);
    // Each compute message names its stimulus with its first task, and an encoded spec's
    // functions where they change (here, in every message).
    assert.deepEqual(sent.map((t) => t[3]), ['s-1', 's-1']);
    assert.deepEqual(sent.map((t) => t[4]), ['src:one', ['src:one', 'src:two']]);
  });

  test('a compute message names the functions of encoded specs only where they change', () => {
    const functions = new FunctionShipping();
    const worker = { id: 'w1', name: 'w1', fns: new Set<string>(['src:one', 'src:two']), modules: new Set<string>(), outbox: [] as SchedulerToWorker[] } as unknown as WorkerEntry;
    const ctx = { workers: new Map([['w1', worker]]), clients: new Map(), functions, stimulus: 's-1' } as unknown as DispatchContext;
    let ticket = 0;
    const send = (key: string, fn: string): void => {
      dispatch({ op: 'compute-task', worker: 'w1', key, ticket: ticket++, spec: encodeSpec(spec([fn], key))!, fns: fn, dependencies: [] }, ctx);
    };
    send('a', 'src:one');
    send('b', 'src:one');
    send('c', 'src:two');
    ctx.stimulus = 's-2';
    send('d', 'src:two');
    send('e', 'src:one');
    const [compute] = worker.outbox.filter((m) => m.op === 'compute');
    assert.deepEqual(
      compute?.tasks.map(([key, , , stimulus, fns]) => [key, stimulus, fns]),
      [
        ['a', 's-1', 'src:one'],
        ['b', undefined, undefined],
        ['c', null, 'src:two'],
        ['d', 's-2', undefined],
        ['e', null, 'src:one'],
      ],
    );
  });

  test('tasks travel as tuples; a compute message names its stimulus where it changes', () => {
    const functions = new FunctionShipping();
    const worker = { id: 'w1', name: 'w1', fns: new Set<string>(), modules: new Set<string>(), outbox: [] as SchedulerToWorker[] } as unknown as WorkerEntry;
    const ctx = { workers: new Map([['w1', worker]]), clients: new Map(), functions, stimulus: 'tasks-finished-1' } as unknown as DispatchContext;
    const send = (key: string, ticket: number): void => dispatch({ op: 'compute-task', worker: 'w1', key, ticket, spec: spec([], key), fns: null, dependencies: [['x', ['w2']]] }, ctx);
    send('a', 0);
    send('b', 1);
    ctx.stimulus = 'tasks-finished-2';
    send('c', 2);
    worker.outbox.push({ op: 'close-worker' });
    send('d', 3);
    // Tickets that do not run on (a compute dropped for a worker gone, say) start a message.
    send('e', 5);
    const computes = worker.outbox.filter((m) => m.op === 'compute');
    assert.deepEqual(
      computes.map((m) => [m.ticket, m.tasks.map(([key, , deps, stimulus]) => [key, deps, stimulus])]),
      [
        [
          0,
          [
            ['a', [['x', ['w2']]], 'tasks-finished-1'],
            ['b', [['x', ['w2']]], undefined],
            ['c', [['x', ['w2']]], 'tasks-finished-2'],
          ],
        ],
        // A new message after another one names its stimulus again.
        [3, [['d', [['x', ['w2']]], 'tasks-finished-2']]],
        [5, [['e', [['x', ['w2']]], 'tasks-finished-2']]],
      ],
    );
  });

  test('a task\'s dependencies travel as the state made them, holders relative to the worker', () => {
    const functions = new FunctionShipping();
    const worker = { id: 'w1', name: 'w1', fns: new Set<string>(), modules: new Set<string>(), outbox: [] as SchedulerToWorker[] } as unknown as WorkerEntry;
    const ctx = { workers: new Map([['w1', worker]]), clients: new Map(), functions, stimulus: 's-1' } as unknown as DispatchContext;
    const dependencies = ['here', ['both', ['w2', SELF_HOLDER, 'w3']], ['nowhere', []]] as const;
    dispatch({ op: 'compute-task', worker: 'w1', key: 'k', ticket: 0, spec: spec([], 'k'), fns: null, dependencies }, ctx);
    const [compute] = worker.outbox.filter((m) => m.op === 'compute');
    assert.equal(compute?.tasks[0]?.[2], dependencies, 'no copy');
  });

  test('messages of plain data skip the codec\'s walk; a compute with an object spec does not', () => {
    const sent: [string, string][] = [];
    const conn = {
      state: 'open',
      remoteAddress: 'tcp://w1',
      send: (m: SchedulerToWorker) => sent.push(['send', m.op]),
      sendPlain: (m: SchedulerToWorker) => sent.push(['sendPlain', m.op]),
    };
    const worker = { id: 'w1', conn, outbox: [] as SchedulerToWorker[] } as unknown as WorkerEntry;
    const encoded = encodeSpec(spec([], 'a'))!;
    const withBytes = { node: { ...spec([], 'b').node, steps: [{ fn: 'src:one', deps: [], args: [new Uint8Array(4)], argRefs: null, deepRefs: null }] } };
    worker.outbox.push(
      { op: 'compute', ticket: 0, tasks: [['a', encoded, [], 's-1']] },
      { op: 'compute', ticket: 1, tasks: [['a', encoded, [], 's-1'], ['b', withBytes, [], null]] },
      { op: 'free-keys', keys: ['a'], stimulus: 's-1' },
      { op: 'close-worker' },
    );
    flushOutboxes([worker], [], { warn: () => {} } as never);
    assert.deepEqual(sent, [
      ['sendPlain', 'compute'],
      ['send', 'compute'],
      ['sendPlain', 'free-keys'],
      ['send', 'close-worker'],
    ]);
  });
});
