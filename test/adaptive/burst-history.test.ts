// The scaling history of a persistent pool that bursts: every sample holds each backend's
// counts beside the totals, every decision says whose it is; with one backend, neither.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { BackendFailure, ClusterBackend } from '../../src/adaptive/backend.js';
import { Adaptive, type AdaptiveTarget, type ClusterView } from '../../src/adaptive/loop.js';
import { Client, Scheduler } from '../../src/index.js';

type Worker = ClusterView['workers'][number];

const worker = (name: string, processing = 0): Worker => ({ worker: `id-${name}`, name, status: 'running', nthreads: 1, processing, nbytes: 0, memoryLimit: 2 ** 30 });

/** A backend whose workers arrive when the test says so. */
class FakeBackend implements ClusterBackend {
  requested: number;
  running: number;
  closing = 0;
  readonly threadsPerWorker = 1;
  readonly failures: BackendFailure[] = [];
  readonly #prefix: string;

  constructor(prefix: string, count: number) {
    this.#prefix = prefix;
    this.requested = count;
    this.running = count;
  }

  scaleUp(n: number): void {
    this.requested = Math.max(this.requested, n);
  }

  scaleDown(names: readonly string[]): void {
    this.requested -= names.length;
    this.running -= names.length;
  }

  owns(name: string): boolean {
    return name.startsWith(this.#prefix);
  }

  takeFailures(): readonly BackendFailure[] {
    return this.failures.splice(0);
  }
}

const view = (work: number, workers: readonly Worker[]): ClusterView => ({
  expectedRemainingWork: work,
  byState: { waiting: 0, 'no-worker': 0, queued: work, processing: 0, memory: 0 },
  workers,
  retiring: [],
});

function targetOf(get: () => ClusterView): AdaptiveTarget {
  return { snapshot: get, holdsResults: () => true, retireWorkers: (names) => Promise.resolve(names) };
}

void describe('scaling history of a pool that bursts', () => {
  void test('samples hold the pool and the burst beside the totals; decisions say whose they are', async () => {
    let current = view(40, [worker('local-0', 1)]);
    const pool = new FakeBackend('local-', 1);
    const burst = new FakeBackend('lambda-', 0);
    const loop = new Adaptive(targetOf(() => current), pool, { minimum: 1, maximum: 10, targetDuration: '5s', waitCount: 2, burst });

    await loop.tick(0);
    const first = loop.history().samples[0];
    // Sampled before acting: nothing asked of the burst yet, but the target is split already.
    assert.deepEqual(first?.persistent, { requested: 1, running: 1, closing: 0, target: 1 });
    assert.deepEqual(first.burst, { requested: 0, running: 0, closing: 0, target: 7 });
    assert.equal(first.target, 8);
    const up = loop.history().decisions;
    assert.deepEqual(
      up.map((d) => [d.backend, d.op, d.target]),
      [['burst', 'scale-up', 7]],
    );

    // Three of the seven arrive.
    burst.running = 3;
    current = view(40, [worker('local-0', 1), worker('lambda-0.a', 1), worker('lambda-1.b', 1), worker('lambda-2.c', 1)]);
    await loop.tick(1000);
    const second = loop.history(0).samples;
    assert.equal(second.length, 1);
    const s = second[0]!;
    assert.deepEqual(s.persistent, { requested: 1, running: 1, closing: 0, target: 1 });
    assert.deepEqual(s.burst, { requested: 7, running: 3, closing: 0, target: 7 });
    // The totals are the sums, as a one-backend reader has always read them.
    assert.equal(s.requested, 8);
    assert.equal(s.running, 4);
    assert.equal(s.running, s.persistent.running + s.burst.running);

    // A burst worker fails to start: the entry names the burst.
    burst.failures.push({ worker: 'lambda-3.d', reason: 'TooManyRequestsException' });
    await loop.tick(2000);
    const failed = loop.history(1000).decisions.find((d) => d.op === 'worker-failed');
    assert.equal(failed?.backend, 'burst');

    // The work is done: the burst's idle workers are retired, by decisions of the burst.
    burst.requested = 3;
    current = view(0, [worker('local-0'), worker('lambda-0.a'), worker('lambda-1.b'), worker('lambda-2.c')]);
    for (let t = 3000; t <= 6000; t += 1000) await loop.tick(t);
    const down = loop.history(2000).decisions.filter((d) => d.op === 'scale-down');
    assert.ok(down.length > 0, 'scaled down');
    for (const d of down) {
      assert.equal(d.backend, 'burst');
      assert.equal(d.target, 0);
      assert.ok(d.workers.every((w) => w.startsWith('lambda-')), JSON.stringify(d));
    }
    const last = loop.history().samples.at(-1)!;
    assert.equal(last.burst?.target, 0);
    assert.equal(last.persistent?.target, 1, 'the pool keeps the worker holding results');
  });

  void test('with one backend, samples and decisions are as they always were', async () => {
    const backend = new FakeBackend('local-', 0);
    const loop = new Adaptive(targetOf(() => view(20, [])), backend, { maximum: 10, targetDuration: '5s' });
    backend.failures.push({ worker: 'local-9', reason: 'no room' });
    await loop.tick(0);
    const { samples, decisions } = loop.history();
    assert.deepEqual(Object.keys(samples[0]!).sort(), ['closing', 'inMemory', 'processing', 'queued', 'requested', 'running', 't', 'target', 'waiting']);
    assert.deepEqual(
      decisions.map((d) => d.op),
      ['worker-failed', 'scale-up'],
    );
    for (const d of decisions) assert.equal('backend' in d, false, JSON.stringify(d));
  });

  void test("a client's scalingHistory() carries both sides over the wire", async () => {
    const scheduler = await Scheduler.start({ port: 0, dashboard: false });
    let client: Client | undefined;
    try {
      // Nothing connects: the pool's worker is one the backend says is up, as is the burst's.
      const pool = new FakeBackend('local-', 1);
      const burst = new FakeBackend('lambda-', 2);
      const loop = scheduler.adapt(pool, { minimum: 1, maximum: 5, interval: '1h', burst });
      await loop.tick(0);
      client = await Client.connect(scheduler.address);
      const history = await client.scalingHistory();
      const sample = history?.samples[0];
      assert.deepEqual(sample?.persistent, { requested: 1, running: 1, closing: 0, target: 1 });
      assert.deepEqual(sample.burst, { requested: 2, running: 2, closing: 0, target: 0 });
      assert.equal(sample.running, 3);
    } finally {
      await client?.close();
      scheduler.stopAdapting();
      await scheduler.close();
    }
  });
});
