/**
 * sleep-burst in simulation: the real scheduler core and adaptive loop, workers with a
 * start-up delay, tasks of a fixed duration, in virtual time. Compares against a fixed
 * cluster of `maximum` workers in the same run.
 *
 *   npm run bench -- adaptive-sim [--tasks 100000] [--maximum 1000] [--startup 1000]
 */
import { parseArgs } from 'node:util';
import { SimulatedCluster, type SimulatedTask } from '../src/deploy/simulated/cluster.js';

export interface SimulatedBurst {
  readonly tasks: number;
  readonly maximum: number;
  readonly startupDelayMs: number;
  readonly sleepMs: number;
}

export async function simulateBurst(o: SimulatedBurst): Promise<Record<string, unknown>> {
  const tasks: SimulatedTask[] = Array.from({ length: o.tasks }, (_, i) => ({ key: `sleep-${i}`, duration: o.sleepMs }));
  const wall = performance.now();
  const sim = new SimulatedCluster({ startupDelay: o.startupDelayMs, adapt: { minimum: 0, maximum: o.maximum, targetDuration: '5s', interval: '1s', waitCount: 3 } });
  sim.submit(tasks);
  const r = await sim.run();
  const wallSeconds = (performance.now() - wall) / 1000;
  const fixed = new SimulatedCluster({ workers: o.maximum });
  fixed.submit(tasks);
  const f = await fixed.run();
  return {
    bench: 'adaptive',
    system: 'tessera-simulated',
    workload: `sleep-burst-${o.tasks}`,
    maximum: o.maximum,
    startupDelayS: o.startupDelayMs / 1000,
    timeToFirstWorkerS: r.timeToFirstWorker / 1000,
    timeToFirstResultS: r.timeToFirstResult / 1000,
    totalS: r.totalTime / 1000,
    fixedClusterTotalS: f.totalTime / 1000,
    ratioToFixed: r.totalTime / f.totalTime,
    peakWorkers: r.peakWorkers,
    workerSeconds: r.workerSeconds,
    backToMinimumS: r.backToMinimum / 1000,
    floor: r.floor,
    resultsLost: r.resultsLost,
    decisions: r.decisions,
    simulatorWallS: wallSeconds,
  };
}

if (import.meta.url === `file://${process.argv[1]}` || (process.argv[1]?.endsWith('run.ts') && process.env['TESSERA_BENCH'] === 'adaptive-sim')) {
  const { values } = parseArgs({ options: { tasks: { type: 'string', default: '100000' }, maximum: { type: 'string', default: '1000' }, startup: { type: 'string', default: '1000' } } });
  for (const [tasks, maximum] of [[200, 20], [Number(values.tasks), Number(values.maximum)]] as const) {
    console.log(JSON.stringify(await simulateBurst({ tasks, maximum, startupDelayMs: Number(values.startup), sleepMs: 1000 })));
  }
}
