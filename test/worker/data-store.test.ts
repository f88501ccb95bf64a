import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { DataStore } from '../../src/worker/data-store.js';

const MiB = 2 ** 20;

async function settle(store: DataStore, memoryAtMost: number): Promise<void> {
  for (let i = 0; i < 200 && store.memoryBytes > memoryAtMost; i++) await sleep(5);
}

void describe('DataStore', () => {
  void test('spills least recently used values past the target and reads them back intact', async () => {
    const store = new DataStore({ memoryTarget: 3 * MiB });
    const arrays = Array.from({ length: 6 }, (_, i) => new Float64Array(MiB / 8).fill(i));
    for (let i = 0; i < 6; i++) store.put(`a-${i}`, arrays[i], MiB);
    await settle(store, 3 * MiB);
    assert.ok(store.memoryBytes <= 3 * MiB, `memory ${store.memoryBytes}`);
    assert.equal(store.spilledBytes, 3 * MiB);
    assert.equal(store.peek('a-0'), undefined, 'the oldest went to disk');
    assert.ok(store.peek('a-5') !== undefined, 'the newest stayed');
    const back = (await store.get('a-0')) as Float64Array;
    assert.ok(back instanceof Float64Array);
    assert.equal(back[123], 0);
    assert.equal(back.length, MiB / 8);
    await settle(store, 3 * MiB);
    assert.ok(store.memoryBytes <= 3 * MiB);
    assert.equal(store.size, 6);
    store.close();
  });

  void test('says what lent memory a value held when it leaves memory: deleted, replaced, spilled, closed', async () => {
    const letGo: string[] = [];
    const store = new DataStore({ memoryTarget: 2 * MiB, onLetGo: (lent) => letGo.push(...lent.map((b) => `${b.byteLength}`)) });
    const lent = (n: number): ArrayBuffer => new ArrayBuffer(n);
    store.put('a', 1, 8, [lent(1)]);
    store.put('b', 2, 8, [lent(2)]);
    store.put('c', 3, 8, [lent(3)]);
    store.put('plain', 4, 8);
    store.delete('a');
    assert.deepEqual(letGo, ['1']);
    store.put('b', 5, 8, [lent(20)]);
    assert.deepEqual(letGo, ['1', '2'], 'replaced: the old value let go, once');
    store.put('big', new Float64Array(MiB / 8), 3 * MiB, [lent(4)]);
    await settle(store, 3 * MiB);
    assert.deepEqual(letGo.slice(2).sort(), ['20', '3'], 'spilled: let go once written');
    await store.get('c');
    store.delete('c');
    assert.equal(letGo.length, 4, 'read back from disk: new memory, nothing lent');
    store.close();
    assert.deepEqual(letGo.slice(4), ['4'], 'closed: the rest');
  });

  void test('values of every structured-clone kind survive the disk', async () => {
    const store = new DataStore({ memoryTarget: 0 });
    const value = { m: new Map([[1, 'a']]), s: new Set([2n]), d: new Date(5), e: new TypeError('x'), u: new Uint8Array([1, 2]) };
    store.put('v', value, 100);
    store.put('w', 1, 8);
    await settle(store, 8);
    const back = (await store.get('v')) as typeof value;
    assert.deepEqual(back.m, value.m);
    assert.deepEqual(back.s, value.s);
    assert.equal(back.d.getTime(), 5);
    assert.ok(back.e instanceof TypeError);
    assert.deepEqual([...back.u], [1, 2]);
    store.close();
  });

  void test('delete and close remove spilled files and the folder', async () => {
    const store = new DataStore({ memoryTarget: 10 });
    store.put('x', 'x'.repeat(100), 200);
    store.put('y', 'y'.repeat(100), 200);
    await settle(store, 200);
    assert.equal(readdirSync(store.directory).length, 1);
    assert.ok(store.delete('x'));
    await sleep(20);
    assert.equal(readdirSync(store.directory).length, 0);
    store.close();
    store.close();
    assert.equal(existsSync(store.directory), false);
    await assert.rejects(store.get('y'), /not held/);
  });
});
