// The Redis store against a real redis-server: round trips, chunks, first-write-wins, TTL,
// and a Redis that goes away.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createClient } from 'redis';
import { InvalidArgumentError } from '../../src/errors.js';
import { getValues, openStore, putValues, RedisStore, StoreUnavailableError } from '../../src/store/index.js';
import { type RedisServer, redisMissing, startRedis } from '../helpers/redis.js';
import { until } from '../helpers/wait.js';

// Under CI a missing redis-server fails these tests instead of skipping them.
const skip = process.env.CI === 'true' ? false : redisMissing;

void describe('RedisStore', { skip }, () => {
  let redis: RedisServer;

  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await (redis as RedisServer | undefined)?.stop();
  });

  void test('binary round trip, raw: the bytes in Redis are the bytes put', async () => {
    await using store = await RedisStore.connect(redis.url, { prefix: 'raw:' });
    const bytes = new Uint8Array(256).map((_, i) => i);
    assert.deepEqual(await store.put([['b', bytes], ['e', new Uint8Array(0)]]), ['written', 'written']);
    const [back, empty, none] = await store.get(['b', 'e', 'none']);
    assert.deepEqual(back, Buffer.from(bytes));
    assert.equal(empty!.byteLength, 0);
    assert.equal(none, undefined);
    // One tag byte, then the bytes themselves: no base64 on the way.
    const raw = createClient({ url: redis.url });
    await raw.connect();
    try {
      const stored = await raw.withTypeMapping({ [36]: Buffer }).get('raw:b');
      assert.equal(stored!.byteLength, 257);
      assert.deepEqual(stored!.subarray(1), Buffer.from(bytes));
    } finally {
      raw.destroy();
    }
  });

  void test('a value larger than a chunk is written in chunks and read back whole; delete removes every chunk', async () => {
    await using store = await RedisStore.connect(redis.url, { chunkBytes: 1000, prefix: 'chunked:' });
    const big = new Float64Array(1000).map((_, i) => i * 0.5);
    await putValues(store, [['big', big]]);
    const { values } = await getValues(store, ['big']);
    const back = values[0]![1] as Float64Array;
    assert.ok(back instanceof Float64Array);
    assert.deepEqual([...back], [...big]);
    const raw = createClient({ url: redis.url });
    await raw.connect();
    try {
      const chunks = await raw.keys('chunked:chunk:*');
      assert.equal(chunks.length, 9, 'ceil(8000+ bytes / 1000)');
      await store.delete(['big']);
      assert.deepEqual(await raw.keys('chunked:*'), []);
    } finally {
      raw.destroy();
    }
  });

  void test('the first write wins, chunked or not, and each writer is told whether it won; the loser leaves no chunks behind', async () => {
    await using store = await RedisStore.connect(redis.url, { chunkBytes: 100, prefix: 'nx:' });
    assert.deepEqual(await store.put([['k', new Uint8Array(10).fill(1)]]), ['written']);
    assert.deepEqual(await store.put([['k', new Uint8Array(10).fill(2)]]), ['exists']);
    assert.deepEqual([...(await store.get(['k']))[0]!], new Array(10).fill(1));
    const first = new Uint8Array(450).fill(3);
    const second = new Uint8Array(450).fill(4);
    const outcomes = (await Promise.all([store.put([['c', first]]), store.put([['c', second]])])).flat();
    const [c] = await store.get(['c']);
    assert.ok(c![0] === 3 || c![0] === 4);
    assert.ok(c!.every((x) => x === c![0]), 'one writer\'s value, whole');
    // Exactly one writer won, and it is the one whose value is there.
    assert.deepEqual(outcomes, c![0] === 3 ? ['written', 'exists'] : ['exists', 'written']);
    const raw = createClient({ url: redis.url });
    await raw.connect();
    try {
      assert.equal((await raw.keys('nx:chunk:*')).length, 5);
    } finally {
      raw.destroy();
    }
  });

  void test('keys carry the time-to-live', async () => {
    await using store = await RedisStore.connect(redis.url, { ttlMs: 60_000, chunkBytes: 100, prefix: 'ttl:' });
    await store.put([['a', new Uint8Array(5)], ['big', new Uint8Array(300)]]);
    await store.put([['short', new Uint8Array(5)]], { ttlMs: 50 });
    const raw = createClient({ url: redis.url });
    await raw.connect();
    try {
      const ttl = await raw.pTTL('ttl:a');
      assert.ok(ttl > 50_000 && ttl <= 60_000, String(ttl));
      for (const chunk of await raw.keys('ttl:chunk:*')) assert.ok((await raw.pTTL(chunk)) > 50_000);
    } finally {
      raw.destroy();
    }
    await until(async () => (await store.get(['short']))[0] === undefined, 'the short key expired');
  });

  void test('openStore connects by address', async () => {
    const store = await openStore(redis.url);
    try {
      assert.equal(store.address, redis.url);
      await store.put([['o', new Uint8Array([1])]]);
    } finally {
      await store.close();
    }
  });

  void test('options and urls are checked at the door', async () => {
    await assert.rejects(RedisStore.connect('http://x'), InvalidArgumentError);
    await assert.rejects(RedisStore.connect(redis.url, { chunkBytes: 0 }), InvalidArgumentError);
    await assert.rejects(RedisStore.connect(redis.url, { chunkBytes: 1024 ** 3 }), InvalidArgumentError);
    await assert.rejects(RedisStore.connect(redis.url, { chunk: 1 } as never), InvalidArgumentError);
  });

  void test('nobody listening: connect rejects with StoreUnavailableError, in time', async () => {
    const started = Date.now();
    await assert.rejects(RedisStore.connect('redis://127.0.0.1:1', { connectTimeoutMs: 2000 }), StoreUnavailableError);
    assert.ok(Date.now() - started < 5000);
  });

  void test('Redis killed: commands fail at once, lost is told; back: restored is told', async () => {
    await using store = await RedisStore.connect(redis.url, { prefix: 'gone:' });
    let lost = 0;
    let restored = 0;
    store.onLost(() => lost++);
    store.onRestored(() => restored++);
    await store.put([['k', new Uint8Array([1])]]);
    await redis.kill();
    await until(() => lost === 1, 'the store was declared lost');
    await assert.rejects(store.get(['k']), StoreUnavailableError);
    await assert.rejects(store.put([['k', new Uint8Array([1])]]), StoreUnavailableError);
    await redis.start();
    await until(() => restored === 1, 'the store came back', 10_000);
    assert.deepEqual(await store.get(['k']), [undefined]);
    assert.equal(lost, 1);
  });
});
