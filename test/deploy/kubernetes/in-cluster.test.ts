// The scheduler in a pod, on a real control plane: deploy/kubernetes applied with
// `kubectl apply -k`, and KubernetesCluster started from this process. The scheduler runs
// `tessera scheduler --preload …` in the Tessera image (the node agent runs it from this
// checkout), talks to the API server with its ServiceAccount's token, and creates and
// deletes its worker pods itself. Needs scripts/kubernetes/ensure.sh's binaries: without
// them the tests skip outside CI and fail under CI.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { Client } from '../../../src/index.js';
import { ClusterStartError, KubernetesCluster } from '../../../src/deploy/kubernetes/index.js';
import { skipWithoutKubernetes } from '../../helpers/kubernetes/binaries.js';
import { type ControlPlane, startControlPlane } from '../../helpers/kubernetes/control-plane.js';
import { type NodeAgent, startNodeAgent } from '../../helpers/kubernetes/node-agent.js';
import { temporaryDirectory } from '../../helpers/kubernetes/processes.js';
import { REPO, TESSERA_IMAGE, tesseraImages } from '../../helpers/kubernetes/tessera-image.js';
import { dialledDuring } from '../../helpers/dialled.js';
import { until } from '../../helpers/wait.js';

const skip = skipWithoutKubernetes;
const run = promisify(execFile);

const square = async (x: number): Promise<number> => {
  await new Promise((resolve) => setTimeout(resolve, 200));
  return x * x;
};

/**
 * Every pod of the node agent shares this machine's network: a scheduler listening on
 * 0.0.0.0:8786 would take the port from everything else here. In tests the scheduler
 * listens on its pod's IP, as it may anywhere (port-forwards then need 0.0.0.0).
 */
const LISTEN_ON_POD_IP = { name: 'TESSERA_LISTEN_HOST', value: '$(POD_IP)' };

void describe('the scheduler in a pod', { skip }, () => {
  let cluster: ControlPlane;
  let agent: NodeAgent;
  let core: CoreV1Api;

  const pods = async (namespace: string, selector: string): Promise<V1Pod[]> => (await core.listNamespacedPod({ namespace, labelSelector: selector })).items;
  const names = (list: readonly V1Pod[]): string[] => list.map((p) => p.metadata?.name ?? '').sort();
  const ready = (pod: V1Pod): boolean => pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;

  /** Each pod's phase, conditions and log: what a failing test shows. */
  const diagnose = async (namespace: string): Promise<string> => {
    const lines: string[] = [];
    for (const pod of (await core.listNamespacedPod({ namespace })).items) {
      const name = pod.metadata?.name ?? '';
      lines.push(`pod ${name}: ${pod.status?.phase ?? '?'} ${JSON.stringify(pod.status?.conditions?.map((c) => [c.type, c.status, c.reason]))} ${JSON.stringify(pod.status?.containerStatuses?.map((c) => c.state))}`);
      for (const container of pod.spec?.containers ?? []) lines.push(...(agent.containerLog(namespace, name, container.name) ?? '(no log)').split('\n').slice(-30).map((l) => `  ${l}`));
    }
    return lines.join('\n');
  };

  before(async () => {
    cluster = await startControlPlane();
    agent = await startNodeAgent(cluster, { images: tesseraImages(), capacity: { cpu: '32', memory: '64Gi', pods: 60 } });
    core = cluster.adminKubeConfig().makeApiClient(CoreV1Api);
  });

  after(async () => {
    await agent.stop();
    await cluster.stop();
  });

  void test('kubectl apply -k deploy/kubernetes: work scales worker pods from zero; a killed scheduler\'s pods are garbage-collected', async () => {
    const namespace = 'analysis';
    await cluster.kubectl(['create', 'namespace', namespace]);
    // An overlay, as users write one: the namespace, a faster scaling range, and the listen host above.
    const overlay = temporaryDirectory('tessera-overlay-');
    writeFileSync(
      path.join(overlay, 'kustomization.yaml'),
      [
        'apiVersion: kustomize.config.k8s.io/v1beta1',
        'kind: Kustomization',
        `namespace: ${namespace}`,
        'resources:',
        // Kustomize takes bases by relative path only.
        `  - ${path.relative(overlay, path.join(REPO, 'deploy/kubernetes'))}`,
        'patches:',
        '  - target: { kind: ConfigMap, name: tessera-scaling }',
        '    patch: |-',
        '      - op: replace',
        '        path: /data/adapt',
        '        value: \'{ "minimum": 0, "maximum": 3, "targetDuration": "1s", "interval": 250, "waitCount": 4 }\'',
        // In place: $(POD_IP) expands only in a variable after POD_IP's.
        '  - target: { kind: Deployment, name: tessera-scheduler }',
        '    patch: |-',
        '      - { op: test, path: /spec/template/spec/containers/0/env/4/name, value: TESSERA_LISTEN_HOST }',
        `      - { op: replace, path: /spec/template/spec/containers/0/env/4/value, value: "${LISTEN_ON_POD_IP.value}" }`,
        '',
      ].join('\n'),
    );
    const rendered = await cluster.kubectl(['kustomize', overlay]);
    assert.match(rendered.stdout, /name: TESSERA_LISTEN_HOST\n\s+value: \$\(POD_IP\)/);
    const applied = await cluster.kubectl(['apply', '-k', overlay]);
    for (const kind of ['serviceaccount/tessera-scheduler', 'role.rbac.authorization.k8s.io/tessera-scheduler', 'rolebinding.rbac.authorization.k8s.io/tessera-scheduler', 'secret/tessera-token', 'configmap/tessera-scaling', 'service/tessera-scheduler', 'deployment.apps/tessera-scheduler', 'ingress.networking.k8s.io/tessera-dashboard']) {
      assert.match(applied.stdout, new RegExp(`${kind.replace(/\./g, '\\.')} created`));
    }

    const t0 = performance.now();
    let scheduler: V1Pod | undefined;
    await until(async () => {
      scheduler = (await pods(namespace, 'app.kubernetes.io/component=scheduler')).find(ready);
      return scheduler !== undefined;
    }, 'the scheduler pod is ready (its /health probe passes)', 120_000, 100).catch(async (error: unknown) => {
      throw new Error(`${String(error)}\n${await diagnose(namespace)}`);
    });
    console.log(`scheduler pod ready ${Math.round(performance.now() - t0)} ms after kubectl apply`);
    const secret = await core.readNamespacedSecret({ namespace, name: 'tessera-token' });
    const token = Buffer.from(secret.data?.['token'] ?? '', 'base64').toString('utf8');
    assert.ok(token.length > 20, 'the token controller filled the Secret in');
    const service = await core.readNamespacedService({ namespace, name: 'tessera-scheduler' });

    // A notebook in the cluster: the Service's address and the token.
    const client = await Client.connect(`tcp://${service.spec?.clusterIP ?? ''}:8786`, { token });
    try {
      assert.equal((await pods(namespace, 'app.kubernetes.io/component=worker')).length, 0);
      const futures = client.map(square, Array.from({ length: 12 }, (_, i) => i));
      assert.deepEqual(await client.gather(futures), Array.from({ length: 12 }, (_, i) => i * i));
      const workers = await pods(namespace, 'app.kubernetes.io/component=worker');
      assert.ok(workers.length >= 1, 'worker pods were created for the work');
      for (const pod of workers) {
        assert.match(pod.metadata?.name ?? '', /^tessera-worker-[a-z0-9]{5}$/);
        // Owned by the scheduler's pod, so that the garbage collector removes them with it.
        assert.deepEqual(pod.metadata?.ownerReferences?.map((o) => [o.kind, o.name, o.uid]), [['Pod', scheduler!.metadata!.name, scheduler!.metadata!.uid]]);
        // The token comes from the Secret; it never appears in the pod spec.
        const tokenVar = pod.spec?.containers[0]?.env?.find((e) => e.name === 'TESSERA_TOKEN');
        assert.deepEqual([tokenVar?.value, tokenVar?.valueFrom?.secretKeyRef?.name, tokenVar?.valueFrom?.secretKeyRef?.key], [undefined, 'tessera-token', 'token']);
      }
      for (const f of futures) f.release();
      await until(async () => (await pods(namespace, 'app.kubernetes.io/component=worker')).length === 0, 'the worker pods are deleted after the work', 120_000, 200);
      const history = await client.scalingHistory();
      assert.ok(history?.decisions.some((d) => d.op === 'scale-up'));
      assert.ok(history?.decisions.some((d) => d.op === 'scale-down'));

      // Hold two workers (the ConfigMap is followed live), then kill the scheduler's pod outright.
      await cluster.kubectl(['patch', 'configmap', 'tessera-scaling', '-n', namespace, '--type=merge', '-p', '{"data":{"adapt":"{\\"minimum\\":2,\\"maximum\\":2}"}}']);
      await until(async () => (await pods(namespace, 'app.kubernetes.io/component=worker')).filter((p) => p.status?.phase === 'Running').length === 2, 'two worker pods run', 120_000, 200);
    } finally {
      await client.close();
    }
    const orphans = names(await pods(namespace, 'app.kubernetes.io/component=worker'));
    await cluster.kubectl(['delete', 'pod', scheduler!.metadata!.name!, '-n', namespace, '--grace-period=0', '--force']);
    await until(async () => {
      const left = names(await pods(namespace, 'app.kubernetes.io/component=worker'));
      return orphans.every((name) => !left.includes(name));
    }, 'the garbage collector deletes the dead scheduler\'s worker pods', 120_000, 200);
    // The Deployment's new scheduler holds two workers of its own.
    await until(async () => {
      const workers = await pods(namespace, 'app.kubernetes.io/component=worker');
      return workers.filter((p) => p.status?.phase === 'Running').length === 2;
    }, 'the new scheduler has its two workers', 120_000, 200);

    // The token Secret may go first, with its ServiceAccount (the token controller deletes it).
    await cluster.kubectl(['delete', '-k', overlay, '--wait=true', '--ignore-not-found']);
    await until(async () => (await core.listNamespacedPod({ namespace })).items.length === 0, 'nothing is left in the namespace', 120_000, 200);
  });

  void test('KubernetesCluster: start, adapt, compute, close leaves nothing in the namespace', async () => {
    const namespace = 'notebook';
    await cluster.kubectl(['create', 'namespace', namespace]);
    const lines: string[] = [];
    const t0 = performance.now();
    const tessera = await KubernetesCluster.start({
      namespace,
      image: TESSERA_IMAGE,
      workers: 0,
      kubeconfig: cluster.adminKubeConfig(),
      schedulerTemplate: { spec: { containers: [{ name: 'scheduler', env: [LISTEN_ON_POD_IP] }] } },
      log: (line) => lines.push(line),
    });
    console.log(`KubernetesCluster ready in ${Math.round(performance.now() - t0)} ms (${tessera.access})`);
    try {
      assert.equal(tessera.access, 'service');
      assert.match(tessera.name, /^tessera-[a-z0-9]{5}$/);
      await tessera.adapt({ minimum: 0, maximum: 4, targetDuration: '1s', interval: 250, waitCount: 4 });
      const client = await Client.connect(tessera);
      try {
        const futures = client.map(square, Array.from({ length: 16 }, (_, i) => i));
        assert.deepEqual(await client.gather(futures), Array.from({ length: 16 }, (_, i) => i * i));
        const workers = await tessera.workerPods();
        assert.ok(workers.length >= 1);
        for (const w of workers) assert.ok(w.name.startsWith(`${tessera.name}-worker-`), w.name);
      } finally {
        await client.close();
      }
      const logs = await tessera.schedulerLogs();
      assert.match(logs, /adapting/);
    } finally {
      await tessera.close();
    }
    const left = await cluster.kubectl(['get', 'all,configmaps,secrets,serviceaccounts,roles,rolebindings', '-n', namespace, '-o', 'name']);
    // What Kubernetes puts in every namespace itself, and nothing else.
    assert.deepEqual(left.stdout.trim().split('\n').filter((l) => l !== '').sort(), ['configmap/kube-root-ca.crt', 'serviceaccount/default']);
  });

  void test('KubernetesCluster through a port-forward (a laptop outside the cluster network): results come through the scheduler', async () => {
    const namespace = 'laptop';
    await cluster.kubectl(['create', 'namespace', namespace]);
    const tessera = await KubernetesCluster.start({
      namespace,
      image: TESSERA_IMAGE,
      workers: 1,
      access: 'port-forward',
      kubeconfig: cluster.adminKubeConfig(),
      schedulerTemplate: { spec: { containers: [{ name: 'scheduler', env: [LISTEN_ON_POD_IP] }] } },
      log: () => undefined,
    });
    try {
      assert.equal(tessera.access, 'port-forward');
      assert.equal(tessera.directToWorkers, false);
      assert.match(tessera.address, /^tcp:\/\/127\.0\.0\.1:\d+$/, 'a local port forwarded through the API server');
      // The dashboard answers through its own port-forward, and asks for the token there too.
      assert.equal((await fetch(new URL('/health', tessera.dashboardLink))).status, 401);
      assert.equal((await fetch(new URL('/health', tessera.dashboardLink), { headers: { authorization: `Bearer ${tessera.token}` } })).status, 200);
      const client = await Client.connect(tessera);
      try {
        assert.equal(client.directToWorkers, false);
        const expected = Array.from({ length: 8 }, (_, i) => i * i);
        const dialled = await dialledDuring(async () => {
          assert.deepEqual(await client.gather(client.map(square, Array.from({ length: 8 }, (_, i) => i))), expected);
        });
        const podIps = (await core.listNamespacedPod({ namespace })).items.map((p) => p.status?.podIP).filter((ip) => ip !== undefined);
        assert.ok(podIps.length >= 2, 'the scheduler and its worker run in pods');
        assert.deepEqual(dialled.filter((d) => podIps.some((ip) => d.startsWith(`${ip}:`))), [], 'no pod was dialled from outside');
      } finally {
        await client.close();
      }
    } finally {
      await tessera.close();
    }
  });

  void test('KubernetesCluster left without close() (the process exits): everything it created is deleted', async () => {
    const namespace = 'abandoned';
    await cluster.kubectl(['create', 'namespace', namespace]);
    const fixture = path.join(REPO, 'test/deploy/kubernetes/fixtures/exit-without-close.ts');
    const { stdout } = await run(process.execPath, ['--import', import.meta.resolve('tsx'), fixture, cluster.kubeconfigPath, namespace, TESSERA_IMAGE]);
    const result = JSON.parse(stdout.trim().split('\n').pop()!) as { name: string; answer: number };
    assert.equal(result.answer, 42);
    await until(async () => {
      const left = await cluster.kubectl(['get', 'pods,deployments,services,configmaps,secrets,roles,rolebindings', '-n', namespace, '-o', 'name']);
      return left.stdout.trim().split('\n').every((l) => l === '' || l === 'configmap/kube-root-ca.crt');
    }, `cluster ${result.name} is deleted after its process exited`, 120_000, 200);
  });

  void test('KubernetesCluster with an image that cannot be pulled: a clear error, with the pod\'s events, and nothing left', async () => {
    const namespace = 'wrong-image';
    await cluster.kubectl(['create', 'namespace', namespace]);
    const started = KubernetesCluster.start({ namespace, image: 'registry.example/tessera:does-not-exist', kubeconfig: cluster.adminKubeConfig(), log: () => undefined, startTimeout: '60s' });
    await assert.rejects(started, (error: unknown) => {
      assert.ok(error instanceof ClusterStartError, String(error));
      assert.match(error.reason, /^(ImagePullBackOff|ErrImagePull)$/);
      assert.match(error.message, /the scheduler of cluster tessera-[a-z0-9]{5} did not start/);
      assert.match(error.message, /events:/);
      return true;
    });
    const left = await cluster.kubectl(['get', 'all,configmaps,secrets', '-n', namespace, '-o', 'name']);
    assert.deepEqual(left.stdout.trim().split('\n').sort(), ['configmap/kube-root-ca.crt']);
  });
});
