// A scheduler reachable from other machines runs code for whoever reaches it: bound
// anywhere but loopback, it wants a token, unless told loudly to do without.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError, Scheduler } from '../../src/index.js';

const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const tsx = import.meta.resolve('tsx');

function tessera(args: readonly string[], env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ['--import', tsx, main, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

void describe('a scheduler bound beyond loopback', () => {
  void test('tessera scheduler --host 0.0.0.0 without a token refuses to start, naming the way out', async () => {
    const child = tessera(['scheduler', '--host', '0.0.0.0', '--port', '0', '--no-dashboard'], { TESSERA_TOKEN: '' });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const [code] = (await once(child, 'exit')) as [number | null];
    clearTimeout(timer);
    assert.equal(code, 1, 'it must not start');
    assert.equal(stdout, '', 'no address is printed');
    assert.match(stderr, /--host 0\.0\.0\.0 .*requires a token: pass --token/);
    assert.match(stderr, /--insecure-no-token/);
  });

  void test('--insecure-no-token starts it, with a warning on stderr', async () => {
    const child = tessera(['scheduler', '--host', '0.0.0.0', '--port', '0', '--no-dashboard', '--insecure-no-token'], { TESSERA_TOKEN: '' });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      const lines = createInterface({ input: child.stdout! });
      const [address] = (await once(lines, 'line')) as [string];
      lines.close();
      assert.match(address, /^tcp:\/\//);
      assert.match(stderr, /WARNING: listening on 0\.0\.0\.0 WITHOUT a token/);
    } finally {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
  });

  void test('Scheduler.start on 0.0.0.0 wants a token or insecureNoToken; loopback does not', async () => {
    await assert.rejects(
      Scheduler.start({ host: '0.0.0.0', port: 0, dashboard: false, log: false }),
      (e: unknown) => e instanceof InvalidArgumentError && e.message.includes('options.token') && e.message.includes('insecureNoToken'),
    );
    await assert.rejects(Scheduler.start({ host: '0.0.0.0', port: 0, dashboard: false, log: false, insecureNoToken: 'yes' as unknown as boolean }), InvalidArgumentError);
    const warnings: string[] = [];
    const open = await Scheduler.start({ host: '0.0.0.0', port: 0, dashboard: false, insecureNoToken: true, log: (line) => warnings.push(line) });
    await open.close();
    assert.ok(warnings.some((w) => /WITHOUT a token/.test(w)), 'the opt-out is logged loudly');
    const tokened = await Scheduler.start({ host: '0.0.0.0', port: 0, dashboard: false, token: 's', log: false });
    await tokened.close();
    const local = await Scheduler.start({ host: '127.0.0.1', port: 0, dashboard: false, log: false });
    await local.close();
  });
});
