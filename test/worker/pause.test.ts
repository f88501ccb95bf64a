// Pausing follows what the worker can act on: results it holds in memory. Memory it holds
// none of (an uncollected heap, a leak) does not pause it, or it would never run again.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WorkerState } from '../../src/worker/state.js';

describe('pausing on memory', () => {
  test('past the threshold with results in memory: paused; with none: running', () => {
    const state = new WorkerState({ id: 'tcp://me:1', nthreads: 1, memoryPause: 1000, validate: true });
    assert.deepEqual(state.handle({ op: 'memory-sample', process: 5000, managed: 0, now: 0 }), [], 'nothing to act on: not paused');
    assert.equal(state.paused, false);
    const paused = state.handle({ op: 'memory-sample', process: 5000, managed: 800, now: 1 });
    assert.deepEqual(paused.map((i) => i.op === 'worker-status' && i.status), ['paused']);
    assert.equal(state.paused, true);
    // Everything spilled (or released), memory still high: running again, never wedged.
    const running = state.handle({ op: 'memory-sample', process: 5000, managed: 0, now: 2 });
    assert.deepEqual(running.map((i) => i.op === 'worker-status' && i.status), ['running']);
    assert.equal(state.paused, false);
    // Below the threshold: running whatever it holds.
    assert.deepEqual(state.handle({ op: 'memory-sample', process: 500, managed: 400, now: 3 }), []);
    assert.equal(state.paused, false);
  });
});
