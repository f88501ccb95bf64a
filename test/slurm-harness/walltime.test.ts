/**
 * Walltime on the private Slurm, in its own file because it cannot be quick: --time counts
 * whole minutes (`0:10` rounds up to 1) and slurmctld checks limits every 30 s, so a
 * --time=1 job ends TIMEOUT 60–90 s after it starts. The job gets a warning signal first
 * (--signal=B:USR1@50, also on the 30 s check) and then SIGTERM, KillWait before SIGKILL.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type SlurmCluster, startSlurm } from '../helpers/slurm/cluster.js';
import { slurmSkip } from '../helpers/slurm/install.js';
import { job, sbatch } from '../helpers/slurm/queue.js';
import { until } from '../helpers/wait.js';

const skip = await slurmSkip();
if (skip !== false) process.stderr.write(`# ${skip}\n`);

const read = (path: string): string => (existsSync(path) ? readFileSync(path, 'utf8') : '');

void describe('walltime on a private Slurm cluster', { skip }, () => {
  let slurm: SlurmCluster;
  let dir: string;

  before(async () => {
    slurm = await startSlurm({ cpus: 2, memoryMB: 1024 });
    dir = mkdtempSync(join(tmpdir(), 'tessera-slurm-jobs-'));
  });

  after(async () => {
    // Undefined when before() failed.
    await (slurm as SlurmCluster | undefined)?.stop();
    if ((dir as string | undefined) !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  void test('a job past its --time is warned, then ended TIMEOUT (reason TimeLimit)', { timeout: 240_000 }, async (t) => {
    const out = join(dir, 'walltime.out');
    const path = join(dir, 'walltime.sh');
    writeFileSync(
      path,
      [
        '#!/bin/bash',
        'trap \'echo "USR1 $(date +%s)"\' USR1',
        'trap \'echo "TERM $(date +%s)"; exit 0\' TERM',
        'echo "start $(date +%s)"',
        'while true; do sleep 0.1; done',
      ].join('\n') + '\n',
      { mode: 0o755 },
    );
    // Seconds are accepted and rounded up to the minute.
    const id = await sbatch(slurm, ['--time=0:10', '--signal=B:USR1@50', '-o', out, path]);
    const json = JSON.parse(await slurm.run('squeue', ['--json'])) as { jobs: { job_id: number; time_limit: number }[] };
    assert.equal(json.jobs.find((j) => String(j.job_id) === id)?.time_limit, 1);

    await until(async () => (await job(slurm, id))?.state === 'TIMEOUT', `job ${id} times out`, 200_000, 500);
    const row = await job(slurm, id);
    assert.equal(row?.reason, 'TimeLimit');
    const events = new Map(
      read(out)
        .trim()
        .split('\n')
        .filter((line) => /^(start|USR1|TERM) \d+$/.test(line))
        .map((line) => [line.split(' ')[0], Number(line.split(' ')[1])] as const),
    );
    const start = events.get('start');
    const usr1 = events.get('USR1');
    const term = events.get('TERM');
    assert.ok(start !== undefined && usr1 !== undefined && term !== undefined, `start, USR1 and TERM in ${JSON.stringify(read(out))}`);
    assert.ok(usr1 < term, 'the warning comes before the end');
    // Never before the limit; how long after depends on that 30 s check (and on the machine).
    assert.ok(term - start >= 59, `SIGTERM ${term - start} s after the start`);
    assert.match(read(slurm.jobCompPath), new RegExp(`^JobId=${id} .*JobState=TIMEOUT`, 'm'));
    t.diagnostic(`USR1 after ${usr1 - start} s, SIGTERM after ${term - start} s`);
  });
});
