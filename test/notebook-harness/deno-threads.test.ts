/**
 * Tessera's thread pool under the kernel's runtime. Deno drops messages posted to a worker
 * thread before the thread listens (Node queues them); a pool that posted work to a thread
 * still loading its body hung — reliably so with an empty Deno cache, as in a fresh
 * kernel. The pool now waits for each thread to say it is ready. This runs a graph on the
 * threads scheduler with the Deno binary the notebook tests use, on an empty cache, and
 * fails (rather than hang) after 30 s.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { notebookTools, notebookToolsMissing } from '../helpers/notebook.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const missing = await notebookToolsMissing();
if (missing !== false) process.stderr.write(`# ${missing}\n`);

const SCRIPT = `
const { get, task, shutdownThreads } = await import(${JSON.stringify(pathToFileURL(join(root, 'dist/index.js')).href)});
const graph = Object.fromEntries(Array.from({ length: 8 }, (_, i) => ['k' + i, task((x) => x * 2, i)]));
const values = await get(graph, Object.keys(graph), { scheduler: 'threads', workers: 2 });
console.log(JSON.stringify(values));
await shutdownThreads();
`;

void describe('the thread pool under Deno', { skip: missing }, () => {
  test('a graph on the threads scheduler finishes, with an empty Deno cache', async () => {
    assert.ok(existsSync(join(root, 'dist/index.js')), 'this test runs the built package: run `npm run build`');
    const { deno } = await notebookTools();
    const cache = mkdtempSync(join(tmpdir(), 'tessera-deno-cache-'));
    try {
      const result = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }>((resolve, reject) => {
        const child = spawn(deno, ['eval', SCRIPT], {
          cwd: root,
          env: { ...process.env, DENO_DIR: cache, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let output = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
        child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        child.once('error', reject);
        child.once('close', (code, signal) => {
          clearTimeout(timer);
          resolve({ code, signal, output });
        });
      });
      assert.equal(result.signal, null, `killed after 30 s: the pool hung under Deno\n${result.output}`);
      assert.equal(result.code, 0, result.output);
      assert.equal(result.output.trim(), JSON.stringify([0, 2, 4, 6, 8, 10, 12, 14]));
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });
});
