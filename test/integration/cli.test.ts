// The `tessera` command, as users run it: a scheduler process and worker processes, one of
// them unable to accept connections, so its data travels through the scheduler's relay.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client, Scheduler } from '../../src/index.js';
import { msgpackRoundTrip, statementCount } from '../fixtures/ops.js';

const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const tsx = import.meta.resolve('tsx');

function tessera(args: readonly string[], env: Record<string, string> = {}, cwd?: string): ChildProcess {
  return spawn(process.execPath, ['--import', tsx, main, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
    ...(cwd === undefined ? {} : { cwd }),
  });
}

async function firstLine(child: ChildProcess): Promise<string> {
  const lines = createInterface({ input: child.stdout! });
  const [line] = (await once(lines, 'line')) as [string];
  lines.close();
  return line.trim();
}

async function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  const [code] = await exited;
  clearTimeout(timer);
  return code;
}

void describe('tessera scheduler / tessera worker', () => {
  void test('workers join by address and token; a --no-listen worker is served through the relay', async () => {
    const children: ChildProcess[] = [];
    try {
      const scheduler = tessera(['scheduler', '--port', '0', '--token', 'cli-secret']);
      children.push(scheduler);
      const address = await firstLine(scheduler);
      assert.match(address, /^tcp:\/\/127\.0\.0\.1:\d+$/);

      const direct = tessera(['worker', address, '--nthreads', '1', '--memory-limit', '1GB', '--name', 'direct'], { TESSERA_TOKEN: 'cli-secret' });
      const hidden = tessera(['worker', address, '--token', 'cli-secret', '--nthreads', '1', '--name', 'hidden', '--no-listen']);
      children.push(direct, hidden);
      assert.match(await firstLine(direct), /^tcp:\/\//);
      assert.match(await firstLine(hidden), /^relay:\/\//);

      const client = await Client.connect(address, { token: 'cli-secret' });
      try {
        // Made on the hidden worker, used on the direct one: the direct worker must fetch it by relay.
        const made = client.submitWith({ workers: ['hidden'] }, (n: number) => Array.from({ length: n }, (_, i) => i), 1000);
        const summed = client.submitWith({ workers: ['direct'] }, (xs: number[]) => xs.reduce((s, x) => s + x, 0), made);
        assert.equal(await summed.result(), 499_500);
        // And the client gathers from the hidden worker through the relay too.
        const values = await made.result();
        assert.equal(values.length, 1000);
        // The other way round: made where peers can dial, used where they cannot.
        const made2 = client.submitWith({ workers: ['direct'] }, (n: number) => new Float64Array(n).fill(2), 5000);
        const summed2 = client.submitWith({ workers: ['hidden'] }, (xs: Float64Array) => xs.reduce((s, x) => s + x, 0), made2);
        assert.equal(await summed2.result(), 10_000);
      } finally {
        await client.close();
      }
      // Workers leave gracefully on SIGTERM, and the scheduler too.
      assert.equal(await stop(direct), 0);
      assert.equal(await stop(hidden), 0);
      assert.equal(await stop(scheduler), 0);
    } finally {
      for (const child of children) await stop(child);
    }
  });

  void test('--preload runs a setup module with the scheduler', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-preload-'));
    const setup = join(dir, 'setup.mjs');
    writeFileSync(setup, "export function setup(scheduler) { process.stdout.write('preloaded ' + scheduler.status + '\\n'); }\n");
    const scheduler = tessera(['scheduler', '--port', '0', '--preload', setup]);
    try {
      const lines = createInterface({ input: scheduler.stdout! });
      const seen: string[] = [];
      for await (const line of lines) {
        seen.push(line);
        if (seen.length === 2) break;
      }
      assert.match(seen[0]!, /^tcp:\/\//);
      assert.equal(seen[1], 'preloaded running');
    } finally {
      await stop(scheduler);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  void test('a worker with the wrong token exits with an error', async () => {
    const scheduler = tessera(['scheduler', '--port', '0', '--token', 'right']);
    try {
      const address = await firstLine(scheduler);
      const worker = spawn(process.execPath, ['--import', tsx, main, 'worker', address, '--token', 'wrong'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      worker.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const [code] = (await once(worker, 'exit')) as [number | null];
      assert.equal(code, 1);
      assert.match(stderr, /token/);
    } finally {
      await stop(scheduler);
    }
  });
});

void describe('module functions travel as bundles', () => {
  void test('a worker in an empty directory runs module functions that import npm packages', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on('warning', onWarning);
    const empty = mkdtempSync(join(tmpdir(), 'tessera-empty-'));
    const scheduler = await Scheduler.start({ port: 0 });
    const worker = tessera(['worker', scheduler.address, '--nthreads', '1', '--name', 'bare'], {}, empty);
    try {
      await firstLine(worker);
      const client = await Client.connect(scheduler.address);
      try {
        // acorn and msgpackr come inside the bundle: nothing next to the bundle on the worker resolves them.
        assert.equal(await client.submit(statementCount, 'let a = 1; a++; console.log(a);').result(), 3);
        assert.deepStrictEqual(await client.submit(msgpackRoundTrip, { a: [1, 2] }).result(), { a: [1, 2] });
      } finally {
        await client.close();
      }
      assert.deepStrictEqual(readdirSync(empty), [], 'the worker wrote nothing into its working directory');
      assert.deepStrictEqual(warnings.filter((w) => w.name === 'TesseraWarning'), [], 'the module was bundled, not imported by path');
    } finally {
      process.off('warning', onWarning);
      await stop(worker);
      await scheduler.close();
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
