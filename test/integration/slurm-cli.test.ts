/**
 * `tessera scheduler --backend slurm` (and `--preload tessera/slurm`) on a real Slurm: the
 * preload's own flags parse, jobs appear for the work and leave with the scheduler. And the
 * preload mechanism itself: flags a preload adds, package names, clear errors.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client } from '../../src/index.js';
import { type SlurmCluster as Slurm, startSlurm } from '../helpers/slurm/cluster.js';
import { slurmSkip } from '../helpers/slurm/install.js';
import { squeue } from '../helpers/slurm/queue.js';
import { until } from '../helpers/wait.js';

const skip = await slurmSkip();
if (skip !== false) process.stderr.write(`# ${skip}\n`);

const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

interface Run {
  readonly child: ChildProcess;
  readonly stderr: () => string;
  readonly exited: Promise<[number | null, NodeJS.Signals | null]>;
}

function tessera(args: readonly string[], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), main, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  return { child, stderr: () => err, exited: once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]> };
}

async function firstLine(child: ChildProcess): Promise<string> {
  const lines = createInterface({ input: child.stdout! });
  const [line] = (await once(lines, 'line')) as [string];
  lines.close();
  return line.trim();
}

/** Runs the command to its end: exit code, stdout and stderr. */
async function finish(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const run = tessera(args);
  let out = '';
  run.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const [code] = await run.exited;
  return { code, stdout: out, stderr: run.stderr() };
}

void describe('preload modules with flags of their own', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-preload-flags-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  void test("a preload's flags parse with the rest, and setup receives their values and the token", async () => {
    const out = join(dir, 'values.json');
    const module = join(dir, 'flags.mjs');
    writeFileSync(
      module,
      `import { writeFileSync } from 'node:fs';
export const options = [
  { flags: '--greeting <text>', description: 'what to say' },
  { flags: '--times <n>', description: 'how often', parse: (v) => { const n = Number(v); if (!Number.isInteger(n)) throw new Error('must be an integer'); return n; }, defaultValue: 1 },
  { flags: '--loud', description: 'shout' },
];
export function setup(scheduler, values, context) {
  writeFileSync(${JSON.stringify(out)}, JSON.stringify({ values, token: context.token }));
  setImmediate(() => void scheduler.close());
}
`,
    );
    const ok = await finish(['scheduler', '--port', '0', '--no-dashboard', '--token', 'sesame', '--preload', module, '--greeting', 'hello', '--loud']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(JSON.parse(readFileSync(out, 'utf8')), { values: { greeting: 'hello', times: 1, loud: true }, token: 'sesame' });

    const bad = await finish(['scheduler', '--port', '0', '--no-dashboard', `--preload=${module}`, '--times', 'many']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--times must be an integer/);

    // Without the preload, its flags are unknown.
    const unknown = await finish(['scheduler', '--port', '0', '--no-dashboard', '--greeting', 'hello']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /unknown option '--greeting'/);
  });

  void test('clashing or malformed flags, unknown backends and missing packages stop the command with a message', async () => {
    const clash = join(dir, 'clash.mjs');
    writeFileSync(clash, "export const options = [{ flags: '--port <n>', description: 'mine' }];\nexport function setup() {}\n");
    const clashed = await finish(['scheduler', '--no-dashboard', '--preload', clash]);
    assert.equal(clashed.code, 1);
    assert.match(clashed.stderr, /preload module .*clash\.mjs adds --port <n>, which clashes with an existing flag/);

    const malformed = join(dir, 'malformed.mjs');
    writeFileSync(malformed, "export const options = [{ name: 'x' }];\nexport function setup() {}\n");
    const bad = await finish(['scheduler', '--no-dashboard', '--preload', malformed]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /options\[0\] must be \{ flags/);

    const backend = await finish(['scheduler', '--no-dashboard', '--backend', 'nope']);
    assert.equal(backend.code, 1);
    assert.match(backend.stderr, /--backend nope: unknown backend; known: slurm/);

    const missing = await finish(['scheduler', '--no-dashboard', '--preload', 'no-such-package/setup']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /preload module no-such-package\/setup .*does not exist, and no installed package provides it/);

    const notExported = await finish(['scheduler', '--no-dashboard', '--preload', 'tessera/nothing']);
    assert.equal(notExported.code, 1);
    assert.match(notExported.stderr, /package tessera exports no '\.\/nothing'/);
  });

  void test('--backend slurm adds its flags to the help, and checks their values, naming the flag', async () => {
    const help = await finish(['scheduler', '--backend', 'slurm', '--help']);
    assert.equal(help.code, 0);
    for (const flag of ['--slurm-partition', '--slurm-walltime', '--slurm-maximum', '--slurm-job-extra']) assert.match(help.stdout, new RegExp(flag));

    const cores = await finish(['scheduler', '--port', '0', '--no-dashboard', '--backend', 'slurm', '--slurm-cores', 'four']);
    assert.equal(cores.code, 1);
    assert.match(cores.stderr, /--slurm-cores must be a non-negative integer/);

    const walltime = await finish(['scheduler', '--port', '0', '--no-dashboard', '--preload', 'tessera/slurm', '--slurm-walltime', 'soon']);
    assert.equal(walltime.code, 1);
    assert.match(walltime.stderr, /preload module tessera\/slurm failed in setup\(scheduler\)[\s\S]*--slurm-walltime must be a Slurm time/);
  });
});

void describe('tessera scheduler --backend slurm on a real Slurm', { skip }, () => {
  let slurm: Slurm;
  let dir: string;

  before(async () => {
    slurm = await startSlurm({ cpus: 4, memoryMB: 4096 });
    dir = mkdtempSync(join(tmpdir(), 'tessera-slurm-cli-'));
  });

  after(async () => {
    await (slurm as Slurm | undefined)?.stop();
    if ((dir as string | undefined) !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  void test('submits jobs for the work, and cancels them all when the scheduler stops', async (t) => {
    const token = 'slurm-cli-token';
    const scheduler = tessera(
      [
        'scheduler', '--port', '0', '--no-dashboard', '--backend', 'slurm',
        '--slurm-conf', slurm.confPath, '--slurm-memory', '256MB', '--slurm-log-directory', dir, '--slurm-job-name', 'cli',
        '--slurm-maximum', '2', '--slurm-target-duration', '1s', '--slurm-poll-interval', '500ms', '--slurm-job-extra=--comment=from-the-cli',
        '--slurm-show-script',
      ],
      { TESSERA_TOKEN: token },
    );
    try {
      const address = await firstLine(scheduler.child);
      const client = await Client.connect(address, { token });
      try {
        const t0 = performance.now();
        const futures = client.map((x: number) => x * 3, [1, 2, 3, 4, 5, 6]);
        assert.deepEqual(await client.gather(futures), [3, 6, 9, 12, 15, 18]);
        t.diagnostic(`results ${Math.round(performance.now() - t0)} ms after submission, through Slurm jobs`);
        const history = await client.scalingHistory();
        assert.ok(history?.decisions.some((d) => d.op === 'scale-up'), 'the preload made the scheduler adaptive');
        const rows = (await squeue(slurm, { all: true })).filter((row) => row.name === 'cli');
        assert.ok(rows.length >= 1 && rows.length <= 2, `${rows.length} jobs`);
        // The script it printed is the one Slurm runs, and the token is in neither.
        const script = await slurm.run('scontrol', ['write', 'batch_script', rows[0]!.id, '-']);
        assert.ok(scheduler.stderr().includes(script), scheduler.stderr());
        assert.match(script, /^#SBATCH --comment=from-the-cli$/m);
        assert.ok(!script.includes(token));
        assert.match(scheduler.stderr(), /slurm: adapting between 0 and 2 workers/);
      } finally {
        await client.close();
      }
      scheduler.child.kill('SIGTERM');
      const [code] = await scheduler.exited;
      assert.equal(code, 0, scheduler.stderr());
      assert.deepEqual((await squeue(slurm)).filter((row) => row.name === 'cli'), [], 'no job is left in squeue');
    } finally {
      if (scheduler.child.exitCode === null && scheduler.child.signalCode === null) scheduler.child.kill('SIGKILL');
      await until(async () => (await squeue(slurm)).length === 0, 'the queue is empty', 30_000, 200).catch(async () => {
        await slurm.run('scancel', ['--name', 'cli']);
      });
    }
  });
});
