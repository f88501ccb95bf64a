// The control plane the Kubernetes tests run against is Kubernetes itself: it starts, the
// API server enforces RBAC on service-account tokens, the scheduler decides what does not
// fit, the garbage collector removes dependents, and `kubectl apply -k` works. Needs
// scripts/kubernetes/ensure.sh to have built the binaries (npm test does); without them the
// tests skip outside CI and fail under CI.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApiException, CoreV1Api, RbacAuthorizationV1Api, type V1ConfigMap, type V1Namespace, type V1Pod, type V1Role, type V1RoleBinding, type V1ServiceAccount } from '@kubernetes/client-node';
import { skipWithoutKubernetes } from '../helpers/kubernetes/binaries.js';
import { type ControlPlane, startControlPlane } from '../helpers/kubernetes/control-plane.js';
import { type NodeAgent, startNodeAgent } from '../helpers/kubernetes/node-agent.js';
import { plain } from '../helpers/kubernetes/plain.js';
import { until } from '../helpers/wait.js';

const skip = skipWithoutKubernetes;

async function statusOf(call: () => Promise<unknown>): Promise<number> {
  try {
    await call();
    return 200;
  } catch (error) {
    if (error instanceof ApiException) return error.code;
    throw error;
  }
}

void describe('the Kubernetes control plane for tests', { skip }, () => {
  let cluster: ControlPlane;
  let core: CoreV1Api;

  before(async () => {
    const t0 = performance.now();
    cluster = await startControlPlane();
    console.log(`control plane ${cluster.version} ready in ${Math.round(performance.now() - t0)} ms (${JSON.stringify(cluster.startup)}) at ${cluster.server}`);
    core = cluster.adminKubeConfig().makeApiClient(CoreV1Api);
  });

  after(async () => {
    await cluster.stop();
  });

  void test('starts: the API server answers as the admin, with the release pinned', async () => {
    const version = await cluster.kubectl(['version', '-o', 'json']);
    const parsed = JSON.parse(version.stdout) as { serverVersion: { gitVersion: string } };
    assert.equal(parsed.serverVersion.gitVersion.replace(/^(v\d+\.\d+\.\d+).*/, '$1'), cluster.version);
    const namespaces = await core.listNamespace();
    assert.ok(namespaces.items.some((n) => n.metadata?.name === 'kube-system'));
  });

  void test('RBAC is enforced on a service-account token: what the Role allows works, the rest is 403', async () => {
    const namespace = 'rbac-check';
    await core.createNamespace({ body: plain<V1Namespace>({ metadata: { name: namespace } }) });
    await core.createNamespacedServiceAccount({ namespace, body: plain<V1ServiceAccount>({ metadata: { name: 'limited' } }) });
    const rbac = cluster.adminKubeConfig().makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace,
      body: plain<V1Role>({ metadata: { name: 'pods-only' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'create', 'delete'] }] }),
    });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: plain<V1RoleBinding>({
        metadata: { name: 'limited-pods-only' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pods-only' },
        subjects: [{ kind: 'ServiceAccount', name: 'limited', namespace }],
      }),
    });
    const token = await cluster.createServiceAccountToken(namespace, 'limited', { expirationSeconds: 600 });
    const limited = cluster.kubeConfigForToken(token).makeApiClient(CoreV1Api);

    assert.equal(await statusOf(() => limited.listNamespacedPod({ namespace })), 200);
    assert.equal(await statusOf(() => limited.listNamespacedSecret({ namespace })), 403);
    assert.equal(await statusOf(() => limited.listNamespacedPod({ namespace: 'default' })), 403);
    const denied = await cluster.kubectl(['auth', 'can-i', 'list', 'secrets', '-n', namespace], { token, check: false });
    assert.equal(denied.stdout.trim(), 'no');
    const kubectlDenied = await cluster.kubectl(['get', 'secrets', '-n', namespace], { token, check: false });
    assert.notEqual(kubectlDenied.code, 0);
    assert.match(kubectlDenied.stderr, /Forbidden/);
  });

  void test('kubectl apply -k of a kustomization creates its objects', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tessera-kustomize-'));
    try {
      writeFileSync(
        path.join(dir, 'kustomization.yaml'),
        ['apiVersion: kustomize.config.k8s.io/v1beta1', 'kind: Kustomization', 'namespace: kustomized', 'commonLabels:', '  app.kubernetes.io/part-of: check',
          'resources:', '- namespace.yaml', '- account.yaml', 'configMapGenerator:', '- name: settings', '  literals:', '  - answer=42', ''].join('\n'),
      );
      writeFileSync(path.join(dir, 'namespace.yaml'), 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kustomized\n');
      writeFileSync(
        path.join(dir, 'account.yaml'),
        ['apiVersion: v1', 'kind: ServiceAccount', 'metadata:', '  name: runner', '---', 'apiVersion: rbac.authorization.k8s.io/v1', 'kind: Role', 'metadata:', '  name: runner',
          'rules:', '- apiGroups: [""]', '  resources: ["pods"]', '  verbs: ["get", "list"]', ''].join('\n'),
      );
      const applied = await cluster.kubectl(['apply', '-k', dir]);
      assert.match(applied.stdout, /serviceaccount\/runner created/);
      const account = await core.readNamespacedServiceAccount({ namespace: 'kustomized', name: 'runner' });
      assert.equal(account.metadata?.labels?.['app.kubernetes.io/part-of'], 'check');
      const maps = await core.listNamespacedConfigMap({ namespace: 'kustomized', labelSelector: 'app.kubernetes.io/part-of=check' });
      const settings = maps.items.find((m) => m.metadata?.name?.startsWith('settings-'));
      assert.equal(settings?.data?.answer, '42');
      // Applying again changes nothing.
      const again = await cluster.kubectl(['apply', '-k', dir]);
      assert.match(again.stdout, /serviceaccount\/runner unchanged/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  void describe('with a node', () => {
    let agent: NodeAgent;
    before(async () => {
      agent = await startNodeAgent(cluster, { name: 'small', capacity: { cpu: '2', memory: '4Gi', pods: 10 }, images: { 'example/node:1': { entrypoint: [process.execPath] } } });
    });
    after(async () => {
      await agent.stop();
    });

    void test('a pod asking more CPU than any node has stays Pending, Unschedulable, as the scheduler decides', async () => {
      await core.createNamespacedPod({
        namespace: 'default',
        body: plain<V1Pod>({
          metadata: { name: 'too-big' },
          spec: { containers: [{ name: 'main', image: 'example/node:1', args: ['-e', 'setInterval(() => {}, 1000)'], resources: { requests: { cpu: '3' } } }] },
        }),
      });
      let pod: V1Pod | undefined;
      await until(async () => {
        pod = await core.readNamespacedPod({ namespace: 'default', name: 'too-big' });
        // While the node is still tainted not-ready (its agent just started, the machine is
        // busy), the scheduler says so first; it says why again once the node is ready.
        return pod.status?.conditions?.some((c) => c.type === 'PodScheduled' && c.status === 'False' && /Insufficient cpu/.test(c.message ?? '')) === true;
      }, 'the scheduler marks the pod unschedulable for its CPU', 60_000, 100);
      const scheduled = pod?.status?.conditions?.find((c) => c.type === 'PodScheduled');
      assert.equal(scheduled?.reason, 'Unschedulable');
      assert.match(scheduled.message ?? '', /Insufficient cpu/);
      assert.equal(pod?.status?.phase, 'Pending');
      assert.equal(pod.spec?.nodeName, undefined);
      await core.deleteNamespacedPod({ namespace: 'default', name: 'too-big' });
    });

    void test('the garbage collector deletes a pod whose owner is deleted', async () => {
      const owner = await core.createNamespacedConfigMap({ namespace: 'default', body: plain<V1ConfigMap>({ metadata: { name: 'owner' }, data: { role: 'owner' } }) });
      await core.createNamespacedPod({
        namespace: 'default',
        body: plain<V1Pod>({
          metadata: { name: 'dependent', ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid: owner.metadata!.uid! }] },
          spec: { terminationGracePeriodSeconds: 5, containers: [{ name: 'main', image: 'example/node:1', args: ['-e', 'setInterval(() => {}, 1000)'] }] },
        }),
      });
      await until(async () => (await core.readNamespacedPod({ namespace: 'default', name: 'dependent' })).status?.phase === 'Running', 'the dependent pod runs', 60_000, 100);
      await core.deleteNamespacedConfigMap({ namespace: 'default', name: 'owner' });
      await until(async () => (await statusOf(() => core.readNamespacedPod({ namespace: 'default', name: 'dependent' }))) === 404, 'the dependent pod is gone', 60_000, 100);
    });
  });
});
