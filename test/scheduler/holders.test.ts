// The holder the shell names beside keys-in-memory, so a client gathers without a who-has.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { addWorker, finish, newState, submit } from './helpers.js';

describe('holderOf', () => {
  test('names the worker that holds a result, and nothing once it is gone', () => {
    const s = newState();
    addWorker(s, 'w1');
    submit(s, [['x-1']], ['x-1']);
    assert.equal(s.holderOf('x-1'), null, 'processing: nobody holds it yet');
    finish(s, 'w1', 'x-1');
    assert.equal(s.holderOf('x-1'), 'w1');
    s.handle({ op: 'remove-worker', worker: 'w1', reason: 'lost', now: 1 });
    assert.equal(s.holderOf('x-1'), null);
    assert.equal(s.holderOf('never-heard-of'), null);
  });
});
