// The Redis harness: a real redis-server per test on a free port, restartable on that port.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { createClient } from 'redis';
import { type RedisServer, redisMissing, startRedis } from '../helpers/redis.js';
import { isAlive, until } from '../helpers/wait.js';

// Under CI a missing redis-server fails these tests instead of skipping them.
const skip = process.env.CI === 'true' ? false : redisMissing;

// No reconnection: a test that restarts Redis reconnects on purpose.
const newClient = (url: string) => createClient({ url, socket: { reconnectStrategy: false } });
type Client = ReturnType<typeof newClient>;

async function connect(url: string): Promise<Client> {
  const client = newClient(url);
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

void describe('startRedis', { skip }, () => {
  let redis: RedisServer;

  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await (redis as RedisServer | undefined)?.stop();
  });

  void test('set and get through a redis client', async () => {
    const client = await connect(redis.url);
    try {
      await client.set('k', 'v');
      assert.equal(await client.get('k'), 'v');
      await client.set(Buffer.from('bin'), Buffer.from([0, 255, 1]));
      const back = await client.withTypeMapping({ [36]: Buffer }).get(Buffer.from('bin'));
      assert.deepStrictEqual(back, Buffer.from([0, 255, 1]));
    } finally {
      client.destroy();
    }
  });

  void test('restart keeps the port and loses the data', async () => {
    const before = await connect(redis.url);
    await before.set('gone', '1');
    const oldPid = redis.pid!;
    await redis.restart();
    assert.ok(!isAlive(oldPid));
    assert.notEqual(redis.pid, oldPid);
    await until(() => !before.isOpen, 'the old connection closed');
    const after = await connect(redis.url);
    try {
      assert.equal(await after.get('gone'), null);
    } finally {
      after.destroy();
    }
  });

  void test('kill leaves it down until start', async () => {
    await redis.kill();
    await assert.rejects(connect(redis.url));
    await redis.start();
    const client = await connect(redis.url);
    try {
      assert.equal(await client.ping(), 'PONG');
    } finally {
      client.destroy();
    }
  });
});

void describe('startRedis with persistence', { skip }, () => {
  void test('data survives a kill and a restart; stop removes the directory', async () => {
    const redis = await startRedis({ persistence: true });
    try {
      let client = await connect(redis.url);
      await client.set('kept', 'yes');
      client.destroy();
      await redis.kill();
      await redis.start();
      client = await connect(redis.url);
      assert.equal(await client.get('kept'), 'yes');
      client.destroy();
      await redis.restart();
      client = await connect(redis.url);
      assert.equal(await client.get('kept'), 'yes');
      client.destroy();
    } finally {
      const { dir } = redis;
      const pid = redis.pid;
      await redis.stop();
      assert.ok(!existsSync(dir));
      if (pid !== undefined) assert.ok(!isAlive(pid));
    }
  });
});
