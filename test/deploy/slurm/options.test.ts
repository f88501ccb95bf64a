// The Slurm job settings at the door, the script they make, and what the backend reads back
// from squeue: no Slurm needed (the real one is in test/integration/slurm*.test.ts).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvalidArgumentError, SlurmBackend, SlurmCluster } from '../../../src/index.js';
import { expandIds, parseQueue, phaseOf } from '../../../src/deploy/slurm/commands.js';
import { closest, defaultLifetime, formatWalltime, parseWalltime, resolveJobOptions, type SlurmJobOptions } from '../../../src/deploy/slurm/options.js';
import { exportWithToken, jobIdOf, renderJobScript, workerName } from '../../../src/deploy/slurm/script.js';

const scheduler = { address: 'tcp://10.1.2.3:8786', snapshot: () => ({ workers: [] }) };
const command = ['/opt/node/bin/node', '/opt/tessera/dist/cli/main.js'];

/** The InvalidArgumentError message of a bad setting, checked to name `option`. */
function rejects(options: SlurmJobOptions, option: RegExp): string {
  let caught: unknown;
  try {
    resolveJobOptions(options);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof InvalidArgumentError, `expected InvalidArgumentError for ${JSON.stringify(options)}`);
  assert.match(caught.message, option);
  return caught.message;
}

void describe('Slurm job settings', () => {
  void test('the script: directives from the settings, the prologue, then exec tessera worker; never the token', () => {
    const job = resolveJobOptions({
      partition: 'compute',
      account: 'proj',
      qos: 'short',
      cores: 4,
      memory: '8GiB',
      walltime: '00:30:00',
      jobExtra: ['#SBATCH --constraint=ib', '--exclusive'],
      jobScriptPrologue: ['module load nodejs/20', 'export LANG=C.UTF-8'],
      localDirectory: '$TMPDIR/tessera',
      logDirectory: '/home/me/logs',
      command,
      workerExtra: ['--memory-target', '0.7'],
    });
    assert.equal(
      renderJobScript(job, { address: 'tcp://login1:8786', token: true }),
      [
        '#!/usr/bin/env bash',
        '#SBATCH --job-name=tessera-worker',
        '#SBATCH --partition=compute',
        '#SBATCH --account=proj',
        '#SBATCH --qos=short',
        '#SBATCH --nodes=1',
        '#SBATCH --ntasks=1',
        '#SBATCH --cpus-per-task=4',
        '#SBATCH --mem=8192M',
        '#SBATCH --time=00:30:00',
        '#SBATCH --output=/home/me/logs/tessera-worker-%j.out',
        '#SBATCH --constraint=ib',
        '#SBATCH --exclusive',
        '',
        "# The scheduler's token arrives in TESSERA_TOKEN, exported by sbatch from the",
        '# submitting process: it is never written here.',
        'module load nodejs/20',
        'export LANG=C.UTF-8',
        '# Large allocations in transparent huge pages, unless GLIBC_TUNABLES already says.',
        '[[ ":${GLIBC_TUNABLES-}" == *:glibc.malloc.hugetlb=* ]] || export GLIBC_TUNABLES="${GLIBC_TUNABLES:+$GLIBC_TUNABLES:}glibc.malloc.hugetlb=1"',
        'exec /opt/node/bin/node /opt/tessera/dist/cli/main.js worker tcp://login1:8786 \\',
        '  --name "tessera-worker-${SLURM_JOB_ID}" \\',
        '  --nthreads 4 \\',
        '  --memory-limit 8589934592 \\',
        '  --lifetime 1620s \\',
        '  --lifetime-stagger 162s \\',
        '  --spill-directory "$TMPDIR/tessera" \\',
        '  --memory-target 0.7',
        '',
      ].join('\n'),
    );
  });

  void test('without memory the worker follows the allocation; without walltime there is no lifetime', () => {
    const script = renderJobScript(resolveJobOptions({ command, logDirectory: false }), { address: 'tcp://h:1', token: false });
    assert.doesNotMatch(script, /--mem=|--time=|--lifetime|TESSERA_TOKEN/);
    assert.match(script, /^#SBATCH --output=\/dev\/null$/m);
    assert.match(script, /SLURM_MEM_PER_NODE/);
    assert.match(script, /"\$\{memory_limit\[@\]\}"/);
  });

  void test('partition, account and QoS may come as directives instead, as dask-jobqueue users write them', () => {
    const script = renderJobScript(resolveJobOptions({ command, jobExtra: ['--qos=short', '#SBATCH --account=proj', '-p compute'] }), { address: 'tcp://h:1', token: false });
    assert.match(script, /^#SBATCH --qos=short\n#SBATCH --account=proj\n#SBATCH -p compute$/m);
    assert.equal(script.match(/--qos/g)?.length, 1);
  });

  void test("a user's --export keeps its list and gains the token's name, never its value", () => {
    assert.equal(exportWithToken('NONE'), 'NONE,TESSERA_TOKEN');
    assert.equal(exportWithToken('PATH,HOME'), 'PATH,HOME,TESSERA_TOKEN');
    assert.equal(exportWithToken('ALL,FOO=1'), 'ALL,FOO=1');
    const script = renderJobScript(resolveJobOptions({ command, jobExtra: ['--export=NONE'] }), { address: 'tcp://h:1', token: true });
    assert.match(script, /^#SBATCH --export=NONE,TESSERA_TOKEN$/m);
  });

  void test('walltimes in every Slurm form and as durations; lifetimes derived from them', () => {
    const cases: [string | number, number][] = [
      ['30', 1800], ['30:15', 1815], ['01:30:00', 5400], ['2-00', 172_800], ['1-12:30', 131_400], ['1-00:00:10', 86_410],
      ['90s', 90], ['25m', 1500], ['1h30m', 5400], [90_500, 91],
    ];
    for (const [given, seconds] of cases) assert.equal(parseWalltime(given, 'walltime'), seconds, String(given));
    assert.equal(formatWalltime(5400), '01:30:00');
    assert.equal(formatWalltime(131_400), '1-12:30:00');
    // An hour: 55 minutes, as dask-jobqueue's docs advise; a minute: half of it.
    assert.equal(defaultLifetime(3600), 3300);
    assert.equal(defaultLifetime(1800), 1620);
    assert.equal(defaultLifetime(60), 30);
    assert.equal(resolveJobOptions({ walltime: '1h' }).lifetime, 3_300_000);
    assert.equal(resolveJobOptions({ walltime: '1h' }).lifetimeStagger, 300_000);
    assert.equal(resolveJobOptions({ walltime: '1h', lifetime: false }).lifetime, undefined);
    assert.equal(resolveJobOptions({ lifetime: '10s', lifetimeStagger: '2s' }).lifetime, 10_000);
  });

  void test('every bad setting is refused, naming it', () => {
    rejects({ cores: 0 }, /options\.cores must be a positive integer/);
    rejects({ cores: 2.5 }, /options\.cores/);
    rejects({ memory: 'lots' }, /options\.memory must be bytes or a size/);
    rejects({ memory: 100 }, /options\.memory must be at least 1MiB/);
    rejects({ walltime: 'soon' }, /options\.walltime must be a Slurm time/);
    rejects({ walltime: '0' }, /options\.walltime must be longer than zero/);
    rejects({ partition: 'a b' }, /options\.partition must be a non-empty string without spaces/);
    rejects({ account: 'x;rm -rf' }, /options\.account/);
    rejects({ qos: '' }, /options\.qos/);
    rejects({ jobExtra: ['constraint=ib'] }, /options\.jobExtra\[0\] must be one sbatch option/);
    rejects({ jobExtra: ['--array=0-3'] }, /options\.jobExtra\[0\].*set by the backend/);
    rejects({ jobExtra: ['-J', 'x'] }, /jobExtra\[0\].*jobName/);
    rejects({ jobExtra: ['--output=/tmp/x'] }, /logDirectory/);
    rejects({ jobExtra: ['--time=10'] }, /walltime/);
    rejects({ qos: 'long', jobExtra: ['--qos=short'] }, /jobExtra\[0\] "--qos=short" contradicts the qos option \(long\)/);
    rejects({ partition: 'a', jobExtra: ['-p b'] }, /contradicts the partition option/);
    rejects({ jobExtra: 'x' as unknown as string[] }, /options\.jobExtra must be an array of strings/);
    rejects({ localDirectory: '$(whoami)' }, /options\.localDirectory/);
    rejects({ logDirectory: 'a b' }, /options\.logDirectory/);
    rejects({ jobName: 'my job' }, /options\.jobName/);
    rejects({ command: '' }, /options\.command/);
    rejects({ workerExtra: ['--nthreads', '3'] }, /options\.workerExtra: --nthreads is set by the backend/);
    rejects({ walltime: '10m', lifetime: '15m' }, /options\.lifetime .* must be shorter than the walltime/);
    rejects({ lifetime: '10s', lifetimeStagger: '20s' }, /options\.lifetimeStagger must be shorter than the lifetime/);
    rejects({ lifetime: 'forever' }, /options\.lifetime must be a duration/);
    rejects({ pollInterval: 10 }, /options\.pollInterval must be at least 100 ms/);
    rejects({ jobArrays: 'yes' as unknown as boolean }, /options\.jobArrays/);
  });

  void test('an unknown option is refused with the closest known name, dask-jobqueue names included', async () => {
    assert.equal(closest('queue', ['partition']), 'partition');
    assert.equal(closest('job_extra_directives', ['jobExtra', 'jobName']), 'jobExtra');
    assert.equal(closest('walltim', ['walltime', 'cores']), 'walltime');
    assert.equal(closest('local_directory', ['localDirectory', 'logDirectory']), 'localDirectory');
    assert.equal(closest('zzzzzzzz', ['walltime', 'cores']), undefined);
    assert.throws(() => new SlurmBackend({ scheduler, partiton: 'x' } as SlurmJobOptions as never), (error: unknown) => error instanceof InvalidArgumentError && /unknown option 'partiton' \(did you mean 'partition'\?/.test(error.message));
    await assert.rejects(SlurmCluster.start({ queue: 'compute' } as never), (error: unknown) => error instanceof InvalidArgumentError && /unknown option 'queue' \(did you mean 'partition'\?/.test(error.message));
    await assert.rejects(SlurmCluster.start({ cores: -1, dashboard: false }), (error: unknown) => error instanceof InvalidArgumentError && /options\.cores/.test(error.message));
    await assert.rejects(SlurmCluster.start({ workers: 1.5 }), (error: unknown) => error instanceof InvalidArgumentError && /options\.workers/.test(error.message));
    await assert.rejects(SlurmCluster.start({ token: '' }), (error: unknown) => error instanceof InvalidArgumentError && /options\.token/.test(error.message));
    await assert.rejects(SlurmCluster.start({ contactAddress: 'nowhere' }), (error: unknown) => error instanceof InvalidArgumentError && /options\.contactAddress/.test(error.message));
    assert.throws(() => new SlurmBackend({} as never), InvalidArgumentError);
  });

  void test('worker names map to job ids and back; the contact address replaces a wildcard host', () => {
    const job = resolveJobOptions({ jobName: 'burst' });
    assert.equal(workerName(job, '1234'), 'burst-1234');
    assert.equal(jobIdOf(job, 'burst-1234'), '1234');
    assert.equal(jobIdOf(job, 'other-1234'), undefined);
    assert.equal(jobIdOf(job, 'burst-12_3'), undefined);
    const backend = new SlurmBackend({ scheduler: { ...scheduler, address: 'tcp://0.0.0.0:8786' }, command });
    assert.doesNotMatch(backend.address, /0\.0\.0\.0/);
    assert.equal(new SlurmBackend({ scheduler, command, contactAddress: 'login1:9000' }).address, 'tcp://login1:9000');
    assert.match(new SlurmBackend({ scheduler, command }).jobScript(), / worker tcp:\/\/10\.1\.2\.3:8786 /);
  });
});

void describe('reading squeue', () => {
  void test('rows, array tasks with their own ids, and collapsed ranges of finished tasks', () => {
    const rows = parseQueue(['1_1|1|PENDING|Resources', '1_0|3|RUNNING|None', '1_[2-4,7]|1|CANCELLED|None', '2|2|FAILED|NonZeroExitCode', ''].join('\n'));
    assert.deepEqual(
      rows.map((r) => [r.id, r.jobId, r.state]),
      [['1_1', '1', 'PENDING'], ['1_0', '3', 'RUNNING'], ['1_2', '', 'CANCELLED'], ['1_3', '', 'CANCELLED'], ['1_4', '', 'CANCELLED'], ['1_7', '', 'CANCELLED'], ['2', '2', 'FAILED']],
    );
    assert.deepEqual(expandIds('5_[0-1%2]'), ['5_0', '5_1']);
    assert.deepEqual(expandIds('12'), ['12']);
  });

  void test('job states as the backend counts them', () => {
    for (const s of ['PENDING', 'CONFIGURING', 'REQUEUED', 'SUSPENDED']) assert.equal(phaseOf(s), 'pending', s);
    assert.equal(phaseOf('RUNNING'), 'running');
    assert.equal(phaseOf('COMPLETING'), 'ending');
    for (const s of ['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL', 'OUT_OF_MEMORY', 'PREEMPTED', 'BOOT_FAIL', 'DEADLINE']) assert.equal(phaseOf(s), 'ended', s);
  });
});
