// examples/lambda.ts runs as the docs promise: the burst goes out to Lambda and comes back
// to zero with the results on the pool.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { skip } from './fixtures.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

void test('examples/lambda.ts, small', { skip }, async () => {
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/lambda.ts', '--tasks', '24', '--sleep', '0.5', '--lambdas', '3'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
    child.on('error', reject);
    child.on('close', (exit) => {
      clearTimeout(timer);
      resolve({ code: exit, output: out });
    });
  });
  assert.equal(code, 0, output);
  assert.match(output, /function tessera-worker-[0-9a-f]{16}: \d+ KB zipped/);
  assert.match(output, /burst \d+ of \d+/);
  assert.match(output, /24 results in [\d.]+ s; [1-9]\d* Lambda invocations/);
  assert.match(output, /Lambda back to zero; 2 pool workers hold the results/);
});
