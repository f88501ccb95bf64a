import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SELF_HOLDER } from '../../src/protocol/messages.js';
import { addWorker, computes, finish, newState, only, stateOf, submit } from './helpers.js';

describe('placement', () => {
  test('a task goes where its large inputs are', () => {
    const s = newState();
    for (const w of ['w1', 'w2', 'w3']) addWorker(s, w);
    submit(s, [['big-1'], ['big-2']], ['big-1', 'big-2']);
    const on1 = s.taskInfo('big-1')?.processingOn as string;
    const on2 = s.taskInfo('big-2')?.processingOn as string;
    finish(s, on1, 'big-1', { nbytes: 50e6 });
    finish(s, on2, 'big-2', { nbytes: 10e6 });
    const cmds = submit(s, [['join-1', ['big-1', 'big-2']]], ['join-1']);
    assert.deepEqual(computes(cmds), [`join-1@${on1}`]);
    const deps = only(cmds, 'compute-task')[0]?.dependencies;
    // One held by the worker the task goes to is its key alone; the other names its holder.
    assert.deepEqual(deps, ['big-1', ['big-2', [on2]]]);
  });

  test('a dependency\'s holders name the worker the task goes to as SELF_HOLDER, the others by id', () => {
    const s = newState();
    for (const w of ['w1', 'w2', 'w3']) addWorker(s, w);
    submit(s, [['big-1']], ['big-1']);
    const on = s.taskInfo('big-1')?.processingOn as string;
    finish(s, on, 'big-1', { nbytes: 50e6 });
    const other = ['w1', 'w2', 'w3'].find((w) => w !== on)!;
    s.handle({ op: 'add-keys', worker: other, keys: ['big-1'] });
    const cmds = submit(s, [['join-1', ['big-1']]], ['join-1']);
    const [compute] = only(cmds, 'compute-task');
    assert.ok(compute !== undefined && [on, other].includes(compute.worker), 'it goes beside its 50 MB input');
    assert.deepEqual(compute.dependencies[0], ['big-1', [on, other].map((w) => (w === compute.worker ? SELF_HOLDER : w))]);
    s.validate();
  });

  test('occupancy outweighs locality when the holder is busy for longer than the transfer takes', () => {
    const s = newState({ saturation: Infinity });
    addWorker(s, 'w1');
    submit(s, [['big-1']], ['big-1']);
    finish(s, 'w1', 'big-1', { nbytes: 10e6, startedAt: 0, finishedAt: 100 }); // 0.1 s transfer elsewhere
    // Teach the scheduler that 'slow' tasks take 5 s, and load w1 with four of them.
    submit(s, [['slow-0']], ['slow-0']);
    finish(s, 'w1', 'slow-0', { startedAt: 0, finishedAt: 5000 });
    submit(s, [['slow-1'], ['slow-2'], ['slow-3'], ['slow-4']], ['slow-1', 'slow-2', 'slow-3', 'slow-4']);
    addWorker(s, 'w2');
    const cmds = submit(s, [['use-1', ['big-1']]], ['use-1']);
    assert.deepEqual(computes(cmds), ['use-1@w2']);
    // And with a light load the holder wins.
    const s2 = newState();
    addWorker(s2, 'w1');
    submit(s2, [['big-1']], ['big-1']);
    finish(s2, 'w1', 'big-1', { nbytes: 10e6 });
    addWorker(s2, 'w2');
    assert.deepEqual(computes(submit(s2, [['use-1', ['big-1']]], ['use-1'])), ['use-1@w1']);
  });

  test('restrictions are honoured even against locality', () => {
    const s = newState();
    addWorker(s, 'w1');
    addWorker(s, 'w2');
    submit(s, [['big-1', [], { restrictions: ['w1'] }]], ['big-1']);
    finish(s, 'w1', 'big-1', { nbytes: 100e6 });
    const cmds = submit(s, [['use-1', ['big-1'], { restrictions: ['name-w2'] }]], ['use-1']);
    assert.deepEqual(computes(cmds), ['use-1@w2']);
  });

  test('root tasks are queued and handed out as slots free, best priority first', () => {
    const s = newState(); // saturation 1.1: a 2-thread worker takes ceil(2.2) = 3
    addWorker(s, 'w1', 2);
    const tasks: [string][] = [];
    for (let i = 0; i < 10; i++) tasks.push([`r-${i}`]);
    const cmds = submit(
      s,
      tasks,
      tasks.map(([k]) => k),
    );
    assert.deepEqual(computes(cmds), ['r-0@w1', 'r-1@w1', 'r-2@w1']);
    assert.equal(s.stateCounts().queued, 7);
    assert.deepEqual(computes(finish(s, 'w1', 'r-1')), ['r-3@w1']);
    // A new worker fills its own slots from the queue at once.
    assert.deepEqual(computes(addWorker(s, 'w2', 1)), ['r-4@w2', 'r-5@w2']);
  });

  test('with queuing disabled root tasks are spread over workers at once', () => {
    const s = newState({ saturation: Infinity });
    addWorker(s, 'w1', 2);
    addWorker(s, 'w2', 1);
    const tasks: [string][] = [];
    for (let i = 0; i < 9; i++) tasks.push([`r-${i}`]);
    const cmds = submit(
      s,
      tasks,
      tasks.map(([k]) => k),
    );
    const per = new Map<string, number>();
    for (const c of only(cmds, 'compute-task')) per.set(c.worker, (per.get(c.worker) ?? 0) + 1);
    assert.deepEqual(Object.fromEntries(per), { w1: 6, w2: 3 });
  });

  test('tasks on tiny or widely shared inputs count as roots; others do not', () => {
    const s = newState({ saturation: 1 });
    addWorker(s, 'w1');
    submit(s, [['small-1'], ['big-1']], ['small-1', 'big-1']);
    finish(s, 'w1', 'small-1', { nbytes: 100 });
    finish(s, 'w1', 'big-1', { nbytes: 1e6 });
    // Load the single slot so anything queued stays queued.
    submit(s, [['busy-1']], ['busy-1']);
    assert.equal(stateOf(s, 'busy-1'), 'processing');
    submit(s, [['t-1', ['small-1']], ['t-2', ['big-1']]], ['t-1', 't-2']);
    assert.equal(stateOf(s, 't-1'), 'queued');
    assert.equal(stateOf(s, 't-2'), 'processing', 'placed by locality, beyond the queue slots');
    const fan: [string, string[]][] = [];
    for (let i = 0; i < 8; i++) fan.push([`f-${i}`, ['big-1']]);
    submit(
      s,
      fan,
      fan.map(([k]) => k),
    );
    assert.equal(stateOf(s, 'f-7'), 'queued', 'a widely shared input ends up everywhere anyway');
  });

  test('placement looks at a handful of candidates, not every worker', () => {
    const s = newState({ saturation: Infinity });
    for (let i = 0; i < 300; i++) addWorker(s, `w${i}`);
    // Each assignment raises its worker's load; the least loaded always comes next.
    const tasks: [string][] = [];
    for (let i = 0; i < 600; i++) tasks.push([`r-${i}`]);
    const cmds = submit(
      s,
      tasks,
      tasks.map(([k]) => k),
    );
    const per = new Map<string, number>();
    for (const c of only(cmds, 'compute-task')) per.set(c.worker, (per.get(c.worker) ?? 0) + 1);
    assert.equal(per.size, 300);
    assert.ok([...per.values()].every((n) => n === 2));
  });
});
