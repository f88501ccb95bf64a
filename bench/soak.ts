/**
 * The soak: a long-lived `tessera scheduler` process (of the built package) and its
 * `tessera worker` processes take computation after computation, each with a function
 * never seen before and keys under fresh prefixes (`soakITERbB-leaf-K`). Prints the
 * resident memory of the scheduler and of each worker along the way (one JSON line per
 * sample, `--samples` of them), then one line with the curve's start, middle and end and
 * the growth over the second half: a long-lived cluster's memory must level off.
 *
 *   npm run build && npm run bench -- soak [--computations 1000] [--branches 16] [--leaves 4] [--workers 2] [--samples 10] [--control] [--probe]
 *
 * `--control` runs the same load with one function and the same key prefixes every time
 * (`fresh: false` in the lines): what grows in both is not owed to new prefixes or sources.
 *
 * `--probe` runs the scheduler from the sources (test/chaos/soak-scheduler.ts, under tsx,
 * with a transition log of 2,000) and asks it, at each sample, for its memory after a full
 * collection: the lines gain `schedulerLiveMB` (heap and Buffers it keeps), the summary
 * its growth over the second half. Resident memory rises and falls with how V8 sizes its
 * heap, more on a busy machine; what the scheduler keeps is what must level off.
 *
 * test/chaos/soak.test.ts is the short form, with a loose bound.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Client, ref, task } from 'tessera';
import { soak, type RssSample, type SoakApi } from '../test/chaos/soak.js';

const { values: args } = parseArgs({
  options: {
    computations: { type: 'string', default: '1000' },
    branches: { type: 'string', default: '16' },
    leaves: { type: 'string', default: '4' },
    workers: { type: 'string', default: '2' },
    samples: { type: 'string', default: '10' },
    control: { type: 'boolean', default: false },
    probe: { type: 'boolean', default: false },
  },
});
const positive = (name: string, value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got '${value}'`);
  return n;
};
const computations = positive('computations', args.computations);
const branches = positive('branches', args.branches);
const leaves = positive('leaves', args.leaves);
const workers = positive('workers', args.workers);
const samples = positive('samples', args.samples);

const api: SoakApi = { task: task as SoakApi['task'], ref, connect: (address) => Client.connect(address) };
const cli = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const schedulerScript = fileURLToPath(new URL('../test/chaos/soak-scheduler.ts', import.meta.url));
const fresh = !args.control;
const shape = { computations, branches, leaves, workers, tasksPerComputation: branches * leaves + branches + 1, fresh };

const report = await soak(api, {
  computations,
  command: [cli],
  workers,
  branches,
  leaves,
  fresh,
  ...(args.probe ? { schedulerCommand: ['--import', 'tsx', schedulerScript], schedulerProbe: true } : {}),
  sampleAt: Array.from({ length: samples - 1 }, (_, i) => Math.max(1, Math.round(((i + 1) * computations) / samples))),
  log: (line) => {
    if (line.startsWith('{')) console.log(JSON.stringify({ bench: 'soak', ...shape, ...(JSON.parse(line) as RssSample) }));
  },
});

// Start (after the first computation), middle and end of the curve.
const first = report.samples[0]!;
const last = report.samples[report.samples.length - 1]!;
const middle = report.samples.reduce((best, s) => (Math.abs(s.computations - computations / 2) < Math.abs(best.computations - computations / 2) ? s : best), first);
const per100 = (a: number, b: number, from: number, to: number): number => Math.round(((b - a) / Math.max(1, to - from)) * 100 * 10) / 10;
console.log(
  JSON.stringify({
    bench: 'soak',
    ...shape,
    tasks: report.tasks,
    seconds: Math.round(report.seconds * 10) / 10,
    schedulerMB: { start: first.schedulerMB, middle: middle.schedulerMB, end: last.schedulerMB },
    workersMB: { start: first.workersMB, middle: middle.workersMB, end: last.workersMB },
    // MB per 100 computations over the second half: near 0 once memory has levelled off.
    ...(last.schedulerLiveMB === undefined || middle.schedulerLiveMB === undefined
      ? {}
      : { schedulerLiveMB: { start: first.schedulerLiveMB, middle: middle.schedulerLiveMB, end: last.schedulerLiveMB } }),
    secondHalfMBPer100: {
      scheduler: per100(middle.schedulerMB, last.schedulerMB, middle.computations, last.computations),
      ...(last.schedulerLiveMB === undefined || middle.schedulerLiveMB === undefined
        ? {}
        : { schedulerLive: per100(middle.schedulerLiveMB, last.schedulerLiveMB, middle.computations, last.computations) }),
      workers: middle.workersMB.map((m, i) => per100(m, last.workersMB[i]!, middle.computations, last.computations)),
    },
    leftRunning: report.leftRunning.length,
  }),
);
