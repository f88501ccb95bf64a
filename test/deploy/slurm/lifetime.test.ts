// Walltime-aware workers without Slurm: the lifetime timer on its own, then a real
// `tessera worker --lifetime` that leaves on time, its results moved to the worker that
// stays — nothing computed twice.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client, InvalidArgumentError, leaveAtLifetime, Scheduler } from '../../../src/index.js';
import { parseLifetime } from '../../../src/worker/lifetime.js';
import { until } from '../../helpers/wait.js';

const main = fileURLToPath(new URL('../../../src/cli/main.ts', import.meta.url));

function tessera(args: readonly string[]): { child: ChildProcess; stderr: () => string; exited: Promise<[number | null, NodeJS.Signals | null]> } {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), main, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  return { child, stderr: () => err, exited: once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]> };
}

/** The lifetime timer does not keep a process alive (the worker's sockets do): this stands in for them. */
async function alive<T>(promise: Promise<T>): Promise<T> {
  const keep = setInterval(() => undefined, 1000);
  try {
    return await promise;
  } finally {
    clearInterval(keep);
  }
}

class FakeWorker {
  calls: { graceful?: boolean; timeout?: number }[] = [];
  #resolve: () => void = () => undefined;
  readonly closed = new Promise<void>((resolve) => (this.#resolve = resolve));
  close(options: { graceful?: boolean; timeout?: number }): Promise<void> {
    this.calls.push(options);
    this.#resolve();
    return this.closed;
  }
}

void describe('leaveAtLifetime', () => {
  void test('closes gracefully at the lifetime less a random part of the stagger, never later', async () => {
    const worker = new FakeWorker();
    const started = performance.now();
    const lines: string[] = [];
    const lifetime = leaveAtLifetime(worker, { lifetime: 400, stagger: 200, random: () => 0.5, handoverTimeout: 5000, log: (line) => lines.push(line) });
    assert.equal(lifetime.after, 300);
    await alive(worker.closed);
    assert.ok(performance.now() - started >= 290, `left after ${performance.now() - started} ms`);
    assert.deepEqual(worker.calls, [{ graceful: true, timeout: 5000 }]);
    assert.match(lines[0] ?? '', /lifetime .* reached: retiring/);
    for (let i = 0; i < 100; i++) {
      const after = leaveAtLifetime(new FakeWorker(), { lifetime: 1000, stagger: 300 });
      after.cancel();
      assert.ok(after.after >= 700 && after.after <= 1000, String(after.after));
    }
  });

  void test('cancel() keeps the worker; a worker that closed first is forgotten', async () => {
    const kept = new FakeWorker();
    leaveAtLifetime(kept, { lifetime: 50 }).cancel();
    const gone = new FakeWorker();
    leaveAtLifetime(gone, { lifetime: 50 });
    await gone.close({});
    await alive(new Promise((resolve) => setTimeout(resolve, 120)));
    assert.equal(kept.calls.length, 0);
    assert.equal(gone.calls.length, 1);
  });

  void test('bad lifetimes are refused', () => {
    assert.throws(() => leaveAtLifetime(new FakeWorker(), { lifetime: 0 }), InvalidArgumentError);
    assert.throws(() => leaveAtLifetime(new FakeWorker(), { lifetime: 100, stagger: 100 }), InvalidArgumentError);
    assert.equal(parseLifetime('1h30m', '--lifetime'), 5_400_000);
    assert.equal(parseLifetime('2.5s', '--lifetime'), 2500);
    assert.throws(() => parseLifetime('25', '--lifetime'), /--lifetime must be a duration with its unit/);
  });
});

void describe('tessera worker --lifetime', () => {
  void test('leaves on time, handing its results to the worker that stays: nothing lost, nothing computed twice', async () => {
    const scheduler = await Scheduler.start({ host: '127.0.0.1', port: 0, dashboard: false, log: () => undefined });
    const stays = tessera(['worker', scheduler.address, '--name', 'stays', '--nthreads', '1', '--no-metrics']);
    const leaves = tessera(['worker', scheduler.address, '--name', 'leaves', '--nthreads', '1', '--no-metrics', '--lifetime', '6s', '--lifetime-stagger', '1s']);
    try {
      await scheduler.waitForWorkers(2);
      const client = await Client.connect(scheduler.address);
      try {
        const futures = client.map((x: number) => x * 10, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert.deepEqual(await client.gather(futures), [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
        const held = scheduler.snapshot().workers.find((w) => w.name === 'leaves')?.inMemory ?? 0;
        assert.ok(held > 0, 'the worker that leaves holds results');
        const [code] = await leaves.exited;
        assert.equal(code, 0);
        assert.match(leaves.stderr(), /lifetime of .* reached: retiring/);
        await until(() => scheduler.workers.length === 1, 'one worker is left');
        assert.deepEqual(await client.gather(futures), [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
        assert.equal(scheduler.tasksFinished, 10, 'no task ran twice');
        assert.equal(scheduler.snapshot().workers[0]?.inMemory, 10);
      } finally {
        await client.close();
      }
    } finally {
      for (const p of [stays, leaves]) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM');
      await Promise.all([stays.exited, leaves.exited]);
      await scheduler.close();
    }
  });

  void test('flags are checked: a unit is required, and a stagger needs a lifetime', async () => {
    for (const [args, message] of [
      [['--lifetime', '25'], /--lifetime must be a duration with its unit/],
      [['--lifetime-stagger', '1m'], /--lifetime-stagger needs --lifetime/],
      [['--lifetime', '1m', '--lifetime-stagger', '2m'], /--lifetime-stagger must be shorter than --lifetime/],
    ] as const) {
      const run = tessera(['worker', 'tcp://127.0.0.1:1', ...args]);
      const [code] = await run.exited;
      assert.equal(code, 1);
      assert.match(run.stderr(), message);
    }
  });
});

