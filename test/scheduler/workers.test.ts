import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { addWorker, computes, finish, frees, newState, only, stateOf, submit } from './helpers.js';

describe('workers coming, going and pausing', () => {
  test('a lost worker: its processing tasks move elsewhere and become suspicious', () => {
    const s = newState();
    addWorker(s, 'w1');
    submit(s, [['a-1']], ['a-1']);
    addWorker(s, 'w2');
    const cmds = s.handle({ op: 'remove-worker', worker: 'w1', reason: 'lost', now: 1 });
    assert.deepEqual(computes(cmds), ['a-1@w2']);
    assert.deepEqual(frees(cmds), [], 'nothing is sent to the dead worker');
    assert.equal(s.taskInfo('a-1')?.suspicious, 1);
    assert.equal(s.hasWorker('w1'), false);
  });

  test('a task that keeps killing workers errs with a WorkerLostError after allowedFailures', () => {
    const s = newState({ allowedFailures: 1 });
    addWorker(s, 'w1');
    submit(s, [['bad-1'], ['after-1', ['bad-1']]], ['after-1']);
    addWorker(s, 'w2');
    assert.deepEqual(computes(s.handle({ op: 'remove-worker', worker: 'w1', reason: 'lost', now: 1 })), ['bad-1@w2']);
    addWorker(s, 'w3');
    const cmds = s.handle({ op: 'remove-worker', worker: 'w2', reason: 'lost', now: 2 });
    assert.deepEqual(computes(cmds), []);
    const erred = only(cmds, 'key-erred');
    assert.equal(erred.length, 1);
    assert.equal(erred[0]?.key, 'after-1');
    assert.equal(erred[0].error.name, 'WorkerLostError');
    assert.match(erred[0].error.message, /'bad-1' was running on 2 workers that died/);
    assert.equal(stateOf(s, 'bad-1'), 'erred');
  });

  test('retired or closed workers do not make their tasks suspicious', () => {
    const s = newState({ allowedFailures: 0 });
    addWorker(s, 'w1');
    submit(s, [['a-1']], ['a-1']);
    addWorker(s, 'w2');
    const cmds = s.handle({ op: 'remove-worker', worker: 'w1', reason: 'closed', now: 1 });
    assert.deepEqual(computes(cmds), ['a-1@w2']);
    assert.equal(s.taskInfo('a-1')?.suspicious, 0);
  });

  test('data whose only copy was lost is recomputed, and its dependents wait again', () => {
    const s = newState();
    addWorker(s, 'w1');
    submit(s, [['a-1'], ['b-1', ['a-1']], ['c-1', ['b-1']]], ['c-1']);
    finish(s, 'w1', 'a-1', { nbytes: 10_000 });
    finish(s, 'w1', 'b-1', { nbytes: 10_000 });
    addWorker(s, 'w2');
    assert.equal(s.taskInfo('c-1')?.processingOn, 'w1');
    // c-1 runs on w1, which dies with b-1 (a-1 was already freed).
    const cmds = s.handle({ op: 'remove-worker', worker: 'w1', reason: 'lost', now: 1 });
    assert.deepEqual(computes(cmds), ['a-1@w2'], 'the lineage is recomputed from the start');
    assert.equal(stateOf(s, 'b-1'), 'waiting');
    assert.equal(stateOf(s, 'c-1'), 'waiting');
    assert.equal(s.taskInfo('c-1')?.suspicious, 1);
    assert.deepEqual(computes(finish(s, 'w2', 'a-1', { nbytes: 10_000 })), ['b-1@w2']);
    assert.deepEqual(computes(finish(s, 'w2', 'b-1', { nbytes: 10_000 })), ['c-1@w2']);
  });

  test('a lost dependency pulls back dependents processing on other workers', () => {
    const s = newState();
    addWorker(s, 'w1');
    submit(s, [['big-1']], ['big-1']);
    finish(s, 'w1', 'big-1', { nbytes: 10_000 });
    addWorker(s, 'w2');
    // Pin the dependent to w2 so it must fetch big-1 from w1.
    submit(s, [['use-1', ['big-1'], { restrictions: ['w2'] }]], ['use-1']);
    assert.equal(s.taskInfo('use-1')?.processingOn, 'w2');
    const cmds = s.handle({ op: 'remove-worker', worker: 'w1', reason: 'lost', now: 1 });
    assert.deepEqual(frees(cmds), ['use-1@w2']);
    assert.deepEqual(computes(cmds), ['big-1@w2']);
    assert.equal(stateOf(s, 'use-1'), 'waiting');
  });

  test('no worker: root tasks queue, other tasks wait in no-worker until one arrives', () => {
    const s = newState();
    const cmds = submit(s, [['a-1'], ['pinned-1', [], { restrictions: ['w9'] }]], ['a-1', 'pinned-1']);
    assert.deepEqual(cmds, []);
    assert.equal(stateOf(s, 'a-1'), 'queued');
    assert.equal(stateOf(s, 'pinned-1'), 'no-worker');
    assert.deepEqual(computes(addWorker(s, 'w1')), ['a-1@w1']);
    assert.equal(stateOf(s, 'pinned-1'), 'no-worker');
    // Restrictions match worker ids or names.
    assert.deepEqual(
      computes(s.handle({ op: 'add-worker', worker: 'tcp://x:1', name: 'w9', nthreads: 1, memoryLimit: 1, now: 0 })),
      ['pinned-1@tcp://x:1'],
    );
  });

  test('paused workers get no new tasks', () => {
    const s = newState({ saturation: 1 });
    addWorker(s, 'w1');
    addWorker(s, 'w2');
    s.handle({ op: 'worker-status', worker: 'w1', status: 'paused' });
    const cmds = submit(s, [['a-1'], ['a-2'], ['a-3']], ['a-1', 'a-2', 'a-3']);
    assert.deepEqual(computes(cmds), ['a-1@w2']);
    s.handle({ op: 'worker-status', worker: 'w2', status: 'paused' });
    assert.deepEqual(computes(finish(s, 'w2', 'a-1')), []);
    assert.deepEqual(computes(s.handle({ op: 'worker-status', worker: 'w1', status: 'running' })), ['a-2@w1']);
  });

  test('workers silent for longer than workerTtlMs are removed on a tick', () => {
    const s = newState({ workerTtlMs: 1000, workStealing: false });
    addWorker(s, 'w1', 1, 0);
    addWorker(s, 'w2', 1, 0);
    submit(s, [['a-1'], ['a-2']], ['a-1', 'a-2'], { now: 0 });
    s.handle({ op: 'heartbeat', worker: 'w2', now: 900, memory: { managed: 1, spilled: 0, process: 2 } });
    const cmds = s.handle({ op: 'tick', now: 1500 });
    assert.deepEqual(only(cmds, 'close-worker'), [{ op: 'close-worker', worker: 'w1', reason: 'lost' }]);
    assert.equal(s.hasWorker('w1'), false);
    assert.equal(stateOf(s, 'a-1'), 'processing');
    assert.equal(s.taskInfo('a-1')?.processingOn, 'w2');
    assert.equal(s.snapshot().workers[0]?.memory.process, 2);
  });

  test('add-keys records replicas; missing-data drops a holder and recomputes when none is left', () => {
    const s = newState();
    addWorker(s, 'w1');
    addWorker(s, 'w2');
    addWorker(s, 'w3');
    submit(s, [['a-1']], ['a-1']);
    const on = s.taskInfo('a-1')?.processingOn as string;
    finish(s, on, 'a-1', { nbytes: 1000 });
    const other = on === 'w1' ? 'w2' : 'w1';
    assert.deepEqual(s.handle({ op: 'add-keys', worker: other, keys: ['a-1'] }), []);
    assert.deepEqual([...(s.taskInfo('a-1')?.whoHas ?? [])].sort(), [on, other].sort());
    // A replica of something the scheduler does not hold is dropped.
    assert.deepEqual(frees(s.handle({ op: 'add-keys', worker: other, keys: ['zzz'] })), [`zzz@${other}`]);
    assert.deepEqual(s.handle({ op: 'missing-data', worker: 'w3', key: 'a-1', from: on }), []);
    assert.deepEqual(s.taskInfo('a-1')?.whoHas, [other]);
    const cmds = s.handle({ op: 'missing-data', worker: 'w3', key: 'a-1', from: other });
    assert.equal(computes(cmds).length, 1, 'a wanted key with no copy left is recomputed');
    assert.equal(stateOf(s, 'a-1'), 'processing');
  });

  test('scattered data is placed on its worker, used for locality, and lost with it', () => {
    const s = newState();
    addWorker(s, 'w1');
    addWorker(s, 'w2');
    const sc = s.handle({ op: 'scatter', client: 'c1', worker: 'w2', keys: [{ key: 'data', nbytes: 50e6 }] });
    assert.deepEqual(only(sc, 'key-in-memory'), [{ op: 'key-in-memory', clients: ['c1'], key: 'data', nbytes: 50e6, holder: 'w2' }]);
    const cmds = submit(s, [['use-1', ['data']]], ['use-1']);
    assert.deepEqual(computes(cmds), ['use-1@w2']);
    const gone = s.handle({ op: 'remove-worker', worker: 'w2', reason: 'lost', now: 1 });
    assert.deepEqual(
      only(gone, 'key-lost').map((c) => c.key),
      ['data'],
    );
    assert.deepEqual(
      only(gone, 'key-erred').map((c) => [c.key, c.error.name]),
      [['use-1', 'WorkerLostError']],
    );
    assert.deepEqual(computes(gone), []);
  });

  test('a worker registering again under the same id is treated as a restart', () => {
    const s = newState();
    addWorker(s, 'w1');
    submit(s, [['a-1']], ['a-1']);
    const cmds = addWorker(s, 'w1');
    assert.deepEqual(computes(cmds), ['a-1@w1']);
    assert.equal(s.taskInfo('a-1')?.suspicious, 1);
    assert.equal(s.workerCount, 1);
  });
});
