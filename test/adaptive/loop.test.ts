import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Adaptive } from '../../src/adaptive/loop.js';
import type { ClusterBackend } from '../../src/adaptive/backend.js';
import { SimulatedCluster, type SimulatedTask } from '../../src/deploy/simulated/cluster.js';
import { SchedulerState } from '../../src/scheduler/state.js';

const sleeps = (n: number, ms = 1000, prefix = 'sleep'): SimulatedTask[] => Array.from({ length: n }, (_, i) => ({ key: `${prefix}-${i}`, duration: ms }));
const adapt = { minimum: 0, maximum: 20, targetDuration: '5s', interval: '1s', waitCount: 3 } as const;

void describe('adaptive scaling in simulation (real scheduler core and loop)', () => {
  void test('scales up from zero on submission, with many workers at once', async () => {
    const sim = new SimulatedCluster({ startupDelay: 500, adapt });
    sim.submit(sleeps(200));
    const report = await sim.run();
    const first = report.history.decisions[0];
    assert.equal(first?.op, 'scale-up');
    assert.equal(first.t, 0);
    assert.equal(first.target, 20);
    assert.equal(report.peakWorkers, 20);
    assert.equal(report.timeToFirstWorker, 500);
  });

  void test('scales down to the worker holding results after the work, losing nothing', async () => {
    const sim = new SimulatedCluster({ startupDelay: 500, adapt });
    sim.submit(sleeps(200));
    const report = await sim.run();
    assert.equal(report.resultsLost, 0);
    assert.equal(report.floor, 1);
    assert.equal(sim.running, 1);
    assert.ok(report.backToMinimum >= 0 && report.backToMinimum <= 3 * 1000 + 2000, `back to minimum after ${report.backToMinimum} ms`);
    for (const key of sleeps(200).map((t) => t.key)) assert.equal(sim.state.taskInfo(key)?.state, 'memory', key);
  });

  void test('minimum and maximum hold at every sample', async () => {
    const sim = new SimulatedCluster({ startupDelay: 300, adapt: { ...adapt, minimum: 2, maximum: 7 } });
    sim.submit(sleeps(300, 500));
    const report = await sim.run();
    assert.ok(report.history.samples.length > 10);
    for (const s of report.history.samples) {
      assert.ok(s.requested <= 7, `requested ${s.requested}`);
      if (s.t > 300) assert.ok(s.running >= 2, `running ${s.running} at ${s.t}`);
    }
    assert.equal(sim.running, 2);
  });

  void test('a steady stream of work causes a bounded number of decisions', async () => {
    const sim = new SimulatedCluster({ startupDelay: 200, adapt: { ...adapt, maximum: 50 } });
    // Ten waves, one every 5 s, each of 50 tasks of 1 s: steady demand of ~10 workers.
    for (let wave = 0; wave < 10; wave++) {
      const tasks = sleeps(50, 1000, `wave${wave}`);
      if (wave === 0) sim.submit(tasks);
      else setImmediateAt(sim, wave * 5000, () => sim.submit(tasks));
    }
    const report = await sim.run();
    assert.equal(report.resultsLost, 0);
    const described = report.history.decisions.map((d) => `${d.t}:${d.op}:${d.target}`).join(' ');
    assert.ok(report.decisions <= 8, `decisions: ${described}`);
    // No worker is let go between waves: scale-down only once the last wave is done.
    for (const d of report.history.decisions) if (d.op === 'scale-down') assert.ok(d.t >= 50_000, described);
  });

  void test('workers that never arrive do not wedge the scheduler: asked for again with backoff', async () => {
    const sim = new SimulatedCluster({ startupDelay: 10 * 60_000, adapt: { ...adapt, startupTimeout: '5s' } });
    sim.submit(sleeps(20));
    const report = await sim.run(60_000);
    const retries = report.history.decisions.filter((d) => d.op === 'scale-up' && d.reason.startsWith('retry'));
    assert.ok(retries.length >= 2 && retries.length <= 8, `${retries.length} retries`);
    // The loop kept sampling the whole time.
    assert.ok(report.history.samples.length >= 55);
  });

  void test('a backend whose scaleUp throws is retried with backoff and the loop goes on', async () => {
    const state = new SchedulerState();
    state.handle({ op: 'update-graph', client: 'c', tasks: [{ key: 'a-1', dependencies: [], spec: null }], wanted: ['a-1'], now: 0 });
    let calls = 0;
    const backend: ClusterBackend = {
      scaleUp() {
        calls++;
        throw new Error('quota exceeded');
      },
      scaleDown() {},
      requested: 0,
      running: 0,
      closing: 0,
      threadsPerWorker: 1,
    };
    const lines: string[] = [];
    const loop = new Adaptive({ snapshot: () => state.snapshot(), holdsResults: () => false, retireWorkers: (names) => Promise.resolve(names) }, backend, { interval: 1000 }, (l) => lines.push(l));
    for (let t = 0; t <= 20_000; t += 1000) await loop.tick(t);
    assert.ok(calls >= 3 && calls <= 7, `${calls} calls`);
    assert.ok(lines.some((l) => l.includes('quota exceeded')));
    assert.equal(loop.history().samples.length, 21);
  });

  void test('workers a backend could not start are logged and recorded in the scaling history', async () => {
    const state = new SchedulerState();
    state.handle({ op: 'update-graph', client: 'c', tasks: [{ key: 'a-1', dependencies: [], spec: null }], wanted: ['a-1'], now: 0 });
    const pending = [{ worker: 'w-pod-1', reason: 'ImagePullBackOff: Back-off pulling image "registry.example/tessera:nope"' }];
    const backend: ClusterBackend = {
      scaleUp() {},
      scaleDown() {},
      requested: 0,
      running: 0,
      closing: 0,
      threadsPerWorker: 1,
      takeFailures: () => pending.splice(0),
    };
    const lines: string[] = [];
    const loop = new Adaptive({ snapshot: () => state.snapshot(), holdsResults: () => false, retireWorkers: (names) => Promise.resolve(names) }, backend, { interval: 1000 }, (l) => lines.push(l));
    for (let t = 0; t <= 3000; t += 1000) await loop.tick(t);
    const failed = loop.history().decisions.filter((d) => d.op === 'worker-failed');
    assert.equal(failed.length, 1, 'recorded once');
    assert.deepEqual({ ...failed[0], t: 0 }, { op: 'worker-failed', target: failed[0]!.target, worker: 'w-pod-1', reason: pending.length === 0 ? 'ImagePullBackOff: Back-off pulling image "registry.example/tessera:nope"' : '', t: 0 });
    assert.ok(lines.some((l) => l.includes('worker failed to start') && l.includes('w-pod-1')), lines.join('\n'));
  });
});

/** Schedules `fn` at virtual time `t` on the simulation's timeline. */
function setImmediateAt(sim: SimulatedCluster, t: number, fn: () => void): void {
  sim.at(t, fn);
}

void describe('adaptive scale-down after a retirement given up', () => {
  void test('only the workers that left are scaled down; a kept one is not stopped', async () => {
    const state = new SchedulerState();
    for (const w of ['w1', 'w2']) state.handle({ op: 'add-worker', worker: w, name: w, nthreads: 1, memoryLimit: 1e9, now: 0 });
    const scaledDown: string[][] = [];
    const backend: ClusterBackend = {
      scaleUp() {},
      scaleDown(names) {
        scaledDown.push([...names]);
      },
      requested: 2,
      running: 2,
      closing: 0,
      threadsPerWorker: 1,
    };
    const asked: string[][] = [];
    // The scheduler lets w1 go; the retirement of every other worker is given up.
    const retireWorkers = (names: readonly string[]): Promise<readonly string[]> => {
      asked.push([...names]);
      return Promise.resolve(names.filter((n) => n === 'w1'));
    };
    const loop = new Adaptive({ snapshot: () => state.snapshot(), holdsResults: () => false, retireWorkers }, backend, { minimum: 0, interval: 1000, waitCount: 1 });
    for (let t = 0; t <= 5000 && asked.length === 0; t += 1000) await loop.tick(t);
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(asked.length > 0 && asked[0]!.includes('w2'), `asked to retire ${JSON.stringify(asked)}`);
    assert.deepEqual(scaledDown, asked[0]!.includes('w1') ? [['w1']] : []);
    assert.ok(scaledDown.every((names) => !names.includes('w2')), 'w2 stays');
  });
});
