// Adaptive LocalCluster with real worker processes: up from zero when work arrives, down to
// the floor after it without losing a result, within [minimum, maximum], with its history
// readable by the client. No timing thresholds: conditions are polled with long timeouts.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, type Future, LocalCluster } from '../../src/index.js';
import { until } from '../helpers/wait.js';

const quick = { targetDuration: '1s', interval: 200, waitCount: 2 } as const;

const slowSquare = async (x: number): Promise<number> => {
  await new Promise((resolve) => setTimeout(resolve, 300));
  return x * x;
};
/** A result big enough that holders differ by bytes, so retirement has data to move. */
const block = async (x: number): Promise<Float64Array> => {
  await new Promise((resolve) => setTimeout(resolve, 300));
  return new Float64Array(10_000).fill(x);
};

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

void describe('adaptive LocalCluster', () => {
  let cluster: LocalCluster;
  let client: Client;

  before(async () => {
    cluster = await LocalCluster.start({ workers: 0, dashboard: false });
    cluster.adapt({ minimum: 0, maximum: 3, ...quick });
    client = await Client.connect(cluster.address);
  });

  after(async () => {
    await (client as Client | undefined)?.close();
    await (cluster as LocalCluster | undefined)?.close();
  });

  let squares: Future<number>[] = [];
  let blocks: Future<Float64Array>[] = [];

  void test('scales up from zero when work is submitted', async () => {
    assert.equal(cluster.running, 0);
    assert.equal(cluster.requested, 0);
    squares = client.map(slowSquare, range(24));
    await until(() => cluster.running > 0, 'a worker runs');
    assert.deepEqual(await client.gather(squares), range(24).map((x) => x * x));
    const history = await client.scalingHistory();
    assert.ok(history !== null);
    const up = history.decisions.find((d) => d.op === 'scale-up');
    assert.ok(up !== undefined, 'a scale-up decision');
    // 24 × 0.3 s in a target of 1 s asks for more than one worker at once.
    assert.ok(up.target > 1, `first scale-up to ${up.target}`);
  });

  void test('scales down to the one worker holding the results; every result still gathers', async () => {
    await until(() => cluster.running === 1 && cluster.requested === 1 && cluster.closing === 0, 'back to one worker');
    assert.equal(cluster.processes.length, 1);
    assert.deepEqual(await client.gather(squares), range(24).map((x) => x * x));
  });

  void test('retirement moves the only copy of a wanted result first', async () => {
    blocks = client.map(block, range(30));
    // The results are made on several workers, each holding the only copy of some. Watched
    // while they run: a worker that finished its share early may already be retiring (its
    // results moving to another) by the time the last one is done.
    const state = cluster.scheduler;
    const holders = new Set<string>();
    let done = false;
    const all = client.wait(blocks).finally(() => (done = true));
    while (!done) {
      for (const f of blocks) for (const w of state.taskInfo(f.key)?.whoHas ?? []) holders.add(w);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await all;
    assert.ok(holders.size > 1, `results made on ${holders.size} worker(s)`);
    await until(() => cluster.running === 1 && cluster.requested === 1 && cluster.closing === 0, 'back to one worker');
    for (const f of blocks) {
      const info = state.taskInfo(f.key);
      assert.equal(info?.state, 'memory', f.key);
      assert.equal(info.whoHas.length, 1);
    }
    const values = await client.gather(blocks);
    values.forEach((v, i) => {
      assert.equal(v.length, 10_000);
      assert.equal(v[0], i);
    });
    assert.deepEqual(await client.gather(squares), range(24).map((x) => x * x));
    const history = await client.scalingHistory();
    assert.ok(history?.decisions.some((d) => d.op === 'scale-down'));
  });

  void test('once the client lets go of the results, the cluster goes back to minimum 0', async () => {
    for (const f of [...squares, ...blocks]) f.release();
    await until(() => cluster.running === 0 && cluster.requested === 0 && cluster.closing === 0, 'no worker');
    assert.equal(cluster.processes.length, 0);
  });

  void test('client.scalingHistory() has samples and decisions with reasons', async () => {
    const history = await client.scalingHistory();
    assert.ok(history !== null);
    assert.ok(history.samples.length > 5);
    for (let i = 1; i < history.samples.length; i++) assert.ok(history.samples[i]!.t >= history.samples[i - 1]!.t);
    assert.ok(history.decisions.length >= 2);
    for (const d of history.decisions) {
      assert.ok(d.op === 'scale-up' || d.op === 'scale-down', d.op);
      assert.equal(typeof d.reason, 'string');
      assert.ok(d.reason.length > 0);
      assert.ok(Number.isFinite(d.t));
    }
    // `since` keeps only what is newer.
    const last = history.samples.at(-1)!.t;
    const newer = await client.scalingHistory(last);
    assert.ok(newer !== null);
    for (const s of newer.samples) assert.ok(s.t > last);
  });
});

void test('minimum and maximum hold over the whole history', async () => {
  const cluster = await LocalCluster.start({ workers: 0, dashboard: false });
  try {
    cluster.adapt({ minimum: 1, maximum: 2, ...quick });
    await until(() => cluster.running === 1, 'the minimum worker runs');
    const client = await Client.connect(cluster.address);
    try {
      const futures = client.map(slowSquare, range(30));
      assert.deepEqual(await client.gather(futures), range(30).map((x) => x * x));
      for (const f of futures) f.release();
      await until(() => cluster.running === 1 && cluster.requested === 1 && cluster.closing === 0, 'back to the minimum');
      const history = await client.scalingHistory();
      assert.ok(history !== null);
      assert.ok(history.samples.some((s) => s.target === 2), 'the work asked for the maximum');
      let reachedMinimum = false;
      for (const s of history.samples) {
        assert.ok(s.requested <= 2 && s.running <= 2, `requested ${s.requested}, running ${s.running}`);
        assert.ok(s.target >= 1 && s.target <= 2, `target ${s.target}`);
        if (s.running >= 1) reachedMinimum = true;
        // Once the minimum runs, scale-down never takes the cluster below it.
        else assert.ok(!reachedMinimum, 'running fell below the minimum');
      }
      for (const d of history.decisions) assert.ok(d.target >= 1 && d.target <= 2, `decision to ${d.target}`);
    } finally {
      await client.close();
    }
  } finally {
    await cluster.close();
  }
});

void test('scatter to an empty adaptive cluster waits for a worker', async () => {
  const cluster = await LocalCluster.start({ workers: 0, dashboard: false });
  try {
    cluster.adapt({ minimum: 0, maximum: 2, ...quick });
    const client = await Client.connect(cluster.address);
    try {
      const before = cluster.scheduler.workers.length;
      assert.equal(before, 0);
      // Scatter hands back futures at once; the data waits for the first worker.
      const [a, b] = client.scatter([{ answer: 42 }, { answer: 7 }]);
      assert.deepEqual(await client.gather([a!, b!]), [{ answer: 42 }, { answer: 7 }]);
      assert.ok(cluster.scheduler.workers.length >= 1);
      // And work can use the scattered data.
      assert.equal(await client.submit((x: { answer: number }) => x.answer + 1, a!).result(), 43);
    } finally {
      await client.close();
    }
  } finally {
    await cluster.close();
  }
});
