import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvalidArgumentError } from '../../src/errors.js';
import { type AdaptiveObservation, AdaptivePolicy, type WorkerView, parseDuration, resolveAdaptiveOptions } from '../../src/adaptive/policy.js';

const policy = (input: Parameters<typeof resolveAdaptiveOptions>[0] = {}): AdaptivePolicy => new AdaptivePolicy(resolveAdaptiveOptions({ minimum: 0, maximum: 20, ...input }));

const worker = (name: string, over: Partial<WorkerView> = {}): WorkerView => ({ name, nthreads: 1, idle: true, nbytes: 0, memoryLimit: 2 ** 30, ...over });

const obs = (over: Partial<AdaptiveObservation> = {}): AdaptiveObservation => ({
  now: 0,
  expectedWork: 0,
  pendingTasks: 0,
  holdsResults: false,
  workers: [],
  requested: 0,
  closing: 0,
  threadsPerWorker: 1,
  ...over,
});

void describe('adaptive policy', () => {
  void test('an empty cluster given 200 half-second tasks asks for enough workers at once', () => {
    const d = policy().decide(obs({ expectedWork: 100, pendingTasks: 200 }));
    assert.equal(d.op, 'scale-up');
    assert.equal(d.target, 20);
  });

  void test('threads per worker divide the need', () => {
    const d = policy({ maximum: 100 }).decide(obs({ expectedWork: 100, pendingTasks: 200, threadsPerWorker: 4 }));
    assert.equal(d.target, 5);
  });

  void test('requested workers that have not arrived count: no second request', () => {
    const p = policy();
    assert.equal(p.decide(obs({ expectedWork: 100, pendingTasks: 200 })).op, 'scale-up');
    const d = p.decide(obs({ now: 1000, expectedWork: 100, pendingTasks: 200, requested: 20 }));
    assert.equal(d.op, 'hold');
  });

  void test('a burst while workers start asks only for the difference', () => {
    const p = policy({ maximum: 100 });
    const d = p.decide(obs({ expectedWork: 150, pendingTasks: 300, requested: 10 }));
    assert.equal(d.op, 'scale-up');
    assert.equal(d.target, 30);
  });

  void test('minimum and maximum are respected', () => {
    assert.equal(policy({ minimum: 2, maximum: 4 }).decide(obs()).target, 2);
    assert.equal(policy({ minimum: 2, maximum: 4 }).decide(obs({ expectedWork: 1000, pendingTasks: 10 })).target, 4);
    // Never below minimum, even when every worker is idle for long.
    const p = policy({ minimum: 2, maximum: 4 });
    let workers = [worker('a'), worker('b'), worker('c')];
    const downs: string[] = [];
    for (let t = 0; t < 10; t++) {
      const d = p.decide(obs({ now: t * 1000, workers, requested: workers.length }));
      if (d.op === 'scale-down') {
        downs.push(...d.workers);
        workers = workers.filter((w) => !d.workers.includes(w.name));
      }
    }
    assert.equal(downs.length, 1);
    assert.equal(workers.length, 2);
  });

  void test('scale-down waits waitCount ticks, picks idle workers with the least data, keeps one for held results', () => {
    const p = policy({ waitCount: 3 });
    const workers = [worker('big', { nbytes: 1e6 }), worker('small', { nbytes: 10 }), worker('empty')];
    const seen: string[] = [];
    for (let t = 0; t < 3; t++) {
      const d = p.decide(obs({ now: t * 1000, workers, requested: 3, holdsResults: true }));
      if (d.op === 'scale-down') {
        assert.equal(t, 2, 'retired on the third tick');
        assert.equal(d.target, 1);
        seen.push(...d.workers);
      }
    }
    assert.deepEqual(seen.sort(), ['empty', 'small']);
  });

  void test('a nomination interrupted by work starts counting again', () => {
    const p = policy({ waitCount: 3 });
    const workers = [worker('a'), worker('b')];
    const idle = obs({ workers, requested: 2, holdsResults: true });
    assert.equal(p.decide({ ...idle, now: 0 }).op, 'hold');
    assert.equal(p.decide({ ...idle, now: 1000 }).op, 'hold');
    assert.equal(p.decide(obs({ now: 2000, workers, requested: 2, expectedWork: 10, pendingTasks: 4 })).op, 'hold');
    assert.equal(p.decide({ ...idle, now: 3000 }).op, 'hold');
    assert.equal(p.decide({ ...idle, now: 4000 }).op, 'hold');
    assert.equal(p.decide({ ...idle, now: 5000 }).op, 'scale-down');
  });

  void test('a steady workload causes no flapping', () => {
    const p = policy();
    let requested = 0;
    const decisions: string[] = [];
    for (let t = 0; t < 60; t++) {
      const workers = Array.from({ length: requested }, (_, i) => worker(`w${i}`, { idle: false }));
      // Work stays between 40 and 50 s: the target moves between 8 and 10.
      const d = p.decide(obs({ now: t * 1000, workers, requested, expectedWork: 40 + (t % 3) * 5, pendingTasks: 100 }));
      if (d.op !== 'hold') decisions.push(d.op);
      if (d.op === 'scale-up') requested = d.target;
    }
    // Up to the highest level seen (8, 9, 10 workers), then nothing.
    assert.ok(decisions.length <= 3, `decisions: ${decisions.join(',')}`);
    assert.ok(!decisions.includes('scale-down'));
  });

  void test('memory pressure asks for more workers', () => {
    const workers = [worker('a', { nbytes: 0.9 * 2 ** 30, idle: false })];
    const d = policy().decide(obs({ workers, requested: 1, expectedWork: 0.1, pendingTasks: 1 }));
    assert.equal(d.op, 'scale-up');
    assert.equal(d.target, 2);
    assert.match(d.reason, /memory/);
  });

  void test('workers that never arrive are asked for again, with backoff', () => {
    const p = policy({ startupTimeout: 5000, interval: 1000 });
    const work = { expectedWork: 10, pendingTasks: 20 };
    assert.equal(p.decide(obs({ now: 0, ...work })).op, 'scale-up');
    const retries: number[] = [];
    for (let t = 1; t <= 30; t++) {
      const d = p.decide(obs({ now: t * 1000, ...work, requested: 2 }));
      if (d.op === 'scale-up') retries.push(t);
    }
    // Missing since t=1; first retry after the 5 s start-up timeout, then 1 s, 2 s, … apart.
    assert.deepEqual(retries.slice(0, 3), [6, 7, 9]);
    assert.ok(retries.length < 8);
  });

  void test('options are validated with the option named', () => {
    assert.throws(() => resolveAdaptiveOptions({ minimum: -1 }), InvalidArgumentError);
    assert.throws(() => resolveAdaptiveOptions({ minimum: 3, maximum: 2 }), /maximum/);
    assert.throws(() => resolveAdaptiveOptions({ targetDuration: 'soon' }), /targetDuration/);
    assert.throws(() => resolveAdaptiveOptions({ waitCount: 0 }), /waitCount/);
    assert.equal(parseDuration('5s', 'x'), 5000);
    assert.equal(parseDuration('250ms', 'x'), 250);
    assert.equal(parseDuration(7, 'x'), 7);
  });
});
