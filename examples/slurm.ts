/**
 * An adaptive cluster of Slurm jobs, from a login node: the scheduler runs here, each worker
 * is a batch job, submitted when the work arrives and cancelled when it is done.
 *
 *   npm run build
 *   npx tsx examples/slurm.ts --partition compute --cores 2 --memory 2GB --walltime 00:20:00 --maximum 8
 *
 * Prints the job script first (what `sbatch` receives), then the work's progress and the
 * jobs as squeue shows them. Options: --partition, --account, --qos, --cores, --memory,
 * --walltime, --maximum, --tasks (default 60), --sleep (seconds per task, default 1),
 * --host (interface the scheduler listens on, default 0.0.0.0), --log-directory.
 * SLURM_CONF chooses the cluster, as for any Slurm command.
 */
import { parseArgs } from 'node:util';
import { Client, SlurmCluster } from 'tessera';

const { values: args } = parseArgs({
  options: {
    partition: { type: 'string' },
    account: { type: 'string' },
    qos: { type: 'string' },
    cores: { type: 'string', default: '1' },
    memory: { type: 'string', default: '1GB' },
    walltime: { type: 'string', default: '00:20:00' },
    maximum: { type: 'string', default: '8' },
    tasks: { type: 'string', default: '60' },
    sleep: { type: 'string', default: '1' },
    host: { type: 'string', default: '0.0.0.0' },
    'log-directory': { type: 'string' },
  },
});

/** Simple maths that takes a while (the thread is held, as real work would hold it). */
const slowMaths = ({ i, ms }: { i: number; ms: number }): number => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  return (i * i) % 97;
};

const cluster = await SlurmCluster.start({
  host: args.host,
  cores: Number(args.cores),
  memory: args.memory,
  walltime: args.walltime,
  ...(args.partition === undefined ? {} : { partition: args.partition }),
  ...(args.account === undefined ? {} : { account: args.account }),
  ...(args.qos === undefined ? {} : { qos: args.qos }),
  ...(args['log-directory'] === undefined ? {} : { logDirectory: args['log-directory'] }),
});
try {
  console.log(cluster.jobScript());
  console.log(`scheduler ${cluster.address}${cluster.dashboardLink === undefined ? '' : `, dashboard ${cluster.dashboardLink}`}`);
  cluster.adapt({ minimum: 0, maximum: Number(args.maximum), targetDuration: '10s' });

  const client = await Client.connect(cluster);
  try {
    const t0 = performance.now();
    const seconds = (): string => ((performance.now() - t0) / 1000).toFixed(1);
    const watch = setInterval(() => {
      const jobs = cluster.jobs();
      const by = (state: string): number => jobs.filter((j) => j.state === state).length;
      console.log(`${seconds()} s  jobs: ${by('PENDING')} pending, ${by('RUNNING')} running; workers ${cluster.scheduler.workers.length}`);
    }, 2000);
    const futures = client.map(slowMaths, Array.from({ length: Number(args.tasks) }, (_, i) => ({ i, ms: Number(args.sleep) * 1000 })));
    const results = await client.gather(futures);
    clearInterval(watch);
    console.log(`${results.length} results in ${seconds()} s; sum ${results.reduce((a, b) => a + b, 0)}`);
    for (const failure of cluster.failures) console.log(`job ${failure.id} ended ${failure.state}: ${failure.reason}`);
  } finally {
    await client.close();
  }
} finally {
  // Every job cancelled; nothing left in squeue.
  await cluster.close();
}
