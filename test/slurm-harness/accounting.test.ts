/**
 * The private Slurm with accounting (slurmdbd on a private MariaDB): sacct reports how jobs
 * ended, machine-readably, after squeue has forgotten them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type SlurmCluster, startSlurm } from '../helpers/slurm/cluster.js';
import { slurmSkip } from '../helpers/slurm/install.js';
import { clusterProcesses } from '../helpers/slurm/processes.js';
import { job, sbatch, squeue } from '../helpers/slurm/queue.js';
import { until } from '../helpers/wait.js';

const skip = await slurmSkip({ accounting: true });
if (skip !== false) process.stderr.write(`# ${skip}\n`);

void describe('a private Slurm cluster with accounting', { skip }, () => {
  let slurm: SlurmCluster;

  before(async () => {
    // Finished jobs leave squeue after 2 s: what remains is sacct's.
    slurm = await startSlurm({ cpus: 2, memoryMB: 1024, accounting: true, minJobAge: 2 });
  });

  after(async () => {
    // Undefined when before() failed.
    const started = slurm as SlurmCluster | undefined;
    if (started === undefined) return;
    await started.stop();
    assert.deepEqual(clusterProcesses(started.confPath), []);
  });

  void test('sacct reports each job: state, exit code, node; also as --json', async (t) => {
    const failed = await sbatch(slurm, ['-J', 'fails', '-o', '/dev/null', '--wrap', 'exit 3']);
    const completed = await sbatch(slurm, ['-J', 'works', '-o', '/dev/null', '--wrap', 'true']);
    const cancelled = await sbatch(slurm, ['-J', 'cancelled', '-o', '/dev/null', '--wrap', 'sleep 600']);
    const running = await sbatch(slurm, ['-J', 'runs', '-o', '/dev/null', '--wrap', 'sleep 600']);
    await until(async () => (await job(slurm, cancelled))?.state === 'RUNNING' && (await job(slurm, running))?.state === 'RUNNING', 'two jobs run', 30_000, 100);
    await slurm.run('scancel', [cancelled]);
    await until(async () => (await squeue(slurm, { all: true })).every((row) => row.id === running), 'squeue forgets the finished jobs', 60_000, 200);

    // -X: one line per job, not per step; -P: '|'-separated; -n: no header. sacct's default
    // window starts at midnight: pass --starttime for anything older. A cancelled job's
    // State reads "CANCELLED by <uid>".
    const lines = (await slurm.run('sacct', ['-X', '-n', '-P', '-o', 'JobID,JobName,State,ExitCode,NodeList'])).trim().split('\n');
    const rows = new Map(lines.map((line) => [line.split('|')[0], line]));
    assert.equal(rows.get(failed), `${failed}|fails|FAILED|3:0|${slurm.nodeName}`);
    assert.equal(rows.get(completed), `${completed}|works|COMPLETED|0:0|${slurm.nodeName}`);
    assert.equal(rows.get(cancelled), `${cancelled}|cancelled|CANCELLED by 0|0:0|${slurm.nodeName}`);
    assert.equal(rows.get(running), `${running}|runs|RUNNING|0:0|${slurm.nodeName}`);

    interface SacctJob {
      job_id: number;
      name: string;
      state: { current: string; reason: string };
      exit_code: { status: string; return_code: number };
      nodes: string;
    }
    const json = JSON.parse(await slurm.run('sacct', ['--json'])) as { jobs: SacctJob[] };
    const byId = new Map(json.jobs.map((j) => [String(j.job_id), j]));
    assert.deepEqual(
      [failed, completed, cancelled, running].map((id) => [byId.get(id)?.name, byId.get(id)?.state.current, byId.get(id)?.nodes]),
      [
        ['fails', 'FAILED', slurm.nodeName],
        ['works', 'COMPLETED', slurm.nodeName],
        ['cancelled', 'CANCELLED', slurm.nodeName],
        ['runs', 'RUNNING', slurm.nodeName],
      ],
    );
    t.diagnostic(`sacct --json exit_code of the failed job: ${JSON.stringify(byId.get(failed)?.exit_code)}`);
  });
});
