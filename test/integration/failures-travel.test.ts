// A result that cannot travel fails once, with an error naming the key and the reason;
// the worker does not log the failure over and over, and the client does not ask forever.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Client, LocalCluster, UnserializableError } from '../../src/index.js';
import { sleep } from '../helpers/wait.js';

void describe('results that cannot travel', () => {
  void test('a self-referencing result: result() rejects once with UnserializableError naming the key', { timeout: 60_000 }, async () => {
    const lines: string[] = [];
    const cluster = await LocalCluster.start({ workers: 1, threadsPerWorker: 1, dashboard: false, log: (line) => lines.push(line) });
    try {
      const client = await Client.connect(cluster.address);
      try {
        const f = client.submitWith({ key: 'cyclic-1' }, () => {
          const o: Record<string, unknown> = { a: 1 };
          o['self'] = o;
          return o;
        });
        let timer: NodeJS.Timeout | undefined;
        const error = await Promise.race([
          f.result().then(() => assert.fail('should have failed'), (e: unknown) => e),
          new Promise((resolve) => (timer = setTimeout(() => resolve('still pending after 20 s'), 20_000))),
        ]);
        clearTimeout(timer);
        assert.ok(error instanceof UnserializableError, String(error));
        assert.equal(error.key, 'cyclic-1');
        assert.equal(error.path, '.self');
        assert.match(error.message, /cycle/);
        // A dependent fails with the same cause, and the cluster keeps working.
        const child = client.submit((o: unknown) => o, f);
        await assert.rejects(child.result(), (e: unknown) => e instanceof UnserializableError && e.key === 'cyclic-1');
        assert.equal(await client.submit((x: number) => x + 1, 1).result(), 2);
        await sleep(300);
        assert.equal(cluster.scheduler.stateCounts().erred >= 1, true);
      } finally {
        await client.close();
      }
    } finally {
      await cluster.close();
    }
  });
});
