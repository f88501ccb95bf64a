/**
 * The page in real headless Chromium (Debian's /usr/bin/chromium driven by
 * playwright-core): a replayed adaptive run must show the cluster growing and shrinking,
 * progress reaching done and task-stream bars; a 1,000-worker, 100,000-task source must
 * keep the page's DOM bounded. Screenshots go to artifacts/dashboard/.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { chromiumMissing, launchChromium } from '../../helpers/chromium.js';
import { startDashboard } from '../../../src/dashboard/server.js';
import type { ScalingSample } from '../../../src/protocol/scaling.js';
import { sleep } from '../../helpers/wait.js';
import { LargeSource, recordSimulation, ReplaySource } from '../replay.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const artifacts = join(root, 'artifacts/dashboard');
const missing = chromiumMissing;
if (missing !== false) process.stderr.write(`# ${missing}\n`);

interface Seen {
  readonly workers: number;
  readonly bars: number;
  readonly updates: number;
  readonly done: readonly string[];
  readonly decisions: number;
}

void describe('dashboard page in Chromium', { skip: missing }, () => {
  let browser: Browser;

  before(async () => {
    // The page is built at install time; build it here too so the test sees this source.
    execFileSync(process.execPath, [join(root, 'scripts/build-dashboard.mjs')], { stdio: 'inherit' });
    mkdirSync(artifacts, { recursive: true });
    browser = await launchChromium();
  });

  after(async () => {
    await browser.close();
  });

  const openPage = async (url: string): Promise<Page> => {
    const page = await browser.newPage({ viewport: { width: 1440, height: 1300 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(url);
    await page.waitForFunction(() => Number(document.body.dataset['renders'] ?? 0) > 0, undefined, { timeout: 10_000 });
    assert.deepEqual(errors, [], 'no errors on the page');
    return page;
  };

  void test('an adaptive run: workers rise and fall, progress reaches done, bars are drawn', async () => {
    const recording = await recordSimulation();
    const source = new ReplaySource(recording, 4, { paused: true });
    const dashboard = await startDashboard({ source, port: 0 });
    try {
      const page = await openPage(dashboard.url);
      // The replay plays once the page is up: on a loaded machine opening it can take seconds.
      source.start();
      const seen: Seen[] = [];
      let midShot = false;
      const end = performance.now() + source.durationMs + 1500;
      while (performance.now() < end) {
        const s = await page.evaluate(
          (): Seen => ({
            workers: Number(document.body.dataset['workers'] ?? -1),
            bars: Number(document.getElementById('task-stream')?.dataset['bars'] ?? 0),
            updates: Number(document.body.dataset['updates'] ?? 0),
            done: [...document.querySelectorAll<HTMLElement>('.progress-row[data-done="true"]')].map((e) => e.dataset['prefix'] ?? ''),
            decisions: Number(document.getElementById('decisions')?.dataset['count'] ?? 0),
          }),
        );
        seen.push(s);
        if (!midShot && s.workers >= 10 && s.bars > 20) {
          midShot = true;
          // The bars are on the canvas, not only counted: painted pixels above the time axis.
          const painted = await page.$eval('#task-stream', (el) => {
            const canvas = el as HTMLCanvasElement;
            const ctx = canvas.getContext('2d');
            if (ctx === null) return -1;
            const { data } = ctx.getImageData(0, 0, canvas.width, Math.floor(canvas.height * 0.8));
            let n = 0;
            for (let i = 3; i < data.length; i += 4) if ((data[i] as number) > 0) n++;
            return n;
          });
          assert.ok(painted > 500, `${painted} task-stream pixels painted`);
          await page.screenshot({ path: join(artifacts, 'adaptive-busy.png'), fullPage: true });
        }
        await sleep(150);
      }
      await page.screenshot({ path: join(artifacts, 'adaptive-end.png'), fullPage: true });
      const counts = seen.map((s) => s.workers);
      const peak = Math.max(...counts);
      const peakAt = counts.indexOf(peak);
      assert.ok(Math.min(...counts.slice(0, peakAt + 1)) <= 1, `starts small: ${counts.join(',')}`);
      assert.ok(peak >= 10, `rises: ${counts.join(',')}`);
      const final = counts[counts.length - 1] ?? -1;
      assert.ok(final < peak / 2, `falls: ${counts.join(',')}`);
      assert.ok(Math.max(...seen.map((s) => s.bars)) > 0, 'task-stream bars were drawn');
      const last = seen[seen.length - 1] as Seen;
      assert.ok(last.done.includes('sleep') && last.done.includes('sum'), `prefixes done: ${last.done.join(',')}`);
      assert.ok(last.decisions >= 2, 'decisions listed');
      const sleepRow = await page.$eval('.progress-row[data-prefix="sleep"]', (e) => [(e as HTMLElement).dataset['finished'], (e as HTMLElement).dataset['total']]);
      assert.deepEqual(sleepRow, ['240', '240']);
      // The cluster chart saw the same rise and fall from the adaptive history.
      const chart = await page.$eval('#cluster-chart', (e) => ({ max: Number((e as HTMLElement).dataset['maxRunning']), points: Number((e as HTMLElement).dataset['points']) }));
      assert.ok(chart.max >= 10 && chart.points >= 10, JSON.stringify(chart));
      // The table sorts on a click.
      await page.click('#workers th[data-sort="name"]');
      const sorted = await page.$eval('#workers th[data-sort="name"]', (e) => e.getAttribute('aria-sort'));
      assert.equal(sorted, 'ascending');
      await page.close();
    } finally {
      await dashboard.close();
    }
  });

  void test('a pool that bursts: the burst is a second, stacked series with its own legend, and its decisions say so', async () => {
    const recording = await recordSimulation();
    // The same run, as a pool of two that bursts: the loop's history divides each sample.
    const POOL = 2;
    const split = (requested: number, running: number, closing: number, target: number): Pick<ScalingSample, 'persistent' | 'burst'> => ({
      persistent: { requested: Math.min(requested, POOL), running: Math.min(running, POOL), closing: 0, target: Math.min(target, POOL) },
      burst: { requested: Math.max(0, requested - POOL), running: Math.max(0, running - POOL), closing, target: Math.max(0, target - POOL) },
    });
    const history = {
      samples: recording.history.samples.map((x) => ({ ...x, ...split(x.requested, x.running, x.closing, x.target) })),
      decisions: recording.history.decisions.map((d) => ({ ...d, reason: `burst: ${d.reason}`, backend: 'burst' as const })),
    };
    const source = new ReplaySource({ ...recording, history }, 16, { paused: true });
    const dashboard = await startDashboard({ source, port: 0 });
    try {
      const page = await openPage(dashboard.url);
      source.start();
      await page.waitForFunction(() => Number(document.getElementById('cluster-chart')?.dataset['maxBurstRunning'] ?? 0) >= 8, undefined, { timeout: source.durationMs + 10_000 });
      await page.screenshot({ path: join(artifacts, 'adaptive-burst.png'), fullPage: true });
      const chart = await page.$eval('#cluster-chart', (e) => ({
        bursts: (e as HTMLElement).dataset['bursts'],
        running: Number((e as HTMLElement).dataset['running']),
        pool: Number((e as HTMLElement).dataset['persistentRunning']),
        burst: Number((e as HTMLElement).dataset['burstRunning']),
        legend: [...e.querySelectorAll('.u-legend .u-series')].map((row) => row.textContent.trim()),
      }));
      assert.equal(chart.bursts, 'true');
      assert.equal(chart.pool + chart.burst, chart.running, JSON.stringify(chart));
      // The legend shows the latest values: the burst's own count, not its stacked height.
      const burstRow = chart.legend.find((l) => l.startsWith('burst running'));
      assert.equal(burstRow, `burst running${chart.burst}`, JSON.stringify(chart.legend));
      assert.ok(chart.legend.some((l) => l.startsWith('pool running')), JSON.stringify(chart.legend));
      const listed = await page.$$eval('#decisions li.burst', (els) => els.map((e) => [e.querySelector('.what')?.textContent ?? '', e.querySelector('.why')?.textContent ?? '']));
      assert.ok(listed.length > 0, 'burst decisions listed');
      // Said once, in front of what was decided; the reason follows without it.
      for (const [what, why] of listed) assert.ok(what!.startsWith('burst: ') && !why!.startsWith('burst:'), JSON.stringify(listed));
      await page.close();
    } finally {
      await dashboard.close();
    }
  });

  void test('1,000 workers and 100,000 tasks: the update handler stays cheap and the DOM bounded', async (t) => {
    const source = new LargeSource();
    const dashboard = await startDashboard({ source, port: 0, updateIntervalMs: 300 });
    try {
      const page = await openPage(dashboard.url);
      await page.waitForFunction(() => Number(document.body.dataset['updates'] ?? 0) >= 15, undefined, { timeout: 20_000 });
      const result = await page.evaluate(() => ({
        stats: (window as unknown as { tesseraDashboard: { handleMs: number[]; renderMs: number[]; updates: number } }).tesseraDashboard,
        nodes: document.getElementsByTagName('*').length,
        rows: document.querySelectorAll('#workers tbody tr:not([hidden])').length,
        more: document.getElementById('workers-more')?.textContent ?? '',
        bars: Number(document.getElementById('task-stream')?.dataset['bars'] ?? 0),
        lanes: Number(document.getElementById('task-stream')?.dataset['lanes'] ?? 0),
        memoryBars: Number(document.getElementById('memory')?.dataset['workers'] ?? 0),
      }));
      await page.screenshot({ path: join(artifacts, 'large.png'), fullPage: true });
      const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
      t.diagnostic(
        `1,000 workers: ${result.nodes} DOM nodes; handler median ${median(result.stats.handleMs).toFixed(2)} ms, ` +
          `max ${Math.max(...result.stats.handleMs).toFixed(2)} ms; render median ${median(result.stats.renderMs).toFixed(2)} ms, ` +
          `max ${Math.max(...result.stats.renderMs).toFixed(2)} ms; ${result.bars} bars on ${result.lanes} lanes`,
      );
      assert.ok(result.nodes < 3000, `${result.nodes} DOM nodes`);
      assert.equal(result.rows, 200);
      assert.match(result.more, /800 more workers/);
      assert.ok(result.bars > 1000, `${result.bars} bars`);
      assert.equal(result.memoryBars, 1000);
      assert.ok(result.stats.handleMs.length >= 10 && result.stats.renderMs.length >= 5);
      await page.close();
    } finally {
      await dashboard.close();
    }
  });
});
