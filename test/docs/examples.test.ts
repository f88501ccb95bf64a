/**
 * The runnable examples run: each program in examples/ (the README's and docs' longer
 * snippets are these files) exits 0 with the output it promises. Modules that are not
 * programs (adaptive-setup.ts, child-process-backend.ts, stats.ts) run through the
 * programs that use them, and through test/deploy/child-process-backend.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));

function run(args: readonly string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TESSERA_LOG_LEVEL: 'warn' } });
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

void describe('examples', () => {
  void test('adaptive.ts (npm start), small: workers come, the work is done, the cluster shrinks', async () => {
    const r = await run(['examples/adaptive.ts', '--tasks', '20', '--maximum', '2', '--sleep', '0.5']);
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /adaptive: scale up to/);
    assert.match(r.output, /all results .*the sum of the 20 results/);
    assert.match(r.output, /cluster back to 1 worker holding the results/);
    // The live line never comes after the report.
    const report = r.output.indexOf('first worker');
    assert.doesNotMatch(r.output.slice(report), /done · workers:/);
  });

  void test('local.ts', async () => {
    const r = await run(['examples/local.ts']);
    assert.equal(r.code, 0, r.output);
  });

  void test('stats-main.ts: a module function locally and on a cluster', async () => {
    const r = await run(['examples/stats-main.ts']);
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /\[ 2, 1, 3 \]\n\[ 2, 1, 3 \]/);
  });

  void test('child-process-direct.ts: a scheduler adapting through a backend of its own', async () => {
    const r = await run(['examples/child-process-direct.ts']);
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /\[ 1, 4, 9 \]/);
  });
});
