/**
 * Slurm's own walltime, in its own file because it cannot be quick: `--time` counts whole
 * minutes and slurmctld checks limits every 30 s, so a one-minute job is ended TIMEOUT 60–90
 * s after it starts (test/helpers/slurm/README.md). Two clusters side by side, on a Slurm
 * that keeps accounting (sacct):
 * - walltime 1 minute, lifetime derived from it (30 s): the worker leaves on its own before
 *   Slurm ends its job, which completes; the loop replaces it; no failure;
 * - walltime 1 minute and no lifetime: Slurm ends the job TIMEOUT, reported with its reason
 *   and sacct's exit code; and a job cancelled by someone else is reported as cancelled by them.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SlurmCluster, type SlurmClusterOptions } from '../../src/index.js';
import { type SlurmCluster as Slurm, startSlurm } from '../helpers/slurm/cluster.js';
import { slurmSkip } from '../helpers/slurm/install.js';
import { squeue } from '../helpers/slurm/queue.js';
import { until } from '../helpers/wait.js';

const skip = await slurmSkip({ accounting: true });
if (skip !== false) process.stderr.write(`# ${skip}\n`);

void describe('walltime on a real Slurm', { skip }, () => {
  let slurm: Slurm;
  let dir: string;
  const clusters: SlurmCluster[] = [];

  before(async () => {
    slurm = await startSlurm({ cpus: 2, memoryMB: 1024, accounting: true });
    dir = mkdtempSync(join(tmpdir(), 'tessera-slurm-walltime-'));
  });

  after(async () => {
    await Promise.all(clusters.map((c) => c.close()));
    await (slurm as Slurm | undefined)?.stop();
    if ((dir as string | undefined) !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  async function start(options: SlurmClusterOptions, logs: string[]): Promise<SlurmCluster> {
    const cluster = await SlurmCluster.start({ host: '127.0.0.1', dashboard: false, slurmConf: slurm.confPath, logDirectory: dir, cores: 1, memory: '256MB', pollInterval: 500, log: (line) => logs.push(line), ...options });
    clusters.push(cluster);
    return cluster;
  }

  void test('a worker leaves before its walltime and is replaced; without a lifetime, TIMEOUT is reported with its reason', { timeout: 240_000 }, async (t) => {
    const wallLogs: string[] = [];
    const hardLogs: string[] = [];
    const wall = await start({ jobName: 'wall', walltime: '00:01:00' }, wallLogs);
    const hard = await start({ jobName: 'hard', walltime: '00:01:00', lifetime: false }, hardLogs);
    assert.match(wall.jobScript(), /^#SBATCH --time=00:01:00$/m);
    assert.match(wall.jobScript(), /--lifetime 30s \\\n {2}--lifetime-stagger 3s/);
    assert.doesNotMatch(hard.jobScript(), /--lifetime/);
    wall.adapt({ minimum: 1, maximum: 1, interval: 500 });
    await hard.scale(1);
    await Promise.all([wall.waitForWorkers(1), hard.waitForWorkers(1)]);
    const t0 = performance.now();
    const [first] = [...wall.scheduler.workerNames().values()];
    const firstJob = wall.jobs().find((j) => j.worker === first)!.id;

    // The lifetime (walltime less 30 s, less up to 3 s) ends first: a new worker takes over.
    await until(() => ![...wall.scheduler.workerNames().values()].includes(first!) && wall.scheduler.workers.length === 1, 'the first worker is replaced', 60_000, 200);
    const left = performance.now() - t0;
    const firstRow = (await squeue(slurm, { all: true })).find((row) => row.id === firstJob);
    assert.equal(firstRow?.state, 'COMPLETED', 'the job ended by itself, before its walltime');
    // 30 s less up to 3 s of stagger; a stagger under 50 ms is printed as "30 s".
    assert.match(readFileSync(join(dir, `${first!}.out`), 'utf8'), /lifetime of (2\d(\.\d)?|30) s reached: retiring/);
    assert.equal(wall.failures.length, 0, wall.failures.map((f) => f.reason).join());

    // Someone else cancels the replacement: reported, with who did it (from sacct).
    const [second] = [...wall.scheduler.workerNames().values()];
    const secondJob = wall.jobs().find((j) => j.worker === second)!.id;
    await slurm.run('scancel', [secondJob]);
    await until(() => wall.failures.length > 0, 'the cancellation is reported', 30_000, 200);
    assert.equal(wall.failures[0]!.state, 'CANCELLED');
    assert.match(wall.failures[0]!.reason, /by 0/);

    // Without a lifetime, Slurm ends the job at its walltime.
    await until(() => hard.failures.length > 0, 'the job times out', 150_000, 500);
    const timeout = hard.failures[0]!;
    assert.equal(timeout.state, 'TIMEOUT');
    assert.match(timeout.reason, /TimeLimit/);
    assert.ok(timeout.exitCode !== undefined, 'sacct gave the exit code');
    assert.ok(hardLogs.some((line) => /ended TIMEOUT: TimeLimit/.test(line)), hardLogs.join('\n'));
    t.diagnostic(`lifetime departure ${Math.round(left / 1000)} s after the worker joined; TIMEOUT reported ${Math.round((performance.now() - t0) / 1000)} s after`);
  });
});
