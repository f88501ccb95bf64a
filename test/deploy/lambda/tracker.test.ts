// What a Lambda backend knows of its asynchronous invocations, learnt from the scheduler's
// list of workers: arrivals, departures, duplicates, and invocations that never arrive.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvocationTracker } from '../../../src/deploy/lambda/tracker.js';

void describe('invocation tracker', () => {
  void test('invoking, pending, running, then gone when its worker leaves', () => {
    const t = new InvocationTracker('lambda', 10_000);
    const names = t.add(3, 0);
    assert.deepEqual(names, ['lambda-0', 'lambda-1', 'lambda-2']);
    assert.equal(t.requested, 3);
    assert.equal(t.running, 0);
    for (const n of names) t.accepted(n, 5);
    t.observe(['local-0', 'lambda-0.a1b2c3', 'lambda-2.ffffff'], 100);
    assert.equal(t.running, 2);
    assert.equal(t.requested, 3);
    t.observe(['local-0', 'lambda-2.ffffff'], 200);
    assert.equal(t.requested, 2, 'lambda-0 came and went');
    assert.deepEqual(t.counts, { invoked: 3, arrived: 2, finished: 1, lost: 0, failed: 0 });
  });

  void test('an invocation whose worker never arrives is written off after startTimeout', () => {
    const t = new InvocationTracker('lambda', 1000);
    const [name] = t.add(1, 0);
    t.accepted(name!, 0);
    t.observe([], 999);
    assert.equal(t.requested, 1);
    t.observe([], 1000);
    assert.equal(t.requested, 0);
    assert.equal(t.counts.lost, 1);
  });

  void test('a failed invoke no longer counts; retired workers are closing, not requested', () => {
    const t = new InvocationTracker('lambda', 1000);
    const [a, b] = t.add(2, 0);
    t.ended(a!, true);
    t.accepted(b!, 0);
    t.observe(['lambda-1.000001'], 10);
    t.closingWorkers(['lambda-1.000001'], 20);
    assert.equal(t.requested, 0);
    assert.equal(t.closing, 1);
    t.observe([], 30);
    assert.equal(t.closing, 0);
    assert.deepEqual(t.counts, { invoked: 1, arrived: 1, finished: 1, lost: 0, failed: 1 });
  });

  void test('a duplicated delivery is two workers of one invocation; it ends when both have left', () => {
    const t = new InvocationTracker('lambda', 1000);
    const [name] = t.add(1, 0);
    t.accepted(name!, 0);
    t.observe(['lambda-0.aaaaaa', 'lambda-0.bbbbbb'], 10);
    assert.equal(t.running, 1);
    assert.equal(t.counts.arrived, 1);
    t.observe(['lambda-0.bbbbbb'], 20);
    assert.equal(t.running, 1);
    t.observe([], 30);
    assert.equal(t.requested, 0);
  });

  void test('owns its prefix only; names of other backends are ignored', () => {
    const t = new InvocationTracker('lambda', 1000);
    assert.ok(t.owns('lambda-3.abcdef'));
    assert.ok(!t.owns('local-0'));
    assert.ok(!t.owns('lambdax-1'));
    t.observe(['local-0', 'lambda-9.abcdef'], 0);
    assert.equal(t.requested, 0, 'a worker it did not invoke is not counted');
  });
});
