/**
 * The dashboard of a real adaptive LocalCluster in headless Chromium: the scaled-down demo
 * workload (40 tasks that hold their thread 250 ms) arrives at a cluster of no workers;
 * the page must show the worker count rise and fall back to the one holding the result,
 * progress reaching done for the prefix, and task-stream bars for finished tasks.
 * Screenshots go to artifacts/dashboard/cluster-*.png.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { chromiumMissing, launchChromium } from '../../helpers/chromium.js';
import { Client, LocalCluster } from '../../../src/index.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const artifacts = join(root, 'artifacts/dashboard');
const missing = chromiumMissing;
if (missing !== false) process.stderr.write(`# ${missing}\n`);

const TASKS = 40;
const SLEEP_MS = 250;

/** The demo's task: simple maths holding its thread, as real computation would. Travels as source. */
const slowMaths = ({ i, ms }: { i: number; ms: number }): number => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  return ((i * i) % 97) + 1;
};
const total = (...xs: number[]): number => xs.reduce((s, x) => s + x, 0);

interface Seen {
  readonly t: number;
  readonly workers: number;
  readonly bars: number;
  readonly lanes: number;
  readonly doneRow: string | undefined;
  readonly finished: number;
  readonly decisions: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

void describe('the dashboard of an adaptive LocalCluster in Chromium', { skip: missing }, () => {
  let browser: Browser;

  before(async () => {
    // Built at install time; built here only when missing, since page.test.ts rebuilds it in place.
    if (!existsSync(join(root, 'src/dashboard/static/app.js'))) {
      execFileSync(process.execPath, [join(root, 'scripts/build-dashboard.mjs')], { stdio: 'inherit' });
    }
    mkdirSync(artifacts, { recursive: true });
    browser = await launchChromium();
  });

  after(async () => {
    await browser.close();
  });

  void test('workers rise and fall, progress reaches done, finished tasks are drawn', async () => {
    const cluster = await LocalCluster.start({ workers: 0, threadsPerWorker: 1, dashboard: { port: 0 } });
    let client: Client | undefined;
    let page: Page | undefined;
    try {
      cluster.adapt({ minimum: 0, maximum: 3, targetDuration: '2s', interval: '300ms', waitCount: 2 });
      const link = cluster.dashboardLink;
      assert.ok(link !== undefined, 'the dashboard is on');
      page = await browser.newPage({ viewport: { width: 1440, height: 1300 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      await page.goto(link);
      await page.waitForFunction(() => Number(document.body.dataset['updates'] ?? 0) > 0, undefined, { timeout: 10_000 });

      const live = page;
      const seen: Seen[] = [];
      const start = performance.now();
      let busyShot = false;
      const look = async (): Promise<Seen> => {
        const s = await live.evaluate(
          (prefix: string) => {
            const row = document.querySelector<HTMLElement>(`.progress-row[data-prefix="${prefix}"]`);
            const stream = document.getElementById('task-stream');
            return {
              workers: Number(document.body.dataset['workers'] ?? -1),
              bars: Number(stream?.dataset['bars'] ?? 0),
              lanes: Number(stream?.dataset['lanes'] ?? 0),
              doneRow: row?.dataset['done'],
              finished: Number(row?.dataset['finished'] ?? 0),
              decisions: Number(document.getElementById('decisions')?.dataset['count'] ?? 0),
            };
          },
          'slowMaths',
        );
        const entry = { t: performance.now() - start, ...s };
        seen.push(entry);
        if (!busyShot && s.workers >= 2 && s.bars > 0) {
          busyShot = true;
          await live.screenshot({ path: join(artifacts, 'cluster-busy.png'), fullPage: true });
        }
        return entry;
      };
      // Watch the page throughout, as a user would, while the work runs.
      let watching = true;
      const watcher = (async () => {
        while (watching) {
          await look();
          await sleep(150);
        }
      })();

      client = await Client.connect(cluster.address);
      const parts = client.map(slowMaths, Array.from({ length: TASKS }, (_, i) => ({ i, ms: SLEEP_MS })));
      const sum = client.submit(total, ...parts);
      const expected = Array.from({ length: TASKS }, (_, i) => ((i * i) % 97) + 1).reduce((s, x) => s + x, 0);
      assert.equal(await sum.result(), expected);
      // Only the final answer stays wanted: the cluster shrinks to the worker holding it.
      for (const f of parts) f.release();
      const deadline = performance.now() + 30_000;
      while (performance.now() < deadline) {
        const last = seen[seen.length - 1];
        if (last !== undefined && cluster.scheduler.workers.length <= 1 && last.workers <= 1 && last.doneRow === 'true') break;
        await sleep(100);
      }
      watching = false;
      await watcher;
      // The worker table and memory bars follow the worker list, sent about once a second.
      await page.waitForFunction(() => document.getElementById('workers')?.dataset['rows'] === '1', undefined, { timeout: 5_000 });
      const final = await look();
      await page.screenshot({ path: join(artifacts, 'cluster-end.png'), fullPage: true });

      const counts = seen.map((s) => s.workers);
      const trace = seen.map((s) => `${(s.t / 1000).toFixed(1)}s:${s.workers}`).join(' ');
      const peak = Math.max(...counts);
      const peakAt = counts.indexOf(peak);
      assert.equal(counts[0], 0, `starts from zero workers: ${trace}`);
      assert.ok(peak >= 2, `rises: ${trace}`);
      assert.ok(peak <= 3, `within maximum: ${trace}`);
      assert.ok(final.workers <= 1 && counts.slice(peakAt).includes(final.workers), `falls back to the worker holding the result: ${trace}`);
      assert.equal(final.doneRow, 'true', 'the prefix is done');
      assert.equal(final.finished, TASKS, `${TASKS} of ${TASKS} slowMaths finished`);
      const progress = await page.$eval('.progress-row[data-prefix="slowMaths"]', (e) => (e as HTMLElement).dataset['total']);
      assert.equal(progress, String(TASKS));
      assert.ok(Math.max(...seen.map((s) => s.bars)) > 0, 'task-stream bars were drawn');
      assert.ok(final.bars > 0 && final.lanes >= 1, `finished tasks stay on the stream: ${final.bars} bars on ${final.lanes} lanes`);
      assert.ok(final.decisions >= 2, `scaling decisions listed: ${final.decisions}`);
      const chart = await page.$eval('#cluster-chart', (e) => ({ max: Number((e as HTMLElement).dataset['maxRunning']), points: Number((e as HTMLElement).dataset['points']) }));
      assert.ok(chart.max >= 2 && chart.points >= 5, `the cluster chart saw the rise: ${JSON.stringify(chart)}`);
      assert.deepEqual(errors, [], 'no errors on the page');
      sum.release();
    } finally {
      await page?.close();
      await client?.close();
      await cluster.close();
    }
  });
});
