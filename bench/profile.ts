/**
 * CPU profiles of the scheduler and the workers while a cluster workload runs: a
 * `tessera scheduler` process and two `tessera worker --nthreads 1` processes, each under
 * `node --cpu-prof`, the client in this process (which is not profiled). Each process
 * writes its profile (`*.cpuprofile`, for Chrome's DevTools or `--summary`) when it is
 * stopped with SIGTERM after the runs.
 *
 *   npm run build && npm run bench -- profile [--workloads map-100000,tree-50000] [--repeat 1]
 *       [--dir /tmp/tessera-profile] [--summary 25]
 *
 * `--summary N` prints, per process, the N functions with the most self time, as JSON lines.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Client } from 'tessera';
import { inc, treeExpected, treeGraph } from './workloads.js';

const { values } = parseArgs({
  options: {
    workloads: { type: 'string', default: 'map-100000,tree-50000' },
    repeat: { type: 'string', default: '1' },
    dir: { type: 'string', default: '/tmp/tessera-profile' },
    summary: { type: 'string', default: '25' },
  },
});
const repeat = Number(values.repeat);
const dir = values.dir;
mkdirSync(dir, { recursive: true });

const cli = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const children: { role: string; child: ChildProcess }[] = [];
function start(role: string, args: string[]): Promise<string> {
  const child = spawn(process.execPath, ['--cpu-prof', '--cpu-prof-dir', join(dir, role), cli, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push({ role, child });
  const lines = createInterface({ input: child.stdout });
  return new Promise<string>((resolve) => lines.once('line', resolve));
}

const address = await start('scheduler', ['scheduler', '--port', '0', '--no-dashboard']);
try {
  await Promise.all([0, 1].map((i) => start(`worker-${i}`, ['worker', address, '--nthreads', '1', '--name', `profile-${i}`])));
  const client = await Client.connect(address);
  await client.waitForWorkers(2);
  await client.gather(client.map(inc, Array.from({ length: 200 }, (_, i) => i)));
  for (const workload of values.workloads.split(',').filter((w) => w !== '')) {
    const [kind, num] = workload.split('-') as [string, string];
    const n = Number(num);
    for (let r = 0; r < repeat; r++) {
      const t0 = performance.now();
      let tasks: number;
      if (kind === 'map') {
        const futures = client.map(inc, Array.from({ length: n }, (_, i) => i));
        const results = await client.gather(futures);
        for (const f of futures) f.release();
        if (results[n - 1] !== n) throw new Error(`${workload}: wrong results`);
        tasks = n;
      } else {
        const tree = treeGraph(n);
        const [value] = await client.get(tree.graph, [tree.root]);
        if (value !== treeExpected(n)) throw new Error(`${workload}: wrong result`);
        tasks = tree.tasks;
      }
      const seconds = (performance.now() - t0) / 1000;
      console.log(JSON.stringify({ bench: 'profile', workload, run: r + 1, tasks, seconds, usPerTask: (seconds * 1e6) / tasks }));
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  }
  await client.close();
} finally {
  // Workers first, then the scheduler: each writes its profile as it exits.
  for (const { child } of [...children].reverse()) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
  }
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}
interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const top = Number(values.summary);
if (top > 0) {
  for (const { role } of children) {
    for (const file of readdirSync(join(dir, role)).filter((f) => f.endsWith('.cpuprofile'))) {
      const profile = JSON.parse(readFileSync(join(dir, role, file), 'utf8')) as CpuProfile;
      const byId = new Map(profile.nodes.map((node) => [node.id, node]));
      const self = new Map<string, number>();
      let total = 0;
      profile.samples.forEach((id, i) => {
        const frame = byId.get(id)!.callFrame;
        const name = `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${frame.lineNumber + 1}`;
        const dt = profile.timeDeltas[i] ?? 0;
        self.set(name, (self.get(name) ?? 0) + dt);
        total += dt;
      });
      const ranked = [...self].sort((a, b) => b[1] - a[1]).slice(0, top);
      console.log(JSON.stringify({ bench: 'profile', process: role, file, totalMs: Math.round(total / 1000), top: ranked.map(([name, us]) => [name, Math.round(us / 1000)]) }));
    }
  }
}
