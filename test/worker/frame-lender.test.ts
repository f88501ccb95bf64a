import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BufferPool } from '../../src/serialize/buffer-pool.js';
import { FrameLender, MIN_LENT_BYTES } from '../../src/worker/frame-lender.js';

const N = MIN_LENT_BYTES;

/** A lender over its own pool, and a frame it lent, as a decoded value would view it. */
function lending(): { lender: FrameLender; pool: BufferPool; frame: () => Float64Array } {
  const pool = new BufferPool(64 * N, 4);
  const lender = new FrameLender(pool);
  return { lender, pool, frame: () => new Float64Array(lender.memory(N)!.buffer) };
}

void describe('FrameLender', () => {
  void test('lends large frames only, and takes a frame back when the value held it is let go', () => {
    const { lender, pool, frame } = lending();
    assert.equal(lender.memory(N - 1), null, 'small frames: fresh memory');
    const x = frame();
    const lent = lender.held(x);
    assert.deepEqual(lent, [x.buffer]);
    assert.equal(pool.bytes, 0);
    lender.released(lent);
    assert.equal(pool.bytes, N, 'back in the pool');
    assert.equal(lender.memory(N)!.buffer, x.buffer, 'the next frame of its size reads into it');
    assert.equal(lender.reused, 1);
  });

  void test('a frame two stored values hold goes back after both', () => {
    const { lender, pool, frame } = lending();
    const x = frame();
    const first = lender.held({ a: x, again: x });
    const second = lender.held([x]);
    assert.deepEqual(first, [x.buffer], 'counted once per value');
    lender.released(first);
    assert.equal(pool.bytes, 0);
    lender.released(second);
    assert.equal(pool.bytes, N);
    lender.released(second);
    assert.equal(pool.bytes, N, 'let go twice: given once');
  });

  void test('never takes back a frame sent on, one deeper than a thread copy, or any after a value too large to search', () => {
    const { lender, pool, frame } = lending();
    const sent = frame();
    const held = lender.held(sent);
    lender.sent({ reply: sent });
    lender.released(held);
    assert.equal(pool.bytes, 0, 'sent on: a socket may still be reading it');

    const deep = frame();
    assert.deepEqual(lender.held({ outer: { inner: deep } }), [], 'a thread would get a clone of it later');
    const shallow = frame();
    const kept = lender.held({ inner: shallow });
    assert.deepEqual(kept, [shallow.buffer]);

    const hidden = frame();
    const hiddenHeld = lender.held(hidden);
    assert.deepEqual(lender.held([hidden, ...new Array<number>(200_000).fill(0)]), [], 'too large to search');
    lender.released(hiddenHeld);
    lender.released(kept);
    assert.equal(pool.bytes, 0, 'everything lent before is left to the collector');

    const later = frame();
    lender.released(lender.held(later));
    assert.equal(pool.bytes, N, 'frames lent afterwards come back as before');
  });

  void test('plain values hold nothing', () => {
    const { lender } = lending();
    assert.deepEqual(lender.held(5), []);
    assert.deepEqual(lender.held({ a: new Float64Array(4) }), []);
    lender.sent('x');
    lender.released([]);
  });
});
