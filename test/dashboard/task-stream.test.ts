import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TaskStreamBuffer } from '../../src/dashboard/task-stream.js';
import { InvalidArgumentError } from '../../src/errors.js';

const entry = (i: number, stop: number, over: { worker?: string; start?: number; kind?: 'compute' | 'transfer' | 'error'; prefix?: string } = {}) => ({
  key: `k-${i}`,
  prefix: over.prefix ?? 'k',
  worker: over.worker ?? 'w',
  start: over.start ?? stop - 1,
  stop,
  kind: over.kind ?? ('compute' as const),
});

void describe('TaskStreamBuffer', () => {
  void test('keeps the newest `capacity` entries in order of stop', () => {
    const b = new TaskStreamBuffer({ capacity: 5 });
    for (const stop of [1, 2, 4, 3, 6, 5, 7]) b.record(entry(stop, stop));
    assert.equal(b.size, 5);
    assert.equal(b.pushed, 7);
    assert.deepEqual(
      b.since(-Infinity).map((e) => e.stop),
      [3, 4, 5, 6, 7],
    );
    assert.deepEqual(
      b.since(4).map((e) => e.stop),
      [5, 6, 7],
    );
    assert.deepEqual(
      b.since(4, 2).map((e) => e.stop),
      [6, 7],
    );
    assert.deepEqual(b.since(7), []);
  });

  void test('batches of two workers, interleaved, stay in order of stop as the ring wraps', () => {
    const b = new TaskStreamBuffer({ capacity: 37 });
    const kept: number[] = [];
    let i = 0;
    for (let round = 0; round < 20; round++) {
      // Worker a's batch of 9 ends before worker b's batch of 7, but arrives after it.
      const batches = [Array.from({ length: 7 }, (_, j) => round * 100 + 50 + j), Array.from({ length: 9 }, (_, j) => round * 100 + 40 + j * 3)];
      for (const batch of batches) {
        for (const stop of batch) {
          b.record(entry(i++, stop, { worker: batch.length === 7 ? 'b' : 'a' }));
          kept.push(stop);
          kept.sort((x, y) => x - y);
          if (kept.length > 37) kept.shift();
        }
      }
    }
    assert.deepEqual(
      b.since(-Infinity).map((e) => e.stop),
      kept,
    );
    assert.equal(b.prefixTotals().get('k')?.finished, 320);
  });

  void test('an entry given its lane is kept as given, counted under its prefix', () => {
    const b = new TaskStreamBuffer();
    const given = { ...entry(1, 10, { prefix: 'inc' }), thread: 3 };
    assert.equal(b.record(given), given);
    assert.deepEqual(b.since(-Infinity), [given]);
    assert.deepEqual(b.prefixTotals().get('inc'), { finished: 1, erred: 0 });
  });

  void test('assigns lanes: the lowest free at start, one per overlapping task', () => {
    const b = new TaskStreamBuffer({ maxLanesPerWorker: 2 });
    assert.equal(b.record(entry(1, 10, { start: 0 })).thread, 0);
    assert.equal(b.record(entry(2, 12, { start: 1 })).thread, 1);
    assert.equal(b.record(entry(3, 20, { start: 10 })).thread, 0);
    assert.equal(b.record(entry(4, 5, { start: 0, worker: 'other' })).thread, 0);
    // Both lanes busy and the cap reached: it overlaps on the one that frees first.
    assert.equal(b.record(entry(5, 15, { start: 11 })).thread, 1);
    b.forgetWorker('w');
    assert.equal(b.record(entry(6, 30, { start: 25 })).thread, 0);
    assert.equal(b.record({ ...entry(7, 30), thread: 7 }).thread, 7);
  });

  void test('a transfer or error mark (no duration) shares a busy lane rather than opening one', () => {
    const b = new TaskStreamBuffer();
    assert.equal(b.record(entry(1, 10, { start: 0 })).thread, 0);
    assert.equal(b.record(entry(2, 12, { start: 1 })).thread, 1);
    // Reported at 9, while both threads ran past it: on the lane that frees first.
    assert.equal(b.record(entry(3, 9, { start: 9, kind: 'transfer' })).thread, 0);
    assert.equal(b.record(entry(4, 11, { start: 11, kind: 'error' })).thread, 0);
    assert.equal(b.record(entry(5, 3, { start: 3, kind: 'transfer', worker: 'fresh' })).thread, 0);
  });

  void test('counts finished and erred tasks per prefix, past the ring', () => {
    const b = new TaskStreamBuffer({ capacity: 2 });
    for (let i = 0; i < 10; i++) b.record(entry(i, i, { prefix: 'inc' }));
    b.record(entry(10, 10, { prefix: 'add', kind: 'error' }));
    b.record(entry(11, 11, { prefix: 'add', kind: 'transfer' }));
    assert.deepEqual(b.prefixTotals().get('inc'), { finished: 10, erred: 0 });
    assert.deepEqual(b.prefixTotals().get('add'), { finished: 0, erred: 1 });
  });

  void test('validates its options', () => {
    assert.throws(() => new TaskStreamBuffer({ capacity: 0 }), (e: unknown) => e instanceof InvalidArgumentError && e.message.includes('options.capacity'));
  });
});
