/**
 * The page's task-stream store: entries in a ring of columns, the latest stop per lane and
 * per prefix (what the view uses to find the rows in view), expiry, and the rebuild of the
 * lane table when worker churn has grown it. The model: whether the cluster adapts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { FeedUpdate, StreamChunk } from '../../../src/dashboard/feed-protocol.js';
import { DashboardModel, StreamStore } from '../../../src/dashboard/page/model.js';
import { emptyStateCounts } from '../../../src/scheduler/state.js';

/** One chunk as the feed sends it: [prefix, worker, lane, start, stop, kind] per entry, keys `${prefix}-${stop}`. */
function chunk(entries: readonly (readonly [string, string, number, number, number])[]): StreamChunk {
  const prefixes = [...new Set(entries.map((e) => e[0]))];
  const workers = [...new Set(entries.map((e) => e[1]))];
  const rows = entries.flatMap(([p, w, lane, start, stop]) => [prefixes.indexOf(p), workers.indexOf(w), lane, start, stop, 0]);
  return { prefixes, workers, rows, keys: entries.map(([p, , , , stop]) => `${p}-${stop}`) };
}

const laneOf = (s: StreamStore, worker: string, thread: number): number => s.laneWorker.findIndex((w, i) => w === worker && s.laneThread[i] === thread);

void describe('StreamStore', () => {
  void test('keeps entries in order, the latest stop per lane and prefix, and expires the old', () => {
    const s = new StreamStore(4);
    s.add(chunk([
      ['inc', 'a', 0, 0, 10],
      ['inc', 'a', 1, 2, 12],
      ['add', 'b', 0, 5, 20],
    ]));
    assert.equal(s.size, 3);
    assert.equal(s.laneLastStop[laneOf(s, 'a', 1)], 12);
    assert.equal(s.prefixLastStop[s.prefixNames.indexOf('inc')], 12);
    s.add(chunk([
      ['inc', 'a', 0, 10, 30],
      ['add', 'a', 0, 30, 40],
    ]));
    // Over capacity: the oldest went.
    assert.equal(s.size, 4);
    assert.equal(s.received, 5);
    assert.deepEqual(Array.from({ length: s.size }, (_, k) => s.stop[s.at(k)]), [12, 20, 30, 40]);
    assert.deepEqual(Array.from({ length: s.size }, (_, k) => s.key[s.at(k)]), ['inc-12', 'add-20', 'inc-30', 'add-40']);
    assert.equal(s.laneLastStop[laneOf(s, 'a', 0)], 40);
    s.expire(25);
    assert.deepEqual(Array.from({ length: s.size }, (_, k) => s.stop[s.at(k)]), [30, 40]);
    const epoch = s.epoch;
    s.clear();
    assert.equal(s.size, 0);
    assert.equal(s.laneLastStop.length, 0);
    assert.ok(s.epoch > epoch, 'ids renumbered');
  });

  void test('rebuilds the lane table when churn has grown it, keeping what the window shows', () => {
    const s = new StreamStore(100);
    // 20,001 short-lived workers, one task each; only the last 100 are still held.
    for (let i = 0; i <= 20_000; i++) s.add(chunk([['inc', `w-${i}`, 0, i, i + 1]]));
    assert.equal(s.laneWorker.length, 20_001);
    const epoch = s.epoch;
    s.expire(19_950);
    assert.ok(s.epoch > epoch, 'compacted');
    // Stops 19,950 to 20,001 are left.
    assert.equal(s.size, 52);
    assert.equal(s.laneWorker.length, 52);
    for (let k = 0; k < s.size; k++) {
      const i = s.at(k);
      const lane = s.lane[i] as number;
      assert.equal(s.laneWorker[lane], `w-${(s.stop[i] as number) - 1}`);
      assert.equal(s.laneLastStop[lane], s.stop[i]);
    }
    assert.deepEqual(s.prefixNames, ['inc']);
    assert.equal(s.prefixLastStop[0], 20_001);
  });
});

const update = (over: Partial<FeedUpdate> = {}): FeedUpdate => ({
  op: 'update',
  seq: 1,
  dropped: 0,
  now: 1000,
  tasks: 0,
  byState: emptyStateCounts(),
  totalThreads: 2,
  clients: 0,
  expectedRemainingWork: 0,
  workerCount: 2,
  prefixes: [],
  prefixesOmitted: 0,
  samples: [],
  decisions: [],
  target: null,
  stream: { prefixes: [], workers: [], rows: [], keys: [] },
  streamCapped: false,
  counters: { transfersTotal: 0, transferBytesTotal: 0, tasksFinishedTotal: 0, tasksErredTotal: 0, taskDurationSecondsSum: 0, taskDurationCount: 0, bytesSpilled: 0 },
  ...over,
});

void describe('DashboardModel', () => {
  void test('a cluster that does not adapt is sampled by the page; one told to adapt later switches to the loop history', () => {
    const m = new DashboardModel();
    m.apply({ op: 'hello', version: 2, intervalMs: 1000, adaptive: false, streamWindowMs: 30_000 });
    assert.equal(m.adaptive, false);
    m.apply(update({ now: 1000 }));
    m.apply(update({ now: 2000 }));
    assert.deepEqual(m.series.x, [1, 2]);
    assert.deepEqual(m.series.running, [2, 2]);
    assert.equal(m.adaptive, false);
    // `cluster.adapt()` after the page opened: the loop's samples arrive.
    const sample = { t: 2500, requested: 3, running: 2, closing: 0, target: 3, queued: 10, processing: 2, waiting: 0, inMemory: 0 };
    m.apply(update({ now: 3000, samples: [sample], target: { target: 3, reason: 'work' } }));
    assert.equal(m.adaptive, true);
    assert.deepEqual(m.series.x, [2.5]);
    assert.deepEqual(m.series.target, [3]);
    // A reconnection starts over from what its hello says.
    m.apply({ op: 'hello', version: 2, intervalMs: 1000, adaptive: false, streamWindowMs: 30_000 });
    assert.equal(m.adaptive, false);
  });

  void test('a cluster that bursts: the pool and the burst are kept apart; one backend leaves them empty', () => {
    const m = new DashboardModel();
    m.apply({ op: 'hello', version: 2, intervalMs: 1000, adaptive: true, streamWindowMs: 30_000 });
    const plain = { t: 1000, requested: 1, running: 1, closing: 0, target: 1, queued: 0, processing: 1, waiting: 0, inMemory: 0 };
    m.apply(update({ now: 1000, samples: [plain] }));
    assert.equal(m.bursts, false);
    assert.deepEqual(m.series.burstRunning, [null]);
    const side = (requested: number, running: number, target: number) => ({ requested, running, closing: 0, target });
    const sample = { t: 2000, requested: 8, running: 5, closing: 0, target: 8, queued: 30, processing: 5, waiting: 0, inMemory: 0, persistent: side(1, 1, 1), burst: side(7, 4, 7) };
    m.apply(update({ now: 2000, samples: [sample], decisions: [{ op: 'scale-up', target: 7, reason: 'burst: work', t: 2000, backend: 'burst' }] }));
    assert.equal(m.bursts, true);
    assert.deepEqual(m.series.persistentRunning, [null, 1]);
    assert.deepEqual(m.series.burstRunning, [null, 4]);
    assert.deepEqual(m.series.running, [1, 5]);
    assert.equal(m.maxBurstRunning, 4);
    assert.equal(m.decisions[0]?.backend, 'burst');
    m.apply({ op: 'hello', version: 2, intervalMs: 1000, adaptive: true, streamWindowMs: 30_000 });
    assert.equal(m.bursts, false, 'a reconnection starts over');
  });
});
