// KubernetesBackend against a real control plane (kube-apiserver, etcd, controller manager
// and scheduler of the pinned release), with worker pods run by the test node agent. The
// backend authenticates as the scheduler's ServiceAccount of deploy/kubernetes with a real
// token, so the Role there is what the API server enforces. The scheduler runs in this
// process; its worker pods dial it. Needs scripts/kubernetes/ensure.sh's binaries: without
// them the tests skip outside CI and fail under CI.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApiException, AppsV1Api, CoreV1Api, type CoreV1Event, type KubeConfig, type V1ConfigMap, type V1Pod } from '@kubernetes/client-node';
import { Client, Scheduler } from '../../../src/index.js';
import { KubernetesBackend, type KubernetesBackendOptions } from '../../../src/deploy/kubernetes/index.js';
import { skipWithoutKubernetes } from '../../helpers/kubernetes/binaries.js';
import { type ControlPlane, startControlPlane } from '../../helpers/kubernetes/control-plane.js';
import { type NodeAgent, startNodeAgent } from '../../helpers/kubernetes/node-agent.js';
import { plain } from '../../helpers/kubernetes/plain.js';
import { REPO, TESSERA_IMAGE, tesseraImages } from '../../helpers/kubernetes/tessera-image.js';
import { until } from '../../helpers/wait.js';

const skip = skipWithoutKubernetes;
const NAMESPACE = 'backend-check';
const CRASHING = 'example/crashing:1';
const MISSING = 'example/not-in-any-registry:1';
/** The parts of deploy/kubernetes that give the scheduler its identity and Role. */
const RBAC = ['serviceaccount.yaml', 'role.yaml', 'rolebinding.yaml'].map((f) => path.join(REPO, 'deploy/kubernetes', f));

async function statusOf(call: () => Promise<unknown>): Promise<number> {
  try {
    await call();
    return 200;
  } catch (error) {
    if (error instanceof ApiException) return error.code;
    throw error;
  }
}

const slowSquare = async (x: number): Promise<number> => {
  await new Promise((resolve) => setTimeout(resolve, 300));
  return x * x;
};

void describe('KubernetesBackend on a real control plane', { skip }, () => {
  let cluster: ControlPlane;
  let agent: NodeAgent;
  let core: CoreV1Api;
  /** The scheduler's ServiceAccount, through a token the API server issued. */
  let asScheduler: KubeConfig;
  let scheduler: Scheduler;
  const logs: string[] = [];

  const podNames = async (selector = 'tessera.dev/cluster'): Promise<string[]> =>
    (await core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: selector })).items.map((p) => p.metadata?.name ?? '').sort();
  const start = (options: Partial<KubernetesBackendOptions> = {}): Promise<KubernetesBackend> =>
    KubernetesBackend.start({
      scheduler: scheduler.address,
      image: TESSERA_IMAGE,
      namespace: NAMESPACE,
      kubeconfig: asScheduler,
      log: (line) => logs.push(line),
      ...options,
    });

  before(async () => {
    const t0 = performance.now();
    cluster = await startControlPlane();
    agent = await startNodeAgent(cluster, {
      images: tesseraImages({
        [CRASHING]: { entrypoint: [process.execPath, '-e', "console.error('worker: cannot reach the scheduler, giving up'); process.exit(3)"] },
      }),
      capacity: { cpu: '16', memory: '32Gi', pods: 50 },
    });
    core = cluster.adminKubeConfig().makeApiClient(CoreV1Api);
    await cluster.kubectl(['create', 'namespace', NAMESPACE]);
    await cluster.kubectl(['apply', '-n', NAMESPACE, ...RBAC.flatMap((f) => ['-f', f])]);
    asScheduler = cluster.kubeConfigForToken(await cluster.createServiceAccountToken(NAMESPACE, 'tessera-scheduler'));
    scheduler = await Scheduler.start({ host: '127.0.0.1', port: 0, dashboard: false, log: () => undefined });
    console.log(`control plane and node ready in ${Math.round(performance.now() - t0)} ms`);
  });

  after(async () => {
    await scheduler.close();
    await agent.stop();
    await cluster.stop();
  });

  void test('the Role is what the API server enforces: what the backend does not need is denied', async () => {
    const core = asScheduler.makeApiClient(CoreV1Api);
    const apps = asScheduler.makeApiClient(AppsV1Api);
    assert.equal(await statusOf(() => core.listNamespacedPod({ namespace: NAMESPACE })), 200);
    assert.equal(await statusOf(() => core.listNamespacedEvent({ namespace: NAMESPACE })), 200);
    assert.equal(await statusOf(() => core.listNamespacedSecret({ namespace: NAMESPACE })), 403);
    assert.equal(await statusOf(() => core.listNamespacedPod({ namespace: 'default' })), 403);
    assert.equal(await statusOf(() => apps.listNamespacedDeployment({ namespace: NAMESPACE })), 403);
    assert.equal(await statusOf(() => core.patchNamespacedPod({ namespace: NAMESPACE, name: 'anything', body: [{ op: 'add', path: '/metadata/labels/x', value: 'y' }] })), 403);
  });

  void test('scales from zero on submission and back down after the work, deleting exactly the retired pods', async () => {
    const backend = await start({ cluster: 'adaptive' });
    const deleted: string[] = [];
    try {
      assert.equal(backend.requested, 0);
      scheduler.adapt(backend, { minimum: 0, maximum: 3, targetDuration: '1s', interval: 250, waitCount: 4 });
      const client = await Client.connect(scheduler.address);
      try {
        const t0 = performance.now();
        const futures = client.map(slowSquare, Array.from({ length: 24 }, (_, i) => i));
        await until(() => backend.running > 0, 'a worker pod runs', 120_000, 50);
        const firstPod = performance.now() - t0;
        const kept = client.submit(slowSquare, 12);
        assert.deepEqual(await client.gather(futures), Array.from({ length: 24 }, (_, i) => i * i));
        console.log(`first worker pod running after ${Math.round(firstPod)} ms; 24 tasks done after ${Math.round(performance.now() - t0)} ms`);
        const names = new Set(scheduler.workerNames().values());
        for (const name of names) assert.match(name, /^adaptive-worker-[a-z0-9]{5}$/);
        const pods = await podNames('tessera.dev/cluster=adaptive');
        assert.ok(pods.length >= 1 && pods.length <= 3, `${pods.length} pods`);

        // The work done, the loop retires every worker but one that holds `kept`.
        for (const f of futures) f.release();
        const before = new Set(pods);
        await until(async () => (await podNames('tessera.dev/cluster=adaptive')).length === 1 && backend.closing === 0, 'one pod is left', 120_000, 200);
        const left = await podNames('tessera.dev/cluster=adaptive');
        assert.equal(await kept.result(), 144);
        for (const name of before) if (!left.includes(name)) deleted.push(name);
        const history = await client.scalingHistory();
        assert.ok(history !== null);
        const retired = history.decisions.flatMap((d) => (d.op === 'scale-down' ? d.workers : []));
        // Every pod deleted was one the scheduler chose to retire, and the pod left is the one holding the result.
        for (const name of deleted) assert.ok(retired.includes(name), `${name} was deleted but not retired (retired: ${retired.join(', ')})`);
        assert.deepEqual([...scheduler.workerNames().values()], left);
        assert.ok(backend.scaleUpRequests.scaleUps >= 1);
      } finally {
        await client.close();
      }
    } finally {
      scheduler.stopAdapting();
      await backend.close();
    }
    assert.deepEqual(await podNames('tessera.dev/cluster=adaptive'), []);
  });

  void test('scaleDown deletes the named pods and no other', async () => {
    const backend = await start({ cluster: 'exact' });
    try {
      backend.scaleUp(3);
      assert.equal(backend.requested, 3);
      await until(() => backend.running === 3, 'three worker pods run', 120_000, 50);
      const pods = await podNames('tessera.dev/cluster=exact');
      assert.equal(pods.length, 3);
      const chosen = pods[1]!;
      await backend.scaleDown([chosen, 'not-a-worker-of-this-cluster']);
      assert.deepEqual(await podNames('tessera.dev/cluster=exact'), pods.filter((p) => p !== chosen));
      assert.equal(backend.requested, 2);
      assert.ok(logs.some((line) => line.includes('not-a-worker-of-this-cluster is not a worker pod')));
    } finally {
      await backend.close();
    }
    assert.deepEqual(await podNames('tessera.dev/cluster=exact'), []);
  });

  void test('a Pending pod counts as requested and is not asked for twice; past pendingTimeout it is reported Unschedulable', async () => {
    const backend = await start({ cluster: 'pending', nodeSelector: { 'example.com/pool': 'gpu' }, pendingTimeout: '4s' });
    try {
      backend.scaleUp(1);
      await until(async () => (await podNames('tessera.dev/cluster=pending')).length === 1, 'the pod exists', 30_000, 50);
      backend.scaleUp(1);
      backend.scaleUp(1);
      assert.equal(backend.requested, 1);
      const [name] = await podNames('tessera.dev/cluster=pending');
      const pod = await core.readNamespacedPod({ namespace: NAMESPACE, name: name! });
      assert.equal(pod.status?.phase, 'Pending');
      assert.equal((await podNames('tessera.dev/cluster=pending')).length, 1);

      await until(() => backend.failures.length === 1, 'the pod is reported', 60_000, 100);
      const failure = backend.failures[0]!;
      assert.equal(failure.pod, name);
      assert.equal(failure.reason, 'Unschedulable');
      assert.match(failure.message, /node\(s\) didn't match Pod's node affinity\/selector/);
      assert.ok(failure.events.some((e) => e.reason === 'FailedScheduling'), JSON.stringify(failure.events));
      assert.ok(logs.some((line) => line.includes(`worker pod ${name!} failed to start: Unschedulable`)));
      await until(() => backend.requested === 0, 'it counts no more', 30_000, 50);
      // New pods wait a while, and scaleUp says why.
      assert.throws(() => backend.scaleUp(1), /failing to start \(.*Unschedulable\)/);
      await until(async () => (await podNames('tessera.dev/cluster=pending')).length === 0, 'the failed pod is deleted', 30_000, 100);
    } finally {
      await backend.close();
    }
  });

  void test('a pod stuck in CrashLoopBackOff is reported with its log; an image that cannot be pulled, with its events', async () => {
    const crashing = await start({ cluster: 'crashing', image: CRASHING });
    const missing = await start({ cluster: 'missing', image: MISSING });
    try {
      crashing.scaleUp(1);
      missing.scaleUp(1);
      await until(() => crashing.failures.length === 1 && missing.failures.length === 1, 'both pods are reported', 90_000, 100);
      const crash = crashing.failures[0]!;
      assert.equal(crash.reason, 'CrashLoopBackOff');
      assert.ok(crash.log.some((line) => line.includes('cannot reach the scheduler, giving up')), crash.log.join('\n'));
      const report = logs.find((line) => line.includes(`worker pod ${crash.pod} failed to start: CrashLoopBackOff`));
      assert.ok(report !== undefined && report.includes('cannot reach the scheduler, giving up'), report);
      const pull = missing.failures[0]!;
      assert.match(pull.reason, /^(ImagePullBackOff|ErrImagePull)$/);
      assert.ok(pull.events.some((e: { reason: string }) => /Failed|BackOff/.test(e.reason)), JSON.stringify(pull.events));
      await until(() => crashing.requested === 0 && missing.requested === 0, 'neither counts', 30_000, 50);
      await until(async () => (await podNames('tessera.dev/cluster in (crashing,missing)')).length === 0, 'both are deleted', 60_000, 100);
    } finally {
      await crashing.close();
      await missing.close();
    }
  });

  void test('a worker pod deleted in the middle of a graph: the same answer', async () => {
    const backend = await start({ cluster: 'evicted' });
    try {
      backend.scaleUp(2);
      await until(() => scheduler.workers.length === 2, 'two workers joined', 120_000, 50);
      const client = await Client.connect(scheduler.address);
      try {
        const squares = client.map(slowSquare, Array.from({ length: 16 }, (_, i) => i));
        const total = client.submit((...xs: number[]) => xs.reduce((a, b) => a + b, 0), ...squares);
        await until(() => scheduler.workers.length === 2, 'still two', 10_000);
        // Killed outright (no grace): its results are recomputed from lineage.
        const [victim] = await podNames('tessera.dev/cluster=evicted');
        await core.deleteNamespacedPod({ namespace: NAMESPACE, name: victim!, gracePeriodSeconds: 0 });
        backend.scaleUp(2);
        assert.equal(await total.result(), Array.from({ length: 16 }, (_, i) => i * i).reduce((a, b) => a + b, 0));
      } finally {
        await client.close();
      }
    } finally {
      await backend.close();
    }
  });

  void test('a worker pod deleted with a grace period (a drain, a spot reclaim) hands its results over first', async () => {
    const backend = await start({ cluster: 'drained' });
    try {
      backend.scaleUp(2);
      await until(() => scheduler.workers.length === 2, 'two workers joined', 120_000, 50);
      const client = await Client.connect(scheduler.address);
      try {
        const [leaving] = [...scheduler.workerNames().values()].sort();
        // A value that differs each time it is computed: a recomputation would show.
        const drawn = client.submitWith({ workers: [leaving!] }, () => Math.random());
        const first = await drawn.result();
        const t0 = performance.now();
        await core.deleteNamespacedPod({ namespace: NAMESPACE, name: leaving! });
        await until(async () => !(await podNames('tessera.dev/cluster=drained')).includes(leaving!), 'the pod is gone', 90_000, 100);
        console.log(`drained pod gone after ${Math.round(performance.now() - t0)} ms (grace period 75 s)`);
        const again = client.submit((x: number) => x, drawn);
        assert.equal(await again.result(), first);
        assert.deepEqual([...scheduler.workerNames().values()].filter((n) => n === leaving), []);
        assert.equal(backend.requested, 1);
      } finally {
        await client.close();
      }
    } finally {
      await backend.close();
    }
  });

  void test('worker pods belong to their owner: the garbage collector deletes them with it; a new backend adopts live pods', async () => {
    const owner = await core.createNamespacedConfigMap({ namespace: NAMESPACE, body: plain<V1ConfigMap>({ metadata: { name: 'scheduler-stand-in' } }) });
    const first = await start({ cluster: 'owned', owner: { apiVersion: 'v1', kind: 'ConfigMap', name: 'scheduler-stand-in', uid: owner.metadata!.uid! } });
    first.scaleUp(2);
    await until(() => first.running === 2, 'two pods run', 120_000, 50);
    const pods = await podNames('tessera.dev/cluster=owned');
    for (const name of pods) {
      const pod: V1Pod = await core.readNamespacedPod({ namespace: NAMESPACE, name });
      assert.deepEqual(pod.metadata?.ownerReferences?.map((o) => o.uid), [owner.metadata!.uid]);
    }
    // A second scheduler of the same cluster and owner (as after a restart) adopts them.
    const second = await start({ cluster: 'owned', owner: { apiVersion: 'v1', kind: 'ConfigMap', name: 'scheduler-stand-in', uid: owner.metadata!.uid! } });
    try {
      assert.deepEqual(second.pods.map((p) => p.name).sort(), pods);
      assert.equal(second.requested, 2);
      // The owner goes (as the scheduler's pod does when it dies): so do the pods, and both backends see it.
      await core.deleteNamespacedConfigMap({ namespace: NAMESPACE, name: 'scheduler-stand-in' });
      await until(async () => (await podNames('tessera.dev/cluster=owned')).length === 0, 'the garbage collector deletes the pods', 90_000, 200);
      await until(() => first.requested === 0 && second.requested === 0, 'neither backend counts them', 30_000, 50);
    } finally {
      await second.close();
      await first.close();
    }
  });

  void test('API errors are retried, not fatal: a Role that allows no create yet (403), then does', async () => {
    // Another identity whose Role lacks "create pods" at first, as while a RoleBinding propagates.
    const ns = 'backend-late-rbac';
    await cluster.kubectl(['create', 'namespace', ns]);
    await cluster.kubectl(['apply', '-n', ns, ...RBAC.flatMap((f) => ['-f', f])]);
    await cluster.kubectl(['patch', 'role', 'tessera-scheduler', '-n', ns, '--type=json', '-p', '[{"op":"replace","path":"/rules/0/verbs","value":["get","list","watch","delete"]}]']);
    const late = cluster.kubeConfigForToken(await cluster.createServiceAccountToken(ns, 'tessera-scheduler'));
    const backend = await start({ cluster: 'late', namespace: ns, kubeconfig: late });
    try {
      backend.scaleUp(1);
      await until(() => logs.some((line) => /creating pod late-worker-\w+: create pods: 403 .*forbidden.*again in/.test(line)), 'the 403 is logged and retried', 30_000, 50);
      assert.equal(backend.requested, 1);
      await cluster.kubectl(['apply', '-n', ns, '-f', RBAC[1]!]);
      await until(() => backend.running === 1, 'the pod is created once the Role allows it, and runs', 90_000, 100);
      assert.ok((backend.requests.get('create pods') ?? 0) >= 2);
    } finally {
      await backend.close();
    }
  });

  void test('close() leaves nothing in the namespace', async () => {
    const backend = await start({ cluster: 'closing' });
    backend.scaleUp(2);
    await until(async () => (await podNames('tessera.dev/cluster=closing')).length === 2, 'two pods exist', 30_000, 50);
    await backend.close();
    assert.deepEqual(await podNames('tessera.dev/cluster=closing'), []);
    assert.throws(() => backend.scaleUp(1));
    const events: CoreV1Event[] = (await core.listNamespacedEvent({ namespace: NAMESPACE })).items;
    assert.ok(events.length > 0);
  });
});
