// What the Kubernetes backend builds and reads, without a cluster: worker pod manifests
// (the template cannot take away what the backend relies on), what a pod's status means,
// the preload's settings, and the Role that KubernetesCluster creates matching the one in
// deploy/kubernetes.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { loadYaml } from '@kubernetes/client-node';
import { resolveWorkerSpec } from '../../../src/deploy/kubernetes/options.js';
import type { PodManifest } from '../../../src/deploy/kubernetes/manifest-types.js';
import { classifyPod } from '../../../src/deploy/kubernetes/pod-status.js';
import { settingsFromEnv, workerFacingAddress } from '../../../src/deploy/kubernetes/preload.js';
import { schedulerObjects } from '../../../src/deploy/kubernetes/scheduler-objects.js';
import { workerPod, workerPodName } from '../../../src/deploy/kubernetes/worker-pod.js';
import { InvalidArgumentError } from '../../../src/errors.js';
import { REPO } from '../../helpers/kubernetes/tessera-image.js';

/** A manifest workerPod() built: its metadata and spec are always there. */
interface Built {
  readonly metadata: NonNullable<PodManifest['metadata']>;
  readonly spec: NonNullable<PodManifest['spec']>;
}
const built = (pod: PodManifest): Built => pod as Built;

const context = { name: 'analysis-worker-bcdfg', namespace: 'analysis', cluster: 'analysis', scheduler: 'tcp://10.0.0.5:8786', token: { secret: 'tessera-token', key: 'token' }, owner: { apiVersion: 'v1', kind: 'Pod', name: 'scheduler-0', uid: 'u-1', controller: true } } as const;

void describe('worker pod manifests', () => {
  void test('one container named worker, its name from the downward API, the token from the Secret, owned by the scheduler', () => {
    const pod = built(workerPod(resolveWorkerSpec({ image: 'tessera:0.1.0', threadsPerWorker: 2, memoryLimit: '4Gi' }, 'test'), context));
    const container = pod.spec.containers[0]!;
    assert.equal(pod.metadata.name, 'analysis-worker-bcdfg');
    assert.equal(container.name, 'worker');
    assert.deepEqual(container.args!.slice(0, 4), ['worker', '$(TESSERA_SCHEDULER_ADDRESS)', '--name', '$(TESSERA_WORKER_NAME)']);
    assert.ok(container.args!.includes(String(4 * 1024 ** 3)));
    assert.deepEqual(container.resources, { requests: { cpu: '2', memory: String(4 * 1024 ** 3) }, limits: { memory: String(4 * 1024 ** 3) } });
    assert.deepEqual(container.env!.find((e) => e.name === 'TESSERA_TOKEN'), { name: 'TESSERA_TOKEN', valueFrom: { secretKeyRef: { name: 'tessera-token', key: 'token' } } });
    assert.deepEqual(container.env!.find((e) => e.name === 'GLIBC_TUNABLES'), { name: 'GLIBC_TUNABLES', value: 'glibc.malloc.hugetlb=1' });
    assert.deepEqual(pod.metadata.ownerReferences, [context.owner]);
    assert.equal(pod.spec.automountServiceAccountToken, false);
    assert.equal(pod.spec.restartPolicy, 'OnFailure');
    assert.ok((pod.spec.terminationGracePeriodSeconds ?? 0) > 60, 'the grace period covers a hand-over');
  });

  void test('shorthands and the template apply; Tessera\'s labels, name and owner cannot be overridden', () => {
    const spec = resolveWorkerSpec(
      {
        image: 'tessera:0.1.0',
        env: { EXTRA: '1', GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0' },
        nodeSelector: { pool: 'spot' },
        tolerations: [{ key: 'spot', operator: 'Exists' }],
        labels: { team: 'maths', 'tessera.dev/cluster': 'someone-else' },
        template: {
          metadata: { name: 'renamed', ownerReferences: [], labels: { 'app.kubernetes.io/component': 'other' } },
          spec: { priorityClassName: 'batch', containers: [{ name: 'worker', env: [{ name: 'EXTRA', value: '2' }] }, { name: 'sidecar', image: 'busybox' }] },
        },
      },
      'test',
    );
    const pod = built(workerPod(spec, context));
    assert.equal(pod.metadata.name, 'analysis-worker-bcdfg');
    assert.deepEqual(pod.metadata.ownerReferences, [context.owner]);
    assert.equal(pod.metadata.labels?.['tessera.dev/cluster'], 'analysis');
    assert.equal(pod.metadata.labels['app.kubernetes.io/component'], 'worker');
    assert.equal(pod.metadata.labels['team'], 'maths');
    assert.deepEqual(pod.spec.nodeSelector, { pool: 'spot' });
    assert.equal(pod.spec.priorityClassName, 'batch');
    assert.deepEqual(pod.spec.containers.map((c) => c.name), ['worker', 'sidecar']);
    assert.deepEqual(pod.spec.containers[0]!.env!.filter((e) => e.name === 'EXTRA'), [{ name: 'EXTRA', value: '2' }]);
    assert.deepEqual(pod.spec.containers[0]!.env!.filter((e) => e.name === 'GLIBC_TUNABLES'), [{ name: 'GLIBC_TUNABLES', value: 'glibc.malloc.hugetlb=0' }]);
  });

  void test('options are checked by name and type', () => {
    assert.throws(() => resolveWorkerSpec({ image: 'x', threadPerWorker: 2 } as never, 'KubernetesCluster.start()'), (e: unknown) => e instanceof InvalidArgumentError && /threadPerWorker/.test(e.message) && /threadsPerWorker/.test(e.message));
    assert.throws(() => resolveWorkerSpec({}, 'test'), /options\.image/);
    assert.throws(() => resolveWorkerSpec({ image: 'x', memoryLimit: '4 gigs' }, 'test'), /memoryLimit/);
    assert.throws(() => resolveWorkerSpec({ image: 'x', resources: { requests: { cpu: 'lots' } } }, 'test'), /cpu/);
    assert.match(workerPodName('analysis'), /^analysis-worker-[a-z0-9]{5}$/);
  });
});

void describe('what a pod\'s status means', () => {
  const at = { pendingForMs: 0, pendingTimeoutMs: 60_000 };
  const pod = (status: NonNullable<PodManifest['status']>, deleting = false): PodManifest => ({ metadata: { name: 'p', ...(deleting ? { deletionTimestamp: new Date() } : {}) }, status });

  void test('Pending counts as starting, even unschedulable, until the timeout', () => {
    const unschedulable = pod({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available' }] });
    assert.deepEqual(classifyPod(unschedulable, at), { kind: 'starting' });
    const failed = classifyPod(unschedulable, { pendingForMs: 61_000, pendingTimeoutMs: 60_000 });
    assert.equal(failed.kind, 'failed');
    assert.equal(failed.reason, 'Unschedulable');
    assert.match(failed.message, /0\/3 nodes are available/);
  });

  void test('stuck waiting reasons fail; a crash loop points at the previous run\'s log', () => {
    const crash = classifyPod(pod({ phase: 'Running', containerStatuses: [{ name: 'worker', image: 'x', imageID: '', ready: false, restartCount: 3, state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: { terminated: { exitCode: 1, reason: 'Error' } } }] }), at);
    assert.deepEqual(crash.kind === 'failed' && [crash.reason, crash.log], ['CrashLoopBackOff', 'previous']);
    assert.match(crash.kind === 'failed' ? crash.message : '', /last exit code 1 \(Error\)/);
    const pull = classifyPod(pod({ phase: 'Pending', containerStatuses: [{ name: 'worker', image: 'x', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "x"' } } }] }), at);
    assert.deepEqual(pull.kind === 'failed' && [pull.reason, pull.log], ['ImagePullBackOff', 'none']);
    // ContainerCreating and ErrImagePull's first moments clear up by themselves.
    assert.equal(classifyPod(pod({ phase: 'Pending', containerStatuses: [{ name: 'worker', image: 'x', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ContainerCreating' } } }] }), at).kind, 'starting');
  });

  void test('running, exited (retired and done), being deleted, Failed', () => {
    assert.equal(classifyPod(pod({ phase: 'Running', containerStatuses: [{ name: 'worker', image: 'x', imageID: '', ready: true, restartCount: 0, state: { running: { startedAt: new Date() } } }] }), at).kind, 'running');
    assert.equal(classifyPod(pod({ phase: 'Succeeded' }), at).kind, 'exited');
    assert.equal(classifyPod(pod({ phase: 'Running' }, true), at).kind, 'deleting');
    const evicted = classifyPod(pod({ phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: memory.' }), at);
    assert.deepEqual(evicted.kind === 'failed' && [evicted.reason, evicted.message], ['Evicted', 'The node was low on resource: memory.']);
  });
});

void describe('the preload\'s settings', () => {
  void test('a misspelt variable stops the start, naming the right one', () => {
    assert.throws(() => settingsFromEnv({ TESSERA_KUBERNETES_CLUSTR: 'x' }), /unknown setting TESSERA_KUBERNETES_CLUSTR \(did you mean TESSERA_KUBERNETES_CLUSTER\?\)/);
    assert.throws(() => settingsFromEnv({ TESSERA_KUBERNETES_WORKER: '{ "threads": 2 }' }), /threads/);
    assert.throws(() => settingsFromEnv({ TESSERA_KUBERNETES_ADAPT: '{ "maximum": -1 }' }), InvalidArgumentError);
    const settings = settingsFromEnv({ TESSERA_KUBERNETES_CLUSTER: 'analysis', TESSERA_KUBERNETES_WORKER: '{ "memoryLimit": "2Gi" }', TESSERA_KUBERNETES_ADAPT: '{ "maximum": 10 }' });
    assert.deepEqual([settings.cluster, settings.worker, settings.adapt, settings.healthPort], ['analysis', { memoryLimit: '2Gi' }, { maximum: 10 }, 8788]);
  });

  void test('workers dial the pod\'s IP when the scheduler listens on every interface', () => {
    assert.equal(workerFacingAddress('tcp://0.0.0.0:8786', '10.1.2.3'), 'tcp://10.1.2.3:8786');
    assert.equal(workerFacingAddress('tcp://[::]:8786', 'fd00::5'), 'tcp://[fd00::5]:8786');
    assert.equal(workerFacingAddress('tcp://10.9.9.9:8786', '10.1.2.3'), 'tcp://10.9.9.9:8786');
    assert.throws(() => workerFacingAddress('tcp://0.0.0.0:8786', undefined), /POD_IP/);
  });
});

void describe('the scheduler\'s Role', () => {
  void test('KubernetesCluster grants what deploy/kubernetes/role.yaml grants, for its own ConfigMap', () => {
    const file = loadYaml<{ rules: { apiGroups: string[]; resources: string[]; resourceNames?: string[]; verbs: string[] }[] }>(readFileSync(path.join(REPO, 'deploy/kubernetes/role.yaml'), 'utf8'));
    const objects = schedulerObjects({ name: 'nb', namespace: 'analysis', image: 'x', token: 't', worker: {}, adapt: {}, pendingTimeout: undefined, schedulerTemplate: {} });
    const role = objects.owned({ apiVersion: 'v1', kind: 'ConfigMap', name: 'nb', uid: 'u' }).role;
    const normalise = (rules: readonly { apiGroups?: string[]; resources?: string[]; resourceNames?: string[]; verbs: string[] }[]): string[] =>
      rules.map((r) => `${(r.apiGroups ?? []).join()}|${(r.resources ?? []).join()}|${r.resourceNames === undefined ? '' : 'named'}|${[...r.verbs].sort().join()}`).sort();
    assert.deepEqual(normalise(role.rules ?? []), normalise(file.rules));
    assert.deepEqual(role.rules?.find((r) => r.resources?.includes('configmaps'))?.resourceNames, ['nb']);
  });
});
