// client.story(key): a key's history across the scheduler and the workers, with the
// stimulus behind each step.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, LocalCluster } from '../../src/index.js';
import { until } from '../helpers/wait.js';

void describe('story', () => {
  let cluster: LocalCluster;
  let client: Client;

  before(async () => {
    cluster = await LocalCluster.start({ workers: 2, threadsPerWorker: 1, dashboard: false, log: () => undefined });
    client = await Client.connect(cluster.address);
  });

  after(async () => {
    await (client as Client | undefined)?.close();
    await (cluster as LocalCluster | undefined)?.close();
  });

  void test('tells a recomputed task\'s history after its worker was killed', async () => {
    const f = client.submitWith({ key: 'story-x' }, (x: number) => x * 2, 21);
    assert.equal(await f.result(), 42);
    const holder = cluster.scheduler.taskInfo('story-x')?.whoHas[0];
    assert.ok(holder !== undefined);
    const name = cluster.scheduler.workerNames().get(holder);
    const proc = cluster.processes.find((p) => p.name === name);
    assert.ok(proc !== undefined, `the process of ${String(name)}`);
    process.kill(proc.pid, 'SIGKILL');
    // The result is wanted, so the scheduler recomputes it on the worker that is left.
    await until(() => {
      const info = cluster.scheduler.taskInfo('story-x');
      return info?.state === 'memory' && !info.whoHas.includes(holder);
    }, 'story-x is recomputed elsewhere');
    assert.equal(await f.result(), 42);

    const story = await client.story(f);
    const scheduler = story.filter((e) => e.where === 'scheduler');
    const ran = scheduler.filter((e) => e.to === 'processing').map((e) => e.worker);
    assert.equal(ran.length, 2, JSON.stringify(scheduler));
    assert.equal(ran[0], holder);
    assert.notEqual(ran[1], holder);
    // Losing its only copy is told, with the worker's removal as the reason.
    const lost = scheduler.find((e) => e.from === 'memory' && e.to === 'released');
    assert.ok(lost !== undefined, JSON.stringify(scheduler));
    assert.match(lost.stimulus, /^remove-worker/);
    // Each step names what caused it, and the story is in time order.
    for (const e of story) assert.ok(e.stimulus.length > 0);
    for (let i = 1; i < story.length; i++) assert.ok(story[i]!.at >= story[i - 1]!.at);
  });
});
