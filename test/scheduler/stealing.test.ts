import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SchedulerState } from '../../src/scheduler/state.js';
import { addWorker, computes, finish, newState, only, stateOf, submit } from './helpers.js';

/** w1 (1 thread) ends up processing `n` non-root tasks, each on its own input of `nbytes`. */
function pileUp(s: SchedulerState, n: number, nbytes: number): void {
  addWorker(s, 'w1');
  // Pinned, so they all run at once instead of queuing for w1's slots.
  const loads: [string, string[], { restrictions: string[] }][] = [];
  for (let i = 0; i < n; i++) loads.push([`load-${i}`, [], { restrictions: ['w1'] }]);
  const procs: [string, string[]][] = [];
  for (let i = 0; i < n; i++) procs.push([`proc-${i}`, [`load-${i}`]]);
  submit(
    s,
    [...loads, ...procs],
    procs.map(([k]) => k),
  );
  for (let i = 0; i < n; i++) finish(s, 'w1', `load-${i}`, { nbytes });
  assert.equal(s.snapshot().workers[0]?.processing, n);
}

describe('work stealing', () => {
  test('an idle worker steals queued work whose compute dominates the transfer', () => {
    const s = newState();
    pileUp(s, 6, 10_000);
    addWorker(s, 'w2', 2);
    const cmds = s.handle({ op: 'tick', now: 100 });
    const requests = only(cmds, 'steal-request');
    assert.equal(requests.length, 2, 'as many as the thief has idle threads');
    assert.ok(requests.every((r) => r.worker === 'w1'));
    // Lowest priority first: those the victim would reach last.
    assert.deepEqual(
      requests.map((r) => r.key),
      ['proc-5', 'proc-4'],
    );
    assert.equal(s.snapshot().stealsInFlight, 2);
    // No duplicate requests while the first are in flight and the thief is reserved.
    assert.deepEqual(only(s.handle({ op: 'tick', now: 200 }), 'steal-request'), []);

    const accepted = s.handle({ op: 'steal-response', worker: 'w1', key: 'proc-5', accepted: true });
    assert.deepEqual(computes(accepted), ['proc-5@w2']);
    assert.deepEqual(only(accepted, 'free-keys'), [], 'the victim already dropped it');
    const refused = s.handle({ op: 'steal-response', worker: 'w1', key: 'proc-4', accepted: false });
    assert.deepEqual(refused, []);
    assert.equal(s.taskInfo('proc-4')?.processingOn, 'w1');
    assert.equal(s.snapshot().stealsInFlight, 0);
    // The stolen task's result is reported from the thief.
    assert.equal(only(finish(s, 'w2', 'proc-5'), 'key-in-memory').length, 1);
    assert.equal(stateOf(s, 'proc-5'), 'memory');
  });

  test('tasks known to have started are not asked for', () => {
    const s = newState();
    pileUp(s, 6, 10_000);
    for (const k of ['proc-5', 'proc-4']) s.handle({ op: 'task-started', worker: 'w1', key: k, startedAt: 50 });
    addWorker(s, 'w2', 2);
    const requests = only(s.handle({ op: 'tick', now: 100 }), 'steal-request');
    assert.deepEqual(
      requests.map((r) => r.key),
      ['proc-3', 'proc-2'],
    );
  });

  test('no stealing when moving the inputs costs more than computing', () => {
    const s = newState();
    pileUp(s, 6, 1e9); // 10 s to move each input, 0.5 s to compute
    addWorker(s, 'w2', 2);
    assert.deepEqual(only(s.handle({ op: 'tick', now: 100 }), 'steal-request'), []);
  });

  test('no stealing when workStealing is off', () => {
    const s = newState({ workStealing: false });
    pileUp(s, 6, 10_000);
    addWorker(s, 'w2', 2);
    assert.deepEqual(only(s.handle({ op: 'tick', now: 100 }), 'steal-request'), []);
  });

  test('unanswered steal requests expire; late answers are ignored', () => {
    const s = newState({ stealTimeoutMs: 1000 });
    pileUp(s, 6, 10_000);
    addWorker(s, 'w2', 1);
    const [req] = only(s.handle({ op: 'tick', now: 100 }), 'steal-request');
    assert.ok(req !== undefined);
    s.handle({ op: 'tick', now: 1200 }); // expires it (and may ask again)
    const late = s.handle({ op: 'steal-response', worker: 'w2', key: req.key, accepted: true });
    assert.deepEqual(late, [], 'a response from a worker that is not the victim is ignored');
    assert.equal(s.taskInfo(req.key)?.processingOn, 'w1');
  });

  test('a steal whose task finished meanwhile changes nothing', () => {
    const s = newState();
    pileUp(s, 4, 10_000);
    addWorker(s, 'w2', 1);
    const [req] = only(s.handle({ op: 'tick', now: 100 }), 'steal-request');
    assert.ok(req !== undefined);
    finish(s, 'w1', req.key);
    assert.deepEqual(s.handle({ op: 'steal-response', worker: 'w1', key: req.key, accepted: true }), []);
    assert.equal(stateOf(s, req.key), 'memory');
  });

  test('paused workers are robbed of work they have not started', () => {
    const s = newState();
    pileUp(s, 3, 10_000);
    addWorker(s, 'w2', 4);
    s.handle({ op: 'worker-status', worker: 'w1', status: 'paused' });
    const requests = only(s.handle({ op: 'tick', now: 100 }), 'steal-request');
    assert.equal(requests.length, 3);
  });
});
