/**
 * `npm run bench -- all`: every benchmark, one after another, each in its own process
 * (venv, local, heavy, distributed with the dashboard overhead, scheduler-memory, million,
 * simulate, adaptive, comm, slurm). Their JSON lines go to stderr as they come; at the end
 * one JSON summary file (every line, per suite, and the machine: cores, load average,
 * versions) is written and a small Markdown table of the medians and the same-run ratios
 * printed on stdout.
 *
 *   npm run build && npm run bench -- all [--only local,heavy] [--skip adaptive] [--quick]
 *       [--out artifacts/bench/all.json]
 *
 * --quick runs fewer repeats and smaller sizes (to check the pipeline, not to quote).
 * In the table, "(12×)" after an anchor's figure is Tessera's lead in that row: the anchor's
 * time over Tessera's, or Tessera's MB/s over the anchor's; below 1× the anchor is ahead.
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type AnchorLine, parseJsonLines } from './anchor.js';

const { values: args } = parseArgs({
  options: {
    only: { type: 'string' },
    skip: { type: 'string' },
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});

/** The suites in the order they run, with the options `all` gives them. */
const SUITES: readonly { name: string; full: string[]; quick: string[] }[] = [
  { name: 'venv', full: [], quick: [] },
  { name: 'local', full: ['--repeat', '5'], quick: ['--repeat', '3', '--rss-n', '100000'] },
  { name: 'heavy', full: ['--repeat', '3'], quick: ['--repeat', '1'] },
  { name: 'distributed', full: ['--repeat', '3'], quick: ['--repeat', '1', '--transfer-repeat', '3', '--workloads', 'map-10000,tree-50000,transfer', '--overhead-repeat', '2'] },
  { name: 'scheduler-memory', full: [], quick: ['--n', '100000'] },
  { name: 'million', full: ['--repeat', '5'], quick: ['--n', '50000'] },
  { name: 'simulate', full: [], quick: ['--tasks=100000'] },
  { name: 'adaptive', full: ['--runs', '3'], quick: ['--runs', '1'] },
  { name: 'comm', full: [], quick: [] },
  { name: 'slurm', full: ['--runs', '3'], quick: ['--tasks', '40', '--maximum', '4'] },
];

const list = (v: string | undefined): string[] | undefined => v?.split(',').map((s) => s.trim()).filter((s) => s !== '');
const only = list(args.only);
const skip = list(args.skip) ?? [];
for (const name of [...(only ?? []), ...skip]) {
  if (!SUITES.some((s) => s.name === name)) throw new Error(`unknown suite '${name}' (${SUITES.map((s) => s.name).join(', ')})`);
}
const chosen = SUITES.filter((s) => (only === undefined || only.includes(s.name)) && !skip.includes(s.name));

const RUN = fileURLToPath(new URL('./run.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../', import.meta.url));

interface SuiteResult {
  readonly args: string[];
  readonly exitCode: number | null;
  readonly seconds: number;
  readonly loadavgBefore: number[];
  readonly loadavgAfter: number[];
  readonly lines: AnchorLine[];
  readonly stderrTail?: string;
}

let current: ReturnType<typeof spawn> | undefined;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    // The suite ends its anchors' process groups on the same signal (anchor.ts).
    current?.kill(signal);
    process.kill(process.pid, signal);
  });
}

/** Runs one suite in a child process; its JSON lines are echoed to stderr as they come. */
function runSuite(name: string, suiteArgs: string[]): Promise<SuiteResult> {
  return new Promise((resolve) => {
    const started = performance.now();
    const loadavgBefore = loadavg();
    // The same Node and loader as this process (tsx), and gc for the simulation.
    const child = spawn(process.execPath, [...process.execArgv, '--expose-gc', RUN, name, ...suiteArgs], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    current = child;
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      process.stderr.write(chunk);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-4000);
      process.stderr.write(chunk);
    });
    const finish = (exitCode: number | null): void => {
      resolve({
        args: suiteArgs,
        exitCode,
        seconds: (performance.now() - started) / 1000,
        loadavgBefore,
        loadavgAfter: loadavg(),
        lines: parseJsonLines(stdout),
        ...(exitCode === 0 ? {} : { stderrTail: stderr }),
      });
    };
    child.once('error', (error) => {
      stderr += String(error);
      finish(null);
    });
    child.once('close', (code) => {
      finish(code);
    });
  });
}

const startedAt = new Date().toISOString();
const results: Record<string, SuiteResult> = {};
for (const suite of chosen) {
  const suiteArgs = args.quick ? suite.quick : suite.full;
  process.stderr.write(`\n== bench ${suite.name} ${suiteArgs.join(' ')}\n`);
  results[suite.name] = await runSuite(suite.name, suiteArgs);
}

// ---- the table ----

type Column = 'tessera' | 'dask' | 'ray' | 'dask-debian';
interface Row {
  readonly suite: string;
  readonly workload: string;
  readonly unit: string;
  readonly cells: Partial<Record<Column, string | undefined>>;
}

const rows: Row[] = [];
const labels: Partial<Record<Column, string>> = {};
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const fmt = (x: number): string => (x >= 100 ? Math.round(x).toLocaleString('en-US') : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toPrecision(2));
const lead = (x: number): string => `(${x >= 10 ? Math.round(x) : x.toFixed(1)}×)`;
/** An anchor's cell: its figure, and Tessera's lead (`lowerIsBetter`: the anchor's over ours). */
const vs = (theirs: number | undefined, ours: number | undefined, lowerIsBetter: boolean): string | undefined => {
  if (theirs === undefined) return undefined;
  if (ours === undefined) return fmt(theirs);
  return `${fmt(theirs)} ${lead(lowerIsBetter ? theirs / ours : ours / theirs)}`;
};
const lines = (suite: string): AnchorLine[] => results[suite]?.lines ?? [];
const label = (column: Column, line: AnchorLine): void => {
  if (typeof line['label'] === 'string') labels[column] ??= line['label'];
};
const isAnchor = (s: unknown): s is Exclude<Column, 'tessera'> => s === 'dask' || s === 'ray' || s === 'dask-debian';

// local: tree-N under sync and threads.
for (const scheduler of ['sync', 'threads']) {
  const ours = lines('local').find((l) => l['system'] === 'tessera' && l['stat'] === 'median' && l['scheduler'] === scheduler);
  if (ours === undefined) continue;
  const mine = num(ours['usPerTask']);
  const cells: Row['cells'] = { tessera: mine === undefined ? undefined : fmt(mine) };
  for (const l of lines('local')) {
    if (!isAnchor(l['system']) || l['stat'] !== 'median' || l['scheduler'] !== scheduler) continue;
    label(l['system'], l);
    cells[l['system']] = vs(num(l['usPerTask']), mine, true);
  }
  rows.push({ suite: 'local', workload: `${String(ours['workload'])}, ${scheduler === 'sync' ? 'sync' : 'threads (2)'}`, unit: 'µs/task', cells });
}

// heavy: seconds and speed-up over serial, per shape.
const HEAVY_MODES: Record<string, { title: string; anchor: Record<string, string[]> }> = {
  threads: { title: 'threads (2)', anchor: { dask: ['threaded', 'processes'], 'dask-debian': ['threaded', 'processes'], ray: ['ray'] } },
  'cluster-2x1': { title: 'cluster 2×1', anchor: { dask: ['distributed-2x1'], 'dask-debian': ['distributed-2x1'], ray: ['ray'] } },
  'cluster-1x2': { title: 'cluster 1×2', anchor: { dask: ['distributed-1x2'], 'dask-debian': ['distributed-1x2'], ray: ['ray'] } },
};
const heavyWorkloads = [...new Set(lines('heavy').filter((l) => l['system'] === 'tessera' && l['stat'] === 'median').map((l) => String(l['workload'])))];
for (const workload of heavyWorkloads) {
  for (const [mode, { title, anchor }] of Object.entries(HEAVY_MODES)) {
    const ours = lines('heavy').find((l) => l['system'] === 'tessera' && l['stat'] === 'median' && l['workload'] === workload && l['mode'] === mode);
    if (ours === undefined) continue;
    const mine = num(ours['seconds']);
    const cell = (l: AnchorLine, name?: string): string => {
      const seconds = num(l['seconds']) ?? NaN;
      const ratio = l === ours || mine === undefined ? '' : ` ${lead(seconds / mine)}`;
      const inFlight = num(l['heavyInFlight']);
      return `${name === undefined ? '' : `${name} `}${fmt(seconds)} s, ${fmt(num(l['speedup']) ?? NaN)}× serial${inFlight === undefined ? '' : `, ${inFlight.toFixed(1)} in flight`}${ratio}`;
    };
    const cells: Row['cells'] = { tessera: cell(ours) };
    for (const [column, systems] of Object.entries(anchor) as [Column, string[]][]) {
      const parts: string[] = [];
      for (const system of systems) {
        const l = lines('heavy').find((x) => x['system'] === column && x['stat'] === 'median' && x['workload'] === workload && x['mode'] === system);
        if (l === undefined) continue;
        label(column, l);
        parts.push(cell(l, systems.length > 1 ? system : undefined));
      }
      if (parts.length > 0) cells[column] = parts.join('; ');
    }
    rows.push({ suite: 'heavy', workload: `${workload}, ${title}`, unit: 's; speed-up over serial; heavy tasks in flight', cells });
  }
}

// distributed: µs/task, the transfer's MB/s, the dashboard's overhead.
const distributedWorkloads = [...new Set(lines('distributed').filter((l) => l['system'] === 'tessera' && l['stat'] === 'median').map((l) => String(l['workload'])))];
for (const workload of distributedWorkloads) {
  const ours = lines('distributed').find((l) => l['system'] === 'tessera' && l['stat'] === 'median' && l['workload'] === workload)!;
  const transfer = workload === 'transfer';
  const key = transfer ? 'mbPerSecond' : 'usPerTask';
  const mine = num(ours[key]);
  const cells: Row['cells'] = { tessera: mine === undefined ? undefined : fmt(mine) };
  for (const l of lines('distributed')) {
    if (!isAnchor(l['system']) || l['stat'] !== 'median' || l['workload'] !== workload) continue;
    label(l['system'], l);
    if (l['mode'] === 'shared-memory') continue; // one Ray node: no hop between processes
    cells[l['system']] = `${vs(num(l[key]), mine, !transfer) ?? ''}${l['mode'] === 'two-nodes' ? ' two raylets' : ''}`;
  }
  rows.push({ suite: 'distributed', workload: `${workload}, cluster 2×1`, unit: transfer ? 'MB/s, worker → worker' : 'µs/task', cells });
}
const overhead = lines('distributed').find((l) => l['stat'] === 'overhead' && l['change'] !== undefined);
if (overhead !== undefined) {
  const paired = num(overhead['pairedChange']);
  const change = `${((num(overhead['change']) ?? NaN) * 100).toFixed(1)}%`;
  rows.push({
    suite: 'distributed',
    workload: `dashboard overhead, ${String(overhead['workload'])} (${String(overhead['feedClient'])})`,
    unit: "change of µs/task: median of the pairs' changes (of the medians)",
    cells: { tessera: paired === undefined ? change : `${(paired * 100).toFixed(1)}% (${change})` },
  });
}

// scheduler memory, the simulation.
for (const l of lines('scheduler-memory')) {
  const b = num(l['bytesPerTask']);
  if (b !== undefined) rows.push({ suite: 'scheduler-memory', workload: `${String(l['workload'])} held (${String(l['tasks'])} tasks)`, unit: 'B RSS/task', cells: { tessera: fmt(b) } });
}
// The million-task graph end to end: the median line when it ran more than once.
const million = lines('million').find((l) => l['stat'] === 'median') ?? lines('million').find((l) => l['bench'] === 'million');
if (million !== undefined) {
  const clientBytes = num(million['clientPeakBytesPerTaskFirstRun']) ?? num(million['clientPeakBytesPerTask']) ?? NaN;
  rows.push({
    suite: 'million',
    workload: `${String(million['workload'])} (${(num(million['tasks']) ?? NaN).toLocaleString('en-US')} tasks), cluster 2×1, scheduler in its own process`,
    unit: 'µs/task; scheduler CPU µs/task; peak RSS B/task of the scheduler, of the client',
    cells: { tessera: `${fmt(num(million['usPerTask']) ?? NaN)}; ${fmt(num(million['schedulerCpuUsPerTask']) ?? NaN)}; ${fmt(num(million['schedulerPeakBytesPerTask']) ?? NaN)}, ${fmt(clientBytes)}` },
  });
}
for (const l of lines('simulate')) {
  const cpu = num(l['schedulerCpuUsPerTask']);
  if (cpu === undefined) continue;
  rows.push({ suite: 'simulate', workload: `${String(l['graph'])}, ${String(l['workers'])} workers, ${String(l['tasks'])} tasks`, unit: 'scheduler CPU µs/task; heap B/task; makespan/ideal', cells: { tessera: `${fmt(cpu)}; ${fmt(num(l['heapBytesPerTask']) ?? NaN)}; ${fmt((num(l['makespanVirtualS']) ?? NaN) / (num(l['idealMakespanS']) ?? NaN))}` } });
}

// adaptive: sleep-burst's total time, adaptive over fixed.
const adaptive = lines('adaptive').find((l) => l['system'] === 'tessera-adaptive' && l['stat'] === 'median');
if (adaptive !== undefined) {
  const mine = num(adaptive['totalS']);
  const ratio = lines('adaptive').find((l) => l['system'] === 'compare');
  const cells: Row['cells'] = { tessera: `${fmt(mine ?? NaN)} s (first worker ${fmt(num(adaptive['firstWorkerS']) ?? NaN)} s; ${fmt(num(ratio?.['adaptiveOverFixedTotal']) ?? NaN)}× fixed)` };
  for (const l of lines('adaptive')) {
    if (l['system'] !== 'dask-adaptive' || !isAnchor(l['anchor']) || num(l['totalSeconds']) === undefined) continue;
    label(l['anchor'], l);
    cells[l['anchor']] = `${vs(num(l['totalSeconds']), mine, true) ?? ''} (first worker ${fmt(num(l['firstWorkerSeconds']) ?? NaN)} s)`;
  }
  rows.push({ suite: 'adaptive', workload: 'sleep-burst, 200 × 1 s, 0 → 20 workers', unit: 's total', cells });
}

// the wire.
for (const l of lines('comm')) {
  if (typeof l['case'] === 'string' && l['case'].startsWith('float64-64MiB')) {
    rows.push({ suite: 'comm', workload: `${l['case']} (raw socket ${String(l['anchor_mb_per_s'])})`, unit: 'MiB/s', cells: { tessera: fmt(num(l['mb_per_s']) ?? NaN) } });
  }
}

const COLUMNS: readonly Column[] = ['tessera', 'dask', 'ray', 'dask-debian'];
const DEFAULT_LABELS: Record<Column, string> = { tessera: 'Tessera', dask: 'Dask (PyPI)', ray: 'Ray (PyPI)', 'dask-debian': 'Dask (Debian)' };
const header = ['suite', 'workload', 'unit', ...COLUMNS.map((c) => (c === 'tessera' ? 'Tessera' : (labels[c] ?? DEFAULT_LABELS[c])))];
const markdown = [
  `| ${header.join(' | ')} |`,
  `|${header.map(() => '---').join('|')}|`,
  ...rows.map((r) => `| ${[r.suite, r.workload, r.unit, ...COLUMNS.map((c) => r.cells[c] ?? '—')].join(' | ')} |`),
].join('\n');

const skipped = Object.entries(results).flatMap(([suite, r]) => r.lines.filter((l) => l['skipped'] === true).map((l) => `${suite}: ${String(l['system'])} skipped: ${String(l['reason'])}`));
const failed = Object.entries(results).filter(([, r]) => r.exitCode !== 0).map(([suite, r]) => `${suite} exited with ${String(r.exitCode)}`);
const venv = lines('venv').find((l) => l['available'] === true);

const summary = {
  bench: 'all',
  command: `npm run bench -- all ${process.argv.slice(2).join(' ')}`.trim(),
  startedAt,
  finishedAt: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, totalMemGB: Math.round(totalmem() / 2 ** 30), node: process.version },
  anchors: venv === undefined ? undefined : { versions: venv['versions'], venvCreatedSeconds: venv['createdSeconds'], venvCreatedAt: venv['createdAt'], venvDir: venv['dir'] },
  failed,
  skipped,
  table: rows,
  markdown,
  suites: results,
};
const out = args.out ?? path.join(ROOT, 'artifacts', 'bench', `all-${startedAt.replace(/[:.]/g, '-')}.json`);
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, `${JSON.stringify(summary, null, 1)}\n`);

console.log(markdown);
console.log('');
for (const line of [...failed, ...skipped]) console.log(`- ${line}`);
console.log(`summary: ${path.relative(process.cwd(), out)} (${Object.values(results).reduce((s, r) => s + r.seconds, 0).toFixed(0)} s; load average ${loadavg().map((x) => x.toFixed(1)).join(' ')})`);
if (failed.length > 0) process.exitCode = 1;
