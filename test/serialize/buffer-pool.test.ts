import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { BufferPool } from '../../src/serialize/buffer-pool.js';

void describe('BufferPool', () => {
  void test('gives back a buffer of exactly the size asked for, last in first out', () => {
    const pool = new BufferPool(1 << 20);
    const a = new ArrayBuffer(1024);
    const b = new ArrayBuffer(1024);
    pool.give(a);
    pool.give(b);
    pool.give(new ArrayBuffer(2048));
    assert.equal(pool.bytes, 4096);
    assert.equal(pool.take(512), undefined);
    assert.equal(pool.take(1024), b);
    assert.equal(pool.take(1024), a);
    assert.equal(pool.take(1024), undefined);
    assert.equal(pool.bytes, 2048);
  });

  void test('keeps at most maxBytes in all and perSize of one size; detached buffers are dropped', () => {
    const pool = new BufferPool(3000, 2);
    for (let i = 0; i < 3; i++) pool.give(new ArrayBuffer(1000));
    assert.equal(pool.bytes, 2000, 'two of one size');
    pool.give(new ArrayBuffer(1500));
    assert.equal(pool.bytes, 2000, 'over the total');
    const detached = new ArrayBuffer(8);
    structuredClone(detached, { transfer: [detached] });
    pool.give(detached);
    assert.equal(pool.bytes, 2000);
  });

  void test('empties itself after idleMs without use', async () => {
    const pool = new BufferPool(1 << 20, 2, 30);
    pool.give(new ArrayBuffer(64));
    await sleep(10);
    assert.equal(pool.take(64)?.byteLength, 64);
    pool.give(new ArrayBuffer(64));
    await sleep(120);
    assert.equal(pool.bytes, 0);
    assert.equal(pool.take(64), undefined);
  });
});
