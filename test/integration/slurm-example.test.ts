/**
 * The first example of docs/slurm.md (examples/slurm-start.ts) runs as written on a real
 * Slurm that has what it names: a partition `compute`, nodes big enough for 4 cores and
 * 8 GB a job. It imports 'tessera', the built package (`npm run build`, as npm test does).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startSlurm } from '../helpers/slurm/cluster.js';
import { slurmSkip } from '../helpers/slurm/install.js';
import { squeue } from '../helpers/slurm/queue.js';

const skip = await slurmSkip();
if (skip !== false) process.stderr.write(`# ${skip}\n`);

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Runs a file of the repository from `cwd`, where the jobs' output files go by default. */
function run(file: string, cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), join(root, file)], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

void describe('the Slurm quick start on a real Slurm', { skip }, () => {
  void test('examples/slurm-start.ts: the script shown carries every setting; results come back; no job is left', { timeout: 200_000 }, async () => {
    const slurm = await startSlurm({ partition: 'compute', cpus: 8, memoryMB: 20_000 });
    const cwd = mkdtempSync(join(tmpdir(), 'tessera-slurm-start-'));
    try {
      const r = await run('examples/slurm-start.ts', cwd, { ...process.env, ...slurm.env, TESSERA_LOG_LEVEL: 'warn' });
      assert.equal(r.code, 0, r.output);
      for (const directive of ['--partition=compute', '--account=proj', '--cpus-per-task=4', '--mem=7630M', '--time=00:30:00', '--qos=short']) {
        assert.match(r.output, new RegExp(`^#SBATCH ${directive}$`, 'm'), r.output);
      }
      assert.match(r.output, /--nthreads 4 \\\n\s+--memory-limit 8000000000 \\\n\s+--lifetime 1620s/);
      assert.match(r.output, new RegExp(`^results: ${Array.from({ length: 16 }, (_, i) => i).join(' ')}$`, 'm'), r.output);
      // The jobs ran as the cluster was asked, and close() left none behind.
      assert.deepEqual(await squeue(slurm), []);
      const ran = (await squeue(slurm, { all: true })).filter((row) => row.name === 'tessera-worker');
      assert.ok(ran.length >= 1, 'the example submitted jobs');
      // Without logDirectory, each job's output is in the directory the program ran from.
      assert.ok(readdirSync(cwd).some((f) => /^tessera-worker-\d+\.out$/.test(f)), readdirSync(cwd).join(', '));
    } finally {
      await slurm.stop();
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});
