/**
 * The cards outside a notebook, in plain Node: util.inspect shows a cluster, a client and a
 * future as text, and their Jupyter display methods still return the HTML card (no kernel
 * here, so no live display). The notebook's in-place displays are checked against a
 * recording kernel; the real kernel runs them in adaptive.test.ts.
 */
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { Client, LocalCluster } from '../../src/index.js';
import type { Kernel, MimeBundle } from '../../src/notebook/kernel.js';
import { showLive } from '../../src/notebook/kernel.js';
import { NotebookProgress } from '../../src/notebook/progress.js';

const DISPLAY = Symbol.for('Jupyter.display');

interface Displayable {
  [DISPLAY](): MimeBundle | Promise<MimeBundle>;
}
const bundleOf = async (value: unknown): Promise<MimeBundle> => (value as Displayable)[DISPLAY]();
const field = (markup: string | undefined, name: string): string | undefined => new RegExp(`data-field="${name}">([^<]*)<`).exec(markup ?? '')?.[1];

/** A kernel that records what would have been sent. */
function recordingKernel(): { kernel: Kernel; sent: { kind: 'display' | 'update'; id: string; bundle: MimeBundle }[] } {
  const sent: { kind: 'display' | 'update'; id: string; bundle: MimeBundle }[] = [];
  return {
    sent,
    kernel: {
      display: (bundle, id) => {
        sent.push({ kind: 'display', id, bundle });
        return Promise.resolve();
      },
      update: (bundle, id) => {
        sent.push({ kind: 'update', id, bundle });
        return Promise.resolve();
      },
    },
  };
}

void describe('cards in plain Node', () => {
  let cluster: LocalCluster;
  let client: Client;

  before(async () => {
    cluster = await LocalCluster.start({ workers: 1, token: 'sesame', log: false, dashboard: { port: 0 } });
    cluster.adapt({ minimum: 1, maximum: 3 });
    client = await Client.connect(cluster);
  });

  after(async () => {
    await client.close();
    await cluster.close();
  });

  test('a cluster inspects as its text card, and displays as HTML with the dashboard link carrying the token', async () => {
    const link = `${cluster.dashboardLink}?token=sesame`;
    const shown = inspect(cluster);
    assert.match(shown, /^LocalCluster\n {2}Scheduler: tcp:\/\/127\.0\.0\.1:\d+\n/);
    assert.ok(shown.includes(`Dashboard: ${link}`), shown);
    assert.match(shown, /Workers: 1\n {2}Threads: 1\n/);
    assert.match(shown, /Adaptive: minimum 1, maximum 3$/);

    const bundle = await bundleOf(cluster);
    assert.equal(bundle['text/plain'], shown);
    const markup = bundle['text/html'];
    assert.equal(field(markup, 'workers'), '1');
    assert.equal(field(markup, 'threads'), '1');
    assert.equal(field(markup, 'address'), cluster.address);
    // The href carries the token; the text shown does not.
    assert.ok(markup?.includes(`<a href="${link}" target="_blank" rel="noopener">${cluster.dashboardLink}</a>`), markup);
    assert.match(markup ?? '', /<summary>Workers<\/summary>.*local-0/);
  });

  test('a client connected through the cluster shows the cluster’s card within its own', async () => {
    const shown = inspect(client);
    assert.match(shown, new RegExp(`^Client ${client.id}\n {2}Connection: through a LocalCluster\n {2}Futures held: 0\n {2}LocalCluster\n`));
    assert.match(shown, /\n {4}Workers: 1\n/);
    const markup = (await bundleOf(client))['text/html'];
    assert.match(markup ?? '', /class="tessera-client".*class="tessera-cluster"/);
    assert.equal(field(markup, 'workers'), '1');
  });

  test('a client connected by address shows the address alone', async () => {
    const direct = await Client.connect(cluster.address, { token: 'sesame' });
    try {
      assert.equal(inspect(direct), `Client ${direct.id}\n  Scheduler: ${cluster.address}\n  Connection: direct, to ${cluster.address}\n  Futures held: 0`);
    } finally {
      await direct.close();
    }
  });

  test('a future displays its key and status', async () => {
    const future = client.submit((x: number) => x * 2, 21);
    assert.equal(await future, 42);
    const bundle = await bundleOf(future);
    assert.equal(bundle['text/plain'], `Future(${future.key}, finished)`);
    assert.equal(field(bundle['text/html'], 'status'), 'finished');
    assert.equal(inspect(future), `Future(${future.key}, finished)`);
  });

  test('progress stays on the terminal outside a notebook', async () => {
    const lines: string[] = [];
    const stream = { write: (chunk: string) => lines.push(chunk) > 0 } as unknown as NodeJS.WritableStream;
    const futures = client.map((x: number) => x + 1, [1, 2, 3]);
    await client.progress(futures, { stream });
    assert.match(lines.at(-1) ?? '', /100% 3\/3/);
  });

  test('a closed cluster says so', async () => {
    const other = await LocalCluster.start({ workers: 0, log: false, dashboard: false });
    await other.close();
    assert.equal(inspect(other), `LocalCluster (closed)\n  Scheduler: ${other.address}\n  Dashboard: off\n  Workers: 0\n  Threads: 0\n  Memory: 0 B`);
  });
});

void describe('in-place displays', () => {
  test('progress: one display, updates at a bounded rate, and a final summary', async () => {
    const { kernel, sent } = recordingKernel();
    let now = 0;
    const bar = new NotebookProgress(kernel, { total: 10, label: 'maths', redrawInterval: 100, clock: () => now });
    bar.update(0, 0);
    for (let done = 1; done <= 10; done++) {
      now += 30;
      bar.update(done, done === 7 ? 1 : 0);
    }
    await bar.finish();
    await bar.finish();
    assert.deepEqual(
      sent.map((s) => [s.kind, s.bundle['text/plain']]),
      [
        ['display', 'maths 0/10 | 0.0s'],
        ['update', 'maths 4/10 | 0.1s'],
        ['update', 'maths 8/10 | 0.2s'],
        ['update', 'maths 10/10 | done in 0.3s'],
      ],
    );
    assert.equal(new Set(sent.map((s) => s.id)).size, 1, 'one display id throughout');
    assert.match(sent.at(-1)?.bundle['text/html'] ?? '', /data-done="10" data-total="10" data-erred="0" data-final="true"/);
  });

  test('a live display updates only on change, and stops when its source ends', async () => {
    const { kernel, sent } = recordingKernel();
    let value = 0;
    let ended!: () => void;
    const closed = new Promise<void>((resolve) => {
      ended = resolve;
    });
    await showLive(kernel, 'test', () => ({ 'text/plain': `v${value}` }), () => true, { intervalMs: 10, ended: closed });
    await new Promise((resolve) => setTimeout(resolve, 50));
    value = 1;
    await new Promise((resolve) => setTimeout(resolve, 50));
    value = 2;
    ended();
    await new Promise((resolve) => setTimeout(resolve, 10));
    value = 3;
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(
      sent.map((s) => [s.kind, s.bundle['text/plain']]),
      [
        ['display', 'v0'],
        ['update', 'v1'],
        ['update', 'v2'],
      ],
    );
  });

  test('a change told of is shown soon, at most every minGapMs, and telling stops with the display', async () => {
    const { kernel, sent } = recordingKernel();
    let value = 0;
    let changed: (() => void) | undefined;
    let unsubscribed = false;
    let ended!: () => void;
    const closed = new Promise<void>((resolve) => {
      ended = resolve;
    });
    await showLive(kernel, 'test', () => ({ 'text/plain': `v${value}` }), () => true, {
      intervalMs: 60_000,
      minGapMs: 40,
      ended: closed,
      subscribe: (fn) => {
        changed = fn;
        return () => {
          unsubscribed = true;
        };
      },
    });
    const started = performance.now();
    value = 1;
    changed?.();
    changed?.();
    await new Promise((resolve) => setTimeout(resolve, 80));
    assert.deepEqual(sent.map((s) => s.bundle['text/plain']), ['v0', 'v1'], 'shown without waiting for the interval');
    value = 2;
    changed?.();
    await new Promise((resolve) => setTimeout(resolve, 80));
    assert.deepEqual(sent.map((s) => s.bundle['text/plain']), ['v0', 'v1', 'v2']);
    assert.ok(performance.now() - started < 30_000);
    ended();
    await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(unsubscribed, true);
  });
});
