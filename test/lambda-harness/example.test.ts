// examples/lambda.ts runs as the docs promise: the burst goes out to Lambda and comes back
// to zero with the results on the pool; examples/lambda-direct.ts drains a fan-out through
// direct invocations with every result held by the store.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { skip, skipWithRedis } from './fixtures.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Runs an example to its end: its exit code and everything it wrote. */
function runExample(args: readonly string[]): Promise<{ code: number | null; output: string }> {
  return new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
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
}

void test('examples/lambda.ts, small', { skip }, async () => {
  const { code, output } = await runExample(['examples/lambda.ts', '--tasks', '24', '--sleep', '0.5', '--lambdas', '3']);
  assert.equal(code, 0, output);
  assert.match(output, /function tessera-worker-[0-9a-f]{16}: \d+ KB zipped/);
  assert.match(output, /burst \d+ of \d+/);
  assert.match(output, /24 results in [\d.]+ s; [1-9]\d* Lambda invocations/);
  assert.match(output, /Lambda back to zero; 2 pool workers hold the results/);
});

void test('examples/lambda-direct.ts, small', { skip: skipWithRedis }, async () => {
  const { code, output } = await runExample(['examples/lambda-direct.ts', '--tasks', '300', '--lambdas', '3']);
  assert.equal(code, 0, output);
  assert.match(output, /function tessera-worker-[0-9a-f]{16}: \d+ KB zipped/);
  assert.match(output, /300 results in [\d.]+ s; [1-9]\d* invocations; 300 held by the store/);
});
