/**
 * The futures of a `map` (persist, scatter): still an Array of Futures for every use that
 * was made of one, and also a card — counts by status, errors grouped — as text in plain
 * Node and as HTML for a notebook, kept current in a kernel until the last is done. The
 * kernel here records what would have been sent (Deno.jupyter's display function); the
 * real kernel runs the machinery in adaptive.test.ts.
 */
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { Client, delayed, Future, LocalCluster, progress } from '../../src/index.js';
import { FutureList } from '../../src/client/future-list.js';
import type { MimeBundle } from '../../src/notebook/kernel.js';
import { until } from '../helpers/wait.js';

const DISPLAY = Symbol.for('Jupyter.display');
const bundleOf = (value: unknown): Promise<MimeBundle> => Promise.resolve((value as Record<symbol, () => MimeBundle | Promise<MimeBundle>>)[DISPLAY]!());
const field = (markup: string | undefined, name: string): string | undefined => new RegExp(`data-field="${name}">([^<]*)<`).exec(markup ?? '')?.[1];

const picky = (x: number): number => {
  if (x % 5 === 0) throw new RangeError('multiples of five are refused');
  if (x === 7) throw new TypeError('seven is not a number here');
  return x * 2;
};

void describe('the futures of a map', () => {
  let cluster: LocalCluster;
  let client: Client;

  before(async () => {
    cluster = await LocalCluster.start({ workers: 1, threadsPerWorker: 2, log: false, dashboard: false });
    client = await Client.connect(cluster);
  });

  after(async () => {
    await client.close();
    await cluster.close();
  });

  test('are still an array of futures: indexing, iteration, map and gather give plain arrays', async () => {
    const fs = client.map((x: number) => x + 1, [1, 2, 3]);
    assert.ok(fs instanceof FutureList);
    assert.ok(Array.isArray(fs));
    assert.equal(fs.length, 3);
    assert.ok(fs.every((f) => f instanceof Future));
    const keys = fs.map((f) => f.key);
    assert.equal(Object.getPrototypeOf(keys), Array.prototype, 'map gives a plain Array');
    assert.equal(Object.getPrototypeOf(fs.slice(1)), Array.prototype);
    assert.deepEqual([...fs].map((f) => f.key), keys);
    const values: number[] = await client.gather(fs);
    assert.deepEqual(values, [2, 3, 4]);
    assert.deepEqual(await client.gather({ all: fs, first: fs[0]! }), { all: [2, 3, 4], first: 2 });
    await progress(fs, { stream: { write: () => true } as unknown as NodeJS.WritableStream });
    assert.ok(client.persist([delayed((x: number) => x)(1), delayed((x: number) => x)(2)]) instanceof FutureList);
    assert.ok(client.scatter([1, 2]) instanceof FutureList);
  });

  test('show their counts by status and their errors grouped, as text and as HTML', async () => {
    const fs = client.map(picky, Array.from({ length: 20 }, (_, i) => i + 1));
    await client.wait(fs);
    const first = fs[4]!.key;
    const text = inspect(fs);
    assert.equal(
      text,
      [
        '20 futures',
        '  Status: 15 finished, 5 erred',
        `  Keys: ${fs[0]!.key.replace(/-[^-]*$/, '')}-* (20)`,
        '  Errors:',
        `    4 × RangeError: multiples of five are refused (first: ${first})`,
        `    1 × TypeError: seven is not a number here (first: ${fs[6]!.key})`,
      ].join('\n'),
    );
    const bundle = await bundleOf(fs);
    assert.equal(bundle['text/plain'], text);
    const markup = bundle['text/html'];
    assert.match(markup ?? '', /^<div class="tessera-futures"/);
    assert.equal(field(markup, 'status'), '15 finished, 5 erred');
    assert.match(markup ?? '', /data-status="finished" style="width: 75\.00%.*data-status="erred" style="width: 25\.00%/);
    assert.match(markup ?? '', /<summary>Errors<\/summary>.*<tr class="tessera-error"><td[^>]*>4 ×<\/td><td[^>]*><code>RangeError: multiples of five are refused<\/code>/);
    assert.equal([...(markup ?? '').matchAll(/class="tessera-error"/g)].length, 2);
  });

  test('released futures count as cancelled; an empty map says so', () => {
    const fs = client.map((x: number) => x, [1, 2]);
    fs[1]!.release();
    assert.match(inspect(fs), /Status: (1 (finished|pending), )?1 cancelled\n/);
    assert.equal(inspect(client.map((x: number) => x, [])), '0 futures\n  Status: empty\n  Keys: none');
  });

  test('in a kernel, a pending set is one display updated in place until the last is done, then left alone', async (t) => {
    const sent: { bundle: MimeBundle; id: string | undefined; update: boolean }[] = [];
    const global = globalThis as { Deno?: unknown };
    assert.equal(global.Deno, undefined);
    global.Deno = {
      jupyter: {
        display: (bundle: MimeBundle, options: { display_id?: string; update?: boolean }) => {
          sent.push({ bundle, id: options.display_id, update: options.update === true });
          return Promise.resolve();
        },
      },
    };
    t.after(() => delete global.Deno);
    const slow = async (x: number): Promise<number> => {
      await new Promise((resolve) => setTimeout(resolve, 250));
      return x;
    };
    const fs = client.map(slow, [1, 2, 3, 4, 5, 6]);
    const result = await bundleOf(fs);
    assert.deepEqual(result, {}, 'the cell itself shows nothing: the card is its own display');
    assert.equal(sent[0]?.update, false);
    assert.match(sent[0].bundle['text/plain']!, /Status: 6 pending/);
    await until(() => /Status: 6 finished$/m.test(sent.at(-1)?.bundle['text/plain'] ?? ''), 'the card shows all finished', 15_000, 20);
    assert.ok(sent.slice(1).every((s) => s.update && s.id === sent[0]!.id), 'updates in place');
    const count = sent.length;
    await new Promise((resolve) => setTimeout(resolve, 1300));
    assert.equal(sent.length, count, 'no update after the last is done');
    // Nothing pending: the card itself, no display of its own.
    assert.match((await bundleOf(fs))['text/html'] ?? '', /data-field="status">6 finished</);
  });
});
