import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { addWorker, finish, newState, submit } from './helpers.js';

describe('a long-lived scheduler holds what it currently holds, plus bounded histories', () => {
  test('per-prefix records go when their last task is forgotten; measured durations are remembered', () => {
    const s = newState({ validate: true });
    addWorker(s, 'w1');
    for (let run = 0; run < 400; run++) {
      const key = `leaf${run}-B-1`;
      submit(s, [[key]], [key], { now: run * 10 });
      finish(s, 'w1', key, { startedAt: run * 10, finishedAt: run * 10 + 2000, now: run * 10 + 2000 });
      s.handle({ op: 'release-keys', client: 'c1', keys: [key] });
      assert.equal(s.taskInfo(key), undefined, 'forgotten');
    }
    assert.equal(s.snapshot().prefixes.length, 0, 'no record is left for prefixes with no task');
    assert.equal(s.prefixCount, 0);
    // A prefix that comes back starts from its measured duration (2 s), not the default (0.5 s).
    submit(s, [['leaf399-B-2']], ['leaf399-B-2']);
    const p = s.snapshot().prefixes.find((x) => x.prefix === 'leaf399-B');
    assert.ok(p !== undefined);
    assert.equal(p.measured, true);
    assert.ok(Math.abs(p.duration - 2) < 1e-9, `duration ${p.duration}`);
  });
});
