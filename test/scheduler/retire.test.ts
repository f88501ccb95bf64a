import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { addWorker, computes, finish, newState, only, stateOf, submit } from './helpers.js';

describe('graceful retirement', () => {
  test('data only the leaving worker holds is copied to a staying worker before it closes', () => {
    const s = newState();
    addWorker(s, 'w1');
    submit(s, [['x-1'], ['y-1']], ['x-1', 'y-1']);
    finish(s, 'w1', 'x-1', { nbytes: 1000 });
    finish(s, 'w1', 'y-1', { nbytes: 2000 });
    addWorker(s, 'w2');
    addWorker(s, 'w3');
    const cmds = s.handle({ op: 'retire-workers', workers: ['w1'], now: 1 });
    const replicate = only(cmds, 'replicate');
    assert.deepEqual(only(cmds, 'close-worker'), [], 'not before the copies landed');
    const planned = replicate.flatMap((r) => r.keys.map((k) => `${k.key}->${r.worker} from ${k.whoHas.join()}`)).sort();
    // Spread over the staying workers, least data first.
    assert.equal(planned.length, 2);
    assert.ok(planned.every((p) => p.endsWith('from w1')));
    assert.notEqual(replicate[0]?.worker, 'w1');
    assert.deepEqual(s.snapshot().retiring, ['w1']);
    assert.equal(s.snapshot().workers.find((w) => w.worker === 'w1')?.status, 'closing');
    // No new work goes to a closing worker.
    const more = submit(s, [['z-1', [], { restrictions: ['w1'] }]], ['z-1']);
    assert.deepEqual(computes(more), []);
    assert.equal(stateOf(s, 'z-1'), 'no-worker');

    let last: ReturnType<typeof s.handle> = [];
    for (const r of replicate) last = s.handle({ op: 'add-keys', worker: r.worker, keys: r.keys.map((k) => k.key) });
    assert.deepEqual(only(last, 'close-worker'), [{ op: 'close-worker', worker: 'w1', reason: 'retired' }]);
    assert.equal(s.hasWorker('w1'), false);
    assert.equal(stateOf(s, 'x-1'), 'memory');
    assert.equal(s.taskInfo('x-1')?.whoHas.includes('w1'), false);
    assert.equal(s.taskInfo('y-1')?.whoHas.length, 1);
  });

  test('workersToRetire names idle workers, least data first', () => {
    const s = newState();
    addWorker(s, 'w1');
    addWorker(s, 'w2');
    addWorker(s, 'w3');
    submit(s, [['x-1', [], { restrictions: ['w1'] }], ['y-1', [], { restrictions: ['w2'] }]], ['x-1', 'y-1']);
    finish(s, 'w1', 'x-1', { nbytes: 500 });
    assert.deepEqual(s.workersToRetire(5), ['w3', 'w1'], 'w2 is busy');
    assert.deepEqual(s.workersToRetire(1), ['w3']);
    s.handle({ op: 'retire-workers', workers: ['w3'], now: 1 });
    assert.deepEqual(s.workersToRetire(5), ['w1']);
  });

  test('a worker holding nothing unique closes at once', () => {
    const s = newState();
    addWorker(s, 'w1');
    addWorker(s, 'w2');
    const cmds = s.handle({ op: 'retire-workers', workers: ['w2', 'nope'], now: 1 });
    assert.deepEqual(cmds, [{ op: 'close-worker', worker: 'w2', reason: 'retired' }]);
    assert.equal(s.workerCount, 1);
  });

  test('retirement that would lose a result is aborted', () => {
    const s = newState();
    addWorker(s, 'w1');
    submit(s, [['x-1']], ['x-1']);
    finish(s, 'w1', 'x-1');
    const cmds = s.handle({ op: 'retire-workers', workers: ['w1'], now: 1 });
    assert.deepEqual(only(cmds, 'retire-aborted').map((c) => c.worker), ['w1']);
    assert.deepEqual(only(cmds, 'close-worker'), []);
    assert.equal(s.snapshot().workers[0]?.status, 'running');
    assert.equal(stateOf(s, 'x-1'), 'memory');
    // A paused worker stays paused when its retirement is given up.
    s.handle({ op: 'worker-status', worker: 'w1', status: 'paused' });
    s.handle({ op: 'retire-workers', workers: ['w1'], now: 2 });
    assert.equal(s.snapshot().workers[0]?.status, 'paused');
  });

  test('unstarted work is asked back; running work finishes and its result is moved', () => {
    const s = newState({ saturation: 2 });
    addWorker(s, 'w1');
    submit(s, [['a-1'], ['a-2']], ['a-1', 'a-2']);
    assert.equal(s.snapshot().workers[0]?.processing, 2);
    addWorker(s, 'w2');
    const cmds = s.handle({ op: 'retire-workers', workers: ['w1'], now: 1 });
    // a-1 went to a free thread (taken as started); a-2 waits behind it and is asked back.
    assert.deepEqual(
      only(cmds, 'steal-request').map((c) => c.key),
      ['a-2'],
    );
    const back = s.handle({ op: 'steal-response', worker: 'w1', key: 'a-2', accepted: true });
    assert.deepEqual(computes(back), ['a-2@w2']);
    const done = finish(s, 'w1', 'a-1', { nbytes: 10 });
    assert.equal(only(done, 'key-in-memory').length, 1);
    const [rep] = only(done, 'replicate');
    assert.deepEqual(rep, { op: 'replicate', worker: 'w2', keys: [{ key: 'a-1', whoHas: ['w1'] }] });
    const closed = s.handle({ op: 'add-keys', worker: 'w2', keys: ['a-1'] });
    assert.deepEqual(only(closed, 'close-worker'), [{ op: 'close-worker', worker: 'w1', reason: 'retired' }]);
  });

  test('if the copy target dies, the copy is planned again elsewhere', () => {
    const s = newState();
    addWorker(s, 'w1');
    submit(s, [['x-1']], ['x-1']);
    finish(s, 'w1', 'x-1');
    addWorker(s, 'w2');
    const [rep] = only(s.handle({ op: 'retire-workers', workers: ['w1'], now: 1 }), 'replicate');
    assert.equal(rep?.worker, 'w2');
    addWorker(s, 'w3');
    const again = s.handle({ op: 'remove-worker', worker: 'w2', reason: 'lost', now: 2 });
    assert.deepEqual(
      only(again, 'replicate').map((r) => r.worker),
      ['w3'],
    );
    const closed = s.handle({ op: 'add-keys', worker: 'w3', keys: ['x-1'] });
    assert.deepEqual(only(closed, 'close-worker'), [{ op: 'close-worker', worker: 'w1', reason: 'retired' }]);
    assert.deepEqual(s.taskInfo('x-1')?.whoHas, ['w3']);
  });

  test('data no longer needed does not hold a retirement up', () => {
    const s = newState();
    addWorker(s, 'w1');
    submit(s, [['x-1']], ['x-1']);
    finish(s, 'w1', 'x-1');
    addWorker(s, 'w2');
    s.handle({ op: 'retire-workers', workers: ['w1'], now: 1 });
    const cmds = s.handle({ op: 'release-keys', client: 'c1', keys: ['x-1'] });
    assert.deepEqual(only(cmds, 'close-worker'), [{ op: 'close-worker', worker: 'w1', reason: 'retired' }]);
  });
});
