// A key's story over the real wire: the workers' cores tell their part (running it,
// fetching it from a peer), with the stimulus of the scheduler message that set it off.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, LocalCluster, type StoryEntry } from '../../src/index.js';

void describe('story across the scheduler and the workers', () => {
  let cluster: LocalCluster;
  let client: Client;

  before(async () => {
    cluster = await LocalCluster.start({ workers: 2, threadsPerWorker: 1, dashboard: false, log: () => undefined });
    client = await Client.connect(cluster.address);
    await cluster.scheduler.waitForWorkers(2);
  });

  after(async () => {
    await (client as Client | undefined)?.close();
    await (cluster as LocalCluster | undefined)?.close();
  });

  void test('client.story(key) includes what each worker did with it, and why', async () => {
    const [first, second] = [...cluster.scheduler.workerNames()];
    assert.ok(first !== undefined && second !== undefined);
    const [idA, nameA] = first;
    const [idB, nameB] = second;
    // x runs on A; y, which needs x, on B: B fetches x from A.
    const x = client.submitWith({ key: 'wire-x', workers: [nameA] }, (n: number) => n + 1, 1);
    const y = client.submitWith({ key: 'wire-y', workers: [nameB] }, (n: number) => n * 10, x);
    assert.equal(await y.result(), 20);

    const story = await client.story(x, y);
    const told = (where: string, key: string): string[] => story.filter((e) => e.where === where && e.key === key).map((e) => `${e.from}>${e.to}`);
    assert.deepEqual(told(idA, 'wire-x'), ['released>ready', 'ready>running', 'running>memory'], JSON.stringify(story));
    assert.deepEqual(told(idB, 'wire-x'), ['released>fetch', 'fetch>flight', 'flight>memory'], JSON.stringify(story));
    assert.deepEqual(told(idB, 'wire-y'), ['released>waiting', 'waiting>ready', 'ready>running', 'running>memory'], JSON.stringify(story));
    const fetched = story.find((e) => e.where === idB && e.key === 'wire-x' && e.to === 'flight');
    assert.equal(fetched?.worker, idA, 'the fetch names the holder asked');

    // The worker's first step has the stimulus of the scheduler's decision that sent it there.
    const sent = story.find((e: StoryEntry) => e.where === 'scheduler' && e.key === 'wire-x' && e.to === 'processing');
    const received = story.find((e: StoryEntry) => e.where === idA && e.key === 'wire-x');
    assert.ok(sent !== undefined && received !== undefined);
    assert.equal(received.stimulus, sent.stimulus);
    assert.equal(sent.worker, idA);
    // On the scheduler's clock, in order.
    for (let i = 1; i < story.length; i++) assert.ok(story[i]!.at >= story[i - 1]!.at);
    assert.ok(received.at >= sent.at - 50, 'the worker received it after it was sent, give or take the clocks');
  });
});
