import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvalidArgumentError } from '../../src/errors.js';
import { SchedulerState } from '../../src/scheduler/state.js';
import { addWorker, computes, fail, finish, frees, newState, only, stateOf, submit } from './helpers.js';

describe('task life cycle', () => {
  test('a chain runs, reports its result, frees the intermediate, and is forgotten on release', () => {
    const s = newState();
    addWorker(s, 'w1');
    const c1 = submit(s, [['inc-1'], ['add-1', ['inc-1']]], ['add-1']);
    assert.deepEqual(computes(c1), ['inc-1@w1']);
    const compute = only(c1, 'compute-task')[0];
    assert.deepEqual(compute?.spec, { fn: 'inc-1' });
    assert.deepEqual(compute.dependencies, []);
    assert.equal(stateOf(s, 'add-1'), 'waiting');

    const c2 = finish(s, 'w1', 'inc-1', { nbytes: 100 });
    assert.deepEqual(computes(c2), ['add-1@w1']);
    // Held by the worker it goes to, and only there: its key alone, no address.
    assert.deepEqual(only(c2, 'compute-task')[0]?.dependencies, ['inc-1']);
    assert.deepEqual(frees(c2), []);

    const c3 = finish(s, 'w1', 'add-1', { nbytes: 50 });
    assert.deepEqual(only(c3, 'key-in-memory'), [{ op: 'key-in-memory', clients: ['c1'], key: 'add-1', nbytes: 50, holder: 'w1' }]);
    assert.deepEqual(frees(c3), ['inc-1@w1'], 'the intermediate is freed once its last dependent is in memory');
    assert.equal(stateOf(s, 'inc-1'), 'released', 'its record stays while a dependent is held');

    const c4 = s.handle({ op: 'release-keys', client: 'c1', keys: ['add-1'] });
    assert.deepEqual(frees(c4), ['add-1@w1']);
    assert.equal(s.taskCount, 0);
    assert.deepEqual(s.stateCounts(), {
      released: 0,
      waiting: 0,
      'no-worker': 0,
      queued: 0,
      processing: 0,
      memory: 0,
      erred: 0,
    });
  });

  test('keys already in memory are reported at once; new tasks may depend on them', () => {
    const s = newState();
    addWorker(s, 'w1');
    submit(s, [['x-1']], ['x-1']);
    finish(s, 'w1', 'x-1', { nbytes: 10 });
    const again = submit(s, [['x-1']], ['x-1'], { client: 'c2' });
    assert.deepEqual(only(again, 'key-in-memory'), [{ op: 'key-in-memory', clients: ['c2'], key: 'x-1', nbytes: 10, holder: 'w1' }]);
    assert.deepEqual(computes(again), []);
    const more = submit(s, [['y-1', ['x-1']]], ['y-1']);
    assert.deepEqual(computes(more), ['y-1@w1']);
  });

  test('a freed intermediate is recomputed from lineage when a new graph needs it', () => {
    const s = newState();
    addWorker(s, 'w1');
    submit(s, [['a-1'], ['b-1', ['a-1']]], ['b-1']);
    finish(s, 'w1', 'a-1');
    finish(s, 'w1', 'b-1');
    assert.equal(stateOf(s, 'a-1'), 'released');
    const cmds = submit(s, [['c-1', ['a-1']]], ['c-1']);
    assert.deepEqual(computes(cmds), ['a-1@w1']);
    assert.equal(stateOf(s, 'c-1'), 'waiting');
    assert.deepEqual(computes(finish(s, 'w1', 'a-1')), ['c-1@w1']);
  });

  test('an unknown dependency errs the task that names it, and its dependents', () => {
    const s = newState();
    addWorker(s, 'w1');
    const cmds = submit(s, [['a-1', ['ghost']], ['b-1', ['a-1']], ['ok-1']], ['b-1', 'ok-1', 'nowhere']);
    const erred = only(cmds, 'key-erred');
    assert.deepEqual(
      erred.map((c) => c.key),
      ['b-1', 'nowhere'],
    );
    assert.equal(erred[0]?.error.name, 'MissingKeyError');
    assert.match(erred[0].error.message, /'a-1' refers to key 'ghost'/);
    assert.match(erred[1]?.error.message ?? '', /'nowhere'/);
    assert.deepEqual(computes(cmds), ['ok-1@w1']);
    assert.equal(stateOf(s, 'a-1'), 'erred');
  });

  test('tasks that no wanted key needs are not kept', () => {
    const s = newState();
    addWorker(s, 'w1');
    const cmds = submit(s, [['a-1'], ['b-1'], ['c-1', ['a-1']]], ['c-1']);
    assert.deepEqual(computes(cmds), ['a-1@w1']);
    assert.equal(stateOf(s, 'b-1'), undefined);
  });

  test('priorities: user priority, then submission order, then graph order', () => {
    const s = newState({ saturation: 1 });
    addWorker(s, 'w1');
    const order: string[] = [];
    const run = (cmds: ReturnType<SchedulerState['handle']>): void => {
      for (const c of only(cmds, 'compute-task')) order.push(c.key);
    };
    run(submit(s, [['a-0', [], { priority: 2 }], ['a-1', [], { priority: 1 }], ['a-2', [], { priority: 3 }]], ['a-0', 'a-1', 'a-2']));
    run(submit(s, [['b-0']], ['b-0']));
    run(submit(s, [['u-0']], ['u-0'], { userPriority: 10 }));
    while (order.length < 5) run(finish(s, 'w1', order[order.length - 1] as string));
    // a-1 was sent before the others arrived; then the urgent one; then a (older) before b.
    assert.deepEqual(order, ['a-1', 'u-0', 'a-0', 'a-2', 'b-0']);
    const info = s.taskInfo('u-0');
    assert.deepEqual(info?.priority, [10, 3, 0]);
  });

  test('retries are consumed before a task errs; the error reaches dependents', () => {
    const s = newState();
    addWorker(s, 'w1');
    submit(s, [['a-1', [], { retries: 1 }], ['b-1', ['a-1']]], ['b-1']);
    const first = fail(s, 'w1', 'a-1', 'first');
    assert.deepEqual(computes(first), ['a-1@w1']);
    assert.deepEqual(only(first, 'key-erred'), []);
    assert.equal(s.taskInfo('a-1')?.retries, 0);
    const second = fail(s, 'w1', 'a-1', 'second');
    const erred = only(second, 'key-erred');
    assert.deepEqual(
      erred.map((c) => [c.key, c.error.message]),
      [['b-1', 'second']],
    );
    assert.equal(stateOf(s, 'a-1'), 'erred');
    assert.equal(stateOf(s, 'b-1'), 'erred');
    // An erred key asked for again is reported at once.
    const again = submit(s, [], ['b-1'], { client: 'c2' });
    assert.deepEqual(only(again, 'key-erred')[0]?.clients, ['c2']);
    // Releasing forgets both.
    s.handle({ op: 'client-removed', client: 'c1' });
    s.handle({ op: 'client-removed', client: 'c2' });
    assert.equal(s.taskCount, 0);
  });

  test('stale reports are ignored safely', () => {
    const s = newState();
    addWorker(s, 'w1');
    addWorker(s, 'w2');
    const cmds = submit(s, [['a-1']], ['a-1']);
    const [on] = only(cmds, 'compute-task').map((c) => c.worker);
    const other = on === 'w1' ? 'w2' : 'w1';
    // Finished on a worker it was not sent to: that worker is told to drop its copy.
    assert.deepEqual(frees(finish(s, other, 'a-1')), [`a-1@${other}`]);
    assert.equal(stateOf(s, 'a-1'), 'processing');
    assert.deepEqual(fail(s, other, 'a-1'), []);
    assert.deepEqual(frees(finish(s, 'w1', 'never-heard-of')), ['never-heard-of@w1']);
    assert.deepEqual(finish(s, 'w9', 'a-1'), [], 'unknown workers are ignored');
    assert.equal(stateOf(s, 'a-1'), 'processing');
    const done = finish(s, on as string, 'a-1');
    assert.equal(only(done, 'key-in-memory').length, 1);
    // A second report of the same result from elsewhere becomes a replica.
    finish(s, other, 'a-1');
    assert.deepEqual([...(s.taskInfo('a-1')?.whoHas ?? [])].sort(), ['w1', 'w2']);
  });

  test('cancel tells the client and frees processing work nobody needs any more', () => {
    const s = newState({ saturation: 1 });
    addWorker(s, 'w1');
    addWorker(s, 'w2');
    submit(s, [['x-1'], ['x-2'], ['y-1', ['x-1', 'x-2']]], ['y-1']);
    submit(s, [['z-1']], ['z-1'], { client: 'c2' });
    const cmds = s.handle({ op: 'cancel', client: 'c1', keys: ['y-1'] });
    assert.deepEqual(only(cmds, 'key-cancelled'), [{ op: 'key-cancelled', clients: ['c1'], key: 'y-1' }]);
    assert.deepEqual(frees(cmds).sort(), ['x-1@w1', 'x-2@w2'].sort());
    assert.equal(s.taskInfo('y-1'), undefined);
    assert.equal(s.taskInfo('x-1'), undefined);
    // The freed slots go to the other client's queued task.
    assert.deepEqual(computes(cmds).length, 1);
    assert.equal(stateOf(s, 'z-1'), 'processing');
  });

  test('a key wanted by two clients stays until both release it', () => {
    const s = newState();
    addWorker(s, 'w1');
    submit(s, [['a-1']], ['a-1'], { client: 'c1' });
    submit(s, [['a-1']], ['a-1'], { client: 'c2' });
    const done = finish(s, 'w1', 'a-1');
    assert.deepEqual(only(done, 'key-in-memory')[0]?.clients, ['c1', 'c2']);
    assert.deepEqual(frees(s.handle({ op: 'release-keys', client: 'c1', keys: ['a-1'] })), []);
    assert.deepEqual(frees(s.handle({ op: 'client-removed', client: 'c2' })), ['a-1@w1']);
    assert.equal(s.taskCount, 0);
  });

  test("a worker's report of several tasks is one event: the outcome of one event per task, under one stimulus", () => {
    const graph: [string, string[]?][] = [['a-1'], ['a-2'], ['a-3'], ['b-1', ['a-1', 'a-2']], ['b-2', ['a-3']]];
    const run = (batched: boolean): { s: SchedulerState; cmds: string[] } => {
      const s = newState({ saturation: Infinity, validate: true });
      addWorker(s, 'w1', 4);
      submit(s, graph, ['b-1', 'b-2']);
      s.handle({ op: 'tasks-started', worker: 'w1', keys: ['a-1', 'a-2', 'a-3'], startedAt: 1 });
      const keys = ['a-1', 'a-2', 'a-3'];
      const out = batched
        ? s.handle({ op: 'tasks-finished', worker: 'w1', keys, nbytes: [8, 8, 8], startedAt: [1, 1, 1], finishedAt: [2, 2, 2], now: 2, stimulus: 'report-1' })
        : keys.flatMap((key) => finish(s, 'w1', key, { startedAt: 1, finishedAt: 2, now: 2 }));
      return { s, cmds: [...computes(out), ...frees(out)].sort() };
    };
    const one = run(true);
    const each = run(false);
    assert.deepEqual(one.cmds, each.cmds);
    assert.deepEqual(one.cmds, ['b-1@w1', 'b-2@w1']);
    assert.deepEqual(one.s.stateCounts(), each.s.stateCounts());
    for (const [key] of graph) assert.deepEqual(one.s.taskInfo(key), each.s.taskInfo(key));
    const stimuli = new Set(one.s.story('a-1', 'a-2', 'a-3').filter((e) => e.to === 'memory').map((e) => e.stimulus));
    assert.deepEqual([...stimuli], ['report-1']);
  });

  test('options are validated at the door', () => {
    assert.throws(() => new SchedulerState({ bandwidth: -1 }), InvalidArgumentError);
    assert.throws(() => new SchedulerState({ saturation: 0 }), /options\.saturation/);
    assert.throws(() => new SchedulerState({ allowedFailures: 1.5 }), /options\.allowedFailures/);
    assert.doesNotThrow(() => new SchedulerState({ saturation: Infinity, workerTtlMs: Infinity }));
  });
});
