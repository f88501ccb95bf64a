/**
 * The chaos suite's long form (test/chaos/ is the short one): seeded random DAGs on a
 * LocalCluster of the built package while workers are SIGKILLed one at a time, all at
 * once, frozen (SIGSTOP, then thawed or killed), retired while data moves, and while the
 * adaptive loop scales. One JSON line per kind of fault, then a total:
 *
 *   runs, completed     runs, and runs whose answer equalled the sequential reference
 *   wrong, hangs, errors   the others (each must be 0); `failures` names their seeds
 *   faults              faults that landed mid-run
 *   recomputed          task completions beyond one per key (work lost and done again)
 *   recoverMs           from the last fault of a run to its answer: median and max
 *   leftRunning         worker processes still running after the cluster closed (must be 0)
 *
 *   npm run build && npm run bench -- chaos [--runs 10] [--kinds kill-one,kill-all,freeze,retire,adaptive]
 *       [--seed 1] [--tasks 40] [--array-mib 2] [--workers 2] [--max-faults 3] [--deadline 60000] [--worker-ttl 2000] [--verbose]
 *
 * `--worker-ttl` is the scheduler's workerTtlMs: short, so frozen workers are dropped within
 * a run; a worker whose event loop is held up longer (large arrays on a loaded machine) is
 * dropped too, and LocalCluster does not replace it.
 *
 * Seeds are seed, seed+1, … per kind; rerun one with `--seed N --runs 1 --kinds KIND`.
 */
import { parseArgs } from 'node:util';
import { Client, LocalCluster, ref, task } from 'tessera';
import { ChaosCluster, FAULT_KINDS, summary, type ChaosApi, type FaultKind, type RunReport } from '../test/chaos/driver.js';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '10' },
    kinds: { type: 'string', default: FAULT_KINDS.join(',') },
    seed: { type: 'string', default: '1' },
    tasks: { type: 'string', default: '40' },
    'array-mib': { type: 'string', default: '2' },
    workers: { type: 'string', default: '2' },
    'max-faults': { type: 'string', default: '3' },
    'worker-ttl': { type: 'string', default: '2000' },
    deadline: { type: 'string', default: '60000' },
    verbose: { type: 'boolean', default: false },
  },
});
const positive = (name: string, value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got '${value}'`);
  return n;
};
const runs = positive('runs', args.runs);
const firstSeed = positive('seed', args.seed);
const kinds = args.kinds.split(',').filter((k) => k !== '') as FaultKind[];
const known: readonly string[] = FAULT_KINDS;
for (const k of kinds) if (!known.includes(k)) throw new Error(`--kinds: unknown kind '${k}' (${known.join(', ')})`);
const options = {
  workers: positive('workers', args.workers),
  deadlineMs: positive('deadline', args.deadline),
  maxFaults: positive('max-faults', args['max-faults']),
  workerTtlMs: positive('worker-ttl', args['worker-ttl']),
  shape: { tasks: positive('tasks', args.tasks), maxArrayLength: positive('array-mib', args['array-mib']) * 131_072 },
  ...(args.verbose ? { log: (line: string) => console.error(line) } : {}),
};

const api: ChaosApi = {
  task: task as ChaosApi['task'],
  ref,
  startCluster: async ({ workers, scheduler, adaptive }) => {
    const cluster = await LocalCluster.start({ workers, scheduler, dashboard: false, log: false });
    if (adaptive !== undefined) cluster.adapt(adaptive);
    return cluster;
  },
  connect: (cluster) => Client.connect(cluster.address),
};

function line(kind: string, workers: number, reports: readonly RunReport[], leftRunning: readonly number[], seconds: number): Record<string, unknown> {
  const count = (o: RunReport['outcome']): number => reports.filter((r) => r.outcome === o).length;
  const recover = summary(reports.flatMap((r) => (r.recoverMs === null ? [] : [r.recoverMs])));
  return {
    bench: 'chaos',
    kind,
    workers,
    tasksPerRun: options.shape.tasks,
    arrayMiB: Number(args['array-mib']),
    runs: reports.length,
    completed: count('ok'),
    wrong: count('wrong'),
    hangs: count('hang'),
    errors: count('error'),
    faults: reports.reduce((a, r) => a + r.faults, 0),
    recomputed: reports.reduce((a, r) => a + r.recomputed, 0),
    recoverMsMedian: recover?.median ?? null,
    recoverMsMax: recover?.max ?? null,
    runMsMedian: summary(reports.map((r) => r.elapsedMs))?.median ?? null,
    leftRunning: leftRunning.length,
    seconds: Math.round(seconds * 10) / 10,
    failures: reports.filter((r) => r.outcome !== 'ok').map((r) => r.detail),
  };
}

const all: RunReport[] = [];
const allLeft: number[] = [];
const began = performance.now();
// One cluster for the fixed-size kinds, one that adapts; each closed and checked after.
for (const group of [kinds.filter((k) => k !== 'adaptive'), kinds.filter((k) => k === 'adaptive')]) {
  if (group.length === 0) continue;
  const adaptive = group[0] === 'adaptive';
  // Adapting between 1 and at least 3 workers, so the loop has room to scale.
  const workers = adaptive ? Math.max(options.workers, 3) : options.workers;
  const chaos = await ChaosCluster.start(api, { ...options, workers }, adaptive);
  const byKind = new Map<FaultKind, { reports: RunReport[]; seconds: number }>();
  for (const kind of group) {
    const started = performance.now();
    const reports: RunReport[] = [];
    for (let i = 0; i < runs; i++) reports.push(await chaos.run(kind, firstSeed + i));
    byKind.set(kind, { reports, seconds: (performance.now() - started) / 1000 });
    all.push(...reports);
  }
  const left = await chaos.close();
  allLeft.push(...left);
  // Processes left are the cluster's, not a kind's: reported on each of its lines.
  for (const [kind, { reports, seconds }] of byKind) console.log(JSON.stringify(line(kind, workers, reports, left, seconds)));
}
console.log(JSON.stringify(line('total', options.workers, all, allLeft, (performance.now() - began) / 1000)));
