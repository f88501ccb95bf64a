/** The chaos driver's view of the package, from its sources (the benchmark passes the built package). */
import { Client, LocalCluster, ref, task } from '../../src/index.js';
import type { ChaosApi } from './driver.js';

export const sourceApi: ChaosApi = {
  task: task as ChaosApi['task'],
  ref,
  startCluster: async ({ workers, scheduler, adaptive }) => {
    const cluster = await LocalCluster.start({ workers, scheduler, dashboard: false, log: false });
    if (adaptive !== undefined) cluster.adapt(adaptive);
    return cluster;
  },
  connect: (cluster) => Client.connect(cluster.address),
};
