/**
 * What KubernetesCluster creates, pure: the same scheduler as deploy/kubernetes (a
 * Deployment of one running `tessera scheduler --preload`, its Service, a ServiceAccount
 * with the same least-privilege Role, the token Secret), all owned by one ConfigMap that
 * also holds the scaling range. Deleting that ConfigMap deletes everything else: the
 * garbage collector follows the owner references down to the worker pods.
 */
import type { AdaptiveInput } from '../../adaptive/policy.js';
import type { OwnerReference, PodTemplate, Plain } from './manifest-types.js';
import { mergeTemplate } from './merge.js';
import type { KubernetesWorkerOptions } from './options.js';
import { LABEL_CLUSTER, LABEL_COMPONENT, LABEL_MANAGED_BY, LABEL_NAME } from './worker-pod.js';
import type { V1ConfigMap, V1Deployment, V1Role, V1RoleBinding, V1Secret, V1Service, V1ServiceAccount } from '@kubernetes/client-node';

export const SCHEDULER_PORT = 8786;
export const DASHBOARD_PORT = 8787;
export const HEALTH_PORT = 8788;
/** The scheduler's container in its pod (a template addresses it by this name). */
export const SCHEDULER_CONTAINER = 'scheduler';
/** The preload's path in the image's working directory (deploy/Dockerfile). */
export const PRELOAD_PATH = 'dist/deploy/kubernetes/preload.js';

export interface SchedulerObjectsInput {
  readonly name: string;
  readonly namespace: string;
  readonly image: string;
  readonly token: string;
  /** The worker pods' shape, passed on to the preload (the image is passed apart). */
  readonly worker: Omit<KubernetesWorkerOptions, 'image'>;
  readonly adapt: AdaptiveInput;
  readonly pendingTimeout: string | undefined;
  readonly schedulerTemplate: PodTemplate;
}

export interface SchedulerObjects {
  readonly root: Plain<V1ConfigMap>;
  /** Created after the root, each owned by it. */
  readonly owned: (owner: OwnerReference) => {
    readonly secret: Plain<V1Secret>;
    readonly serviceAccount: Plain<V1ServiceAccount>;
    readonly role: Plain<V1Role>;
    readonly roleBinding: Plain<V1RoleBinding>;
    readonly deployment: Plain<V1Deployment>;
    readonly service: Plain<V1Service>;
  };
}

export function clusterLabels(name: string, component?: string): Record<string, string> {
  return { [LABEL_NAME]: 'tessera', [LABEL_MANAGED_BY]: 'tessera', [LABEL_CLUSTER]: name, ...(component === undefined ? {} : { [LABEL_COMPONENT]: component }) };
}

/** The names of what a cluster called `name` consists of. */
export function objectNames(name: string): { readonly root: string; readonly secret: string; readonly scheduler: string } {
  return { root: name, secret: `${name}-token`, scheduler: `${name}-scheduler` };
}

export function schedulerObjects(input: SchedulerObjectsInput): SchedulerObjects {
  const names = objectNames(input.name);
  const meta = (name: string, component?: string): { name: string; namespace: string; labels: Record<string, string> } => ({ name, namespace: input.namespace, labels: clusterLabels(input.name, component) });
  const root: Plain<V1ConfigMap> = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: meta(names.root),
    data: { adapt: JSON.stringify(input.adapt) },
  };
  return {
    root,
    owned: (owner) => {
      const owned = (name: string, component?: string): { name: string; namespace: string; labels: Record<string, string>; ownerReferences: OwnerReference[] } => ({
        ...meta(name, component),
        ownerReferences: [{ ...owner, blockOwnerDeletion: false }],
      });
      const selector = { [LABEL_NAME]: 'tessera', [LABEL_CLUSTER]: input.name, [LABEL_COMPONENT]: 'scheduler' };
      const env = (name: string, value: string): { name: string; value: string } => ({ name, value });
      const field = (name: string, fieldPath: string): { name: string; valueFrom: { fieldRef: { fieldPath: string } } } => ({ name, valueFrom: { fieldRef: { fieldPath } } });
      const podTemplate = mergeTemplate(
        {
          metadata: { labels: clusterLabels(input.name, 'scheduler') },
          spec: {
            serviceAccountName: names.scheduler,
            enableServiceLinks: false,
            securityContext: { runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, seccompProfile: { type: 'RuntimeDefault' } },
            terminationGracePeriodSeconds: 30,
            containers: [
              {
                name: SCHEDULER_CONTAINER,
                image: input.image,
                args: [
                  'scheduler',
                  '--host=$(TESSERA_LISTEN_HOST)',
                  `--port=${SCHEDULER_PORT}`,
                  '--dashboard-host=$(TESSERA_LISTEN_HOST)',
                  `--dashboard-port=${DASHBOARD_PORT}`,
                  `--preload=${PRELOAD_PATH}`,
                ],
                env: [
                  field('POD_NAME', 'metadata.name'),
                  field('POD_UID', 'metadata.uid'),
                  field('POD_NAMESPACE', 'metadata.namespace'),
                  field('POD_IP', 'status.podIP'),
                  env('TESSERA_LISTEN_HOST', '0.0.0.0'),
                  { name: 'TESSERA_TOKEN', valueFrom: { secretKeyRef: { name: names.secret, key: 'token' } } },
                  env('TESSERA_KUBERNETES_CLUSTER', input.name),
                  env('TESSERA_KUBERNETES_IMAGE', input.image),
                  env('TESSERA_KUBERNETES_TOKEN_SECRET', names.secret),
                  env('TESSERA_KUBERNETES_CONTROL', names.root),
                  env('TESSERA_KUBERNETES_WORKER', JSON.stringify(input.worker)),
                  env('TESSERA_KUBERNETES_HEALTH_PORT', String(HEALTH_PORT)),
                  ...(input.pendingTimeout === undefined ? [] : [env('TESSERA_KUBERNETES_PENDING_TIMEOUT', input.pendingTimeout)]),
                ],
                ports: [
                  { name: 'comm', containerPort: SCHEDULER_PORT },
                  { name: 'dashboard', containerPort: DASHBOARD_PORT },
                  { name: 'health', containerPort: HEALTH_PORT },
                ],
                readinessProbe: { httpGet: { path: '/health', port: 'health' }, periodSeconds: 2 },
                livenessProbe: { httpGet: { path: '/health', port: 'health' }, initialDelaySeconds: 10, periodSeconds: 10, failureThreshold: 3 },
                resources: { requests: { cpu: '500m', memory: '512Mi' }, limits: { memory: '2Gi' } },
                securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
              },
            ],
          },
        },
        input.schedulerTemplate,
      );
      return {
        secret: { apiVersion: 'v1', kind: 'Secret', metadata: owned(names.secret), type: 'Opaque', stringData: { token: input.token } },
        serviceAccount: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: owned(names.scheduler) },
        // As deploy/kubernetes/role.yaml, with the cluster's own ConfigMap (why each verb: there).
        role: {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'Role',
          metadata: owned(names.scheduler),
          rules: [
            { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'create', 'delete'] },
            { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
            { apiGroups: [''], resources: ['events'], verbs: ['list'] },
            { apiGroups: [''], resources: ['configmaps'], resourceNames: [names.root], verbs: ['get', 'list', 'watch'] },
          ],
        },
        roleBinding: {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'RoleBinding',
          metadata: owned(names.scheduler),
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: names.scheduler },
          subjects: [{ kind: 'ServiceAccount', name: names.scheduler, namespace: input.namespace }],
        },
        deployment: {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: owned(names.scheduler, 'scheduler'),
          spec: {
            replicas: 1,
            // Two schedulers of one cluster would each delete the other's workers.
            strategy: { type: 'Recreate' },
            selector: { matchLabels: selector },
            template: podTemplate,
          },
        },
        service: {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: owned(names.scheduler, 'scheduler'),
          spec: {
            selector,
            ports: [
              { name: 'tcp-comm', port: SCHEDULER_PORT, targetPort: 'comm', protocol: 'TCP' },
              { name: 'http-dashboard', port: DASHBOARD_PORT, targetPort: 'dashboard', protocol: 'TCP' },
            ],
          },
        },
      };
    },
  };
}
