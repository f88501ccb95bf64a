// A cluster whose every connection is TLS: client to scheduler, worker to scheduler, worker
// to worker (get-data) and client to worker (gather), with a self-signed certificate.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client } from '../../src/client/client.js';
import { Scheduler } from '../../src/process/scheduler.js';
import { Worker } from '../../src/worker/worker.js';
import { selfSigned } from '../helpers/tls.js';

const made = selfSigned();
const skip = typeof made === 'string' ? made : false;
const TOKEN = 'tls-secret';

const make = (n: number): Float64Array => Float64Array.from({ length: n }, (_, i) => i);
const total = (xs: Float64Array): number => xs.reduce((a, b) => a + b, 0);

void describe('a TLS cluster', { skip }, () => {
  let cert: Buffer;
  let key: Buffer;
  let scheduler: Scheduler;
  const workers: Worker[] = [];
  let client: Client;
  const logged: string[] = [];

  before(async () => {
    assert.ok(typeof made !== 'string');
    ({ cert, key } = made);
    scheduler = await Scheduler.start({ port: 0, token: TOKEN, tls: { cert, key }, dashboard: false, log: (line) => logged.push(line) });
    for (const name of ['w1', 'w2']) {
      workers.push(
        await Worker.start({
          scheduler: scheduler.address,
          token: TOKEN,
          tls: { cert, key, ca: cert },
          nthreads: 1,
          name,
          metricsPort: false,
          log: (line) => logged.push(`${name}: ${line}`),
        }),
      );
    }
    await scheduler.waitForWorkers(2);
    client = await Client.connect(scheduler.address, { token: TOKEN, tls: { ca: cert } });
  });

  after(async () => {
    // before() may have failed half-way.
    await (client as Client | undefined)?.close();
    await Promise.all(workers.map((w) => w.close()));
    await (scheduler as Scheduler | undefined)?.close();
  });

  test('the scheduler and the workers listen on tls://', () => {
    assert.match(scheduler.address, /^tls:\/\//);
    for (const w of workers) {
      assert.ok(w.address?.startsWith('tls://'), `worker address ${String(w.address)}`);
      assert.equal(w.id, w.address);
    }
    assert.deepEqual(new Set(scheduler.workers), new Set(workers.map((w) => w.id)));
  });

  test('a result made on one worker is fetched over TLS by the other and gathered by the client', { timeout: 30_000 }, async () => {
    const [w1, w2] = workers as [Worker, Worker];
    const made = client.submitWith({ key: 'tls-made', workers: [w1.id] }, make, 100_000);
    const summed = client.submitWith({ key: 'tls-summed', workers: [w2.id] }, total, made);
    assert.equal(await summed.result(), (100_000 * 99_999) / 2);
    assert.ok(w1.keys.includes('tls-made'));
    // w2 got it from w1 directly.
    assert.ok(w2.keys.includes('tls-made'), `w2 holds ${w2.keys.join(', ')}`);
    assert.ok(w2.keys.includes('tls-summed'));
    // Gathered from w1's TLS data port.
    const array = await made.result();
    assert.ok(array instanceof Float64Array);
    assert.deepEqual(array, make(100_000));
    assert.deepEqual(logged.filter((line) => /could not fetch|refused/.test(line)), []);
  });

  test('a client without the CA is refused', async () => {
    await assert.rejects(Client.connect(scheduler.address, { token: TOKEN, timeout: 3000 }), /certificate/i);
  });
});
