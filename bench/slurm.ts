/**
 * sleep-burst (BENCHMARKS.md) on a real Slurm: Tessera's SlurmCluster adaptive from zero
 * jobs, the same against a fixed set of `maximum` jobs, and in the same run dask-jobqueue's
 * SLURMCluster (bench/anchors/dask_jobqueue.py, from the anchors' environment) with the same
 * settings: one worker per job, `cores` threads, `memory`, `walltime`, the same adaptive
 * parameters. Prints JSON lines: one per run, then medians and ratios.
 *
 *   npm run build && npm run bench -- slurm [--runs 1] [--tasks 200] [--sleep 1] [--maximum 20]
 *       [--memory 400MB] [--walltime 00:30:00] [--slurm-conf PATH] [--no-anchor] [--no-fixed]
 *
 * Without --slurm-conf it starts a private one-node Slurm of `maximum` CPUs on this machine
 * (test/helpers/slurm). Times are from t0, when the tasks are submitted:
 *   firstJobRunningS  the first job of the run RUNNING in squeue (sampled every 0.1 s, for both)
 *   firstWorkerS      the first worker registered with the scheduler
 *   firstResultS, totalS, peakWorkers, jobsSubmitted
 *   backToFloorS      last result → one job and one worker left (both keep a worker for the
 *                     results the client holds)
 *   queueEmptyAfterCloseS  cluster.close() returned → no job of the run left in squeue
 * The fixed runs give startAllWorkersS (scale(maximum) → every worker joined) and totalS.
 *
 * dask-jobqueue (JOBQUEUE_PIN) is installed once beside the anchors' environment (bench/venv.ts,
 * which holds Dask and distributed 2026.8): `pip install --no-deps --target
 * ~/.cache/tessera/bench-jobqueue/<hash>`, a directory the anchor puts first on its path.
 * When it cannot be had, the dask-jobqueue lines say so (`skipped`, with the reason).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client, type Future, SlurmCluster } from 'tessera';
import { startSlurm } from '../test/helpers/slurm/cluster.js';
import { type AnchorLine, median, runAnchor } from './anchor.js';
import { ensureVenv } from './venv.js';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '1' },
    tasks: { type: 'string', default: '200' },
    sleep: { type: 'string', default: '1' },
    maximum: { type: 'string', default: '20' },
    memory: { type: 'string', default: '400MB' },
    walltime: { type: 'string', default: '00:30:00' },
    interval: { type: 'string', default: '1' },
    'wait-count': { type: 'string', default: '3' },
    'target-duration': { type: 'string', default: '5' },
    'slurm-conf': { type: 'string' },
    'no-anchor': { type: 'boolean', default: false },
    'no-fixed': { type: 'boolean', default: false },
  },
});
const runs = Number(args.runs);
const tasks = Number(args.tasks);
const sleepS = Number(args.sleep);
const maximum = Number(args.maximum);
const adaptive = { minimum: 0, maximum, interval: Number(args.interval) * 1000, waitCount: Number(args['wait-count']), targetDuration: Number(args['target-duration']) * 1000 };
const SETTLE_CAP_MS = 60_000;
/** The dask-jobqueue compared with, from PyPI; its dependencies are the anchors' Dask. */
const JOBQUEUE_PIN = 'dask-jobqueue==0.9.*';

const emit = (line: Record<string, unknown>): void => {
  console.log(JSON.stringify({ bench: 'slurm', workload: 'sleep-burst', tasks, sleepS, maximum, ...line }));
};
const s = (ms: number): number => Math.round(ms) / 1000;
const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Like Dask's time.sleep, the sleep holds the worker's thread for its whole duration. */
const slowMaths = ({ i, ms }: { i: number; ms: number }): number => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  return ((i * i) % 97) + 1;
};
const expected = (i: number): number => ((i * i) % 97) + 1;

const slurm = args['slurm-conf'] === undefined ? await startSlurm({ cpus: maximum, memoryMB: maximum * 512 }) : undefined;
const slurmConf: string = args['slurm-conf'] ?? slurm!.confPath;
const env = { ...process.env, SLURM_CONF: slurmConf };
const logDirectory = mkdtempSync(join(tmpdir(), 'tessera-bench-slurm-'));

/** Jobs of one name as squeue lists them: `-t all` while sampling, or only those not ended. */
function queued(jobName: string, states: string): Promise<{ id: string; state: string }[]> {
  return new Promise((resolve) => {
    execFile('squeue', ['-h', '-r', '-t', states, '-n', jobName, '-o', '%i|%T'], { env }, (error, stdout) => {
      if (error !== null) {
        resolve([]);
        return;
      }
      resolve(stdout.split('\n').filter((l) => l.includes('|')).map((l) => ({ id: l.split('|')[0]!, state: l.split('|')[1]! })));
    });
  });
}

/** Samples squeue every 0.1 s (as the anchor does): the first job RUNNING, every job id seen. */
class QueueWatch {
  firstRunning = -1;
  readonly ids = new Set<string>();
  readonly #timer: NodeJS.Timeout;
  #busy = false;

  constructor(jobName: string, t0: number) {
    this.#timer = setInterval(() => {
      if (this.#busy) return;
      this.#busy = true;
      void queued(jobName, 'all').then((rows) => {
        for (const row of rows) {
          this.ids.add(row.id);
          if (row.state === 'RUNNING' && this.firstRunning < 0) this.firstRunning = performance.now() - t0;
        }
        this.#busy = false;
      });
    }, 100);
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

async function start(jobName: string): Promise<SlurmCluster> {
  return SlurmCluster.start({ host: '127.0.0.1', dashboard: false, slurmConf, cores: 1, memory: args.memory, walltime: args.walltime, jobName, logDirectory, log: () => undefined });
}

async function burst(client: Client): Promise<{ firstResult: number; lastResult: number; futures: Future<number>[] }> {
  const t0 = performance.now();
  const futures = client.map(slowMaths, Array.from({ length: tasks }, (_, i) => ({ i, ms: sleepS * 1000 })));
  let firstResult = -1;
  for await (const future of client.asCompleted(futures)) {
    if (firstResult < 0) firstResult = performance.now() - t0;
    if (future.status !== 'finished') throw new Error(`sleep-burst: task ${future.key} is ${future.status}`);
  }
  return { firstResult, lastResult: performance.now() - t0, futures };
}

async function correct(client: Client, futures: Future<number>[]): Promise<boolean> {
  const values = await client.gather(futures);
  return values.every((v, i) => v === expected(i));
}

/** Closes the cluster; how long until none of its jobs is left in squeue, and how many were left at once. */
async function close(cluster: SlurmCluster, jobName: string): Promise<{ jobsLeftAfterClose: number; queueEmptyAfterCloseS: number }> {
  await cluster.close();
  const closed = performance.now();
  const jobsLeftAfterClose = (await queued(jobName, 'PENDING,RUNNING,COMPLETING')).length;
  while ((await queued(jobName, 'PENDING,RUNNING,COMPLETING')).length > 0 && performance.now() - closed < SETTLE_CAP_MS) await pause(100);
  return { jobsLeftAfterClose, queueEmptyAfterCloseS: s(performance.now() - closed) };
}

async function adaptiveRun(run: number): Promise<Record<string, number | boolean>> {
  const jobName = `tessera-burst-${run}`;
  const cluster = await start(jobName);
  let line: Record<string, number | boolean>;
  try {
    if (run === 0) emit({ system: 'tessera-adaptive', jobScript: cluster.jobScript() });
    cluster.adapt(adaptive);
    const client = await Client.connect(cluster);
    try {
      const t0 = performance.now();
      const watch = new QueueWatch(jobName, t0);
      let peak = 0;
      let firstWorker = -1;
      const sampler = setInterval(() => {
        const n = cluster.scheduler.workers.length;
        peak = Math.max(peak, n);
        if (n > 0 && firstWorker < 0) firstWorker = performance.now() - t0;
      }, 20);
      const r = await burst(client);
      if (!(await correct(client, r.futures))) throw new Error('sleep-burst: wrong results');
      let back = -1;
      while (performance.now() - t0 - r.lastResult < SETTLE_CAP_MS) {
        if (cluster.requested <= 1 && cluster.scheduler.workers.length <= 1 && (await queued(jobName, 'PENDING,RUNNING,COMPLETING')).length <= 1) {
          back = performance.now() - t0 - r.lastResult;
          break;
        }
        await pause(100);
      }
      clearInterval(sampler);
      watch.stop();
      line = {
        run,
        firstJobRunningS: s(watch.firstRunning),
        firstWorkerS: s(firstWorker),
        firstResultS: s(r.firstResult),
        totalS: s(r.lastResult),
        peakWorkers: peak,
        jobsSubmitted: watch.ids.size,
        backToFloorS: back < 0 ? -1 : s(back),
        resultsRetrievable: await correct(client, r.futures),
        failures: cluster.failures.length,
      };
    } finally {
      await client.close();
    }
  } finally {
    line = { ...line!, ...(await close(cluster, jobName)) };
  }
  emit({ system: 'tessera-adaptive', ...line });
  return line;
}

async function fixedRun(run: number): Promise<Record<string, number>> {
  const jobName = `tessera-fixed-${run}`;
  const cluster = await start(jobName);
  let line: Record<string, number>;
  try {
    const s0 = performance.now();
    await cluster.scale(maximum);
    await cluster.waitForWorkers(maximum);
    const startAll = performance.now() - s0;
    const client = await Client.connect(cluster);
    try {
      const r = await burst(client);
      if (!(await correct(client, r.futures))) throw new Error('sleep-burst: wrong results');
      line = { run, workers: maximum, startAllWorkersS: s(startAll), firstResultS: s(r.firstResult), totalS: s(r.lastResult) };
    } finally {
      await client.close();
    }
  } finally {
    line = { ...line!, ...(await close(cluster, jobName)) };
  }
  emit({ system: 'tessera-fixed', ...line });
  return line;
}

function pip(python: string, args: string[]): Promise<{ ok: boolean; stderr: string }> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1' };
    delete env['PYTHONPATH'];
    delete env['VIRTUAL_ENV'];
    execFile(python, ['-m', 'pip', ...args], { env, timeout: 10 * 60_000, killSignal: 'SIGKILL' }, (error, _stdout, stderr) => {
      resolve({ ok: error === null, stderr: `${error?.message ?? ''} ${stderr.slice(-1500)}`.trim() });
    });
  });
}

let jobqueue: Promise<{ site: string } | { reason: string }> | undefined;

/** The directory holding dask-jobqueue for the anchors' Python, installed on first use. */
function jobqueueSite(): Promise<{ site: string } | { reason: string }> {
  jobqueue ??= (async () => {
    const venv = await ensureVenv((line) => {
      console.error(JSON.stringify({ bench: 'venv', ...line }));
    });
    if (!venv.available) return { reason: venv.reason };
    const hash = createHash('sha256').update(JSON.stringify({ pin: JOBQUEUE_PIN, venv: venv.dir })).digest('hex').slice(0, 16);
    const site = join(homedir(), '.cache', 'tessera', 'bench-jobqueue', hash);
    if (existsSync(join(site, 'dask_jobqueue'))) return { site };
    // Installed aside and renamed into place, so a run stopped half-way leaves nothing that looks done.
    const partial = `${site}.${process.pid}.partial`;
    await rm(partial, { recursive: true, force: true });
    await mkdir(partial, { recursive: true });
    const started = performance.now();
    const r = await pip(venv.python, ['install', '--quiet', '--no-input', '--no-deps', '--target', partial, JOBQUEUE_PIN]);
    if (!r.ok) {
      await rm(partial, { recursive: true, force: true });
      return { reason: `pip install --target ${partial} ${JOBQUEUE_PIN} failed: ${r.stderr}` };
    }
    await rm(site, { recursive: true, force: true });
    await rename(partial, site);
    console.error(JSON.stringify({ bench: 'slurm', installed: JOBQUEUE_PIN, site, seconds: s(performance.now() - started) }));
    return { site };
  })();
  return jobqueue;
}

async function anchorRun(mode: 'adaptive' | 'fixed', run: number): Promise<AnchorLine | undefined> {
  const found = await jobqueueSite();
  if ('reason' in found) {
    emit({ system: `dask-jobqueue-${mode}`, skipped: true, reason: found.reason });
    return undefined;
  }
  const result = await runAnchor(
    'dask',
    'dask_jobqueue.py',
    [
      '--mode', mode, '--tasks', String(tasks), '--sleep', String(sleepS), '--maximum', String(maximum), '--cores', '1',
      '--memory', args.memory, '--walltime', args.walltime, '--slurm-conf', slurmConf, '--log-directory', logDirectory,
      '--job-name', `dask-${mode}-${run}`, '--interval', args.interval, '--wait-count', args['wait-count'], '--target-duration', args['target-duration'],
      '--site', found.site,
    ],
    { timeoutMs: 15 * 60_000 },
  );
  if (!result.available) {
    emit({ system: `dask-jobqueue-${mode}`, skipped: true, reason: result.reason });
    return undefined;
  }
  const { jobScript, ...line } = result.lines[0]!;
  emit({ system: `dask-jobqueue-${mode}`, run, ...line });
  if (run === 0) emit({ system: `dask-jobqueue-${mode}`, jobScript });
  return line;
}

const medianOf = (lines: readonly Record<string, unknown>[], key: string): number => median(lines.map((l) => l[key]).filter((v): v is number => typeof v === 'number' && v >= 0));

try {
  const ours: Record<string, number | boolean>[] = [];
  const fixed: Record<string, number>[] = [];
  const dask: AnchorLine[] = [];
  const daskFixed: AnchorLine[] = [];
  for (let run = 0; run < runs; run++) {
    ours.push(await adaptiveRun(run));
    if (!args['no-anchor']) {
      const line = await anchorRun('adaptive', run);
      if (line !== undefined) dask.push(line);
    }
    if (!args['no-fixed']) {
      fixed.push(await fixedRun(run));
      if (!args['no-anchor']) {
        const line = await anchorRun('fixed', run);
        if (line !== undefined) daskFixed.push(line);
      }
    }
  }
  const summary: Record<string, unknown> = {
    stat: 'median',
    runs,
    tessera: { firstJobRunningS: medianOf(ours, 'firstJobRunningS'), firstWorkerS: medianOf(ours, 'firstWorkerS'), firstResultS: medianOf(ours, 'firstResultS'), totalS: medianOf(ours, 'totalS'), backToFloorS: medianOf(ours, 'backToFloorS') },
  };
  if (fixed.length > 0) summary['tesseraFixed'] = { startAllWorkersS: medianOf(fixed, 'startAllWorkersS'), totalS: medianOf(fixed, 'totalS') };
  const ratio = (a: number, b: number): number => Math.round((a / b) * 100) / 100;
  if (dask.length > 0) {
    const daskOf = (key: string): number => s(medianOf(dask, key) * 1000);
    summary['daskJobqueue'] = { firstJobRunningS: daskOf('firstJobRunningSeconds'), firstWorkerS: daskOf('firstWorkerSeconds'), firstResultS: daskOf('firstResultSeconds'), totalS: daskOf('totalSeconds'), backToFloorS: daskOf('backToFloorSeconds') };
    // Tessera's figure over dask-jobqueue's, both from this run: below 1, Tessera is faster.
    summary['ratioFirstWorker'] = ratio(medianOf(ours, 'firstWorkerS'), medianOf(dask, 'firstWorkerSeconds'));
    summary['ratioFirstResult'] = ratio(medianOf(ours, 'firstResultS'), medianOf(dask, 'firstResultSeconds'));
    summary['ratioTotal'] = ratio(medianOf(ours, 'totalS'), medianOf(dask, 'totalSeconds'));
  }
  if (daskFixed.length > 0) {
    summary['daskJobqueueFixed'] = { startAllWorkersS: s(medianOf(daskFixed, 'startAllWorkersSeconds') * 1000), totalS: s(medianOf(daskFixed, 'totalSeconds') * 1000) };
    if (fixed.length > 0) {
      summary['ratioFixedStartAllWorkers'] = ratio(medianOf(fixed, 'startAllWorkersS'), medianOf(daskFixed, 'startAllWorkersSeconds'));
      summary['ratioFixedTotal'] = ratio(medianOf(fixed, 'totalS'), medianOf(daskFixed, 'totalSeconds'));
    }
  }
  // Against the fixed set of jobs, adaptive from zero should cost little more.
  if (fixed.length > 0) summary['adaptiveOverFixedTotal'] = ratio(medianOf(ours, 'totalS'), medianOf(fixed, 'totalS'));
  emit(summary);
} finally {
  await slurm?.stop();
  rmSync(logDirectory, { recursive: true, force: true });
}
