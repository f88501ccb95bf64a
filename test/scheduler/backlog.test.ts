// Root-task queuing with a backlog of short tasks: tiny tasks travel in batches, large
// results still wait their turn, so a wide graph cannot flood a worker's memory.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SchedulerCommand } from '../../src/scheduler/events.js';
import { BACKLOG_TASKS_PER_THREAD } from '../../src/scheduler/placement.js';
import type { SchedulerState } from '../../src/scheduler/state.js';
import { addWorker, finish, newState, only, submit, type T } from './helpers.js';

/** Runs what the workers were given, first given first run, each in 0.1 ms; returns the peak bytes held. */
function run(s: SchedulerState, first: readonly SchedulerCommand[], nbytesOf: (key: string) => number): { peak: number; finished: number } {
  const fifo = new Map<string, string[]>();
  const take = (cmds: readonly SchedulerCommand[]): void => {
    for (const c of only(cmds, 'compute-task')) {
      let list = fifo.get(c.worker);
      if (list === undefined) fifo.set(c.worker, (list = []));
      list.push(c.key);
    }
  };
  take(first);
  let now = 0;
  let peak = 0;
  let finished = 0;
  for (let busy = true; busy; ) {
    busy = false;
    for (const [worker, list] of fifo) {
      const key = list.shift();
      if (key === undefined) continue;
      busy = true;
      now += 0.1;
      take(finish(s, worker, key, { nbytes: nbytesOf(key), startedAt: now - 0.1, finishedAt: now }));
      finished++;
      let held = 0;
      for (const w of s.snapshot().workers) held += w.nbytes;
      if (held > peak) peak = held;
    }
  }
  s.validate();
  return { peak, finished };
}

function wide(n: number): { tasks: T[]; wanted: string[] } {
  const tasks: T[] = [];
  const wanted: string[] = [];
  for (let i = 0; i < n; i++) tasks.push([`load-${i}`]);
  for (let i = 0; i < n / 2; i++) {
    tasks.push([`sum-${i}`, [`load-${2 * i}`, `load-${2 * i + 1}`]]);
    wanted.push(`sum-${i}`);
  }
  return { tasks, wanted };
}

describe('queued tasks beyond the saturation slots', () => {
  test('short tasks of a measured prefix go out in a backlog; unmeasured ones only to the slots', () => {
    const s = newState(); // saturation 1.1: one thread has 2 slots
    addWorker(s, 'w1', 1);
    const tasks: T[] = [];
    for (let i = 0; i < 1000; i++) tasks.push([`inc-${i}`]);
    const first = only(submit(s, tasks, tasks.map(([k]) => k)), 'compute-task');
    assert.equal(first.length, 2, 'nothing measured yet: the slots only');
    // One finishes in 2 µs: now known to be short, the worker is kept supplied.
    const next = only(finish(s, 'w1', first[0]!.key, { startedAt: 1, finishedAt: 1.002, now: 1.002 }), 'compute-task');
    assert.ok(next.length > 10, `a backlog of short tasks, got ${next.length}`);
    assert.ok(s.taskInfo(first[1]!.key)!.state === 'processing');
    assert.ok(s.stateCounts().processing <= 2 + BACKLOG_TASKS_PER_THREAD, 'bounded by count');
    s.validate();
  });

  test('a prefix known to be long gets no backlog, nor the spare slot: it waits for a free thread', () => {
    const s = newState();
    addWorker(s, 'w1', 1);
    const tasks: T[] = [];
    for (let i = 0; i < 20; i++) tasks.push([`slow-${i}`]);
    const first = only(submit(s, tasks, tasks.map(([k]) => k)), 'compute-task');
    assert.equal(first.length, 2, 'not measured yet: both slots');
    let next = only(finish(s, 'w1', first[0]!.key, { startedAt: 0, finishedAt: 100, now: 100 }), 'compute-task');
    assert.equal(next.length, 0, 'a slot freed, but the thread is busy with the second');
    s.validate();
    next = only(finish(s, 'w1', first[1]!.key, { startedAt: 100, finishedAt: 200, now: 200 }), 'compute-task');
    assert.equal(next.length, 1, 'the thread is free: one task');
    s.validate();
  });

  test('a worker of two threads, one busy with a long task, keeps the other supplied with short ones', () => {
    const s = newState();
    addWorker(s, 'w1', 2);
    const warm = only(submit(s, [['slow-0'], ['tiny-0']], ['slow-0', 'tiny-0']), 'compute-task');
    for (const c of warm) finish(s, c.worker, c.key, c.key.startsWith('slow') ? { startedAt: 0, finishedAt: 100, now: 100 } : { startedAt: 0, finishedAt: 0.002, now: 100 });
    const tasks: T[] = [['slow-1']];
    for (let i = 1; i <= 300; i++) tasks.push([`tiny-${i}`]);
    const sent = only(submit(s, tasks, tasks.map(([k]) => k), { now: 101 }), 'compute-task');
    assert.equal(sent[0]!.key, 'slow-1');
    assert.ok(sent.length > 10, `a backlog of short tasks beside the long one, got ${sent.length - 1}`);
    s.validate();
  });

  describe('two workers, one busy with a long task', () => {
    function busyPair(): { s: ReturnType<typeof newState>; busy: string; idle: string } {
      const s = newState();
      addWorker(s, 'w1', 1);
      addWorker(s, 'w2', 1);
      // Measure both prefixes: slow takes 100 ms, tiny 2 µs.
      const warm = only(submit(s, [['slow-0'], ['tiny-0']], ['slow-0', 'tiny-0']), 'compute-task');
      for (const c of warm) finish(s, c.worker, c.key, c.key.startsWith('slow') ? { startedAt: 0, finishedAt: 100, now: 100 } : { startedAt: 0, finishedAt: 0.002, now: 100 });
      const [a] = only(submit(s, [['slow-1']], ['slow-1'], { now: 101 }), 'compute-task');
      return { s, busy: a!.worker, idle: a!.worker === 'w1' ? 'w2' : 'w1' };
    }

    test('the next long task goes to the idle worker, and the one after waits rather than queue behind either', () => {
      const { s, idle } = busyPair();
      const sent = only(submit(s, [['slow-2'], ['slow-3']], ['slow-2', 'slow-3'], { now: 102 }), 'compute-task');
      assert.deepEqual(sent.map((c) => `${c.key}@${c.worker}`), [`slow-2@${idle}`]);
      s.validate();
    });

    test('short tasks go on to the worker with room for a backlog, past the busy one', () => {
      const { s, busy, idle } = busyPair();
      const tasks: T[] = [];
      for (let i = 1; i <= 300; i++) tasks.push([`tiny-${i}`]);
      const sent = only(submit(s, tasks, tasks.map(([k]) => k), { now: 102 }), 'compute-task');
      assert.equal(sent.filter((c) => c.worker === busy).length, 1, 'the busy worker: its spare slot');
      assert.ok(sent.filter((c) => c.worker === idle).length > 10, 'the idle one: a backlog');
      s.validate();
    });
  });

  test('backlogMs 0 sends exactly the saturation slots', () => {
    const s = newState({ backlogMs: 0 });
    addWorker(s, 'w1', 1);
    const tasks: T[] = [];
    for (let i = 0; i < 100; i++) tasks.push([`inc-${i}`]);
    const first = only(submit(s, tasks, tasks.map(([k]) => k)), 'compute-task');
    assert.equal(only(finish(s, 'w1', first[0]!.key, { startedAt: 1, finishedAt: 1.002, now: 1.002 }), 'compute-task').length, 1);
  });

  test('options.backlogMs is checked at the door', () => {
    assert.throws(() => newState({ backlogMs: -1 }), /options\.backlogMs/);
    assert.throws(() => newState({ backlogMs: Infinity }), /options\.backlogMs/);
  });

  test('a wide graph whose intermediates would not fit runs in bounded memory', () => {
    // 2,000 short tasks of 8 MB each (16 GB in all, far past the worker's 1 GB), summed in pairs.
    const { tasks, wanted } = wide(2000);
    const nbytesOf = (key: string): number => (key.startsWith('load-') ? 8e6 : 8);
    const queued = newState();
    addWorker(queued, 'w1', 2);
    addWorker(queued, 'w2', 2);
    const bounded = run(queued, submit(queued, tasks, wanted), nbytesOf);
    assert.equal(bounded.finished, 3000);
    assert.ok(bounded.peak <= 20 * 8e6, `peak ${bounded.peak / 1e6} MB held with queuing`);
    // The same graph without queuing: every root at once, and memory floods.
    const flood = newState({ saturation: Infinity });
    addWorker(flood, 'w1', 2);
    addWorker(flood, 'w2', 2);
    const flooded = run(flood, submit(flood, tasks, wanted), nbytesOf);
    assert.equal(flooded.finished, 3000);
    assert.ok(flooded.peak > 1e9, `peak ${flooded.peak / 1e6} MB held without queuing`);
  });
});
