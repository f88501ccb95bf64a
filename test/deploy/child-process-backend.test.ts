// The backend documented in docs/adaptive.md (examples/child-process-backend.ts), for real:
// worker processes appear when work arrives on an empty cluster, results are right, the
// workers go after the work, and none is left behind. Then the same through
// `tessera scheduler --preload examples/adaptive-setup.ts`.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ChildProcessBackend } from '../../examples/child-process-backend.js';
import { Client, Scheduler } from '../../src/index.js';
import { isAlive, until } from '../helpers/wait.js';

const square = async (x: number): Promise<number> => {
  await new Promise((resolve) => setTimeout(resolve, 200));
  return x * x;
};

void describe('ChildProcessBackend (the documented example)', () => {
  void test('scales an empty cluster up for the work and back down after it, leaving no process', async () => {
    const scheduler = await Scheduler.start({ host: '127.0.0.1', port: 0, dashboard: false, log: () => undefined });
    const backend = new ChildProcessBackend({ address: scheduler.address, namePrefix: 'cp' });
    const pids = new Set<number>();
    try {
      scheduler.adapt(backend, { minimum: 0, maximum: 2, targetDuration: '1s', interval: 200, waitCount: 2 });
      const client = await Client.connect(scheduler.address);
      try {
        assert.equal(backend.requested, 0);
        const futures = client.map(square, [1, 2, 3, 4, 5, 6, 7, 8]);
        await until(() => {
          for (const p of backend.processes) pids.add(p.pid);
          return backend.running > 0;
        }, 'a worker runs');
        assert.deepEqual(await client.gather(futures), [1, 4, 9, 16, 25, 36, 49, 64]);
        assert.ok(scheduler.workers.length >= 1);
        for (const name of scheduler.workerNames().values()) assert.match(name, /^cp-\d+$/);

        // Released results leave nothing to keep: back to minimum 0, every process gone.
        for (const f of futures) f.release();
        await until(() => backend.requested === 0 && backend.closing === 0 && scheduler.workers.length === 0, 'the workers are gone');
        const history = await client.scalingHistory();
        assert.ok(history !== null);
        assert.ok(history.decisions.some((d) => d.op === 'scale-up'));
        assert.ok(history.decisions.some((d) => d.op === 'scale-down'));
        for (const s of history.samples) assert.ok(s.requested <= 2, `requested ${s.requested}`);
      } finally {
        await client.close();
      }
    } finally {
      scheduler.stopAdapting();
      await backend.close();
      await scheduler.close();
    }
    assert.ok(pids.size >= 1);
    for (const pid of pids) assert.ok(!isAlive(pid), `worker process ${pid} is still alive`);
  });

  void test('close() stops every child at once', async () => {
    const scheduler = await Scheduler.start({ host: '127.0.0.1', port: 0, dashboard: false, log: () => undefined });
    const backend = new ChildProcessBackend({ address: scheduler.address });
    try {
      backend.scaleUp(2);
      assert.equal(backend.requested, 2);
      await until(() => backend.running === 2, 'two workers run');
      const pids = backend.processes.map((p) => p.pid);
      await backend.close();
      assert.equal(backend.requested, 0);
      for (const pid of pids) assert.ok(!isAlive(pid), `worker process ${pid} is still alive`);
      assert.throws(() => backend.scaleUp(1));
    } finally {
      await backend.close();
      await scheduler.close();
    }
  });

  void test('tessera scheduler --preload examples/adaptive-setup.ts', async () => {
    const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
    const setup = fileURLToPath(new URL('../../examples/adaptive-setup.ts', import.meta.url));
    const child: ChildProcess = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), main, 'scheduler', '--port', '0', '--preload', setup], {
      env: { ...process.env, TESSERA_MAX_WORKERS: '2' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    const workerPids = new Set<number>();
    try {
      const lines = createInterface({ input: child.stdout! });
      const [address] = (await once(lines, 'line')) as [string];
      lines.close();
      const client = await Client.connect(address.trim());
      try {
        const futures = client.map(square, [1, 2, 3, 4]);
        assert.deepEqual(await client.gather(futures), [1, 4, 9, 16]);
        const history = await client.scalingHistory();
        assert.ok(history !== null, 'the preload made the scheduler adaptive');
        assert.ok(history.decisions.some((d) => d.op === 'scale-up'));
        for (const pid of childrenOf(child.pid!)) workerPids.add(pid);
        assert.ok(workerPids.size >= 1, 'the scheduler started worker processes');
      } finally {
        await client.close();
      }
      child.kill('SIGTERM');
      const [code] = await exited;
      assert.equal(code, 0);
      await until(() => [...workerPids].every((pid) => !isAlive(pid)), 'the worker processes are gone', 20_000);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      for (const pid of workerPids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    }
  });
});

/** Processes whose parent is `pid` (procps `ps`). */
function childrenOf(pid: number): number[] {
  let out: string;
  try {
    out = execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' });
  } catch {
    return []; // ps exits 1 when there are none
  }
  return out.split('\n').map((l) => Number(l.trim())).filter((n) => n > 0);
}
