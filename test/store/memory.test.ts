// The embedded store: first write wins, TTL, copies, and what closing does.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvalidArgumentError } from '../../src/errors.js';
import { decodeValue, encodeValue, getValues, MemoryStore, openStore, putValues, StoreUnavailableError } from '../../src/store/index.js';

void describe('MemoryStore', () => {
  void test('put, get and delete many; absent keys are undefined', async () => {
    await using store = new MemoryStore();
    assert.deepEqual(await store.put([['a', new Uint8Array([1])], ['b', new Uint8Array([2, 3])]]), ['written', 'written']);
    const [a, b, c] = await store.get(['a', 'b', 'c']);
    assert.deepEqual([...a!], [1]);
    assert.deepEqual([...b!], [2, 3]);
    assert.equal(c, undefined);
    await store.delete(['a', 'nope']);
    assert.deepEqual(await store.get(['a']), [undefined]);
    assert.equal(store.size, 1);
  });

  void test('the first write of a key wins, and a later writer is told its value lost', async () => {
    await using store = new MemoryStore();
    assert.deepEqual(await store.put([['k', new Uint8Array([1])]]), ['written']);
    assert.deepEqual(await store.put([['k', new Uint8Array([9])], ['j', new Uint8Array([2])]]), ['exists', 'written']);
    assert.deepEqual([...(await store.get(['k']))[0]!], [1]);
  });

  void test('keeps a copy: the caller may reuse its buffer', async () => {
    await using store = new MemoryStore();
    const bytes = new Uint8Array([5, 6]);
    await store.put([['k', bytes]]);
    bytes[0] = 0;
    assert.deepEqual([...(await store.get(['k']))[0]!], [5, 6]);
  });

  void test('keys expire after their time-to-live', async () => {
    await using store = new MemoryStore({ ttlMs: 60_000 });
    await store.put([['short', new Uint8Array([1])]], { ttlMs: 20 });
    await store.put([['long', new Uint8Array([1])]]);
    await new Promise((resolve) => setTimeout(resolve, 40));
    const [short, long] = await store.get(['short', 'long']);
    assert.equal(short, undefined);
    assert.ok(long !== undefined);
    // An expired key can be written again.
    await store.put([['short', new Uint8Array([2])]]);
    assert.deepEqual([...(await store.get(['short']))[0]!], [2]);
  });

  void test('options are checked at the door', () => {
    assert.throws(() => new MemoryStore({ ttlMs: -1 }), InvalidArgumentError);
    assert.throws(() => new MemoryStore({ ttl: 5 } as never), InvalidArgumentError);
  });

  void test('a closed store rejects with StoreUnavailableError, and openStore no longer finds it', async () => {
    const store = new MemoryStore();
    const lent = await openStore(store.address);
    await lent.put([['k', new Uint8Array([1])]]);
    // Closing what was lent leaves the store open.
    await lent.close();
    assert.deepEqual((await store.get(['k'])).length, 1);
    await store.close();
    await store.close();
    await assert.rejects(store.get(['k']), StoreUnavailableError);
    await assert.rejects(openStore(store.address), StoreUnavailableError);
  });

  void test('openStore refuses what it does not know', async () => {
    await assert.rejects(openStore('ftp://x'), InvalidArgumentError);
  });
});

void describe('values through a store', () => {
  void test('the codec round trip keeps binary, maps and errors', () => {
    const value = { f: new Float64Array([1.5, -2]), big: new Uint8Array(4096).fill(7), m: new Map([[1, 'x']]), e: new RangeError('r'), s: 'text' };
    const back = decodeValue(encodeValue(value)) as typeof value;
    assert.ok(back.f instanceof Float64Array);
    assert.deepEqual([...back.f], [1.5, -2]);
    assert.ok(back.big instanceof Uint8Array && back.big.byteLength === 4096 && back.big[4095] === 7);
    assert.deepEqual(back.m, new Map([[1, 'x']]));
    assert.ok(back.e instanceof RangeError);
    assert.equal(back.s, 'text');
  });

  void test('binary travels raw: a 1 MiB array costs about 1 MiB', () => {
    const bytes = encodeValue(new Uint8Array(1 << 20));
    assert.ok(bytes.byteLength < (1 << 20) + 200, `${bytes.byteLength} bytes`);
  });

  void test('putValues and getValues', async () => {
    await using store = new MemoryStore();
    await putValues(store, [['x', [1, 2, 3]], ['y', null]]);
    const { values, missing } = await getValues(store, ['x', 'y', 'z']);
    assert.deepEqual(values, [['x', [1, 2, 3]], ['y', null]]);
    assert.deepEqual(missing, ['z']);
  });
});
