// A store reached through the scheduler: ProxyStore's requests served from a MemoryStore by
// serveStoreRequest, as the scheduler serves them, with whether each write won on the way back.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryStore, ProxyStore, serveStoreRequest, StoreUnavailableError } from '../../src/store/index.js';

void describe('ProxyStore', () => {
  void test('puts say which writes won, gets and deletes go through; a missing store is an error', async () => {
    await using store = new MemoryStore();
    const proxy: ProxyStore = new ProxyStore(store.address, (request) => serveStoreRequest(store, request, (reply) => proxy.answer(reply)));
    assert.deepEqual(await proxy.put([['k', new Uint8Array([1])]]), ['written']);
    assert.deepEqual(await proxy.put([['k', new Uint8Array([2])], ['j', new Uint8Array([3])]]), ['exists', 'written']);
    const [k, j, none] = await proxy.get(['k', 'j', 'none']);
    assert.deepEqual([...k!], [1], 'the first write stands');
    assert.deepEqual([...j!], [3]);
    assert.equal(none, undefined);
    await proxy.delete(['k']);
    assert.equal(store.size, 1);

    const nowhere: ProxyStore = new ProxyStore('memory://gone', (request) => serveStoreRequest(null, request, (reply) => nowhere.answer(reply)));
    await assert.rejects(nowhere.put([['k', new Uint8Array([1])]]), StoreUnavailableError);
    await proxy.close();
    await assert.rejects(proxy.put([['k', new Uint8Array([1])]]), StoreUnavailableError);
  });
});
