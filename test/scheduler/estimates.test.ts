import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { hasPrefix, keyPrefix, keyPrefixAfter, MIN_TELLING_AGE } from '../../src/scheduler/records.js';
import { addWorker, finish, newState, submit } from './helpers.js';

function prefix(s: ReturnType<typeof newState>, name: string) {
  return s.snapshot().prefixes.find((p) => p.prefix === name);
}

describe('durations, occupancy and remaining work', () => {
  test('a key\'s prefix is its first word and the words of letters after it, as Dask reads it', () => {
    const cases: [string, string][] = [
      ['inc-1', 'inc'], ['inc-3f2a', 'inc'], ['inc', 'inc'], ['inc-', 'inc'], ['-inc', '-inc'], ['load-data-0', 'load-data'],
      ['x-0-1', 'x'], ['tiny-176-r0', 'tiny'], ['a-b-c-d', 'a-b-c-d'], ['add-deadbeef', 'add'], ['add-deadbeefz-1', 'add'],
      ['sum-feedback-2', 'sum-feedback'], ['é-ça-1', 'é-ça'], ['x_y-1', 'x_y'], ['', ''], ['-', '-'], ['--', '--'], ['x-y-', 'x-y'],
    ];
    for (const [key, name] of cases) assert.equal(keyPrefix(key), name, key);
  });

  test('hasPrefix and keyPrefixAfter agree with keyPrefix', () => {
    const keys = ['inc-1', 'inc-12', 'inc', 'inc-', '-inc', 'inc-a-1', 'inc-a', 'in-1', 'incx-1', 'a-b-c-d', '', '-', '--', 'x-y-', 'é-1', 'inc-1-2', 'x-0-1', 'x-y-1'];
    const names = ['inc', 'inc-a', 'inc-1', 'in', 'a-b-c', 'x-y', 'x', 'x-0', 'é', '-', ''];
    for (const key of keys) for (const name of names) assert.equal(hasPrefix(key, name), keyPrefix(key) === name && key !== name, `${key} / ${name}`);
    for (const key of keys) for (const name of names) assert.equal(keyPrefixAfter(key, name), keyPrefix(key), `${key} after ${name}`);
  });

  test('tasks of prefixes that come and go each count under their own', () => {
    const s = newState({});
    addWorker(s, 'w1');
    submit(s, [['a-1'], ['b-1'], ['a-2'], ['a-b-1'], ['b-2']], ['a-1', 'b-1', 'a-2', 'a-b-1', 'b-2']);
    const held = (): Record<string, number> => Object.fromEntries(s.snapshot().prefixes.map((p) => [p.prefix, Object.values(p.counts).reduce((a, b) => a + b, 0)]));
    assert.deepEqual(held(), { a: 2, b: 2, 'a-b': 1 });
    for (const key of ['a-1', 'b-1', 'a-2', 'a-b-1', 'b-2']) finish(s, 'w1', key, { startedAt: 0, finishedAt: 10 });
    s.handle({ op: 'release-keys', client: 'c1', keys: ['a-1', 'b-1', 'a-2', 'a-b-1', 'b-2'] });
    assert.deepEqual(held(), {}, 'every prefix dropped with its last task');
    // A prefix that comes back is a record of its own again, its measure remembered.
    submit(s, [['b-3']], ['b-3']);
    assert.deepEqual(held(), { b: 1 });
    assert.equal(prefix(s, 'b')?.measured, true);
    s.validate();
  });

  test('unknown prefixes use the default; finished tasks teach a moving average', () => {
    const s = newState({ defaultTaskDurationMs: 200 });
    addWorker(s, 'w1');
    submit(s, [['f-1'], ['f-2'], ['f-3']], ['f-1', 'f-2', 'f-3']);
    assert.equal(prefix(s, 'f')?.duration, 0.2);
    assert.equal(prefix(s, 'f')?.measured, false);
    assert.ok(Math.abs(s.expectedRemainingWork() - 0.6) < 1e-9);
    finish(s, 'w1', 'f-1', { startedAt: 1000, finishedAt: 3000 });
    assert.equal(prefix(s, 'f')?.duration, 2);
    assert.equal(prefix(s, 'f')?.measured, true);
    assert.ok(Math.abs(s.expectedRemainingWork() - 4) < 1e-9);
    finish(s, 'w1', 'f-2', { startedAt: 3000, finishedAt: 4000 });
    const d = prefix(s, 'f')?.duration ?? 0;
    assert.ok(d > 1 && d < 2, `moves towards the new sample: ${d}`);
  });

  test('tasks running longer than the estimate raise it, before any has finished', () => {
    const s = newState({ defaultTaskDurationMs: 500 });
    addWorker(s, 'w1', 2);
    const tasks: [string][] = [];
    for (let i = 0; i < 10; i++) tasks.push([`long-${i}`]);
    submit(
      s,
      tasks,
      tasks.map(([k]) => k),
      { now: 0 },
    );
    assert.ok(Math.abs(s.expectedRemainingWork() - 5) < 1e-9);
    s.handle({ op: 'task-started', worker: 'w1', key: 'long-0', startedAt: 0 });
    s.handle({ op: 'task-started', worker: 'w1', key: 'long-1', startedAt: 2000 });
    s.handle({ op: 'tick', now: 10_000 });
    // Mean age of the running ones: (10 + 8) / 2 = 9 s.
    assert.equal(prefix(s, 'long')?.duration, 9);
    assert.ok(Math.abs(s.expectedRemainingWork() - 90) < 1e-9);
    // Occupancy follows the estimate: three tasks assigned to w1 (two threads + one spare).
    assert.ok(Math.abs((s.snapshot().workers[0]?.occupancy ?? 0) - 27) < 1e-9);
    // Once they finish, the measurement takes over and the running age fades.
    finish(s, 'w1', 'long-0', { startedAt: 0, finishedAt: 12_000 });
    s.handle({ op: 'tick', now: 12_000 });
    assert.equal(prefix(s, 'long')?.measured, true);
    assert.equal(prefix(s, 'long')?.duration, 12);
  });

  test('a round trip is not a duration: ages below MIN_TELLING_AGE leave a measured estimate alone', () => {
    const s = newState({ defaultTaskDurationMs: 500 });
    addWorker(s, 'w1', 1);
    const tasks: [string][] = [];
    for (let i = 0; i < 100; i++) tasks.push([`tiny-${i}`]);
    submit(s, tasks, tasks.map(([k]) => k), { now: 0 });
    finish(s, 'w1', 'tiny-0', { startedAt: 0, finishedAt: 0.01 });
    const measured = prefix(s, 'tiny')?.duration ?? 0;
    assert.ok(measured < 1e-4, `10 µs measured: ${measured}`);
    // The next tasks are seen running for a few milliseconds: their reports are on the way.
    for (const ts of ['tiny-1', 'tiny-2', 'tiny-3']) {
      s.handle({ op: 'task-started', worker: 'w1', key: ts, startedAt: 1 });
    }
    s.handle({ op: 'tick', now: 1 + MIN_TELLING_AGE * 500 });
    assert.equal(prefix(s, 'tiny')?.duration, measured);
    // The worker's backlog of tiny tasks stays deep (placement.ts, hasBacklogRoom).
    assert.ok((s.snapshot().workers[0]?.processing ?? 0) > 50);
    // A task running for longer than that does raise it.
    s.handle({ op: 'tick', now: 1 + MIN_TELLING_AGE * 2000 });
    assert.equal(prefix(s, 'tiny')?.duration, MIN_TELLING_AGE * 2);
  });

  test('without task-started, a task sent to a free thread is taken to start when sent', () => {
    const s = newState({ defaultTaskDurationMs: 100 });
    addWorker(s, 'w1', 1);
    submit(s, [['slow-1'], ['slow-2']], ['slow-1', 'slow-2'], { now: 1000 });
    s.handle({ op: 'tick', now: 4000 });
    // slow-1 has run 3 s; slow-2 waits behind it (unknown start, not counted).
    assert.equal(prefix(s, 'slow')?.duration, 3);
  });

  test('snapshot: counts by state, per worker and per prefix', () => {
    const s = newState({ saturation: 1 });
    addWorker(s, 'w1', 1);
    submit(s, [['a-1'], ['a-2'], ['b-1', ['a-1', 'a-2']]], ['b-1']);
    finish(s, 'w1', 'a-1', { nbytes: 300 });
    const snap = s.snapshot();
    assert.equal(snap.tasks, 3);
    assert.deepEqual(snap.byState, {
      released: 0,
      waiting: 1,
      'no-worker': 0,
      queued: 0,
      processing: 1,
      memory: 1,
      erred: 0,
    });
    assert.equal(snap.totalThreads, 1);
    assert.equal(snap.clients, 1);
    assert.deepEqual(
      snap.workers.map((w) => [w.worker, w.status, w.processing, w.inMemory, w.nbytes]),
      [['w1', 'running', 1, 1, 300]],
    );
    const a = snap.prefixes.find((p) => p.prefix === 'a');
    assert.equal(a?.counts.memory, 1);
    assert.equal(a.counts.processing, 1);
    assert.equal(snap.prefixes.find((p) => p.prefix === 'b')?.counts.waiting, 1);
    assert.ok(snap.expectedRemainingWork > 0);
    assert.equal(s.totalOccupancy(), snap.workers[0]?.occupancy);
  });
});
