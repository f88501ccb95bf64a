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
    pool.give(new ArrayBuffer(3001));
    assert.equal(pool.bytes, 2000, 'larger than the whole pool');
    pool.give(new ArrayBuffer(1500));
    assert.equal(pool.bytes, 2500, 'room made: one of the 1000s let go');
    assert.equal(pool.take(1500)?.byteLength, 1500);
    assert.equal(pool.take(1000)?.byteLength, 1000);
    assert.equal(pool.take(1000), undefined);
    const detached = new ArrayBuffer(8);
    structuredClone(detached, { transfer: [detached] });
    pool.give(detached);
    assert.equal(pool.bytes, 0);
  });

  void test('when full, the sizes given longest ago make room for the one given now', () => {
    const pool = new BufferPool(100, 2);
    const [small, a, b] = [10, 40, 40].map((n) => new ArrayBuffer(n));
    pool.give(small!);
    pool.give(a!);
    pool.give(b!);
    pool.give(new ArrayBuffer(20));
    assert.equal(pool.bytes, 100);
    assert.equal(pool.take(10), undefined, 'the one given first made room');
    assert.equal(pool.take(40), b);
    pool.give(b!);
    pool.give(new ArrayBuffer(30));
    assert.equal(pool.take(20), undefined, 'the 20 was given longer ago than the 40s were');
    assert.equal(pool.take(40), b, 'and of the 40s, the one given first went next');
    assert.equal(pool.take(40), undefined);
    assert.equal(pool.take(30)?.byteLength, 30);
    assert.equal(pool.bytes, 0);
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
