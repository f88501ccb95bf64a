/**
 * Scheduler memory per task while a large graph is held: a `tessera scheduler` process
 * with no workers receives tree-N (about 2N tasks), which it holds as waiting and queued
 * tasks; the growth of its resident memory, divided by the task count, is the figure.
 * Target: at most 1,000 B per task for 1,000,000 tasks. The graph arrives as the client
 * sends it — in parts of 4,096 tasks — and the figure is read once memory has settled.
 *
 *   npm run build && npm run bench -- scheduler-memory [--n 500000]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Client } from 'tessera';
import { treeGraph } from './workloads.js';

const { values } = parseArgs({ options: { n: { type: 'string', default: '500000' } } });
const n = Number(values.n);

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  return Number(kb) * 1024;
}

const cli = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const child = spawn(process.execPath, ['--expose-gc', cli, 'scheduler', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
const lines = createInterface({ input: child.stdout });
const address = await new Promise<string>((resolve) => lines.once('line', resolve));
const pid = child.pid!;
try {
  const client = await Client.connect(address);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const before = rssBytes(pid);
  const { graph, root, tasks } = treeGraph(n);
  const pending = client.get(graph, [root]).catch(() => undefined);
  // The graph is held once the scheduler has taken it in: wait for its memory to settle.
  let last = 0;
  let peak = before;
  for (let stable = 0; stable < 6; ) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const now = rssBytes(pid);
    peak = Math.max(peak, now);
    stable = Math.abs(now - last) < 2 ** 20 ? stable + 1 : 0;
    last = now;
  }
  const held = rssBytes(pid);
  console.log(
    JSON.stringify({
      bench: 'scheduler-memory',
      workload: `tree-${n}`,
      tasks,
      rssBeforeMB: before / 2 ** 20,
      rssHeldMB: held / 2 ** 20,
      peakRssMB: peak / 2 ** 20,
      bytesPerTask: (held - before) / tasks,
      peakBytesPerTask: (peak - before) / tasks,
      targetBytesPerTask: 1000,
    }),
  );
  void pending;
  await client.close();
} finally {
  child.kill('SIGKILL');
}
