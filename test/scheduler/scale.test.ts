import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { GraphTask } from '../../src/scheduler/events.js';
import { addWorker, fail, finish, frees, newState, only } from './helpers.js';

describe('large shapes', () => {
  test('a 100,000-long chain errs, recomputes and is forgotten without recursion', () => {
    const s = newState();
    addWorker(s, 'w1');
    const n = 100_000;
    const tasks: GraphTask[] = [];
    for (let i = 0; i < n; i++) tasks.push({ key: `c-${i}`, dependencies: i === 0 ? [] : [`c-${i - 1}`], spec: null });
    s.handle({ op: 'update-graph', client: 'c1', tasks, wanted: [`c-${n - 1}`], now: 0 });
    assert.equal(s.stateCounts().waiting, n - 1);
    const erred = only(fail(s, 'w1', 'c-0'), 'key-erred');
    assert.deepEqual(
      erred.map((c) => c.key),
      [`c-${n - 1}`],
    );
    assert.equal(s.stateCounts().erred, n);
    s.handle({ op: 'release-keys', client: 'c1', keys: [`c-${n - 1}`] });
    assert.equal(s.taskCount, 0);
  });

  test('a key with 50,000 dependents is released and forgotten (lazily compacted edges)', () => {
    const s = newState();
    addWorker(s, 'w1', 4);
    const n = 50_000;
    const tasks: GraphTask[] = [{ key: 'shared', dependencies: [], spec: null }];
    const wanted: string[] = [];
    for (let i = 0; i < n; i++) {
      tasks.push({ key: `use-${i}`, dependencies: ['shared'], spec: null });
      wanted.push(`use-${i}`);
    }
    s.handle({ op: 'update-graph', client: 'c1', tasks, wanted, now: 0 });
    finish(s, 'w1', 'shared', { nbytes: 1e6 });
    assert.equal(s.stateCounts().queued + s.stateCounts().processing, n, 'widely shared input: queued as roots');
    // Release them all one by one; the shared input is forgotten with the last.
    let freed: string[] = [];
    for (let i = 0; i < n; i++) freed = frees(s.handle({ op: 'release-keys', client: 'c1', keys: [`use-${i}`] }));
    assert.ok(freed.includes('shared@w1'));
    assert.equal(s.taskCount, 0);
  });
});
