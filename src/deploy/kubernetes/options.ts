/**
 * What users say about worker pods, checked at the door (unknown names, wrong types, a
 * cluster name Kubernetes would refuse) and resolved into one filled-in spec that
 * worker-pod.ts turns into a manifest.
 */
import { InvalidArgumentError } from '../../errors.js';
import { checkOptions, optionNames } from '../../options.js';
import type { EnvVar, PodTemplate, ResourceRequirements, Toleration } from './manifest-types.js';
import { memoryBytes, parseQuantity } from './quantity.js';

/** The worker pods: what each looks like. Every field may be left out but the image. */
export interface KubernetesWorkerOptions {
  /** The Tessera image workers run (its entrypoint is `tessera`). */
  readonly image?: string;
  /** Threads per worker, and CPUs requested for it unless `resources` says otherwise. Default 1. */
  readonly threadsPerWorker?: number;
  /**
   * Memory per worker: bytes or a quantity ('4Gi'). It becomes the container's memory
   * request and limit and the worker's own memory limit (spilling and pausing follow it).
   * Default: the container's `resources.limits.memory`, else none.
   */
  readonly memoryLimit?: number | string;
  /** The container's requests and limits, as in a pod spec; they win over the defaults above. */
  readonly resources?: ResourceRequirements;
  /** Extra environment: a name → value map, or EnvVar entries (valueFrom…). */
  readonly env?: Readonly<Record<string, string>> | readonly EnvVar[];
  readonly nodeSelector?: Readonly<Record<string, string>>;
  readonly tolerations?: readonly Toleration[];
  /** Added to the pod's labels (Tessera's own labels cannot be overridden). */
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  /**
   * Any part of a pod manifest, laid over the one Tessera builds: objects merge, lists of
   * named items (containers, env, volumes…) merge by name, `null` removes. The worker's
   * container is the one named `worker`.
   */
  readonly template?: PodTemplate;
}

export const WORKER_OPTIONS = optionNames<KubernetesWorkerOptions>()([
  'image', 'threadsPerWorker', 'memoryLimit', 'resources', 'env', 'nodeSelector', 'tolerations', 'labels', 'annotations', 'template',
]);

/** The worker options, checked and filled in. */
export interface WorkerSpec {
  readonly image: string;
  readonly threadsPerWorker: number;
  /** The worker's memory limit in bytes, when one is known. */
  readonly memoryBytes: number | undefined;
  readonly resources: ResourceRequirements;
  readonly env: readonly EnvVar[];
  readonly nodeSelector: Readonly<Record<string, string>>;
  readonly tolerations: readonly Toleration[];
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly template: PodTemplate;
}

/** Kubernetes object names Tessera derives from a cluster name must stay DNS labels. */
const NAME = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
export const MAX_CLUSTER_NAME = 40;

export function checkClusterName(name: unknown, where: string): string {
  if (typeof name !== 'string' || name.length > MAX_CLUSTER_NAME || !NAME.test(name)) {
    throw new InvalidArgumentError(
      `${where}: the cluster name must be at most ${MAX_CLUSTER_NAME} lower-case letters, digits and '-', starting with a letter, got ${JSON.stringify(name)}`,
    );
  }
  return name;
}

function stringMap(value: unknown, what: string): Readonly<Record<string, string>> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InvalidArgumentError(`${what} must be an object of strings`);
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string') throw new InvalidArgumentError(`${what}.${key} must be a string, got ${typeof item}`);
  }
  return { ...(value as Record<string, string>) };
}

function objectList(value: unknown, what: string): readonly object[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((item: unknown) => typeof item === 'object' && item !== null)) throw new InvalidArgumentError(`${what} must be an array of objects`);
  return value;
}

function isObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Checks worker options (`where` names the call in messages) and fills them in. */
export function resolveWorkerSpec(options: KubernetesWorkerOptions, where: string): WorkerSpec {
  checkOptions(options, WORKER_OPTIONS, where);
  const image = options.image;
  if (typeof image !== 'string' || image.trim() === '') throw new InvalidArgumentError(`${where}: options.image must name the Tessera image workers run`);
  const threadsPerWorker = options.threadsPerWorker ?? 1;
  if (!Number.isInteger(threadsPerWorker) || threadsPerWorker < 1) {
    throw new InvalidArgumentError(`${where}: options.threadsPerWorker must be a positive integer, got ${String(threadsPerWorker)}`);
  }
  if (options.resources !== undefined && !isObject(options.resources)) {
    throw new InvalidArgumentError(`${where}: options.resources must be an object with requests and limits`);
  }
  const resources = options.resources ?? {};
  for (const kind of ['requests', 'limits'] as const) {
    for (const [name, quantity] of Object.entries(stringMap(resources[kind], `${where}: options.resources.${kind}`))) {
      parseQuantity(quantity, `${where}: options.resources.${kind}.${name}`);
    }
  }
  const limit = resources.limits?.['memory'];
  const bytes =
    options.memoryLimit !== undefined
      ? memoryBytes(options.memoryLimit, `${where}: options.memoryLimit`)
      : limit === undefined
        ? undefined
        : memoryBytes(limit, `${where}: options.resources.limits.memory`);
  let env: readonly EnvVar[];
  if (Array.isArray(options.env)) {
    env = objectList(options.env, `${where}: options.env`) as readonly EnvVar[];
    for (const entry of env) if (typeof entry.name !== 'string' || entry.name === '') throw new InvalidArgumentError(`${where}: every options.env entry needs a name`);
  } else {
    env = Object.entries(stringMap(options.env, `${where}: options.env`)).map(([name, value]) => ({ name, value }));
  }
  if (options.template !== undefined && !isObject(options.template)) {
    throw new InvalidArgumentError(`${where}: options.template must be a pod manifest (an object)`);
  }
  return {
    image: image.trim(),
    threadsPerWorker,
    memoryBytes: bytes,
    resources,
    env,
    nodeSelector: stringMap(options.nodeSelector, `${where}: options.nodeSelector`),
    tolerations: objectList(options.tolerations, `${where}: options.tolerations`),
    labels: stringMap(options.labels, `${where}: options.labels`),
    annotations: stringMap(options.annotations, `${where}: options.annotations`),
    template: options.template ?? {},
  };
}
