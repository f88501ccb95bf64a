// A client that can reach the scheduler but not the workers (a port-forward into a cluster
// network): with directToWorkers false, results travel through the scheduler's connection
// and the client opens no connection of its own to any worker.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, InvalidArgumentError, LocalCluster } from '../../src/index.js';
import { dialledDuring } from '../helpers/dialled.js';

function triple(x: number): Float64Array {
  return new Float64Array(1000).fill(x * 3);
}

void describe('directToWorkers', () => {
  let cluster: LocalCluster;
  before(async () => {
    cluster = await LocalCluster.start({ workers: 2, threadsPerWorker: 1 });
  });
  after(async () => {
    await cluster.close();
  });

  async function run(client: Client): Promise<void> {
    const futures = client.map(triple, [1, 2, 3, 4, 5, 6]);
    const values = await client.gather(futures);
    assert.deepEqual(values.map((v) => v[999]), [3, 6, 9, 12, 15, 18]);
  }

  test('false: results come through the scheduler; no worker is dialled', async () => {
    const client = await Client.connect(cluster, { directToWorkers: false });
    try {
      assert.equal(client.directToWorkers, false);
      const dialled = await dialledDuring(() => run(client));
      assert.deepEqual(dialled, []);
    } finally {
      await client.close();
    }
  });

  test('a cluster object may say so itself; the option overrides it', async () => {
    const behind = { address: cluster.address, token: cluster.token, directToWorkers: false };
    const client = await Client.connect(behind);
    try {
      assert.equal(client.directToWorkers, false);
      assert.deepEqual(await dialledDuring(() => run(client)), []);
    } finally {
      await client.close();
    }
    const direct = await Client.connect(behind, { directToWorkers: true });
    try {
      assert.equal(direct.directToWorkers, true);
      // The check above can see a dial: here the client fetches from the workers themselves.
      assert.ok((await dialledDuring(() => run(direct))).length > 0);
    } finally {
      await direct.close();
    }
  });

  test('a value that is not a boolean is refused by name', async () => {
    await assert.rejects(Client.connect(cluster, { directToWorkers: 'no' as never }), (e: unknown) => e instanceof InvalidArgumentError && /directToWorkers/.test(e.message));
  });
});
