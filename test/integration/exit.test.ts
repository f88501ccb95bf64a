// A script that never calls close() still ends, and leaves no process behind, as Dask
// closes clusters at interpreter exit; `await using` closes them at the end of a block.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { LocalCluster } from '../../src/index.js';
import { isAlive, until } from '../helpers/wait.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const script = fileURLToPath(new URL('../fixtures/forgets-to-close.ts', import.meta.url));

function run(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string; timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

function pidsOf(stdout: string): number[] {
  const line = stdout.split('\n').find((l) => l.startsWith('pids '));
  assert.ok(line !== undefined, stdout);
  return line.slice(5).split(',').filter(Boolean).map(Number);
}

void describe('scripts end on their own', () => {
  void test('a script that never closes its cluster or client exits, its workers with it', async () => {
    const r = await run(['forget']);
    assert.equal(r.timedOut, false, `the script hung\n${r.stderr}`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /total 32/);
    const pids = pidsOf(r.stdout);
    assert.equal(pids.length, 2);
    await until(() => pids.every((p) => !isAlive(p)), 'the worker processes are gone');
  });

  void test('await using closes the cluster and the client at the end of the block', async () => {
    const r = await run(['await-using']);
    assert.equal(r.timedOut, false, r.stderr);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /result 42[\s\S]*closed by scope/);
    for (const p of pidsOf(r.stdout)) assert.equal(isAlive(p), false, `worker ${p} outlived the block`);
  });

  void test('a client of a cluster run elsewhere lets its script end', async () => {
    await using cluster = await LocalCluster.start({ workers: 1, dashboard: false, log: () => undefined });
    const r = await run(['idle-client', cluster.address]);
    assert.equal(r.timedOut, false, r.stderr);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /result 42/);
    // The cluster goes on serving after its client's script ended.
    assert.equal(cluster.state, 'running');
  });
});
