/**
 * SlurmCluster on a real Slurm (test/helpers/slurm: slurmctld and slurmd on this machine,
 * one node of 4 CPUs): workers are batch jobs running `tessera worker`, submitted when
 * work arrives and cancelled when it is done. Each test leaves the queue empty.
 *
 * Lifetimes here are seconds (`lifetime: '14s'`), not Slurm's walltime, which counts whole
 * minutes and is checked every 30 s: slurm-walltime.test.ts shows that slower path.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, afterEach, before, describe, test } from 'node:test';
import { Client, delayed, SlurmCluster, type SlurmClusterOptions, WorkerStartError } from '../../src/index.js';
import { type SlurmCluster as Slurm, startSlurm } from '../helpers/slurm/cluster.js';
import { slurmSkip } from '../helpers/slurm/install.js';
import { squeue } from '../helpers/slurm/queue.js';
import { sleep, until } from '../helpers/wait.js';

const skip = await slurmSkip();
if (skip !== false) process.stderr.write(`# ${skip}\n`);

/** Holds its thread for `ms`, as a real computation would, then returns x². */
const slow = ({ x, ms }: { x: number; ms: number }): number => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  return x * x;
};
const slowSquare = (x: number, ms: number): number => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  return x * x;
};
const sum = (...xs: number[]): number => xs.reduce((a, b) => a + b, 0);

void describe('SlurmCluster on a real Slurm', { skip }, () => {
  let slurm: Slurm;
  let dir: string;
  const clusters: SlurmCluster[] = [];
  let logs: string[] = [];

  before(async () => {
    slurm = await startSlurm({ cpus: 4, memoryMB: 4096 });
    dir = mkdtempSync(join(tmpdir(), 'tessera-slurm-logs-'));
  });

  afterEach(async () => {
    await Promise.all(clusters.splice(0).map((c) => c.close()));
    logs = [];
    // Whatever a failed test left, the next one starts on an empty queue.
    const left = await squeue(slurm);
    if (left.length > 0) await slurm.run('scancel', [...new Set(left.map((row) => row.arrayJobId))]);
    await until(async () => (await squeue(slurm)).length === 0, 'the queue is empty', 30_000, 200);
  });

  after(async () => {
    await (slurm as Slurm | undefined)?.stop();
    if ((dir as string | undefined) !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  async function start(options: SlurmClusterOptions = {}): Promise<SlurmCluster> {
    const cluster = await SlurmCluster.start({
      host: '127.0.0.1',
      dashboard: false,
      slurmConf: slurm.confPath,
      logDirectory: dir,
      cores: 1,
      memory: '256MB',
      pollInterval: 500,
      log: (line) => logs.push(line),
      ...options,
    });
    clusters.push(cluster);
    return cluster;
  }

  /** Jobs of this name in squeue: pending, running or completing. */
  async function active(jobName: string): Promise<string[]> {
    return (await squeue(slurm)).filter((row) => row.name === jobName).map((row) => `${row.id} ${row.state}`);
  }

  void test('scales from zero on submission and back after the work; results stay retrievable; the script submitted is jobScript()', async (t) => {
    const cluster = await start({ jobName: 'burst' });
    assert.equal(cluster.requested, 0);
    assert.doesNotMatch(cluster.jobScript(), new RegExp(cluster.token!), 'the token is not in the script');
    cluster.adapt({ minimum: 0, maximum: 2, interval: 500, waitCount: 2, targetDuration: '1s' });
    const client = await Client.connect(cluster);
    try {
      const t0 = performance.now();
      const futures = client.map(slow, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((x) => ({ x, ms: 300 })));
      await until(() => cluster.requested > 0, 'jobs are submitted', 10_000);
      const submitted = performance.now() - t0;
      // What Slurm holds as the job's script is exactly what jobScript() shows.
      const running = await until(() => cluster.jobs().some((j) => j.state === 'RUNNING'), 'a job runs', 30_000).then(() => cluster.jobs().find((j) => j.state === 'RUNNING')!);
      assert.equal(await slurm.run('scontrol', ['write', 'batch_script', running.id, '-']), cluster.jobScript());
      assert.deepEqual(await client.gather(futures), [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]);
      const done = performance.now() - t0;
      for (const name of cluster.scheduler.workerNames().values()) assert.match(name, /^burst-\d+$/);
      assert.ok(cluster.scheduler.workers.length <= 2);

      // The client holds the results: one worker stays for them; the other job goes.
      await until(() => cluster.requested === 1 && cluster.scheduler.workers.length === 1, 'one worker is left for the results', 30_000, 100);
      assert.deepEqual(await client.gather(futures), [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]);
      // Released, nothing is left to keep: back to zero jobs.
      for (const f of futures) f.release();
      await until(async () => cluster.requested === 0 && (await active('burst')).length === 0, 'no job is left', 30_000, 200);
      assert.deepEqual(cluster.failures, []);
      const history = await client.scalingHistory();
      assert.ok(history?.decisions.some((d) => d.op === 'scale-up'));
      assert.ok(history?.decisions.some((d) => d.op === 'scale-down'));
      t.diagnostic(`jobs submitted ${Math.round(submitted)} ms after the work, results after ${Math.round(done)} ms`);
    } finally {
      await client.close();
    }
  });

  void test('scaleDown cancels exactly the jobs of the workers named, and only those', async () => {
    const cluster = await start({ jobName: 'exact' });
    await cluster.scale(3);
    assert.equal(cluster.requested, 3);
    await cluster.waitForWorkers(3);
    await until(() => cluster.jobs().filter((j) => j.worker !== undefined).length === 3, 'every job has its own id', 10_000, 100);
    const [chosenId, chosen] = [...cluster.scheduler.workerNames()][1]!;
    const jobs = cluster.jobs();
    const chosenJob = jobs.find((j) => j.worker === chosen)!.id;
    const others = jobs.filter((j) => j.worker !== chosen).map((j) => j.id);
    assert.equal(others.length, 2);
    // As the adaptive loop does it: the scheduler retires the worker, then its job is cancelled.
    assert.deepEqual(await cluster.scheduler.retireWorkers([chosenId]), [chosenId]);
    await cluster.scaleDown([chosen, 'exact-999999', 'someone-else-1']);
    await until(async () => (await active('exact')).length === 2, 'two jobs are left', 30_000, 200);
    const rows = new Map((await squeue(slurm, { all: true })).filter((row) => row.name === 'exact').map((row) => [row.id, row.state]));
    assert.match(rows.get(chosenJob) ?? '', /^(CANCELLED|COMPLETED)$/, `job ${chosenJob}`);
    for (const id of others) assert.equal(rows.get(id), 'RUNNING', `job ${id}`);
    assert.equal(cluster.requested, 2);
    assert.deepEqual(cluster.failures, [], 'a job this cluster cancelled is no failure');
    assert.ok(logs.some((line) => /exact-999999, someone-else-1 are no job of this backend/.test(line)), logs.join('\n'));
  });

  void test('PENDING jobs count as requested and are not asked for twice', async () => {
    // Three cores each on a node of four: one job runs, the others wait for Resources.
    const cluster = await start({ jobName: 'pending', cores: 3 });
    cluster.adapt({ minimum: 0, maximum: 3, interval: 300, waitCount: 2, targetDuration: '1s' });
    const client = await Client.connect(cluster);
    try {
      const futures = client.map(slow, Array.from({ length: 30 }, (_, x) => ({ x, ms: 1000 })));
      await until(() => cluster.running === 1 && cluster.requested === 3, 'one job runs and two wait', 30_000, 100);
      // Just submitted, a job's reason is 'None' until Slurm's scheduler has looked at it.
      let reasons = '';
      await until(
        async () => {
          const pending = (await squeue(slurm)).filter((row) => row.name === 'pending' && row.state === 'PENDING');
          reasons = pending.map((row) => row.reason).join();
          return pending.length === 2 && pending.every((row) => row.reason === 'Resources' || row.reason === 'Priority');
        },
        () => `two jobs wait for Resources or Priority; their reasons: ${reasons}`,
        30_000,
        100,
      );
      // Ticks go by while they wait: nothing more is submitted.
      await sleep(3000);
      assert.equal((await squeue(slurm, { all: true })).filter((row) => row.name === 'pending').length, 3);
      assert.equal(logs.filter((line) => line.startsWith('submitted')).length, 1, logs.join('\n'));
      assert.equal(cluster.requested, 3);
      const history = await client.scalingHistory();
      assert.ok(history!.samples.every((s) => s.requested <= 3));
      await client.cancel(futures);
    } finally {
      await client.close();
    }
    await cluster.close();
    assert.deepEqual(await active('pending'), [], 'close() leaves no job in squeue');
  });

  void test('a job cancelled from outside mid-graph: reported with its reason, replaced, same answer', async () => {
    const cluster = await start({ jobName: 'outside' });
    cluster.adapt({ minimum: 0, maximum: 2, interval: 500, waitCount: 4, targetDuration: '1s' });
    const client = await Client.connect(cluster);
    try {
      const square = delayed(slowSquare);
      const parts = Array.from({ length: 16 }, (_, i) => square(i, 400));
      const total = delayed(sum)(...parts);
      const future = client.compute(total);
      await until(() => cluster.scheduler.workers.length === 2 && cluster.scheduler.snapshot().byState.memory >= 2, 'two workers hold results', 60_000, 50);
      const victim = cluster.jobs().find((j) => j.state === 'RUNNING' && j.worker !== undefined)!;
      await slurm.run('scancel', [victim.id]);
      assert.equal(await future.result(), sum(...Array.from({ length: 16 }, (_, i) => i * i)));
      await until(() => cluster.failures.length > 0, 'the cancellation is reported', 10_000, 100);
      const failure = cluster.failures[0]!;
      assert.equal(failure.id, victim.id);
      assert.equal(failure.worker, victim.worker);
      assert.equal(failure.state, 'CANCELLED');
      assert.match(failure.reason, /cancelled by someone other than this cluster/);
      assert.ok(logs.some((line) => line.includes(`job ${victim.id} (worker ${victim.worker!}) ended CANCELLED`)), logs.join('\n'));
    } finally {
      await client.close();
    }
  });

  void test('workers reaching their lifetime mid-graph hand their results over and are replaced: same answer, nothing lost', async (t) => {
    const cluster = await start({ jobName: 'lifetime', lifetime: '14s', lifetimeStagger: 0 });
    // Two workers started 7 s apart, so that when one leaves the other is there to take its
    // results, and the first one's replacement has 7 s to start before the second leaves.
    await cluster.scale(1);
    await cluster.waitForWorkers(1);
    const t0 = performance.now();
    const [first] = [...cluster.scheduler.workerNames().values()];
    await sleep(7000);
    cluster.adapt({ minimum: 2, maximum: 2, interval: 500, waitCount: 2 });
    await until(() => cluster.scheduler.workers.length === 2, 'a second worker', 60_000, 100);
    const [second] = [...cluster.scheduler.workerNames().values()].filter((name) => name !== first);
    const client = await Client.connect(cluster);
    try {
      const square = delayed(slowSquare);
      const expected = sum(...Array.from({ length: 40 }, (_, i) => i * i));
      const future = client.compute(delayed(sum)(...Array.from({ length: 40 }, (_, i) => square(i, 400))));
      assert.equal(await future.result(), expected);
      const graphDone = performance.now() - t0;
      // Both first workers leave through their lifetime (the first during the graph); the
      // result they held moves on each time.
      const names = (): string[] => [...cluster.scheduler.workerNames().values()];
      await until(() => !names().includes(first!) && !names().includes(second!) && names().length === 2, 'both first workers have been replaced', 90_000, 100);
      assert.equal(await future.result(), expected);
      assert.equal(cluster.scheduler.tasksFinished, 41, 'no task ran twice: nothing was lost');
      assert.deepEqual(cluster.failures, [], 'a worker leaving at its lifetime is no failure');
      const rows = (await squeue(slurm, { all: true })).filter((row) => row.name === 'lifetime' && row.state === 'COMPLETED');
      assert.ok(rows.length >= 2, `the first two jobs completed: ${rows.map((r) => r.id).join(', ')}`);
      assert.ok(logs.some((line) => /adaptive: scale up to 2/.test(line)));
      t.diagnostic(`graph done after ${Math.round(graphDone / 1000)} s of the first worker's 14 s lifetime`);
    } finally {
      await client.close();
    }
  });

  void test('a job that fails is reported with its reason and the end of its output; failing jobs do not become a storm', async () => {
    // A node where the command does not start: the job exits 3 at once.
    const cluster = await start({ jobName: 'broken', command: ['/bin/sh', '-c', 'echo "tessera: command not found" >&2; exit 3', 'sh'] });
    cluster.adapt({ minimum: 0, maximum: 2, interval: 300, waitCount: 2, targetDuration: '1s' });
    const client = await Client.connect(cluster);
    try {
      // Held, so that the work stays wanted (a dropped future is released when collected).
      const futures = client.map((x: number) => x + 1, [1, 2, 3]);
      await until(() => cluster.failures.length >= 3, () => `three failures are reported; the cluster said:\n${logs.join('\n')}`, 30_000, 100);
      const failure = cluster.failures[0]!;
      assert.equal(failure.state, 'FAILED');
      assert.match(failure.reason, /NonZeroExitCode/);
      assert.ok(failure.worker !== undefined, 'the failed job had an id of its own');
      assert.equal(failure.logFile, join(dir, `${failure.worker}.out`));
      assert.match(failure.logTail ?? '', /tessera: command not found/);
      assert.ok(logs.some((line) => /ended FAILED: NonZeroExitCode.*\n.*command not found/s.test(line)), logs.join('\n'));
      // The backend holds back: the loop's scale-ups are refused for a while.
      const refused = (line: string): boolean => /scaleUp\(\d\) failed, will retry.*\d Slurm jobs in a row ended before their worker joined/.test(line);
      await until(() => logs.some(refused), () => `the loop's next scale-up is refused; the cluster said:\n${logs.join('\n')}`, 30_000, 100);
      await sleep(2000);
      const submitted = (await squeue(slurm, { all: true })).filter((row) => row.name === 'broken').length;
      assert.ok(submitted <= 4, `${submitted} jobs were submitted`);
      assert.ok(submitted >= 3);
      assert.ok(logs.filter(refused).length >= 2, 'every scale-up meanwhile is refused');
      await assert.rejects(cluster.scaleUp(2), WorkerStartError);
      await client.cancel(futures);
    } finally {
      await client.close();
    }
  });

  void test('close() cancels pending and running jobs alike and leaves none in squeue', async () => {
    const cluster = await start({ jobName: 'closing', cores: 2 });
    await cluster.scale(4);
    await until(async () => (await active('closing')).some((line) => line.endsWith('RUNNING')), 'a job runs', 30_000, 200);
    assert.ok((await active('closing')).some((line) => line.endsWith('PENDING')));
    await cluster.close();
    assert.deepEqual(await active('closing'), []);
    assert.equal(cluster.requested, 0);
    await assert.rejects(cluster.scale(1), /closed/);
  });

  void test('a program stopped by Ctrl-C or exiting without close() leaves no job behind', async () => {
    const script = join(dir, 'exits.mts');
    const index = new URL('../../src/index.ts', import.meta.url).href;
    writeFileSync(
      script,
      `import { SlurmCluster } from ${JSON.stringify(index)};
const cluster = await SlurmCluster.start({ host: '127.0.0.1', dashboard: false, slurmConf: ${JSON.stringify(slurm.confPath)}, logDirectory: false, cores: 3, memory: '256MB', jobName: process.argv[2], workers: 2 });
await cluster.backend.refresh();
console.log('submitted');
// 'exit': leaves without close() when its stdin ends; 'signal': waits for Ctrl-C.
if (process.argv[3] === 'exit') process.stdin.once('end', () => process.exit(0)).resume();
else setInterval(() => undefined, 1000);
`,
    );
    for (const [name, how] of [['sigint', 'signal'], ['exiting', 'exit']] as const) {
      const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), script, name, how], { stdio: ['pipe', 'pipe', 'inherit'] });
      const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
      const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
      assert.equal(line, 'submitted');
      assert.equal((await active(name)).length, 2, 'one job runs and one waits');
      if (how === 'signal') child.kill('SIGINT');
      else child.stdin.end();
      const [code] = await exited;
      assert.equal(code, how === 'signal' ? 130 : 0);
      // Cancelled before the process ended: at most their processes are still winding down.
      assert.ok((await squeue(slurm, { all: true })).filter((row) => row.name === name).every((row) => row.state === 'CANCELLED' || row.state === 'COMPLETING'), name);
      await until(async () => (await active(name)).length === 0, `no ${name} job is left`, 30_000, 200);
    }
  });
});
