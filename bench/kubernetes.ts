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
 *                               [--systems tessera,dask-kubernetes] [--no-fixed-anchor]
 *
 * Defaults are small: pods here are Node processes on a shared 2-core machine.
 *
 * In the same run, on the same control plane, dask-kubernetes' KubeCluster
 * (bench/anchors/dask_kubecluster.py; adaptive from zero, then scale(maximum)), as its users
 * run it:
 * - dask-kubernetes (DASK_KUBERNETES_PIN) and its dependencies are installed once beside the
 *   anchors' environment (bench/venv.ts: Dask and distributed 2026.8), `pip install --target
 *   ~/.cache/tessera/bench-dask-kubernetes/<hash>` with Dask constrained to the environment's
 *   release (about 2 minutes, once);
 * - its custom resources are the ones its wheel ships (the Helm chart's crds/: DaskCluster,
 *   DaskWorkerGroup, DaskJob, DaskAutoscaler, with their schemas), applied with kubectl;
 * - its operator is the wheel's kopf controller, `kopf run --standalone --namespace=bench -m
 *   dask_kubernetes.operator.controller`, a local process with the admin kubeconfig, as the
 *   operator's Deployment would run in the cluster;
 * - the node agent runs the Dask image (ghcr.io/dask/dask:<the environment's Dask>) as the
 *   image does: its entrypoint ends in `exec "$@"`, so the pod's args run with the
 *   environment's executables first on PATH.
 * Two things a pod has on a cluster and not here are given to these Python processes by
 * bench/anchors/cluster_dns/sitecustomize.py: Service names (`<svc>.<ns>.svc.cluster.local`,
 * from the API server, as cluster DNS answers them), and a network of the pod's own: a bind to
 * the wildcard address (the scheduler's `--host 0.0.0.0`) goes to the pod's IP, since the
 * Service proxy already holds port 8786 on the Service's cluster IP of the shared loopback.
 * The client reaches the scheduler from outside through kr8s' port-forward, through the API
 * server's pods/portforward to the node agent's kubelet port.
 * dask-kubernetes 2026.3 names `dask-scheduler` and `dask-worker`, which distributed 2026.8
 * no longer installs: the driver's spec names `dask scheduler` and `dask worker --nthreads 1`
 * (one thread per pod, as Tessera's pods). Any step that fails prints a `skipped` line with
 * its reason; the operator is stopped at the end, its log is kept in the control plane's log
 * directory while it runs.
 */
import { type ChildProcess, execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import { parseDuration } from '../src/adaptive/policy.js';
import { KubernetesBackend } from '../src/deploy/kubernetes/index.js';
import { Client, type Future, Scheduler } from '../src/index.js';
import { kubernetesMissing } from '../test/helpers/kubernetes/binaries.js';
import { startControlPlane } from '../test/helpers/kubernetes/control-plane.js';
import { freePort } from '../test/helpers/kubernetes/network.js';
import { type ImageRunSpec, startNodeAgent } from '../test/helpers/kubernetes/node-agent.js';
import { spawnGroup, stopGroup, temporaryDirectory } from '../test/helpers/kubernetes/processes.js';
import { REPO, TESSERA_IMAGE, tesseraImages } from '../test/helpers/kubernetes/tessera-image.js';
import { type AnchorLine, median, runAnchor } from './anchor.js';
import { ensureVenv, type Venv } from './venv.js';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '1' },
    tasks: { type: 'string', default: '40' },
    sleep: { type: 'string', default: '1' },
    maximum: { type: 'string', default: '4' },
    interval: { type: 'string', default: '500ms' },
    'wait-count': { type: 'string', default: '3' },
    'target-duration': { type: 'string', default: '5s' },
    systems: { type: 'string', default: 'tessera,dask-kubernetes' },
    'no-fixed-anchor': { type: 'boolean', default: false },
  },
});
const runs = Number(args.runs);
const tasks = Number(args.tasks);
const sleepMs = Number(args.sleep) * 1000;
const maximum = Number(args.maximum);
const interval = parseDuration(args.interval, '--interval');
const waitCount = Number(args['wait-count']);
const targetDuration = parseDuration(args['target-duration'], '--target-duration');
/** The dask-kubernetes compared with, from PyPI: the release whose operator runs with the anchors' Dask. */
const DASK_KUBERNETES_PIN = 'dask-kubernetes==2026.3.*';
/** The image dask-kubernetes names for scheduler and worker pods (tagged with the Dask release). */
const DASK_IMAGE_REPOSITORY = 'ghcr.io/dask/dask';
/** The operator's custom resources, as its wheel ships them (its Helm chart's crds/). */
const DASK_CRDS = ['daskclusters', 'daskworkergroups', 'daskjobs', 'daskautoscalers'] as const;
/** A sitecustomize answering Service names for Python processes (pods and the operator), as cluster DNS would. */
const CLUSTER_DNS = fileURLToPath(new URL('./anchors/cluster_dns/', import.meta.url));
const NAMESPACE = 'bench';
const systems = new Set(args.systems.split(',').map((x) => x.trim()));
const fixedAnchor = !args['no-fixed-anchor'];

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
const tessera = tesseraImages();
const images = (image: string): ImageRunSpec | undefined => (Object.hasOwn(tessera, image) ? tessera[image] : image.startsWith(`${DASK_IMAGE_REPOSITORY}:`) ? daskImage : undefined);
const agent = await startNodeAgent(cluster, { images, capacity: { cpu: String(4 * maximum), memory: '64Gi', pods: 4 * maximum + 10 } });
const core = cluster.adminKubeConfig().makeApiClient(CoreV1Api);
await cluster.kubectl(['create', 'namespace', NAMESPACE]);
await cluster.kubectl(['apply', '-n', NAMESPACE, ...['serviceaccount.yaml', 'role.yaml', 'rolebinding.yaml'].flatMap((f) => ['-f', path.join(REPO, 'deploy/kubernetes', f)])]);
const asScheduler = cluster.kubeConfigForToken(await cluster.createServiceAccountToken(NAMESPACE, 'tessera-scheduler'));
emit({ system: 'control-plane', version: cluster.version, readyS: s(performance.now() - t0), startup: cluster.startup });

const tesseraAdaptive: Record<string, unknown>[] = [];
const tesseraFixed: Record<string, unknown>[] = [];
const daskAdaptive: AnchorLine[] = [];
const daskFixed: AnchorLine[] = [];

/** How the node agent runs the Dask image, once the anchors' environment is there. */
let daskImage: ImageRunSpec | undefined;
let operator: ChildProcess | undefined;
let daskReady: Promise<{ site: string; image: string } | { reason: string }> | undefined;

async function stopOperator(): Promise<void> {
  if (operator !== undefined) await stopGroup(operator, 'SIGTERM', 10_000);
  operator = undefined;
}

/**
 * dask-kubernetes beside the anchors' environment, its custom resources in the cluster, its
 * operator running against the API server: once per run of the benchmark.
 */
function prepareDask(): Promise<{ site: string; image: string } | { reason: string }> {
  daskReady ??= (async () => {
    const venv = await ensureVenv((line) => {
      console.error(JSON.stringify({ bench: 'venv', ...line }));
    });
    if (!venv.available) return { reason: venv.reason };
    const found = await daskKubernetesSite(venv);
    if ('reason' in found) return found;
    const { site } = found;
    // The image of the Dask release the client runs, as KubeCluster users pin it.
    const image = `${DASK_IMAGE_REPOSITORY}:${venv.versions['dask'] ?? 'latest'}`;
    const resolver = { PYTHONPATH: CLUSTER_DNS, TESSERA_CLUSTER_DNS_KUBECONFIG: cluster.kubeconfigPath };
    const imageDir = temporaryDirectory('dask-image-');
    daskImage = {
      // The image's entrypoint (tini, prepare.sh) ends in `exec "$@"`: the pod's args run as they are.
      workingDir: imageDir,
      // Workers' scratch space in the pod's own directory, not the machine's /tmp.
      env: { PATH: `${path.dirname(venv.python)}:${process.env['PATH'] ?? '/usr/bin:/bin'}`, ...resolver, TESSERA_POD_OWN_IP: '1', DASK_TEMPORARY_DIRECTORY: imageDir },
    };
    const crds = path.join(site, 'dask_kubernetes/operator/deployment/helm/dask-kubernetes-operator/crds');
    const applied = await cluster.kubectl(['apply', '-f', crds], { check: false });
    if (applied.code !== 0) return { reason: `kubectl apply -f ${crds}: ${applied.stderr.trim()}` };
    // A definition just created may have no conditions yet, which `kubectl wait` takes as an error.
    for (let attempt = 1; ; attempt++) {
      const established = await cluster.kubectl(['wait', '--for=condition=Established', '--timeout=60s', ...DASK_CRDS.map((c) => `crd/${c}.kubernetes.dask.org`)], { check: false });
      if (established.code === 0) break;
      if (attempt === 5) return { reason: `the Dask operator's custom resources are not established: ${established.stderr.trim()}` };
      await pause(500);
    }
    const healthPort = await freePort();
    const env: NodeJS.ProcessEnv = { ...process.env, ...resolver, PYTHONPATH: `${CLUSTER_DNS}:${site}`, KUBECONFIG: cluster.kubeconfigPath, PYTHONUNBUFFERED: '1' };
    delete env['VIRTUAL_ENV'];
    delete env['PYTHONHOME'];
    const logFile = path.join(cluster.logDir, 'dask-operator.log');
    const log = createWriteStream(logFile);
    let tail = '';
    const started = performance.now();
    operator = spawnGroup(venv.python, ['-m', 'kopf', 'run', '--standalone', `--namespace=${NAMESPACE}`, `--liveness=http://127.0.0.1:${healthPort}/healthz`, '-m', 'dask_kubernetes.operator.controller'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of [operator.stdout, operator.stderr]) {
      stream?.on('data', (chunk: Buffer) => {
        log.write(chunk);
        tail = `${tail}${chunk.toString()}`.slice(-1500);
      });
    }
    for (;;) {
      if (operator.exitCode !== null || operator.signalCode !== null) return { reason: `the Dask operator (kopf) exited: ${tail.trim()}` };
      if (performance.now() - started > 60_000) return { reason: `the Dask operator (kopf) was not live after 60 s: ${tail.trim()}` };
      try {
        if ((await fetch(`http://127.0.0.1:${healthPort}/healthz`, { signal: AbortSignal.timeout(2_000) })).ok) break;
      } catch {
        // Not listening yet.
      }
      await pause(250);
    }
    emit({ system: 'dask-operator', operatorLiveS: s(performance.now() - started), image, log: logFile });
    return { site, image };
  })();
  return daskReady;
}

let daskInstall: Promise<{ site: string } | { reason: string }> | undefined;

/** dask-kubernetes and its dependencies for the anchors' Python, installed on first use, with the environment's Dask. */
function daskKubernetesSite(venv: Venv): Promise<{ site: string } | { reason: string }> {
  daskInstall ??= (async () => {
    const hash = createHash('sha256').update(JSON.stringify({ pin: DASK_KUBERNETES_PIN, venv: venv.dir })).digest('hex').slice(0, 16);
    const site = path.join(homedir(), '.cache', 'tessera', 'bench-dask-kubernetes', hash);
    if (existsSync(path.join(site, 'dask_kubernetes'))) return { site };
    // Installed aside and renamed into place, so a run stopped half-way leaves nothing that looks done.
    const partial = `${site}.${process.pid}.partial`;
    await rm(partial, { recursive: true, force: true });
    await mkdir(partial, { recursive: true });
    // Its dependencies come along, except Dask itself: kept at the environment's release.
    const constraints = path.join(partial, '..', `constraints.${process.pid}.txt`);
    await writeFile(constraints, ['dask', 'distributed'].map((d) => `${d}==${venv.versions[d] ?? ''}\n`).join(''));
    const started = performance.now();
    const r = await pip(venv.python, ['install', '--quiet', '--no-input', '--target', partial, '-c', constraints, DASK_KUBERNETES_PIN]);
    await rm(constraints, { force: true });
    if (!r.ok) {
      await rm(partial, { recursive: true, force: true });
      return { reason: `pip install --target ${partial} ${DASK_KUBERNETES_PIN} failed: ${r.stderr}` };
    }
    await rm(site, { recursive: true, force: true });
    await rename(partial, site);
    console.error(JSON.stringify({ bench: 'kubernetes', installed: DASK_KUBERNETES_PIN, site, seconds: s(performance.now() - started) }));
    return { site };
  })();
  return daskInstall;
}

function pip(python: string, pipArgs: string[]): Promise<{ ok: boolean; stderr: string }> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1' };
    delete env['PYTHONPATH'];
    delete env['VIRTUAL_ENV'];
    execFile(python, ['-m', 'pip', ...pipArgs], { env, timeout: 15 * 60_000, killSignal: 'SIGKILL' }, (error, _stdout, stderr) => {
      resolve({ ok: error === null, stderr: `${error?.message ?? ''} ${stderr.slice(-1500)}`.trim() });
    });
  });
}

/** dask-kubernetes' KubeCluster on the same workload and control plane (bench/anchors/dask_kubecluster.py). */
async function daskKubernetes(mode: 'adaptive' | 'fixed', run: number): Promise<AnchorLine | undefined> {
  const system = `dask-kubernetes-${mode}`;
  const ready = await prepareDask();
  if ('reason' in ready) {
    emit({ system, skipped: ready.reason });
    return undefined;
  }
  const result = await runAnchor(
    'dask',
    'dask_kubecluster.py',
    [
      '--mode', mode, '--tasks', String(tasks), '--sleep', String(sleepMs / 1000), '--maximum', String(maximum), '--nthreads', '1',
      '--kubeconfig', cluster.kubeconfigPath, '--namespace', NAMESPACE, '--name', `dask-${mode}-${run}`, '--image', ready.image, '--site', ready.site,
    ],
    { timeoutMs: 8 * 60_000 },
  );
  if (!result.available) {
    emit({ system, skipped: result.reason });
    return undefined;
  }
  const line = result.lines[0]!;
  emit({ system, run, ...line });
  return line;
}

const medianOf = (lines: readonly Record<string, unknown>[], key: string): number => Math.round(median(lines.map((l) => l[key]).filter((v): v is number => typeof v === 'number' && v >= 0)) * 1000) / 1000;
const ratio = (a: number, b: number): number => Math.round((a / b) * 100) / 100;

/** Medians of the run, and Tessera's figures over dask-kubernetes' from the same run: below 1, Tessera is faster. */
function summary(): void {
  const line: Record<string, unknown> = { stat: 'median', runs };
  if (tesseraAdaptive.length > 0) line['tessera'] = { firstPodRunningS: medianOf(tesseraAdaptive, 'firstPodRunningS'), firstResultS: medianOf(tesseraAdaptive, 'firstResultS'), totalS: medianOf(tesseraAdaptive, 'totalS'), backToOnePodS: medianOf(tesseraAdaptive, 'backToOnePodS') };
  if (tesseraFixed.length > 0) line['tesseraFixed'] = { startAllPodsS: medianOf(tesseraFixed, 'startAllPodsS'), totalS: medianOf(tesseraFixed, 'totalS') };
  const daskOf = (lines: AnchorLine[], key: string): number => medianOf(lines, key);
  if (daskAdaptive.length > 0) {
    line['daskKubernetes'] = { clusterStartS: daskOf(daskAdaptive, 'clusterStartSeconds'), firstPodRunningS: daskOf(daskAdaptive, 'firstPodRunningSeconds'), firstResultS: daskOf(daskAdaptive, 'firstResultSeconds'), totalS: daskOf(daskAdaptive, 'totalSeconds'), backToOnePodS: daskOf(daskAdaptive, 'backToOnePodSeconds') };
    if (tesseraAdaptive.length > 0) {
      line['ratioFirstPodRunning'] = ratio(medianOf(tesseraAdaptive, 'firstPodRunningS'), medianOf(daskAdaptive, 'firstPodRunningSeconds'));
      line['ratioFirstResult'] = ratio(medianOf(tesseraAdaptive, 'firstResultS'), medianOf(daskAdaptive, 'firstResultSeconds'));
      line['ratioTotal'] = ratio(medianOf(tesseraAdaptive, 'totalS'), medianOf(daskAdaptive, 'totalSeconds'));
    }
  }
  if (daskFixed.length > 0) {
    line['daskKubernetesFixed'] = { startAllWorkersS: daskOf(daskFixed, 'startAllWorkersSeconds'), totalS: daskOf(daskFixed, 'totalSeconds') };
    // KubeCluster.close() deletes the DaskCluster and returns; its pods go after, through the operator and the garbage collector.
    line['daskPodsLeftAfterClose'] = Math.max(...[...daskAdaptive, ...daskFixed].map((l) => (typeof l['podsLeftAfterClose'] === 'number' ? l['podsLeftAfterClose'] : 0)));
    line['daskNamespaceEmptyAfterCloseS'] = medianOf([...daskAdaptive, ...daskFixed], 'namespaceEmptySecondsAfterClose');
    if (tesseraFixed.length > 0) line['ratioFixedTotal'] = ratio(medianOf(tesseraFixed, 'totalS'), medianOf(daskFixed, 'totalSeconds'));
  }
  emit(line);
}

const podsLeft = async (name: string): Promise<number> => (await core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: `tessera.dev/cluster=${name}` })).items.length;

try {
  for (let run = 0; run < runs; run++) {
    // Adaptive, from zero.
    if (systems.has('tessera')) {
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
        const line = {
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
        };
        emit(line);
        tesseraAdaptive.push(line);
      } finally {
        await client.close();
        await backend.close();
        await scheduler.close();
      }
    }
    if (systems.has('dask-kubernetes')) {
      const line = await daskKubernetes('adaptive', run);
      if (line !== undefined) daskAdaptive.push(line);
    }
    // A fixed set of pods, started before the work.
    if (systems.has('tessera')) {
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
        const line = { system: 'tessera-kubernetes-fixed', run, pods: maximum, startAllPodsS: s(startAll), firstResultS: s(r.firstResult), totalS: s(r.lastResult), podsLeftAfterClose: await podsLeft(name) };
        emit(line);
        tesseraFixed.push(line);
      } finally {
        await client.close();
        await backend.close();
        await scheduler.close();
      }
    }
    if (systems.has('dask-kubernetes') && fixedAnchor) {
      const line = await daskKubernetes('fixed', run);
      if (line !== undefined) daskFixed.push(line);
    }
  }
  summary();
} finally {
  await stopOperator();
  await agent.stop();
  await cluster.stop();
}
