/**
 * A 1,000,000-task graph end to end (tree-500,000: 1,000,007 tasks) on a cluster of local
 * processes shaped as LocalCluster's: a `tessera scheduler` process and two
 * `tessera worker --nthreads 1` processes, the client in this process. The scheduler runs
 * in a process of its own so that its memory and the client's are told apart: each
 * process's resident memory is sampled from /proc while the graph runs, and the peaks are
 * reported with the scheduler's growth per task (target: at most 1 KB per task).
 *
 * Each of `--repeat` runs has fresh processes; with more than one, a last line gives the
 * medians (the client's memory only from the first run: this process keeps what it took).
 *
 *   npm run build && npm run bench -- million [--n 500000] [--repeat 1]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Client } from 'tessera';
import { median } from './anchor.js';
import { treeExpected, treeGraph } from './workloads.js';

const { values } = parseArgs({
  options: { n: { type: 'string', default: '500000' }, repeat: { type: 'string', default: '1' } },
});
const n = Number(values.n);
if (!Number.isInteger(n) || n < 2) throw new Error('--n must be an integer >= 2');
const repeat = Number(values.repeat);
if (!Number.isInteger(repeat) || repeat < 1) throw new Error('--repeat must be an integer >= 1');

function rssBytes(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) * 1024;
}

/** Seconds the process has run in user space and in the kernel (its socket calls, mostly). */
function cpuSeconds(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[11]) / 100, system: Number(f[12]) / 100 };
}

/** Bytes and system calls of the process's reads and writes (sockets included). */
function io(pid: number): { rchar: number; wchar: number; syscr: number; syscw: number } {
  const fields = Object.fromEntries(
    readFileSync(`/proc/${pid}/io`, 'utf8')
      .trim()
      .split('\n')
      .map((line) => line.split(': ') as [string, string]),
  );
  return { rchar: Number(fields.rchar), wchar: Number(fields.wchar), syscr: Number(fields.syscr), syscw: Number(fields.syscw) };
}

const cli = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
function start(children: ChildProcess[], args: string[]): { child: ChildProcess; firstLine: Promise<string> } {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
  children.push(child);
  const lines = createInterface({ input: child.stdout });
  return { child, firstLine: new Promise<string>((resolve) => lines.once('line', resolve)) };
}

/** One run on fresh processes: its figures, as printed. */
async function run(): Promise<Record<string, number | string>> {
  const children: ChildProcess[] = [];
  const scheduler = start(children, ['scheduler', '--port', '0', '--no-dashboard']);
  const address = await scheduler.firstLine;
  const spid = scheduler.child.pid!;
  try {
    for (let i = 0; i < 2; i++) await start(children, ['worker', address, '--nthreads', '1', '--name', `million-${i}`]).firstLine;
    const client = await Client.connect(address);
    await client.waitForWorkers(2);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const schedulerBefore = rssBytes(spid);
    const clientBefore = process.memoryUsage.rss();
    const cpuBefore = cpuSeconds(spid);
    const ioBefore = io(spid);
    let schedulerPeak = schedulerBefore;
    let clientPeak = clientBefore;
    const sample = setInterval(() => {
      schedulerPeak = Math.max(schedulerPeak, rssBytes(spid));
      clientPeak = Math.max(clientPeak, process.memoryUsage.rss());
    }, 100);
    const start0 = performance.now();
    const { graph, root, tasks } = treeGraph(n);
    const built = performance.now();
    const [value] = await client.get(graph, [root]);
    const seconds = (performance.now() - start0) / 1000;
    clearInterval(sample);
    const cpuAfter = cpuSeconds(spid);
    const schedulerUser = cpuAfter.user - cpuBefore.user;
    const schedulerSystem = cpuAfter.system - cpuBefore.system;
    const ioAfter = io(spid);
    if (value !== treeExpected(n)) throw new Error(`tree-${n}: wrong result ${String(value)}`);
    const row = {
      bench: 'million',
      workload: `tree-${n}`,
      tasks,
      workers: 2,
      threadsPerWorker: 1,
      seconds,
      graphBuildSeconds: (built - start0) / 1000,
      usPerTask: (seconds * 1e6) / tasks,
      schedulerCpuUsPerTask: ((schedulerUser + schedulerSystem) * 1e6) / tasks,
      schedulerUserUsPerTask: (schedulerUser * 1e6) / tasks,
      schedulerSystemUsPerTask: (schedulerSystem * 1e6) / tasks,
      // What the scheduler read and wrote per task (its sockets, mostly), and how many calls.
      schedulerReadBytesPerTask: (ioAfter.rchar - ioBefore.rchar) / tasks,
      schedulerWrittenBytesPerTask: (ioAfter.wchar - ioBefore.wchar) / tasks,
      schedulerReads: ioAfter.syscr - ioBefore.syscr,
      schedulerWrites: ioAfter.syscw - ioBefore.syscw,
      schedulerRssBeforeMB: schedulerBefore / 2 ** 20,
      schedulerPeakRssMB: schedulerPeak / 2 ** 20,
      schedulerPeakBytesPerTask: (schedulerPeak - schedulerBefore) / tasks,
      clientRssBeforeMB: clientBefore / 2 ** 20,
      clientPeakRssMB: clientPeak / 2 ** 20,
      clientPeakBytesPerTask: (clientPeak - clientBefore) / tasks,
      targetSchedulerBytesPerTask: 1024,
    };
    console.log(JSON.stringify(row));
    await client.close();
    return row;
  } finally {
    for (const child of children) child.kill('SIGKILL');
  }
}

const rows: Record<string, number | string>[] = [];
for (let r = 0; r < repeat; r++) rows.push(await run());
if (repeat > 1) {
  const medians: Record<string, number> = {};
  for (const [field, value] of Object.entries(rows[0]!)) {
    if (typeof value === 'number' && !field.startsWith('target') && !field.startsWith('client')) medians[field] = median(rows.map((row) => row[field] as number));
  }
  // This process keeps the memory its first run took, so only that run tells the client's growth.
  const clientPeakBytesPerTask = rows[0]!.clientPeakBytesPerTask;
  console.log(JSON.stringify({ bench: 'million', workload: `tree-${n}`, stat: 'median', runs: repeat, ...medians, clientPeakBytesPerTaskFirstRun: clientPeakBytesPerTask, targetSchedulerBytesPerTask: 1024 }));
}
