// What a future's result() rejects with is decided by what went wrong, not by names.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CancelledError, Client, LocalCluster, TaskError, UnserializableError, WorkerLostError } from '../../src/index.js';

void describe('error kinds on a cluster', () => {
  let cluster: LocalCluster;
  let client: Client;

  before(async () => {
    cluster = await LocalCluster.start({ workers: 1, threadsPerWorker: 1, dashboard: false });
    client = await Client.connect(cluster.address);
  });

  after(async () => {
    await (client as Client | undefined)?.close();
    await (cluster as LocalCluster | undefined)?.close();
  });

  void test('a user error named WorkerLostError is the task\'s error, not a lost worker', async () => {
    const f = client.submitWith({ key: 'impostor-1' }, () => {
      const e = new Error('not really');
      e.name = 'WorkerLostError';
      throw e;
    });
    const error = await f.result().then(
      () => assert.fail('should have failed'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof TaskError, String(error));
    assert.ok(!(error instanceof WorkerLostError));
    assert.equal(error.remoteName, 'WorkerLostError');
    assert.equal(error.key, 'impostor-1');
  });

  void test('a dependent of a failed task names the task that failed', async () => {
    const bad = client.submitWith({ key: 'bad-1' }, (): number => {
      throw new RangeError('out of range');
    });
    const child = client.submitWith({ key: 'child-1' }, (x: number) => x + 1, bad);
    const error = await child.result().then(
      () => assert.fail('should have failed'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof TaskError);
    assert.equal(error.key, 'bad-1');
    assert.equal(error.remoteName, 'RangeError');
  });

  void test('a result that cannot travel rejects with UnserializableError naming the key', async () => {
    const f = client.submitWith({ key: 'fn-result-1' }, () => () => 1);
    const error = await f.result().then(
      () => assert.fail('should have failed'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof UnserializableError, String(error));
    assert.equal(error.key, 'fn-result-1');
  });

  void test('cancelling a finished future: result() rejects with CancelledError', async () => {
    const f = client.submit((x: number) => x * 3, 7);
    assert.equal(await f.result(), 21);
    await f.cancel();
    assert.equal(f.status, 'cancelled');
    await assert.rejects(f.result(), (e: unknown) => e instanceof CancelledError);
  });
});
