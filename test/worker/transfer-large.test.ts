// Values larger than one packet travel from worker to worker and from worker to client;
// what is past the message limit fails its task once, naming the key and the reason.
//
// The limits are made small for the whole cluster through the environment, which the
// worker processes inherit — a 64 KiB frame limit instead of 512 MiB, a 4 MiB message
// limit instead of half the machine's memory — so that the values stay cheap while taking
// the same code paths as a 600 MB one would.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, LocalCluster, UnserializableError } from '../../src/index.js';

const PACKET = 64 * 1024;
const MESSAGE = 4 * 1024 * 1024;

/** A value of some MB: binary data in a typed array and plain data, each larger than a packet. */
function make(seed: number): { data: Float64Array; labels: string[]; seed: number } {
  const data = new Float64Array(200_000); // 1.6 MB: 25 packets
  for (let i = 0; i < data.length; i++) data[i] = seed * 1e6 + i / 4;
  const labels = Array.from({ length: 20_000 }, (_, i) => `label-${seed}-${i}`); // ~300 kB of msgpack
  return { data, labels, seed };
}

void describe('values larger than a packet, between processes', () => {
  let cluster: LocalCluster;
  let client: Client;
  const saved = { packet: process.env['TESSERA_MAX_PACKET_SIZE'], message: process.env['TESSERA_MAX_MESSAGE_SIZE'] };

  before(async () => {
    process.env['TESSERA_MAX_PACKET_SIZE'] = String(PACKET);
    process.env['TESSERA_MAX_MESSAGE_SIZE'] = String(MESSAGE);
    cluster = await LocalCluster.start({ workers: 2, threadsPerWorker: 1, dashboard: false });
    client = await Client.connect(cluster.address);
  });

  after(async () => {
    await client.close();
    await cluster.close();
    if (saved.packet === undefined) delete process.env['TESSERA_MAX_PACKET_SIZE'];
    else process.env['TESSERA_MAX_PACKET_SIZE'] = saved.packet;
    if (saved.message === undefined) delete process.env['TESSERA_MAX_MESSAGE_SIZE'];
    else process.env['TESSERA_MAX_MESSAGE_SIZE'] = saved.message;
  });

  void test('a result made on one worker is the input of a task on the other, and gathered by the client, intact', { timeout: 120_000 }, async () => {
    const names = cluster.processes.map((p) => p.name);
    assert.equal(names.length, 2);
    const made = client.submitWith({ key: 'large-made', workers: [names[0]!] }, make, 3);
    // On the other worker: the 1.9 MB value is fetched from the first, in 30 packets.
    const summed = client.submitWith(
      { key: 'large-summed', workers: [names[1]!] },
      (v: { data: Float64Array; labels: string[]; seed: number }) => {
        let sum = 0;
        for (const x of v.data) sum += x;
        return { sum, labels: v.labels.length, last: v.labels[v.labels.length - 1], isTyped: v.data instanceof Float64Array };
      },
      made,
    );
    const expected = make(3);
    let sum = 0;
    for (const x of expected.data) sum += x;
    assert.deepEqual(await summed.result(), { sum, labels: 20_000, last: 'label-3-19999', isTyped: true });
    // To the client: the same bytes, as a Float64Array.
    const value = await made.result();
    assert.ok(value.data instanceof Float64Array);
    assert.ok(Buffer.from(value.data.buffer, value.data.byteOffset, value.data.byteLength).equals(Buffer.from(expected.data.buffer)));
    assert.deepEqual(value.labels, expected.labels);
  });

  void test('a result past the message limit fails once, naming the key and the limit; the cluster goes on', { timeout: 120_000 }, async () => {
    // Binary data: 5 MB in a typed array.
    const binary = client.submitWith({ key: 'too-large-binary' }, () => new Float64Array(625_000).fill(1));
    await assert.rejects(binary.result(), (error: unknown) => {
      assert.ok(error instanceof UnserializableError, String(error));
      assert.equal(error.key, 'too-large-binary');
      assert.match(error.message, new RegExp(`5000000 bytes of binary data once encoded, more than the ${MESSAGE}-byte limit`));
      return true;
    });
    // Plain data: 600,000 floats are about 5.4 MB of msgpack.
    const plain = client.submitWith({ key: 'too-large-plain' }, () => Array.from({ length: 600_000 }, (_, i) => i + 0.5));
    await assert.rejects(plain.result(), (error: unknown) => {
      assert.ok(error instanceof UnserializableError, String(error));
      assert.equal(error.key, 'too-large-plain');
      assert.match(error.message, new RegExp(`about \\d+ bytes once encoded, more than the ${MESSAGE}-byte limit`));
      return true;
    });
    // Below the limit, several packets long, it travels.
    assert.equal((await client.submit(() => Array.from({ length: 300_000 }, (_, i) => i + 0.5)).result()).length, 300_000);
  });
});
