/**
 * The private Slurm the Slurm backend is tested against, tested itself: jobs run and leave
 * the queue, arrays, PENDING for Resources, scancel's signals, machine-readable state, what
 * a job knows of itself, and that stop() — or the death of the process that started it —
 * leaves nothing behind.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, afterEach, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type SlurmCluster, SlurmStartError, startSlurm } from '../helpers/slurm/cluster.js';
import { slurmSkip } from '../helpers/slurm/install.js';
import { clusterProcesses } from '../helpers/slurm/processes.js';
import { job, sbatch, squeue } from '../helpers/slurm/queue.js';
import { until } from '../helpers/wait.js';

const skip = await slurmSkip();
if (skip !== false) process.stderr.write(`# ${skip}\n`);

/** A bash job script in `dir`; returns its path. */
function script(dir: string, name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/bash\n${body}\n`, { mode: 0o755 });
  return path;
}

const read = (path: string): string => (existsSync(path) ? readFileSync(path, 'utf8') : '');

void describe('a private Slurm cluster', { skip }, () => {
  let slurm: SlurmCluster;
  let dir: string;

  before(async () => {
    slurm = await startSlurm({ cpus: 4, memoryMB: 4096 });
    dir = mkdtempSync(join(tmpdir(), 'tessera-slurm-jobs-'));
  });

  // Each test starts on an empty node, whatever the one before left.
  afterEach(async () => {
    const ids = [...new Set((await squeue(slurm)).map((row) => row.arrayJobId))];
    if (ids.length > 0) await slurm.run('scancel', ids);
    await until(async () => (await squeue(slurm)).length === 0, 'the queue is empty', 30_000, 100);
  });

  after(async () => {
    // Undefined when before() failed.
    await (slurm as SlurmCluster | undefined)?.stop();
    if ((dir as string | undefined) !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  void test('comes up with one idle node of the configured size in its partition', async (t) => {
    const line = (await slurm.run('sinfo', ['-h', '-o', '%P|%a|%D|%T|%c|%m'])).trim();
    assert.equal(line, 'compute*|up|1|idle|4|4096');
    assert.equal(slurm.partition, 'compute');
    assert.match(readFileSync(slurm.confPath, 'utf8'), /^AuthInfo=socket=/m);
    t.diagnostic((await slurm.run('sinfo', ['--version'])).trim());
  });

  void test('sbatch --parsable runs a script: its output appears and the job leaves squeue', async () => {
    const path = script(dir, 'hello.sh', '#SBATCH --job-name=hello\necho "hello from $SLURM_JOB_ID on $SLURMD_NODENAME"');
    const id = await sbatch(slurm, ['-o', join(dir, '%j.out'), path]);
    await until(async () => (await squeue(slurm)).every((row) => row.id !== id), `job ${id} leaves squeue`, 30_000, 100);
    assert.equal(read(join(dir, `${id}.out`)), `hello from ${id} on ${slurm.nodeName}\n`);
    const row = await job(slurm, id);
    assert.deepEqual([row?.state, row?.name, row?.nodes], ['COMPLETED', 'hello', slurm.nodeName]);
  });

  void test('a job array runs every task, each with its index', async () => {
    const id = await sbatch(slurm, ['--array=0-3', '-c', '1', '-o', join(dir, 'array-%A_%a.out'), '--wrap', 'echo "$SLURM_ARRAY_JOB_ID $SLURM_ARRAY_TASK_ID $SLURM_ARRAY_TASK_COUNT"']);
    // One row per task, expanded (-r) even while they wait.
    const rows = (await squeue(slurm, { all: true })).filter((row) => row.arrayJobId === id);
    assert.deepEqual(rows.map((row) => row.arrayTaskId).sort(), ['0', '1', '2', '3']);
    await until(async () => (await squeue(slurm)).every((row) => row.arrayJobId !== id), `array ${id} leaves squeue`, 30_000, 100);
    for (const task of [0, 1, 2, 3]) assert.equal(read(join(dir, `array-${id}_${task}.out`)), `${id} ${task} 4\n`);
    const done = (await squeue(slurm, { all: true })).filter((row) => row.arrayJobId === id);
    assert.deepEqual(done.map((row) => `${row.id} ${row.state}`).sort(), [0, 1, 2, 3].map((task) => `${id}_${task} COMPLETED`));
  });

  void test('a job asking for more CPUs than are free waits PENDING (Resources), then runs when the first ends', async () => {
    const big = await sbatch(slurm, ['-c', '3', '--mem=100', '-o', '/dev/null', '--wrap', 'sleep 600']);
    await until(async () => (await job(slurm, big))?.state === 'RUNNING', `job ${big} runs`, 30_000, 100);
    const next = await sbatch(slurm, ['-c', '2', '--mem=100', '-o', '/dev/null', '--wrap', 'sleep 600']);
    const after = await sbatch(slurm, ['-c', '3', '--mem=100', '-o', '/dev/null', '--wrap', 'sleep 600']);
    // Let a few scheduling passes (one a second) see them.
    await until(async () => (await job(slurm, next))?.reason === 'Resources', `job ${next} waits for Resources`, 30_000, 100);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    assert.equal((await job(slurm, next))?.state, 'PENDING');
    const later = await job(slurm, after);
    assert.equal(later?.state, 'PENDING');
    assert.match(later.reason, /^(Resources|Priority)$/);

    // 4 CPUs free: the 2-CPU job runs; the 3-CPU one still does not fit beside it.
    await slurm.run('scancel', [big]);
    await until(async () => (await job(slurm, next))?.state === 'RUNNING', `job ${next} runs once ${big} ended`, 30_000, 100);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    assert.equal((await job(slurm, after))?.state, 'PENDING');
    await slurm.run('scancel', [next]);
    await until(async () => (await job(slurm, after))?.state === 'RUNNING', `job ${after} runs once ${next} ended`, 30_000, 100);
  });

  void test('scancel sends the job SIGTERM: its trap runs before the end (KillWait later, SIGKILL)', async () => {
    const out = join(dir, 'term.out');
    const path = script(dir, 'term.sh', `trap 'echo "TERM $SLURM_JOB_ID"; exit 0' TERM\necho started\nwhile true; do sleep 0.1; done`);
    const id = await sbatch(slurm, ['-o', out, path]);
    await until(() => read(out).includes('started'), `job ${id} starts`, 30_000, 100);
    await slurm.run('scancel', [id]);
    await until(async () => (await squeue(slurm)).every((row) => row.id !== id), `job ${id} leaves squeue`, 30_000, 100);
    assert.match(read(out), new RegExp(`^TERM ${id}$`, 'm'));
    assert.equal((await job(slurm, id))?.state, 'CANCELLED');
  });

  void test('scancel --signal reaches the batch shell with --batch (or --full), not without', async (t) => {
    const out = join(dir, 'signal.out');
    const path = script(dir, 'signal.sh', `trap 'echo USR1' USR1\ntrap 'echo USR2' USR2\necho started\nwhile true; do sleep 0.1; done`);
    const id = await sbatch(slurm, ['-o', out, path]);
    await until(() => read(out).includes('started'), `job ${id} starts`, 30_000, 100);
    await slurm.run('scancel', ['--signal=USR1', '--batch', id]);
    await until(() => read(out).includes('USR1'), 'the batch shell traps USR1', 10_000, 100);
    // Without --batch or --full the signal goes to the job's steps only, and a batch job
    // running its script has none: the script never sees it.
    await slurm.run('scancel', ['--signal=USR2', id]);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    t.diagnostic(`scancel --signal without --batch ${read(out).includes('USR2') ? 'reached' : 'did not reach'} the batch shell`);
    assert.equal((await job(slurm, id))?.state, 'RUNNING');
    await slurm.run('scancel', [id]);
  });

  void test('state is machine-readable: squeue -h -o with delimiters, squeue --json, and end states', async (t) => {
    const running = await sbatch(slurm, ['-J', 'runs', '-c', '1', '--mem=100', '-o', '/dev/null', '--wrap', 'sleep 600']);
    const pending = await sbatch(slurm, ['-J', 'waits', '-c', '8', '--mem=100', '-o', '/dev/null', '--wrap', 'true']);
    const failed = await sbatch(slurm, ['-J', 'fails', '-o', '/dev/null', '--wrap', 'exit 3']);
    await until(async () => (await job(slurm, running))?.state === 'RUNNING' && (await job(slurm, failed))?.state === 'FAILED', 'one job runs and one has failed', 30_000, 100);
    await until(async () => (await job(slurm, pending))?.reason !== 'None', 'the big job has a reason to wait', 30_000, 100);

    const rows = await squeue(slurm, { all: true });
    const byId = new Map(rows.map((row) => [row.id, row]));
    assert.deepEqual(byId.get(running), { id: running, arrayJobId: running, arrayTaskId: 'N/A', state: 'RUNNING', reason: 'None', nodes: slurm.nodeName, name: 'runs' });
    // More CPUs than the node has: it can never run, and Slurm says so.
    assert.equal(byId.get(pending)?.state, 'PENDING');
    assert.equal(byId.get(pending)?.nodes, '');
    t.diagnostic(`a job larger than the node waits with reason ${byId.get(pending)?.reason ?? '?'}`);
    assert.deepEqual([byId.get(failed)?.state, byId.get(failed)?.reason], ['FAILED', 'NonZeroExitCode']);

    // --json (22.05: OpenAPI v0.0.38) lists every job it knows, finished ones included, and
    // ignores -j/--name/-t filters: select by job_id. exit_code is the raw wait status.
    interface JsonJob {
      job_id: number;
      name: string;
      job_state: string;
      state_reason: string;
      nodes: string;
      exit_code: number;
      start_time: number;
      end_time: number;
      time_limit: number;
    }
    const json = JSON.parse(await slurm.run('squeue', ['--json', '-j', running])) as { jobs: JsonJob[] };
    const seen = new Map(json.jobs.map((j) => [String(j.job_id), j]));
    assert.ok(seen.has(pending) && seen.has(failed), 'squeue --json lists jobs the -j filter leaves out');
    const r = seen.get(running);
    assert.deepEqual([r?.name, r?.job_state, r?.state_reason, r?.nodes], ['runs', 'RUNNING', 'None', slurm.nodeName]);
    const f = seen.get(failed);
    assert.deepEqual([f?.job_state, f?.state_reason, f?.exit_code], ['FAILED', 'NonZeroExitCode', 3 << 8]);

    // jobcomp/filetxt keeps a key=value line per finished job, beyond MinJobAge.
    assert.match(read(slurm.jobCompPath), new RegExp(`^JobId=${failed} .*JobState=FAILED .*ExitCode=3:0`, 'm'));
    // sacct needs slurmdbd, which this cluster does not run.
    const sacct = await slurm.run('sacct', ['-X', '-n', '-P', '-o', 'JobID,State,ExitCode']).then(
      () => 'works',
      (err: unknown) => (err instanceof Error ? err.message : String(err)),
    );
    t.diagnostic(`sacct: ${sacct}`);

  });

  void test('a job knows its id and, through squeue, when its walltime ends', async (t) => {
    const out = join(dir, 'self.out');
    const path = script(
      dir,
      'self.sh',
      [
        'echo "id=$SLURM_JOB_ID"',
        'echo "conf=$SLURM_CONF"',
        'echo "end_env=${SLURM_JOB_END_TIME:-}"',
        'echo "end_squeue=$(SLURM_TIME_FORMAT=%s squeue -h -j "$SLURM_JOB_ID" -o %e)"',
        'echo "left_squeue=$(squeue -h -j "$SLURM_JOB_ID" -o %L)"',
        'echo "end_scontrol=$(SLURM_TIME_FORMAT=%s scontrol show job "$SLURM_JOB_ID" | grep -o "EndTime=[0-9]*" | cut -d= -f2)"',
        'echo done',
        // Still running when its end time is read from outside (a finished job's end_time
        // is when it ended).
        'sleep 600',
      ].join('\n'),
    );
    const id = await sbatch(slurm, ['--time=5', '-o', out, path]);
    await until(() => read(out).includes('done'), `job ${id} reports`, 30_000, 100);
    const fields = new Map(
      read(out)
        .trim()
        .split('\n')
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const),
    );
    assert.equal(fields.get('id'), id);
    // The client commands inside the job reach this cluster: slurmstepd sets SLURM_CONF.
    assert.equal(fields.get('conf'), slurm.confPath);
    const json = JSON.parse(await slurm.run('squeue', ['--json'])) as { jobs: { job_id: number; start_time: number; end_time: number; time_limit: number }[] };
    const seen = json.jobs.find((j) => String(j.job_id) === id);
    assert.ok(seen !== undefined);
    assert.equal(seen.time_limit, 5);
    assert.equal(seen.end_time - seen.start_time, 5 * 60);
    assert.equal(Number(fields.get('end_squeue')), seen.end_time);
    assert.equal(Number(fields.get('end_scontrol')), seen.end_time);
    assert.match(fields.get('left_squeue') ?? '', /^[45]:\d\d$/);
    // Slurm 23.02 and later also set SLURM_JOB_END_TIME; 22.05 does not.
    const fromEnv = fields.get('end_env') ?? '';
    if (fromEnv !== '') assert.equal(Number(fromEnv), seen.end_time);
    t.diagnostic(`SLURM_JOB_END_TIME ${fromEnv === '' ? 'is not set' : 'is set'} in this version`);
  });
});

void describe('a private Slurm cluster, stopped', { skip }, () => {
  void test('stop() ends the jobs and daemons and removes its directory', async () => {
    const slurm = await startSlurm({ cpus: 2, memoryMB: 1024 });
    try {
      const id = await sbatch(slurm, ['-o', '/dev/null', '--wrap', 'sleep 600']);
      const comms = (): string[] => clusterProcesses(slurm.confPath).map((p) => p.comm);
      await until(() => comms().includes('sleep'), `job ${id} runs`, 30_000, 100);
      for (const name of ['munged', 'slurmctld', 'slurmd', 'slurmstepd']) assert.ok(comms().includes(name), `${name} runs (${comms().join(' ')})`);
    } finally {
      await slurm.stop();
    }
    await slurm.stop(); // idempotent
    assert.deepEqual(clusterProcesses(slurm.confPath), []);
    assert.equal(existsSync(slurm.dir), false);
  });

  void test("a start that fails says why, in the daemon's words, and leaves nothing", async () => {
    let dir: string | undefined;
    await assert.rejects(startSlurm({ extraConfig: ['NoSuchSetting=1'] }), (err: unknown) => {
      assert.ok(err instanceof SlurmStartError);
      // Both daemons read the file; either may be first to give up.
      assert.match(err.message, /(slurmctld|slurmd) exited .*NoSuchSetting/);
      dir = err.dir;
      return true;
    });
    assert.ok(dir !== undefined);
    assert.equal(existsSync(dir), false);
    assert.deepEqual(clusterProcesses(join(dir, 'slurm.conf')), []);
  });

  void test('the death of the process that started it, without stop(), leaves nothing either', async () => {
    const fixture = fileURLToPath(new URL('./fixtures/owner.ts', import.meta.url));
    const owner = spawn(process.execPath, ['--import', 'tsx', fixture], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = createInterface({ input: owner.stdout });
    const first = await new Promise<string>((resolve, reject) => {
      lines.once('line', resolve);
      owner.once('exit', (code, signal) => {
        reject(new Error(`the fixture exited (${code ?? signal}) before its cluster was up`));
      });
    });
    lines.close();
    const { dir, confPath } = JSON.parse(first) as { dir: string; confPath: string };
    // RUNNING in squeue comes a moment before slurmd has launched the job.
    await until(() => clusterProcesses(confPath).some((p) => p.comm === 'sleep'), 'its job runs', 30_000, 100);
    owner.kill('SIGKILL');
    await once(owner, 'exit');
    await until(() => clusterProcesses(confPath).length === 0 && !existsSync(dir), 'the reaper has ended everything and removed the directory', 60_000, 100);
  });
});
