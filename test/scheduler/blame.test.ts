import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { addWorker, computes, newState, only, submit } from './helpers.js';

describe('a lost worker blames only the tasks that had started on it', () => {
  test('a worker that reports starts: tasks queued behind the started one are not suspects', () => {
    const s = newState({ allowedFailures: 0, saturation: Infinity });
    addWorker(s, 'w1');
    submit(s, [['deadly-1'], ['queued-1'], ['queued-2']], ['deadly-1', 'queued-1', 'queued-2']);
    for (const key of ['deadly-1', 'queued-1', 'queued-2']) assert.equal(s.taskInfo(key)?.processingOn, 'w1');
    s.handle({ op: 'task-started', worker: 'w1', key: 'deadly-1', startedAt: 0 });
    addWorker(s, 'w2');
    const cmds = s.handle({ op: 'remove-worker', worker: 'w1', reason: 'lost', now: 1 });
    const erred = only(cmds, 'key-erred');
    assert.deepEqual(erred.map((e) => e.key), ['deadly-1']);
    assert.equal(erred[0]?.error.name, 'WorkerLostError');
    assert.equal(s.taskInfo('queued-1')?.suspicious, 0);
    assert.equal(s.taskInfo('queued-2')?.suspicious, 0);
    assert.deepEqual(computes(cmds).sort(), ['queued-1@w2', 'queued-2@w2']);
    s.validate();
  });

  test('a start reported for a task since moved elsewhere does not count on the new worker', () => {
    const s = newState({ allowedFailures: 0, saturation: Infinity });
    addWorker(s, 'w1');
    submit(s, [['a-1'], ['b-1']], ['a-1', 'b-1']);
    s.handle({ op: 'task-started', worker: 'w1', key: 'b-1', startedAt: 0 });
    addWorker(s, 'w2');
    // w1 leaves cleanly: everything moves to w2, where nothing has started yet.
    s.handle({ op: 'remove-worker', worker: 'w1', reason: 'closed', now: 1 });
    s.handle({ op: 'task-started', worker: 'w2', key: 'a-1', startedAt: 2 });
    addWorker(s, 'w3');
    const cmds = s.handle({ op: 'remove-worker', worker: 'w2', reason: 'lost', now: 3 });
    assert.deepEqual(only(cmds, 'key-erred').map((e) => e.key), ['a-1']);
    assert.equal(s.taskInfo('b-1')?.suspicious, 0);
    s.validate();
  });

  test('a start report still pending when its task fails and is retried on the same worker does not mark the retry', () => {
    const s = newState({ allowedFailures: 0, saturation: Infinity });
    addWorker(s, 'w1');
    submit(s, [['flaky-1', [], { retries: 1 }], ['other-1']], ['flaky-1', 'other-1']);
    s.handle({ op: 'tasks-started', worker: 'w1', keys: ['flaky-1'], startedAt: 0 });
    s.handle({ op: 'task-erred', worker: 'w1', key: 'flaky-1', error: { name: 'Error', message: 'once', stack: '', kind: 'task' }, now: 1 });
    assert.equal(s.taskInfo('flaky-1')?.processingOn, 'w1', 'retried where it ran');
    s.handle({ op: 'tasks-started', worker: 'w1', keys: ['other-1'], startedAt: 2 });
    addWorker(s, 'w2');
    const cmds = s.handle({ op: 'remove-worker', worker: 'w1', reason: 'lost', now: 3 });
    // Only other-1 had started when w1 died; the retry of flaky-1 had not.
    assert.deepEqual(only(cmds, 'key-erred').map((e) => e.key), ['other-1']);
    assert.equal(s.taskInfo('flaky-1')?.suspicious, 0);
    s.validate();
  });

  test('a task\'s info shows when its worker said it started', () => {
    const s = newState({ saturation: Infinity });
    addWorker(s, 'w1');
    submit(s, [['slow-1'], ['slow-2']], ['slow-1', 'slow-2']);
    s.handle({ op: 'tasks-started', worker: 'w1', keys: ['slow-1'], startedAt: 5 });
    assert.equal(s.taskInfo('slow-1')?.startedAt, 5);
  });

  test('a worker that said nothing started: every task it held is a suspect (one that kills at once is caught)', () => {
    const s = newState({ allowedFailures: 1, saturation: Infinity });
    addWorker(s, 'w1', 2);
    submit(s, [['a-1'], ['b-1'], ['c-1']], ['a-1', 'b-1', 'c-1']);
    addWorker(s, 'w2');
    s.handle({ op: 'remove-worker', worker: 'w1', reason: 'lost', now: 1 });
    for (const key of ['a-1', 'b-1', 'c-1']) assert.equal(s.taskInfo(key)?.suspicious, 1, key);
  });
});
