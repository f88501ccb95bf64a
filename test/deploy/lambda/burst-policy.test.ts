// The persistent pool that bursts, as a pure decision: one target split between the pool
// (first to fill, last to empty) and the burst backend, each side following the ordinary
// rules.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type BurstObservation, BurstPolicy, resolvePersistent, splitTarget } from '../../../src/adaptive/burst.js';
import { resolveAdaptiveOptions, type WorkerView } from '../../../src/adaptive/policy.js';

const worker = (name: string, over: Partial<WorkerView> = {}): WorkerView => ({ name, nthreads: 1, idle: true, nbytes: 0, memoryLimit: 2 ** 30, ...over });

const obs = (over: Partial<BurstObservation> = {}): BurstObservation => ({
  now: 0,
  expectedWork: 0,
  pendingTasks: 0,
  holdsResults: false,
  threadsPerWorker: 1,
  persistent: { workers: [], requested: 0, closing: 0 },
  burst: { workers: [], requested: 0, closing: 0 },
  ...over,
});

const policy = (minimum: number, maximum: number, persistent?: number): BurstPolicy => {
  const input = { minimum, maximum, targetDuration: 1000, waitCount: 2, ...(persistent === undefined ? {} : { persistent }) };
  const options = resolveAdaptiveOptions(input);
  return new BurstPolicy(options, resolvePersistent(input, options));
};

void describe('burst policy', () => {
  void test('splitTarget: the pool first, the excess to the burst', () => {
    assert.deepEqual(splitTarget(0, 2), { persistent: 0, burst: 0 });
    assert.deepEqual(splitTarget(2, 2), { persistent: 2, burst: 0 });
    assert.deepEqual(splitTarget(500, 2), { persistent: 2, burst: 498 });
  });

  void test('persistent: defaults to minimum (at least one), and must sit within the bounds', () => {
    const opts = resolveAdaptiveOptions({ minimum: 2, maximum: 10 });
    assert.equal(resolvePersistent({ minimum: 2 }, opts), 2);
    assert.equal(resolvePersistent({}, resolveAdaptiveOptions({})), 1);
    assert.throws(() => resolvePersistent({ persistent: 1 }, opts), /below minimum/);
    assert.throws(() => resolvePersistent({ persistent: 11 }, opts), /above maximum/);
  });

  void test('a burst of work fills the pool to its size and sends the rest to the burst backend', () => {
    const p = policy(2, 500);
    const d = p.decide(obs({ expectedWork: 200, pendingTasks: 200, persistent: { workers: [worker('local-0'), worker('local-1')], requested: 2, closing: 0 } }));
    assert.equal(d.target, 200);
    assert.equal(d.persistent.op, 'hold', 'the pool is full already');
    assert.equal(d.burst.op, 'scale-up');
    assert.equal(d.burst.target, 198);
  });

  void test('the burst asks only for what it has not asked for yet', () => {
    const p = policy(2, 500);
    const d = p.decide(obs({ expectedWork: 200, pendingTasks: 200, persistent: { workers: [worker('local-0'), worker('local-1')], requested: 2, closing: 0 }, burst: { workers: [], requested: 198, closing: 0 } }));
    assert.equal(d.burst.op, 'hold');
  });

  void test('when the work is done the burst goes to zero and the pool stays: results end on the pool', () => {
    const p = policy(2, 500);
    const pool = { workers: [worker('local-0', { nbytes: 100 }), worker('local-1')], requested: 2, closing: 0 };
    let burstWorkers = [worker('lambda-0.a'), worker('lambda-1.b', { nbytes: 5000 })];
    const retired: string[] = [];
    for (let t = 0; t < 6; t++) {
      const d = p.decide(obs({ now: t * 1000, holdsResults: true, persistent: pool, burst: { workers: burstWorkers, requested: burstWorkers.length, closing: 0 } }));
      assert.equal(d.persistent.op, 'hold', 'the pool never shrinks below its floor');
      const down = d.burst;
      if (down.op === 'scale-down') {
        retired.push(...down.workers);
        burstWorkers = burstWorkers.filter((w) => !down.workers.includes(w.name));
      }
    }
    assert.deepEqual(retired.sort(), ['lambda-0.a', 'lambda-1.b']);
  });

  void test('a small job stays on the pool; the burst is not touched', () => {
    const p = policy(1, 50, 4);
    const d = p.decide(obs({ expectedWork: 3, pendingTasks: 3, persistent: { workers: [worker('local-0')], requested: 1, closing: 0 } }));
    assert.equal(d.persistent.op, 'scale-up');
    assert.equal(d.persistent.target, 3);
    assert.equal(d.burst.op, 'hold');
    assert.equal(d.burst.target, 0);
  });

  void test('maximum caps the whole cluster, pool and burst together', () => {
    const p = policy(2, 10);
    const d = p.decide(obs({ expectedWork: 1000, pendingTasks: 1000, persistent: { workers: [worker('a'), worker('b')], requested: 2, closing: 0 } }));
    assert.equal(d.target, 10);
    assert.equal(d.burst.target, 8);
  });

  void test('a failed burst scale-up backs off that side only', () => {
    const p = policy(1, 20);
    const o = obs({ expectedWork: 20, pendingTasks: 20, persistent: { workers: [worker('local-0')], requested: 1, closing: 0 } });
    assert.equal(p.decide(o).burst.op, 'scale-up');
    p.failed('burst', 0);
    assert.equal(p.decide({ ...o, now: 10 }).burst.op, 'hold');
    assert.match(p.decide({ ...o, now: 10 }).burst.reason, /backing off/);
  });
});
