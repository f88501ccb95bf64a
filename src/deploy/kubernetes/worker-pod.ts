/**
 * The manifest of one worker pod: Tessera's defaults, then the user's shorthands (image,
 * resources, env, node selector, tolerations, labels, annotations), then the user's
 * template laid over everything; Tessera's labels, name and owner always win, so the
 * backend can find, count and delete exactly its own pods.
 */
import { randomInt } from 'node:crypto';
import { HUGE_PAGES_TUNABLE } from '../../process/worker-env.js';
import type { EnvVar, OwnerReference, PodManifest } from './manifest-types.js';
import { mergeTemplate } from './merge.js';
import type { WorkerSpec } from './options.js';

export const LABEL_NAME = 'app.kubernetes.io/name';
export const LABEL_COMPONENT = 'app.kubernetes.io/component';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
/** Which Tessera cluster an object belongs to: how a restarted scheduler finds its pods. */
export const LABEL_CLUSTER = 'tessera.dev/cluster';

/** The worker container's name in the pod (a template addresses it by this name). */
export const WORKER_CONTAINER = 'worker';

/**
 * `tessera worker` hands its unique results over on SIGTERM, waiting up to this long for
 * the scheduler to move them (Worker.close({ graceful }) waits 60 s by default).
 */
export const WORKER_RETIRE_TIMEOUT_S = 60;
/**
 * The pod's grace period: the retirement's own limit, then time to say goodbye and exit,
 * so the kubelet's SIGKILL never cuts a hand-over short.
 */
export const WORKER_GRACE_SECONDS = WORKER_RETIRE_TIMEOUT_S + 15;

/** The labels every worker pod of `cluster` carries: the backend's selector. */
export function workerLabels(cluster: string): Record<string, string> {
  return { [LABEL_NAME]: 'tessera', [LABEL_COMPONENT]: 'worker', [LABEL_CLUSTER]: cluster, [LABEL_MANAGED_BY]: 'tessera' };
}

export function workerSelector(cluster: string): string {
  return Object.entries(workerLabels(cluster))
    .map(([key, value]) => `${key}=${value}`)
    .join(',');
}

// As the API server's generateName does: no vowels (no words), no look-alikes.
const ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** `<cluster>-worker-<5 random characters>`: the pod's name and the worker's. */
export function workerPodName(cluster: string): string {
  let suffix = '';
  for (let i = 0; i < 5; i++) suffix += ALPHABET.charAt(randomInt(ALPHABET.length));
  return `${cluster}-worker-${suffix}`;
}

/** How workers present the cluster's token: from a Secret (preferred), or a value. */
export type WorkerToken = { readonly secret: string; readonly key: string } | { readonly value: string } | undefined;

export interface WorkerPodContext {
  readonly name: string;
  readonly namespace: string;
  readonly cluster: string;
  /** The address workers dial: tcp://host:port. */
  readonly scheduler: string;
  readonly token: WorkerToken;
  readonly owner: OwnerReference | undefined;
}

function tokenEnv(token: WorkerToken): EnvVar[] {
  if (token === undefined) return [];
  if ('value' in token) return [{ name: 'TESSERA_TOKEN', value: token.value }];
  return [{ name: 'TESSERA_TOKEN', valueFrom: { secretKeyRef: { name: token.secret, key: token.key } } }];
}

export function workerPod(spec: WorkerSpec, context: WorkerPodContext): PodManifest {
  const cpu = String(spec.threadsPerWorker);
  const memory = spec.memoryBytes === undefined ? {} : { memory: String(spec.memoryBytes) };
  const args = [
    'worker', '$(TESSERA_SCHEDULER_ADDRESS)',
    '--name', '$(TESSERA_WORKER_NAME)',
    // Peers and clients reach the worker at its pod's address.
    '--host', '$(TESSERA_POD_IP)',
    '--nthreads', cpu,
    ...(spec.memoryBytes === undefined ? [] : ['--memory-limit', String(spec.memoryBytes)]),
  ];
  const env: EnvVar[] = [
    { name: 'TESSERA_WORKER_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: 'TESSERA_POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
    { name: 'TESSERA_SCHEDULER_ADDRESS', value: context.scheduler },
    // Large allocations in transparent huge pages (process/worker-env.ts); a template's own GLIBC_TUNABLES wins.
    { name: 'GLIBC_TUNABLES', value: HUGE_PAGES_TUNABLE },
    ...tokenEnv(context.token),
  ];
  const base: PodManifest = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: context.name, namespace: context.namespace, labels: {}, annotations: {} },
    spec: {
      // A worker that exits 0 was retired and is done; one that crashes is restarted by
      // the kubelet (and reported if it keeps crashing).
      restartPolicy: 'OnFailure',
      terminationGracePeriodSeconds: WORKER_GRACE_SECONDS,
      // Workers never call the API server.
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      containers: [
        {
          name: WORKER_CONTAINER,
          image: spec.image,
          args,
          env,
          resources: { requests: { cpu, ...memory }, limits: { ...memory } },
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
        },
      ],
    },
  };
  const shorthands = {
    metadata: { labels: spec.labels, annotations: spec.annotations },
    spec: {
      ...(Object.keys(spec.nodeSelector).length === 0 ? {} : { nodeSelector: spec.nodeSelector }),
      ...(spec.tolerations.length === 0 ? {} : { tolerations: spec.tolerations }),
      containers: [{ name: WORKER_CONTAINER, env: spec.env, resources: spec.resources }],
    },
  };
  const pod = mergeTemplate(mergeTemplate(base, shorthands), spec.template);
  // What the backend relies on is not the template's to change.
  return mergeTemplate(pod, {
    metadata: {
      name: context.name,
      namespace: context.namespace,
      labels: workerLabels(context.cluster),
      ownerReferences: context.owner === undefined ? null : [context.owner],
      generateName: null,
    },
  });
}
