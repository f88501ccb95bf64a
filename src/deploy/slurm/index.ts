/**
 * `tessera/slurm`: workers as Slurm batch jobs — the cluster class, the backend, and the
 * scheduler preload (`tessera scheduler --backend slurm`, or `--preload tessera/slurm`).
 *
 * ```ts
 * import { SlurmCluster } from 'tessera/slurm';
 *
 * const cluster = await SlurmCluster.start({ partition: 'compute', cores: 4, memory: '8GB', walltime: '1h' });
 * cluster.adapt({ minimum: 0, maximum: 50 });
 * ```
 */
export { SlurmCluster } from './cluster.js';
export type { SlurmClusterOptions } from './cluster.js';
export { SlurmBackend } from './backend.js';
export type { SchedulerView, SlurmBackendOptions, SlurmJob, SlurmJobFailure } from './backend.js';
export type { SlurmJobOptions } from './options.js';
export { SlurmCommandError } from './errors.js';
export { options, setup, teardown } from './preload.js';
export type { PreloadOption, SlurmPreloadValues } from './preload.js';
