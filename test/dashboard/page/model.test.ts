/**
 * The page's task-stream store: entries in a ring of columns, the latest stop per lane and
 * per prefix (what the view uses to find the rows in view), expiry, and the rebuild of the
 * lane table when worker churn has grown it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { StreamStore } from '../../../src/dashboard/page/model.js';

/** One chunk as the feed sends it: [prefix, worker, lane, start, stop, kind] per entry. */
function chunk(entries: readonly (readonly [string, string, number, number, number])[]) {
  const prefixes = [...new Set(entries.map((e) => e[0]))];
  const workers = [...new Set(entries.map((e) => e[1]))];
  const rows = entries.flatMap(([p, w, lane, start, stop]) => [prefixes.indexOf(p), workers.indexOf(w), lane, start, stop, 0]);
  return { prefixes, workers, rows };
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
