// Logs that tell what happened, as structured records with levels (pino), or as lines.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { AuthenticationError, Client, LocalCluster } from '../../src/index.js';
import { until } from '../helpers/wait.js';

interface LogRecord {
  readonly level: number;
  readonly msg: string;
  readonly component?: string;
  readonly [field: string]: unknown;
}

function capture(): { logger: pino.Logger; records: LogRecord[] } {
  const records: LogRecord[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') records.push(JSON.parse(line) as LogRecord);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), records };
}

const root = fileURLToPath(new URL('../../', import.meta.url));
const cli = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

void describe('logs', () => {
  void test('workers joining and lost, a task retried, a peer refused, adaptive decisions', async () => {
    const { logger, records } = capture();
    const cluster = await LocalCluster.start({ workers: 1, token: 'secret', dashboard: false, log: logger });
    try {
      const client = await Client.connect(cluster);
      cluster.adapt({ minimum: 1, maximum: 2, interval: '200ms' });
      await until(() => records.some((r) => r.component === 'scheduler' && r.msg === 'worker joined'), 'a worker joined');

      const marker = `/tmp/tessera-log-retry-${process.pid}-${Date.now()}`;
      const flaky = (path: string): number => {
        const fs = process.getBuiltinModule('node:fs');
        if (!fs.existsSync(path)) {
          fs.writeFileSync(path, '1');
          throw new Error('first try fails');
        }
        fs.rmSync(path);
        return 1;
      };
      assert.equal(await client.submitWith({ retries: 1 }, flaky, marker), 1);
      const retried = records.find((r) => r.msg === 'task failed; trying again');
      assert.ok(retried !== undefined, JSON.stringify(records.map((r) => r.msg)));
      assert.equal(retried.level, 30);
      assert.match(String(retried['error']), /first try fails/);

      await assert.rejects(Client.connect(cluster.address, { token: 'wrong' }), AuthenticationError);
      await until(() => records.some((r) => r.msg === 'refused a peer' && r.level === 40), 'the refusal is logged as a warning');

      const [proc] = cluster.processes;
      assert.ok(proc !== undefined);
      process.kill(proc.pid, 'SIGKILL');
      await until(() => records.some((r) => r.msg === 'lost worker' && r.level === 40 && typeof r['worker'] === 'string'), 'the lost worker is logged');
      // The adaptive loop replaces it, and says so.
      await until(() => records.some((r) => r.component === 'adaptive' && /^scale up to/.test(r.msg)), 'an adaptive decision is logged');
      await until(() => records.filter((r) => r.msg === 'worker joined').length >= 2, 'the replacement joins');
      await client.close();
    } finally {
      await cluster.close();
    }
    // Closing lets the remaining workers go: that is no loss, and is not logged as one.
    const lost = records.filter((r) => r.msg === 'lost worker');
    assert.equal(lost.length, 1, JSON.stringify(lost));
    assert.ok(records.some((r) => r.msg === 'worker left' && r['reason'] === 'the scheduler closed'), 'the worker let go is logged as having left');
  });

  void test('the CLI says which preload it loaded, and a worker that cannot reach its scheduler says so in one line', async () => {
    const run = (args: readonly string[]): Promise<{ code: number | null; stderr: string }> =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', cli, ...args], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TESSERA_TOKEN: '' } });
        let stderr = '';
        child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
        child.on('close', (code) => resolve({ code, stderr }));
      });
    const dir = mkdtempSync(join(tmpdir(), 'tessera-logs-'));
    const preload = join(dir, 'quits.mjs');
    writeFileSync(preload, 'export function setup() { setTimeout(() => process.kill(process.pid, "SIGTERM"), 100); }\n');
    const scheduler = await run(['scheduler', '--port', '0', '--no-dashboard', '--preload', preload]);
    assert.equal(scheduler.code, 0, scheduler.stderr);
    assert.match(scheduler.stderr, /tessera scheduler: loaded preload module .*quits\.mjs/);
    rmSync(dir, { recursive: true, force: true });

    const unreachable = await run(['worker', 'tcp://127.0.0.1:1', '--no-metrics', '--connect-timeout', '1000']);
    assert.equal(unreachable.code, 1);
    const lines = unreachable.stderr.trim().split('\n');
    assert.equal(lines.length, 1, unreachable.stderr);
    assert.match(lines[0]!, /^tessera: cannot connect to tcp:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/);
  });
});
