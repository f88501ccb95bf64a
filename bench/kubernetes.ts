/**
 * sleep-burst (BENCHMARKS.md) with worker pods on the real control plane of the tests
 * (kube-apiserver, etcd, controller manager and scheduler of the pinned release; pods run by
 * the test node agent as local processes): an adaptive scheduler from zero, then a fixed set
 * of `maximum` pods, in the same run. Prints JSON lines:
 *
 * - time from submission to the first worker pod Running and to the first result; total time;
 * - the same total against the fixed set of pods;
 * - API requests made per scale-up (creations, and the watch's and reports' requests with them);
 * - worker pods left in the namespace after close (must be 0).
 *
 *   npm run bench -- kubernetes [--runs 1] [--tasks 40] [--sleep 1] [--maximum 4] [--interval 500ms] [--wait-count 3]
 *
 * Defaults are small: pods here are Node processes on a shared 2-core machine. Dask's
 * KubeCluster (dask-kubernetes, PyPI) needs its operator's custom resources and a
 * controller running in the cluster, and images of Dask: where it is not installed, a line
 * says so and it is skipped.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import { parseDuration } from '../src/adaptive/policy.js';
import { KubernetesBackend } from '../src/deploy/kubernetes/index.js';
import { Client, type Future, Scheduler } from '../src/index.js';
import { kubernetesMissing } from '../test/helpers/kubernetes/binaries.js';
import { startControlPlane } from '../test/helpers/kubernetes/control-plane.js';
import { startNodeAgent } from '../test/helpers/kubernetes/node-agent.js';
import { REPO, TESSERA_IMAGE, tesseraImages } from '../test/helpers/kubernetes/tessera-image.js';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '1' },
    tasks: { type: 'string', default: '40' },
    sleep: { type: 'string', default: '1' },
    maximum: { type: 'string', default: '4' },
    interval: { type: 'string', default: '500ms' },
    'wait-count': { type: 'string', default: '3' },
    'target-duration': { type: 'string', default: '5s' },
  },
});
const runs = Number(args.runs);
const tasks = Number(args.tasks);
const sleepMs = Number(args.sleep) * 1000;
const maximum = Number(args.maximum);
const interval = parseDuration(args.interval, '--interval');
const waitCount = Number(args['wait-count']);
const targetDuration = parseDuration(args['target-duration'], '--target-duration');
const NAMESPACE = 'bench';

const emit = (line: Record<string, unknown>): void => {
  console.log(JSON.stringify({ bench: 'kubernetes', workload: 'sleep-burst', tasks, sleepS: sleepMs / 1000, maximum, ...line }));
};
const s = (ms: number): number => Math.round(ms) / 1000;
const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Like Dask's time.sleep, the sleep holds the worker's thread for its whole duration. */
const slowMaths = ({ i, ms }: { i: number; ms: number }): number => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  return ((i * i) % 97) + 1;
};
const items = (): { i: number; ms: number }[] => Array.from({ length: tasks }, (_, i) => ({ i, ms: sleepMs }));

async function burst(client: Client, onSample: () => void): Promise<{ firstResult: number; lastResult: number; futures: Future<number>[] }> {
  const t0 = performance.now();
  const sampler = setInterval(onSample, 20);
  try {
    const futures = client.map(slowMaths, items());
    let firstResult = -1;
    for await (const future of client.asCompleted(futures)) {
      if (firstResult < 0) firstResult = performance.now() - t0;
      if (future.status !== 'finished') throw new Error(`sleep-burst: task ${future.key} is ${future.status}`);
    }
    const values = await client.gather(futures);
    if (values.some((v, i) => v !== ((i * i) % 97) + 1)) throw new Error('sleep-burst: wrong results');
    return { firstResult, lastResult: performance.now() - t0, futures };
  } finally {
    clearInterval(sampler);
  }
}

if (kubernetesMissing !== false) {
  emit({ system: 'tessera-kubernetes', skipped: `the control plane is not built: ${kubernetesMissing} (bash scripts/kubernetes/ensure.sh)` });
  process.exit(process.env['CI'] === 'true' ? 1 : 0);
}

const t0 = performance.now();
const cluster = await startControlPlane();
const agent = await startNodeAgent(cluster, { images: tesseraImages(), capacity: { cpu: String(4 * maximum), memory: '64Gi', pods: 4 * maximum + 10 } });
const core = cluster.adminKubeConfig().makeApiClient(CoreV1Api);
await cluster.kubectl(['create', 'namespace', NAMESPACE]);
await cluster.kubectl(['apply', '-n', NAMESPACE, ...['serviceaccount.yaml', 'role.yaml', 'rolebinding.yaml'].flatMap((f) => ['-f', path.join(REPO, 'deploy/kubernetes', f)])]);
const asScheduler = cluster.kubeConfigForToken(await cluster.createServiceAccountToken(NAMESPACE, 'tessera-scheduler'));
emit({ system: 'control-plane', version: cluster.version, readyS: s(performance.now() - t0), startup: cluster.startup });

const podsLeft = async (name: string): Promise<number> => (await core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: `tessera.dev/cluster=${name}` })).items.length;

try {
  for (let run = 0; run < runs; run++) {
    // Adaptive, from zero.
    {
      const name = `adaptive-${run}`;
      const scheduler = await Scheduler.start({ host: '127.0.0.1', port: 0, dashboard: false, log: () => undefined });
      const backend = await KubernetesBackend.start({ scheduler: scheduler.address, image: TESSERA_IMAGE, namespace: NAMESPACE, cluster: name, kubeconfig: asScheduler, log: () => undefined });
      const requestsBefore = backend.totalRequests;
      const client = await Client.connect(scheduler.address);
      let firstPodRunning = -1;
      let peak = 0;
      const started = performance.now();
      try {
        scheduler.adapt(backend, { minimum: 0, maximum, targetDuration, interval, waitCount });
        const r = await burst(client, () => {
          if (backend.running > 0 && firstPodRunning < 0) firstPodRunning = performance.now() - started;
          peak = Math.max(peak, backend.running);
        });
        const requests = backend.totalRequests - requestsBefore;
        const { scaleUps } = backend.scaleUpRequests;
        const creates = backend.requests.get('create pods') ?? 0;
        // Back to the floor: one pod keeps the results the client holds.
        const settled = performance.now();
        while (performance.now() - settled < 60_000 && (backend.requested > 1 || backend.closing > 0)) await pause(50);
        scheduler.stopAdapting();
        await client.close();
        await backend.close();
        emit({
          system: 'tessera-kubernetes-adaptive',
          run,
          firstPodRunningS: s(firstPodRunning),
          firstResultS: s(r.firstResult),
          totalS: s(r.lastResult),
          peakPods: peak,
          backToOnePodS: s(performance.now() - settled),
          scaleUps,
          podsCreated: creates,
          apiRequestsDuringBurst: requests,
          apiRequestsPerScaleUp: scaleUps === 0 ? 0 : Math.round((requests / scaleUps) * 10) / 10,
          apiRequestsPerPod: creates === 0 ? 0 : Math.round((requests / creates) * 10) / 10,
          requestsByKind: Object.fromEntries(backend.requests),
          podsLeftAfterClose: await podsLeft(name),
        });
      } finally {
        await client.close();
        await backend.close();
        await scheduler.close();
      }
    }
    // A fixed set of pods, started before the work.
    {
      const name = `fixed-${run}`;
      const scheduler = await Scheduler.start({ host: '127.0.0.1', port: 0, dashboard: false, log: () => undefined });
      const backend = await KubernetesBackend.start({ scheduler: scheduler.address, image: TESSERA_IMAGE, namespace: NAMESPACE, cluster: name, kubeconfig: asScheduler, log: () => undefined });
      const client = await Client.connect(scheduler.address);
      try {
        const started = performance.now();
        backend.scaleUp(maximum);
        while (scheduler.workers.length < maximum) await pause(20);
        const startAll = performance.now() - started;
        const r = await burst(client, () => undefined);
        await client.close();
        await backend.close();
        emit({ system: 'tessera-kubernetes-fixed', run, pods: maximum, startAllPodsS: s(startAll), firstResultS: s(r.firstResult), totalS: s(r.lastResult), podsLeftAfterClose: await podsLeft(name) });
      } finally {
        await client.close();
        await backend.close();
        await scheduler.close();
      }
    }
  }
  let dask = '';
  try {
    execFileSync('python3', ['-c', 'import dask_kubernetes'], { stdio: 'ignore' });
  } catch {
    dask = 'dask-kubernetes is not installed (pip install dask-kubernetes); its KubeCluster also needs the Dask operator (custom resources and a controller) and Dask images that the node agent would run';
  }
  emit({ system: 'dask-kubernetes', skipped: dask === '' ? 'dask-kubernetes needs the Dask operator running in the cluster, which this control plane does not run' : dask });
} finally {
  await agent.stop();
  await cluster.stop();
}
