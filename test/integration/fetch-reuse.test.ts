// Values fetched from peers are read into memory the worker let go of before (FrameLender):
// real workers over real sockets, each fetched value checked whole, whatever else moves.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, Scheduler, Worker } from '../../src/index.js';
import { until } from '../helpers/wait.js';

const n = 2 ** 18; // 2 MiB of float64: frames this large are lent
const filled = (x: number, size: number): Float64Array => new Float64Array(size).fill(x);
const total = (xs: Float64Array): number => xs.reduce((s, x) => s + x, 0);

async function metric(worker: Worker, name: string): Promise<number> {
  const text = await (await fetch(worker.metricsLink!)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`));
  assert.ok(line !== undefined, `the worker reports ${name}`);
  return Number(line.split(' ').at(-1));
}

const reusedOn = (worker: Worker): Promise<number> => metric(worker, 'tessera_worker_frames_reused_total');

void describe('fetched frames in reused memory', () => {
  let scheduler: Scheduler;
  let client: Client;
  const workers = new Map<string, Worker>();

  before(async () => {
    scheduler = await Scheduler.start({ port: 0 });
    for (const name of ['a', 'b', 'c']) workers.set(name, await Worker.start({ scheduler: scheduler.address, nthreads: 1, name, log: () => undefined }));
    client = await Client.connect(scheduler.address);
  });

  after(async () => {
    await (client as Client | undefined)?.close();
    for (const worker of workers.values()) await worker.close();
    await (scheduler as Scheduler | undefined)?.close();
  });

  /** x (filled with `fill`) made on `from`, summed on `to`, both let go once `to` has. */
  async function hop(fill: number, from: string, to: string): Promise<void> {
    const x = client.submitWith({ workers: [from] }, filled, fill, n);
    const sum = client.submitWith({ workers: [to], pure: false }, total, x);
    assert.equal(await sum.result(), fill * n, `${fill}s made on ${from}, summed on ${to}`);
    x.release();
    sum.release();
    await until(() => !workers.get(to)!.keys.includes(x.key), `${to} lets the fetched value go`);
  }

  void test('each fetch arrives whole, into the memory of the one before, and a value still held is never written over', async () => {
    const kept = client.submitWith({ workers: ['a'] }, filled, 100, n);
    const first = client.submitWith({ workers: ['b'], pure: false }, total, kept);
    assert.equal(await first.result(), 100 * n);
    const before = await reusedOn(workers.get('b')!);
    for (let round = 1; round <= 6; round++) await hop(round, 'a', 'b');
    const reused = (await reusedOn(workers.get('b')!)) - before;
    assert.ok(reused >= 4, `frames read into reused memory: ${reused} of 6`);
    const again = client.submitWith({ workers: ['b'], pure: false }, total, kept);
    assert.equal(await again.result(), 100 * n, 'the value b kept all along is as it arrived');
    for (const f of [kept, first, again]) f.release();
  });

  void test('a fetched value sent on arrives whole, and its memory is never taken back', async () => {
    const [a, b] = [workers.get('a')!, workers.get('b')!];
    // A size of its own, so that the buffers the pool holds of it are this test's.
    const m = 3 * 2 ** 17;
    const x = client.submitWith({ workers: ['a'] }, filled, 7, m);
    const onB = client.submitWith({ workers: ['b'], pure: false }, total, x);
    assert.equal(await onB.result(), 7 * m);
    // Only b holds x now: c fetches it from there, while b fetches others of n.
    await a.close();
    workers.delete('a');
    await until(() => !scheduler.workers.includes(a.id), 'a has left');
    const onC = client.submitWith({ workers: ['c'], pure: false }, total, x);
    const churn = [8, 9, 10].map((fill) => hop(fill, 'c', 'b'));
    assert.equal(await onC.result(), 7 * m, 'what b sent on arrived whole');
    await Promise.all(churn);
    const before = await metric(b, 'tessera_worker_reusable_bytes');
    onB.release();
    onC.release();
    x.release();
    await until(() => !b.keys.includes(x.key), 'b lets x go');
    const after = await metric(b, 'tessera_worker_reusable_bytes');
    assert.ok(after - before < m * 8, `x's frame stays out of the pool once sent on (kept for reuse: ${before} → ${after} bytes)`);
    for (const fill of [11, 12, 13]) await hop(fill, 'c', 'b');
  });
});
