// The scheduler's state machine with a result store among the holders: pure events in,
// commands out, invariants checked after every step.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SchedulerCommand } from '../../src/scheduler/events.js';
import type { SchedulerState } from '../../src/scheduler/state.js';
import { addWorker, computes, frees, newState, submit } from '../scheduler/helpers.js';

const STORE = 'store:redis://127.0.0.1:6379';

function stored(s: SchedulerState, worker: string, key: string, store = STORE): SchedulerCommand[] {
  const out = s.handle({ op: 'task-finished', worker, key, nbytes: 8, startedAt: 0, finishedAt: 1, now: 1, stored: store });
  s.validate();
  return out;
}

function setUp(): SchedulerState {
  const s = newState();
  s.handle({ op: 'add-store', store: STORE });
  addWorker(s, 'relay://hidden');
  s.validate();
  return s;
}

void describe('a result store as a holder', () => {
  void test('a result written to the store is held by the worker and the store; it outlives the worker', () => {
    const s = setUp();
    assert.deepEqual(computes(submit(s, [['a']], ['a'])), ['a@relay://hidden']);
    stored(s, 'relay://hidden', 'a');
    assert.deepEqual(new Set(s.taskInfo('a')!.whoHas), new Set(['relay://hidden', STORE]));
    s.handle({ op: 'remove-worker', worker: 'relay://hidden', reason: 'lost', now: 2 });
    s.validate();
    assert.equal(s.taskInfo('a')!.state, 'memory');
    assert.deepEqual(s.taskInfo('a')!.whoHas, [STORE]);
    // A dependent goes to a worker, told to fetch its input from the store.
    addWorker(s, 'tcp://w1');
    const out = submit(s, [['b', ['a']]], ['b']);
    const compute = out.find((c) => c.op === 'compute-task');
    assert.ok(compute?.op === 'compute-task');
    assert.equal(compute.worker, 'tcp://w1');
    assert.deepEqual(compute.dependencies[0]![1], [STORE]);
    s.validate();
  });

  void test('the store is never given a task, and the snapshot counts no store among the workers', () => {
    const s = setUp();
    const out = submit(s, [['x'], ['y'], ['z']], ['x', 'y', 'z']);
    for (const c of out) if (c.op === 'compute-task') assert.equal(c.worker, 'relay://hidden');
    assert.equal(s.workerCount, 1);
  });

  void test('a key the scheduler forgets is freed from the store', () => {
    const s = setUp();
    submit(s, [['a']], ['a']);
    stored(s, 'relay://hidden', 'a');
    const out = s.handle({ op: 'release-keys', client: 'c1', keys: ['a'] });
    s.validate();
    assert.deepEqual(new Set(frees(out)), new Set(['a@relay://hidden', `a@${STORE}`]));
  });

  void test('a stored result nobody wants any more is deleted from the store at once', () => {
    const s = setUp();
    submit(s, [['a']], ['a']);
    s.handle({ op: 'release-keys', client: 'c1', keys: ['a'] });
    // It finished after it was released: the copies go.
    const out = stored(s, 'relay://hidden', 'a');
    assert.ok(frees(out).includes(`a@${STORE}`), frees(out).join(' '));
  });

  void test('losing the store is a worker loss for what only it held: recomputed from lineage', () => {
    const s = setUp();
    submit(s, [['a'], ['b', ['a']]], ['b']);
    stored(s, 'relay://hidden', 'a');
    s.handle({ op: 'remove-worker', worker: 'relay://hidden', reason: 'lost', now: 2 });
    s.validate();
    addWorker(s, 'relay://hidden-2');
    const out = s.handle({ op: 'remove-store', store: STORE });
    s.validate();
    assert.equal(s.taskInfo('a')!.state, 'processing');
    assert.ok(computes(out).includes('a@relay://hidden-2') || s.taskInfo('a')!.processingOn === 'relay://hidden-2');
    // Reported stored in a store that is gone: the worker's copy is all there is.
    stored(s, 'relay://hidden-2', 'a');
    assert.deepEqual(s.taskInfo('a')!.whoHas, ['relay://hidden-2']);
    // The store is back, empty; new results go there again.
    s.handle({ op: 'add-store', store: STORE });
    s.validate();
  });

  void test('a store that does not have a key (evicted, expired) is no longer named for it', () => {
    const s = setUp();
    submit(s, [['a']], ['a']);
    stored(s, 'relay://hidden', 'a');
    s.handle({ op: 'remove-worker', worker: 'relay://hidden', reason: 'lost', now: 2 });
    addWorker(s, 'relay://hidden-2');
    const out = s.handle({ op: 'missing-data', worker: 'client-1', key: 'a', from: STORE });
    s.validate();
    assert.deepEqual(computes(out), ['a@relay://hidden-2']);
  });
});
