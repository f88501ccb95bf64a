/**
 * A cluster is work-conserving: while a thread is idle, no task waits behind a long one,
 * whether on another thread of its worker (taken back) or on another worker (stolen). The
 * first call to start waits (bounded) until all the others have finished, so a worker that
 * left some queued behind it could not finish them; the wait reports that instead of
 * hanging. The threads share no memory with this test: files count the calls. No timing
 * thresholds.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, LocalCluster, task } from '../../src/index.js';

/** 'waited' for the first call to start, 'done' for the others; 'stuck' if they never all finished. */
const step = (dir: string, i: number, total: number): string => {
  const fs = process.getBuiltinModule('node:fs');
  try {
    fs.writeFileSync(`${dir}/first`, String(i), { flag: 'wx' });
  } catch {
    fs.writeFileSync(`${dir}/done-${i}`, '');
    return 'done';
  }
  const deadline = Date.now() + 20_000;
  const nap = new Int32Array(new SharedArrayBuffer(4));
  while (fs.readdirSync(dir).length < total) {
    if (Date.now() > deadline) return 'stuck';
    Atomics.wait(nap, 0, 0, 20);
  }
  return 'waited';
};

function cluster(workers: number, threadsPerWorker: number): { run: (name: string, total: number) => Promise<string[]> } {
  let cluster: LocalCluster;
  let client: Client;
  let root: string;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'tessera-conserving-'));
    cluster = await LocalCluster.start({ workers, threadsPerWorker });
    client = await Client.connect(cluster.address);
  });

  after(async () => {
    await (client as Client | undefined)?.close();
    await (cluster as LocalCluster | undefined)?.close();
    rmSync(root, { recursive: true, force: true });
  });

  const run = async (name: string, total: number): Promise<string[]> => {
    const dir = mkdtempSync(join(root, `${name}-`));
    const graph: Record<string, unknown> = {};
    for (let i = 0; i < total; i++) graph[`step-${name}-${i}`] = task(step, dir, i, total);
    return (await client.get(graph, Object.keys(graph))) as string[];
  };
  return { run };
}

void describe('a worker with two threads', () => {
  const { run } = cluster(1, 2);

  void test('an idle thread takes back what waits behind a long task in another thread', async () => {
    // Short calls first: the scheduler learns that `step` is quick and sends the worker many
    // at once, which it hands its threads in batches of several.
    for (let r = 0; r < 3; r++) await run(`warm${r}`, 1);
    const warm = await run('warm', 30);
    assert.deepEqual(warm.filter((r) => r === 'stuck'), []);
    const results = await run('long', 40);
    assert.equal(results.filter((r) => r === 'stuck').length, 0, 'no call stayed queued behind the long one');
    assert.equal(results.filter((r) => r === 'waited').length, 1);
    assert.equal(results.filter((r) => r === 'done').length, 39);
  });
});

void describe('two workers of one thread each', () => {
  const { run } = cluster(2, 1);

  void test('an idle worker steals what waits behind a long task on the other', async () => {
    // A prefix never measured: each worker is given two at once, so one of them waits on
    // the worker whose first call blocks, and only a steal can run it.
    const results = await run('steal', 6);
    assert.equal(results.filter((r) => r === 'stuck').length, 0, 'no call stayed queued behind the long one');
    assert.equal(results.filter((r) => r === 'waited').length, 1);
    assert.equal(results.filter((r) => r === 'done').length, 5);
  });
});
