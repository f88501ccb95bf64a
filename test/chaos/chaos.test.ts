/**
 * The short form of the chaos suite (the long form is `npm run bench -- chaos`): seeded
 * random DAGs on a LocalCluster while workers are SIGKILLed one at a time and all at once,
 * frozen (SIGSTOP, then thawed or killed), retired while data moves, and while the
 * adaptive loop scales. Every answer must equal the sequential reference, every run must
 * end before its deadline, and after close no worker process may be left.
 *
 * A failing run names its seed; rerun it with TESSERA_CHAOS_SEEDS=<seed>[,<seed>…].
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sourceApi } from './api.js';
import { ChaosCluster, type ChaosOptions, type FaultKind } from './driver.js';

const seeds = (process.env['TESSERA_CHAOS_SEEDS'] ?? '')
  .split(',')
  .filter((s) => s !== '')
  .map(Number);
/** Seeds per kind: the given ones, else these (fixed, so a failure reproduces). */
const seedsFor = (defaults: readonly number[]): readonly number[] => (seeds.length > 0 ? seeds : defaults);

// Small enough for a loaded two-core machine; each run still has faults land mid-graph.
const options: ChaosOptions = {
  workers: 2,
  deadlineMs: 40_000,
  maxFaults: 2,
  shape: { tasks: 30, maxArrayLength: 131_072, maxSleepMs: 40 },
};

async function check(chaos: ChaosCluster, kind: FaultKind, seed: number): Promise<void> {
  const report = await chaos.run(kind, seed);
  assert.equal(report.outcome, 'ok', report.detail);
}

void describe('chaos: random DAGs on a LocalCluster whose workers fail', () => {
  let chaos: ChaosCluster | undefined;
  before(async () => {
    chaos = await ChaosCluster.start(sourceApi, options);
  });
  after(async () => {
    await chaos?.close();
  });

  const cases: [FaultKind, readonly number[]][] = [
    ['kill-one', seedsFor([1, 2])],
    ['kill-all', seedsFor([3])],
    ['freeze', seedsFor([4])],
    ['retire', seedsFor([5])],
  ];
  for (const [kind, list] of cases) {
    for (const seed of list) void test(`${kind}, seed ${seed}: the answer equals the reference`, () => check(chaos!, kind, seed));
  }

  void test('kill-all-rescale, seed 7: scale(n) at once after every worker was killed brings them back', async () => {
    const report = await chaos!.run('kill-all-rescale', seedsFor([7])[0]!);
    assert.equal(report.outcome, 'ok', report.detail);
  });

  void test('after close, no worker process is left', async () => {
    const left = await chaos!.close();
    chaos = undefined;
    assert.deepEqual(left, [], `still running: ${left.join(' ')}`);
  });
});

void describe('chaos: random DAGs while the adaptive loop scales and workers die under it', () => {
  let chaos: ChaosCluster | undefined;
  before(async () => {
    chaos = await ChaosCluster.start(sourceApi, { ...options, workers: 3 }, true);
  });
  after(async () => {
    await chaos?.close();
  });

  for (const seed of seedsFor([6])) void test(`adaptive, seed ${seed}: the answer equals the reference`, () => check(chaos!, 'adaptive', seed));

  void test('after close, no worker process is left', async () => {
    const left = await chaos!.close();
    chaos = undefined;
    assert.deepEqual(left, [], `still running: ${left.join(' ')}`);
  });
});
