// A `tessera worker --no-listen` process: it accepts no connections, so its results go to
// the cluster's result store and readers reach it through the scheduler.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const tsx = import.meta.resolve('tsx');

/** Starts one; resolves once it registered (it prints its relay:// address). */
export async function hiddenWorker(address: string, name: string, nthreads = 1): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', tsx, main, 'worker', address, '--nthreads', String(nthreads), '--name', name, '--no-listen', '--no-metrics'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const [line] = (await once(lines, 'line')) as [string];
  lines.close();
  child.stdout.resume();
  assert.match(line, /^relay:\/\//);
  return child;
}
