/**
 * Scripts run in child processes: the thread pool must never keep a process alive, and
 * pool failures that would hang or crash a test process are observed from outside.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const script = fileURLToPath(new URL('../fixtures/exit-after-threads.ts', import.meta.url));
const LIMIT_MS = 30_000;

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

function run(mode: string, file = script): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file, mode], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, LIMIT_MS);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

const CASES: readonly [mode: string, output: unknown][] = [
  ['ok', Array.from({ length: 50 }, (_, i) => 2 + i).reduce((s, x) => s + x, 0)],
  ['delayed', 3],
  ['module', 2],
  ['error', 'TaskError b'],
  ['cancel', 'cancelled'],
];

void describe('the process exits on its own after using threads', () => {
  for (const [mode, output] of CASES) {
    void test(`mode ${mode}`, { timeout: LIMIT_MS + 10_000 }, async () => {
      const exit = await run(mode);
      assert.equal(exit.timedOut, false, `the process was still alive after ${LIMIT_MS} ms; stderr: ${exit.stderr}`);
      assert.equal(exit.code, 0, exit.stderr);
      assert.deepStrictEqual(JSON.parse(exit.stdout.trim()), output);
    });
  }
});

void describe('computations sharing the pool', () => {
  void test(
    'cancelling one computation does not break another whose job waits on the same thread',
    { timeout: LIMIT_MS + 10_000 },
    async () => {
      const exit = await run('', fileURLToPath(new URL('../fixtures/abort-shared-pool.ts', import.meta.url)));
      assert.equal(exit.timedOut, false, exit.stderr);
      assert.equal(exit.code, 0, exit.stderr);
      const N = 1 << 20;
      assert.deepStrictEqual(JSON.parse(exit.stdout.trim()), { x: 'cancelled', y: (N * (N - 1)) / 2 });
    },
  );
});
