// The `tessera` command, as users run it: a scheduler process and worker processes, one of
// them unable to accept connections, so its data travels through the scheduler's relay.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

/** Reads a child's stdout line by line; next() rejects if it ends first. */
function linesOf(child: ChildProcess): { next(): Promise<string> } {
  const iterator: AsyncIterator<string, undefined> = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return {
    async next() {
      const result = await iterator.next();
      if (result.done === true) throw new Error('the process closed its stdout');
      return result.value.trim();
    },
  };
}

/** Runs the command to its end. */
async function run(args: readonly string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', tsx, main, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
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
      const scheduler = tessera(['scheduler', '--port', '0', '--dashboard-port', '0', '--token', 'cli-secret']);
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

  void test('--preload: setup runs at start and teardown at close, on the scheduler and on a worker', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-preload-'));
    const module = join(dir, 'setup.mjs');
    // Teardown writes a file: stdout may be gone by then, a file is not.
    writeFileSync(
      module,
      [
        "import { writeFileSync } from 'node:fs';",
        "export function setup(server) { process.stdout.write('setup ' + server.state + '\\n'); }",
        `export async function teardown(server) { await new Promise((r) => setTimeout(r, 20)); writeFileSync(${JSON.stringify(join(dir, 'teardown-'))} + (server.id === undefined ? 'scheduler' : 'worker'), server.state); }`,
      ].join('\n'),
    );
    const scheduler = tessera(['scheduler', '--port', '0', '--no-dashboard', '--preload', module]);
    let worker: ChildProcess | undefined;
    try {
      const lines = linesOf(scheduler);
      const address = await lines.next();
      assert.match(address, /^tcp:\/\//);
      assert.equal(await lines.next(), 'setup running');

      worker = tessera(['worker', address, '--nthreads', '1', '--no-metrics', '--preload', module]);
      const workerLines = linesOf(worker);
      assert.match(await workerLines.next(), /^tcp:\/\//);
      assert.equal(await workerLines.next(), 'setup running', 'no metrics line with --no-metrics');

      // The scheduler's teardown runs on SIGTERM while it still runs; the worker's when its scheduler goes away.
      assert.equal(await stop(scheduler), 0);
      assert.equal(readFileSync(join(dir, 'teardown-scheduler'), 'utf8'), 'running');
      const [code] = (await once(worker, 'exit')) as [number | null];
      assert.equal(code, 0);
      assert.equal(readFileSync(join(dir, 'teardown-worker'), 'utf8'), 'closed');
    } finally {
      await stop(scheduler);
      if (worker !== undefined) await stop(worker);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  void test('a preload whose setup throws, or that is missing, stops the process with a message naming it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-preload-'));
    const throwing = join(dir, 'throwing.mjs');
    writeFileSync(throwing, "export function setup() { throw new Error('no backend configured'); }\n");
    try {
      const failed = await run(['scheduler', '--port', '0', '--dashboard-port', '0', '--preload', throwing]);
      assert.notEqual(failed.code, 0);
      assert.match(failed.stderr, /preload module .*throwing\.mjs failed in setup\(scheduler\)/);
      assert.match(failed.stderr, /Error: no backend configured/);
      // It had started: the address was printed before the setup ran, and nothing lingers.
      assert.match(failed.stdout, /^tcp:\/\//);

      const missing = await run(['scheduler', '--port', '0', '--no-dashboard', '--preload', join(dir, 'nowhere.mjs')]);
      assert.notEqual(missing.code, 0);
      assert.match(missing.stderr, /preload module .*nowhere\.mjs .*does not exist/);
      assert.equal(missing.stdout, '', 'nothing started');

      const broken = join(dir, 'broken.mjs');
      writeFileSync(broken, "import 'a-package-that-is-not-installed';\n");
      const unimportable = await run(['scheduler', '--port', '0', '--no-dashboard', '--preload', broken]);
      assert.notEqual(unimportable.code, 0);
      assert.match(unimportable.stderr, /preload module .*broken\.mjs could not be imported/);
      assert.match(unimportable.stderr, /a-package-that-is-not-installed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  void test('the scheduler prints its dashboard; /health and /metrics answer there and on a worker', async () => {
    const scheduler = tessera(['scheduler', '--port', '0', '--dashboard-port', '0']);
    let worker: ChildProcess | undefined;
    try {
      const lines = linesOf(scheduler);
      const address = await lines.next();
      assert.match(address, /^tcp:\/\/127\.0\.0\.1:\d+$/);
      const dashboard = /^dashboard: (http:\/\/127\.0\.0\.1:\d+\/)$/.exec(await lines.next())?.[1];
      assert.ok(dashboard !== undefined, 'second line: dashboard: URL');
      const health = await fetch(new URL('health', dashboard));
      assert.equal(health.status, 200);
      assert.equal(await health.text(), 'ok');

      worker = tessera(['worker', address, '--nthreads', '1', '--name', 'scraped']);
      const workerLines = linesOf(worker);
      await workerLines.next();
      const metrics = /^metrics: (http:\/\/127\.0\.0\.1:\d+\/metrics)$/.exec(await workerLines.next())?.[1];
      assert.ok(metrics !== undefined, 'second line: metrics: URL');
      const scraped = await fetch(metrics);
      assert.equal(scraped.status, 200);
      assert.match(scraped.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      assert.match(await scraped.text(), /^tessera_worker_threads\{worker="scraped"\} 1$/m);
      assert.equal((await fetch(new URL('/health', metrics))).status, 200);
      // And the scheduler counts it.
      const deadline = performance.now() + 10_000;
      let text = '';
      while (performance.now() < deadline && !/^tessera_workers 1$/m.test(text)) text = await (await fetch(new URL('metrics', dashboard))).text();
      assert.match(text, /^tessera_workers 1$/m);
    } finally {
      if (worker !== undefined) assert.equal(await stop(worker), 0);
      await stop(scheduler);
    }
  });

  void test('an exposed dashboard without a token is refused with a clear message', async () => {
    const refused = await run(['scheduler', '--port', '0', '--dashboard-host', '0.0.0.0'], { TESSERA_TOKEN: '' });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /--dashboard-host 0\.0\.0\.0 .* requires a token: pass --token/);
    assert.equal(refused.stdout, '');
  });

  void test('a worker with the wrong token exits with an error', async () => {
    const scheduler = tessera(['scheduler', '--port', '0', '--no-dashboard', '--token', 'right']);
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
