/**
 * `tessera/kubernetes`: worker pods for an adaptive scheduler, and whole clusters started
 * from outside Kubernetes.
 *
 * ```ts
 * import { Client } from 'tessera';
 * import { KubernetesCluster } from 'tessera/kubernetes';
 *
 * const cluster = await KubernetesCluster.start({ namespace: 'analysis', image: 'registry.example/tessera:0.1.0' });
 * await cluster.adapt({ minimum: 0, maximum: 50 });
 * const client = await Client.connect(cluster);
 * ```
 *
 * In the scheduler's pod, this module is also a preload: its `setup(scheduler)` attaches
 * the backend (see preload.ts for the settings it reads).
 */
export { KubernetesBackend } from './backend.js';
export type { KubernetesBackendOptions, WorkerPodFailure } from './backend.js';
export { KubernetesCluster } from './cluster.js';
export type { KubernetesClusterOptions, SchedulerAccess } from './cluster.js';
export type { KubernetesWorkerOptions } from './options.js';
export type { PodTemplate, OwnerReference, Toleration, EnvVar, ResourceRequirements } from './manifest-types.js';
export type { EventSummary } from './api.js';
export { KubernetesApiError, ClusterStartError } from './errors.js';
export { setup, teardown, backendOf } from './preload.js';
