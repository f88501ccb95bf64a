// examples/slurm-start.ts: the first example of docs/slurm.md, whole. On a cluster whose
// Slurm has a partition `compute`, an account `proj` and a QoS `short` (SLURM_CONF chooses
// the cluster, as for any Slurm command):
//
//   npm run build && npx tsx examples/slurm-start.ts
import { Client, SlurmCluster } from 'tessera';   // or from 'tessera/slurm'

/** A stand-in for the real work: each input held for a moment, then its square root. */
const simulate = (x: number): number => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
  return Math.sqrt(x);
};
const inputs = Array.from({ length: 16 }, (_, i) => i * i);

const cluster = await SlurmCluster.start({
  partition: 'compute', account: 'proj', cores: 4, memory: '8GB', walltime: '00:30:00',
  jobExtra: ['--qos=short'], workers: 0,
});
cluster.adapt({ minimum: 0, maximum: 100 });
console.log(cluster.jobScript());          // the exact script every job runs

const client = await Client.connect(cluster);
const results = await client.gather(client.map(simulate, inputs));
console.log(`results: ${results.join(' ')}`);
await client.close();
await cluster.close();                     // every job cancelled, none left in squeue
