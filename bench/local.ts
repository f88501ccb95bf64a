/**
 * tree-N under Tessera's `sync` and `threads` (2 threads) schedulers and, in the same run,
 * Dask's synchronous and threaded schedulers on the same graph: Dask 2026.8 from PyPI (the
 * cached environment of venv.ts) and, while python3-dask is installed, Debian's 2022.12.
 *
 *   npm run bench -- local [--n 50000] [--repeat 5] [--rss-n 500000] [--anchors dask,dask-debian]
 */
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { get, shutdownThreads } from 'tessera';
import { anchorLabel, median, runAnchor, selectAnchors } from './anchor.js';
import { treeExpected, treeGraph } from './workloads.js';

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '50000' },
    repeat: { type: 'string', default: '5' },
    'rss-n': { type: 'string', default: '500000' },
    'rss-child': { type: 'string' },
    anchors: { type: 'string' },
    'no-anchor': { type: 'boolean', default: false },
  },
});

if (args['rss-child'] !== undefined) {
  // Peak RSS of one computation, measured in a fresh process.
  const n = Number(args['rss-child']);
  const { graph, root } = treeGraph(n);
  const value = await get(graph, root, { scheduler: 'threads', workers: 2 });
  if (value !== treeExpected(n)) throw new Error('wrong result');
  await shutdownThreads();
  console.log(JSON.stringify({ maxRssBytes: process.resourceUsage().maxRSS * 1024 }));
  process.exit(0);
}

const n = Number(args.n);
const repeat = Number(args.repeat);
const { graph, root, tasks } = treeGraph(n);
const expected = treeExpected(n);
const workload = `tree-${n}`;
const emit = (line: Record<string, unknown>): void => {
  console.log(JSON.stringify({ bench: 'local', workload, tasks, ...line }));
};

// One warm-up per scheduler: thread start-up is paid once per process, not per graph.
const tessera: Record<string, number> = {};
for (const scheduler of ['sync', 'threads'] as const) {
  await get(graph, root, { scheduler, workers: 2 });
  const times: number[] = [];
  for (let r = 0; r < repeat; r++) {
    const start = performance.now();
    const value = await get(graph, root, { scheduler, workers: 2 });
    const seconds = (performance.now() - start) / 1000;
    if (value !== expected) throw new Error(`${scheduler}: wrong result ${String(value)}`);
    times.push(seconds);
    emit({ system: 'tessera', scheduler, seconds, usPerTask: (seconds * 1e6) / tasks });
  }
  tessera[scheduler] = (median(times) * 1e6) / tasks;
  emit({ system: 'tessera', scheduler, stat: 'median', usPerTask: tessera[scheduler] });
}
await shutdownThreads();

for (const id of args['no-anchor'] ? [] : selectAnchors(args.anchors, ['dask', 'dask-debian'])) {
  const anchor = await runAnchor(id, 'dask_local.py', ['--n', String(n), '--repeat', String(Math.min(repeat, 3))], { timeoutMs: 1_800_000 });
  if (!anchor.available) {
    emit({ system: id, skipped: true, reason: anchor.reason });
    continue;
  }
  for (const line of anchor.lines) {
    if (line['stat'] !== 'median') continue;
    const scheduler = line['system'] === 'sync' ? 'sync' : 'threads';
    const label = anchorLabel(id, line);
    const dask = Number(line['usPerTask']);
    const mine = tessera[scheduler]!;
    emit({ system: id, label, scheduler, daskSystem: line['system'], stat: 'median', usPerTask: dask, ...(line['threads'] === undefined ? {} : { threads: line['threads'] }) });
    emit({ system: 'compare', anchor: id, label, scheduler, tesseraUsPerTask: mine, daskUsPerTask: dask, speedup: dask / mine });
  }
}

// Peak RSS of tree-500,000 (about a million tasks), in a child so the figure is its own.
const rssN = Number(args['rss-n']);
const child = spawnSync(process.execPath, [...process.execArgv, new URL(import.meta.url).pathname, '--rss-child', String(rssN)], { encoding: 'utf8' });
if (child.status === 0) {
  const { maxRssBytes } = JSON.parse(child.stdout.trim().split('\n').pop()!) as { maxRssBytes: number };
  console.log(JSON.stringify({ bench: 'local', workload: `tree-${rssN}`, scheduler: 'threads', peakRssMB: maxRssBytes / 2 ** 20 }));
} else {
  console.log(JSON.stringify({ bench: 'local', workload: `tree-${rssN}`, error: child.stderr.slice(-2000) }));
}
