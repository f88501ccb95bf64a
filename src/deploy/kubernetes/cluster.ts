/**
 * A Tessera cluster on Kubernetes, started from a laptop or a notebook, as Dask's
 * KubeCluster: a scheduler Deployment and Service in a namespace, worker pods that the
 * scheduler adds and deletes itself, and a client that reaches the scheduler.
 *
 * ```ts
 * const cluster = await KubernetesCluster.start({ namespace: 'analysis', image: 'registry.example/tessera:0.1.0', workers: 0 });
 * await cluster.adapt({ minimum: 0, maximum: 50 });
 * const client = await Client.connect(cluster);
 * // …
 * await client.close();
 * await cluster.close();   // deletes everything it created, worker pods included
 * ```
 *
 * Everything created is owned by one ConfigMap (which also holds the scaling range the
 * scheduler follows), so deleting it deletes the rest through the garbage collector, and
 * the worker pods are owned by the scheduler's pod. `close()`, and the exit of this
 * process without it, delete that ConfigMap.
 *
 * The scheduler is reached at its Service's cluster IP when that is routable from here (in
 * a pod, on a machine inside the cluster network), else through a port-forward to its pod
 * (`access` chooses). Through a Service, clients fetch results from worker pods directly;
 * through a port-forward (pod IPs out of reach), everything travels through the scheduler
 * (`directToWorkers` is false, and `Client.connect(cluster)` follows it).
 */
import { randomBytes } from 'node:crypto';
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import type { KubeConfig, V1DeleteOptions } from '@kubernetes/client-node';
import { parseDuration, resolveAdaptiveOptions, type AdaptiveInput } from '../../adaptive/policy.js';
import { InvalidArgumentError } from '../../errors.js';
import { Resource, attemptAll } from '../../lifecycle.js';
import { CLUSTER_CHANGES, CLUSTER_SUMMARY, type ClusterSummary, clusterBundle, DISPLAY, displayCluster } from '../../notebook/cards.js';
import { linkWithToken } from '../../notebook/html.js';
import { INSPECT, type MimeBundle } from '../../notebook/kernel.js';
import { RemoteSchedulerView } from '../display.js';
import { checkOptions, optionNames } from '../../options.js';
import { errorText, inCluster, KubeApi, loadKubeConfig } from './api.js';
import { ClusterStartError, KubernetesApiError } from './errors.js';
import { deleteOnExit, objectUrl } from './exit-cleanup.js';
import { ListWatch } from './list-watch.js';
import { asModel, type PodManifest, type PodTemplate } from './manifest-types.js';
import { checkClusterName, type KubernetesWorkerOptions, resolveWorkerSpec, WORKER_OPTIONS } from './options.js';
import { readPodReport, reportLines } from './pod-report.js';
import { classifyPod } from './pod-status.js';
import { retrying } from './retry.js';
import { DASHBOARD_PORT, objectNames, SCHEDULER_CONTAINER, SCHEDULER_PORT, schedulerObjects } from './scheduler-objects.js';
import { LABEL_CLUSTER, LABEL_COMPONENT } from './worker-pod.js';

export type SchedulerAccess = 'auto' | 'service' | 'port-forward';

export interface KubernetesClusterOptions extends KubernetesWorkerOptions {
  /** Default: the kubeconfig context's namespace, else 'default'. */
  readonly namespace?: string;
  /** Names every object (`<name>-scheduler`, `<name>-worker-xxxxx`). Default `tessera-xxxxx`. */
  readonly name?: string;
  /** Workers to hold until adapt() is called. Default 0. */
  readonly workers?: number;
  /** Laid over the scheduler's pod template (resources, node selector, env…), as `template` is over the workers'. */
  readonly schedulerTemplate?: PodTemplate;
  /**
   * How this process reaches the scheduler: 'service' (its Service's cluster IP),
   * 'port-forward' (through the API server to its pod), or 'auto' (default): the cluster
   * IP when it answers from here, else a port-forward.
   */
  readonly access?: SchedulerAccess;
  /** A KubeConfig or a kubeconfig file. Default: KUBECONFIG, ~/.kube/config, or in-cluster. */
  readonly kubeconfig?: KubeConfig | string;
  /** How long the scheduler may take to be ready. Default '5m'. */
  readonly startTimeout?: number | string;
  /** An unschedulable worker pod fails after this long. Default '5m'. */
  readonly pendingTimeout?: number | string;
  /** How long close() waits for everything to be gone. Default '2m'. */
  readonly closeTimeout?: number | string;
  /** Where progress and trouble are reported. Default: stderr. */
  readonly log?: (line: string) => void;
}

const CLUSTER_OPTIONS = optionNames<KubernetesClusterOptions>()([
  ...(WORKER_OPTIONS as readonly (keyof KubernetesWorkerOptions)[]),
  'namespace', 'name', 'workers', 'schedulerTemplate', 'access', 'kubeconfig', 'startTimeout', 'pendingTimeout', 'closeTimeout', 'log',
]);

interface Forwarding {
  readonly server: Server;
  readonly sockets: Set<Socket>;
}

function randomName(): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  return `tessera-${[...randomBytes(5)].map((b) => alphabet.charAt(b % alphabet.length)).join('')}`;
}

function durationOf(value: number | string | undefined, fallback: string, what: string): number {
  return parseDuration(value ?? fallback, what);
}

export class KubernetesCluster extends Resource {
  /** The cluster's name: its objects are `<name>`, `<name>-scheduler`, `<name>-token`, `<name>-worker-xxxxx`. */
  readonly name: string;
  readonly namespace: string;
  /** The scheduler's address from here: what Client.connect(cluster) dials. */
  readonly address: string;
  /** The cluster token (also in the Secret `<name>-token`). */
  readonly token: string;
  /** The dashboard from here (it asks for the token). */
  readonly dashboardLink: string;
  /** How the scheduler is reached. */
  readonly access: 'service' | 'port-forward';
  /** Whether a client here can reach the worker pods; if not, results come through the scheduler. */
  get directToWorkers(): boolean {
    return this.access === 'service';
  }
  readonly #api: KubeApi;
  readonly #forwardings: readonly Forwarding[];
  readonly #unregisterExit: () => void;
  readonly #closeTimeoutMs: number;
  readonly #log: (line: string) => void;
  /** The workers as the scheduler's dashboard last told them, for the card. */
  readonly #view: RemoteSchedulerView;
  /** The scaling range set by adapt(); undefined while the cluster holds a fixed size. */
  #adaptive: ClusterSummary['adaptive'];

  private constructor(init: {
    name: string;
    api: KubeApi;
    address: string;
    token: string;
    dashboardLink: string;
    access: 'service' | 'port-forward';
    forwardings: readonly Forwarding[];
    unregisterExit: () => void;
    closeTimeoutMs: number;
    log: (line: string) => void;
  }) {
    super('the Kubernetes cluster');
    this.name = init.name;
    this.namespace = init.api.namespace;
    this.address = init.address;
    this.token = init.token;
    this.dashboardLink = init.dashboardLink;
    this.access = init.access;
    this.#api = init.api;
    this.#forwardings = init.forwardings;
    this.#unregisterExit = init.unregisterExit;
    this.#closeTimeoutMs = init.closeTimeoutMs;
    this.#log = init.log;
    this.#view = new RemoteSchedulerView({ dashboard: init.dashboardLink, token: init.token });
    // Read once now, so that a card shown soon (the client's, say) has workers to show.
    void this.#view.refresh();
  }

  /**
   * Creates the scheduler (Deployment, Service, ServiceAccount and Role, token Secret) and
   * waits until it is ready and reachable. If it cannot start (a wrong image, a crash),
   * everything created is deleted and ClusterStartError tells why, with the pod's events
   * and log.
   */
  static async start(options: KubernetesClusterOptions): Promise<KubernetesCluster> {
    const where = 'KubernetesCluster.start()';
    checkOptions(options, CLUSTER_OPTIONS, where);
    const { namespace, name, workers, schedulerTemplate, access, kubeconfig, startTimeout, pendingTimeout, closeTimeout, log, ...workerOptions } = options;
    const spec = resolveWorkerSpec(workerOptions, where);
    const clusterName = checkClusterName(name ?? randomName(), where);
    const fixed = workers ?? 0;
    if (!Number.isInteger(fixed) || fixed < 0) throw new InvalidArgumentError(`${where}: options.workers must be a non-negative integer, got ${String(fixed)}`);
    const how = access ?? 'auto';
    if (!['auto', 'service', 'port-forward'].includes(how)) throw new InvalidArgumentError(`${where}: options.access must be 'auto', 'service' or 'port-forward', got ${JSON.stringify(how)}`);
    const startTimeoutMs = durationOf(startTimeout, '5m', `${where}: options.startTimeout`);
    const closeTimeoutMs = durationOf(closeTimeout, '2m', `${where}: options.closeTimeout`);
    if (pendingTimeout !== undefined) durationOf(pendingTimeout, '5m', `${where}: options.pendingTimeout`);
    if (schedulerTemplate !== undefined && (typeof schedulerTemplate !== 'object' || Array.isArray(schedulerTemplate))) throw new InvalidArgumentError(`${where}: options.schedulerTemplate must be a pod manifest (an object)`);
    if (namespace !== undefined && (typeof namespace !== 'string' || namespace === '')) throw new InvalidArgumentError(`${where}: options.namespace must be a non-empty string`);
    const say = log ?? ((line: string) => process.stderr.write(`tessera: ${line}\n`));

    const loaded = await loadKubeConfig(kubeconfig, where);
    const api = await KubeApi.open(loaded.config, namespace ?? loaded.namespace ?? 'default');
    const token = randomBytes(32).toString('base64url');
    const workerRest: Omit<KubernetesWorkerOptions, 'image'> = { ...workerOptions };
    delete (workerRest as { image?: string }).image;
    const objects = schedulerObjects({
      name: clusterName,
      namespace: api.namespace,
      image: spec.image,
      token,
      worker: workerRest,
      adapt: { minimum: fixed, maximum: fixed },
      pendingTimeout: pendingTimeout === undefined ? undefined : String(pendingTimeout),
      schedulerTemplate: schedulerTemplate ?? {},
    });
    const names = objectNames(clusterName);
    const rootUrl = objectUrl(api.config, `/api/v1/namespaces/${encodeURIComponent(api.namespace)}/configmaps/${encodeURIComponent(names.root)}`);
    const created = await create(api, 'create configmaps', () => api.core.createNamespacedConfigMap({ namespace: api.namespace, body: asModel(objects.root) }));
    const rootUid = created.metadata?.uid ?? '';
    const deleteBody = JSON.stringify({ propagationPolicy: 'Background', preconditions: { uid: rootUid } });
    const unregisterExit = deleteOnExit(api.config, () => [{ url: rootUrl, body: deleteBody }]);
    const forwardings: Forwarding[] = [];
    try {
      const owned = objects.owned({ apiVersion: 'v1', kind: 'ConfigMap', name: names.root, uid: rootUid });
      const k8s = api.k8s;
      const apps = api.config.makeApiClient(k8s.AppsV1Api);
      const rbac = api.config.makeApiClient(k8s.RbacAuthorizationV1Api);
      const ns = api.namespace;
      await create(api, 'create secrets', () => api.core.createNamespacedSecret({ namespace: ns, body: asModel(owned.secret) }));
      await create(api, 'create serviceaccounts', () => api.core.createNamespacedServiceAccount({ namespace: ns, body: asModel(owned.serviceAccount) }));
      await create(api, 'create roles', () => rbac.createNamespacedRole({ namespace: ns, body: asModel(owned.role) }));
      await create(api, 'create rolebindings', () => rbac.createNamespacedRoleBinding({ namespace: ns, body: asModel(owned.roleBinding) }));
      const service = await create(api, 'create services', () => api.core.createNamespacedService({ namespace: ns, body: asModel(owned.service) }));
      await create(api, 'create deployments', () => apps.createNamespacedDeployment({ namespace: ns, body: asModel(owned.deployment) }));
      say(`kubernetes: cluster ${clusterName} in namespace ${ns}: scheduler starting (image ${spec.image})`);

      const pod = await waitForScheduler(api, clusterName, startTimeoutMs);
      const clusterIp = service.spec?.clusterIP;
      let chosen: 'service' | 'port-forward' = how === 'auto' ? 'port-forward' : how;
      if (how !== 'port-forward' && clusterIp !== undefined && clusterIp !== '' && clusterIp !== 'None') {
        if (how === 'service' || inCluster() || (await reachable(clusterIp, SCHEDULER_PORT, 2_000))) chosen = 'service';
      }
      let host: string;
      let port: number;
      let dashboardPort: number;
      if (chosen === 'service') {
        if (clusterIp === undefined || clusterIp === '' || clusterIp === 'None') throw new InvalidArgumentError(`${where}: the scheduler's Service has no cluster IP to reach it at`);
        host = clusterIp.includes(':') ? `[${clusterIp}]` : clusterIp;
        port = SCHEDULER_PORT;
        dashboardPort = DASHBOARD_PORT;
      } else {
        const comm = await forward(api, pod, SCHEDULER_PORT, say);
        forwardings.push(comm);
        const dashboard = await forward(api, pod, DASHBOARD_PORT, say);
        forwardings.push(dashboard);
        host = '127.0.0.1';
        port = portOf(comm.server);
        dashboardPort = portOf(dashboard.server);
      }
      say(`kubernetes: cluster ${clusterName} ready at tcp://${host}:${port} (${chosen === 'service' ? 'its Service' : `a port-forward to pod ${pod}`})`);
      return new KubernetesCluster({
        name: clusterName,
        api,
        address: `tcp://${host}:${port}`,
        token,
        dashboardLink: `http://${host}:${dashboardPort}/`,
        access: chosen,
        forwardings,
        unregisterExit,
        closeTimeoutMs,
        log: say,
      });
    } catch (error) {
      // Nothing half-made is left: the root's deletion takes the rest.
      await attemptAll([
        () => closeForwardings(forwardings),
        () => removeCluster(api, clusterName, rootUid, closeTimeoutMs),
      ]).catch((cleanup: unknown) => say(`kubernetes: cleaning up cluster ${clusterName} after a failed start: ${cleanup instanceof Error ? cleanup.message : String(cleanup)}`));
      unregisterExit();
      throw error;
    }
  }

  /**
   * Lets the scheduler follow the work within [minimum, maximum] (the options of
   * `LocalCluster.adapt`), from now on and across restarts of the scheduler. Resolves once
   * the scaling range is written; the scheduler picks it up within a moment.
   */
  async adapt(options: AdaptiveInput = {}): Promise<void> {
    this.assertRunning();
    const resolved = resolveAdaptiveOptions(options);
    await this.#setAdapt(options);
    this.#adaptive = { minimum: resolved.minimum, maximum: resolved.maximum };
  }

  /** Holds `n` workers (adapting within [n, n]). */
  async scale(n: number): Promise<void> {
    this.assertRunning();
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`scale(n): n must be a non-negative integer, got ${String(n)}`);
    await this.#setAdapt({ minimum: n, maximum: n });
    this.#adaptive = undefined;
  }

  /** The worker pods now, by name, with their phase. */
  async workerPods(): Promise<{ readonly name: string; readonly phase: string }[]> {
    const { pods } = await this.#api.listPods(`${LABEL_CLUSTER}=${this.name},${LABEL_COMPONENT}=worker`);
    return pods.map((p) => ({ name: p.metadata?.name ?? '', phase: p.metadata?.deletionTimestamp === undefined ? (p.status?.phase ?? 'Unknown') : 'Terminating' }));
  }

  /** The scheduler's last log lines (its adaptive decisions and reports of failed worker pods). */
  async schedulerLogs(tailLines = 100): Promise<string> {
    const pods = (await this.#api.listPods(`${LABEL_CLUSTER}=${this.name},${LABEL_COMPONENT}=scheduler`)).pods;
    const name = pods.find((p) => p.metadata?.deletionTimestamp === undefined)?.metadata?.name;
    if (name === undefined) return '';
    return this.#api.podLog(name, SCHEDULER_CONTAINER, tailLines, false);
  }

  /** API requests this process made, by kind. */
  get requests(): ReadonlyMap<string, number> {
    return this.#api.requests;
  }

  async #setAdapt(options: AdaptiveInput): Promise<void> {
    const k8s = this.#api.k8s;
    await retrying(
      () =>
        this.#api.call('patch configmaps', () =>
          this.#api.core.patchNamespacedConfigMap(
            { namespace: this.namespace, name: objectNames(this.name).root, body: { data: { adapt: JSON.stringify(options) } } },
            k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
          ),
        ),
      { withinMs: 30_000 },
    );
  }

  // ---- how it shows itself: a card in a notebook, text elsewhere (src/notebook/cards.ts) ----

  [CLUSTER_SUMMARY](): ClusterSummary {
    const details = [
      { label: 'Namespace', field: 'namespace', text: this.namespace },
      { label: 'Reached', field: 'access', text: this.access === 'service' ? "at its Service's cluster IP" : 'through a port-forward to its pod' },
    ];
    return this.#view.summary('KubernetesCluster', this.state, this.address, linkWithToken(this.dashboardLink, this.token), details, this.#adaptive);
  }

  /** While the card is shown, the dashboard is read about once a second. */
  [CLUSTER_CHANGES](changed: () => void): () => void {
    return this.#view.watch(changed);
  }

  async [DISPLAY](): Promise<MimeBundle> {
    if (this.state === 'running') await this.#view.refresh();
    return displayCluster(this);
  }

  [INSPECT](): string {
    return clusterBundle(this[CLUSTER_SUMMARY]())['text/plain']!;
  }

  /** Deletes everything created (scheduler, workers, Service, Secret, RBAC) and waits until it is gone. */
  protected async onClose(): Promise<void> {
    this.#view.stop();
    await attemptAll([
      () => closeForwardings(this.#forwardings),
      async () => {
        const root = await this.#api.core.readNamespacedConfigMap({ namespace: this.namespace, name: objectNames(this.name).root }).catch(() => undefined);
        await removeCluster(this.#api, this.name, root?.metadata?.uid, this.#closeTimeoutMs);
      },
      () => this.#unregisterExit(),
    ]).catch((error: unknown) => {
      this.#log(`kubernetes: closing cluster ${this.name}: ${error instanceof Error ? error.message : String(error)}`);
      throw error;
    });
  }
}

/** Creates one object, retrying what can pass; an object left by our own lost answer counts as made. */
async function create<T>(api: KubeApi, request: string, send: () => Promise<T>): Promise<T> {
  return retrying(() => api.call(request, send), {
    withinMs: 60_000,
    retryable: (error) => error instanceof KubernetesApiError && [0, 429, 500, 502, 503, 504].includes(error.status),
  });
}

function portOf(server: Server): number {
  const address = server.address();
  return typeof address === 'object' && address !== null ? address.port : 0;
}

/** Whether a TCP connection to host:port opens within `ms`. */
function reachable(host: string, port: number, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(ms, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Waits for the scheduler's pod to be Ready; fails with its events and log if it cannot start. */
async function waitForScheduler(api: KubeApi, cluster: string, timeoutMs: number): Promise<string> {
  const selector = `${LABEL_CLUSTER}=${cluster},${LABEL_COMPONENT}=scheduler`;
  const started = performance.now();
  let settle: (outcome: { pod: string } | { failed: PodManifest; reason: string; message: string; log: 'none' | 'current' | 'previous' }) => void = () => undefined;
  const outcome = new Promise<Parameters<typeof settle>[0]>((resolve) => (settle = resolve));
  const look = (pod: PodManifest): void => {
    const name = pod.metadata?.name;
    if (name === undefined || pod.metadata?.deletionTimestamp !== undefined) return;
    if (pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true) {
      settle({ pod: name });
      return;
    }
    const state = classifyPod(pod, { pendingForMs: performance.now() - started, pendingTimeoutMs: timeoutMs });
    if (state.kind === 'failed') settle({ failed: pod, reason: state.reason, message: state.message, log: state.log });
  };
  const watch = new ListWatch<PodManifest>({
    api,
    resource: 'pods',
    path: `/api/v1/namespaces/${encodeURIComponent(api.namespace)}/pods`,
    selector: { labelSelector: selector },
    list: async () => {
      const { pods, resourceVersion } = await api.listPods(selector);
      return { items: pods, resourceVersion };
    },
    onSync: (pods) => pods.forEach(look),
    onEvent: (type, pod) => {
      if (type !== 'DELETED') look(pod);
    },
  });
  watch.start();
  const timer = setTimeout(() => settle({ failed: {}, reason: 'Timeout', message: `the scheduler was not ready within ${Math.round(timeoutMs / 1000)} s`, log: 'current' }), timeoutMs);
  try {
    const result = await outcome;
    if ('pod' in result) return result.pod;
    const name = result.failed.metadata?.name;
    const pods = name === undefined ? (await api.listPods(selector).catch(() => ({ pods: [] }))).pods : [result.failed];
    const pod = pods[0];
    const lines = [`the scheduler of cluster ${cluster} did not start: ${result.reason}: ${result.message}`];
    if (pod?.metadata?.name !== undefined) {
      const report = await readPodReport(api, { name: pod.metadata.name, uid: pod.metadata.uid }, SCHEDULER_CONTAINER, { kind: 'failed', reason: result.reason, message: result.message, log: result.log });
      lines.push(`  pod ${pod.metadata.name}:`, ...reportLines(report, result.log === 'previous'));
    }
    throw new ClusterStartError(lines.join('\n'), result.reason);
  } finally {
    clearTimeout(timer);
    await watch.stop();
  }
}

/**
 * A local port forwarded to `port` of `pod`, one API server stream per connection. A stream
 * that cannot be opened closes its connection (the client sees it end) and is logged.
 */
async function forward(api: KubeApi, pod: string, port: number, log: (line: string) => void): Promise<Forwarding> {
  const forwarder = new api.k8s.PortForward(api.config);
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    forwarder.portForward(api.namespace, pod, [port], socket, null, socket).catch((error: unknown) => {
      log(`kubernetes: port-forward to pod ${pod}:${port} failed: ${errorText(error)}`);
      socket.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return { server, sockets };
}

async function closeForwardings(forwardings: readonly Forwarding[]): Promise<void> {
  await Promise.all(
    forwardings.map(
      (f) =>
        new Promise<void>((resolve) => {
          for (const socket of f.sockets) socket.destroy();
          f.server.close(() => resolve());
        }),
    ),
  );
}

/**
 * Deletes the cluster: first the scheduler's Deployment, waiting for its pod to go (on
 * SIGTERM the scheduler deletes its worker pods, and it still has its Role to do so);
 * then the root ConfigMap, whose deletion takes the rest (Service, Secret, RBAC, and any
 * worker pod left, through its owner, the scheduler pod). Waits until no pod or
 * Deployment of the cluster is left.
 */
async function removeCluster(api: KubeApi, cluster: string, rootUid: string | undefined, timeoutMs: number): Promise<void> {
  const names = objectNames(cluster);
  const apps = api.config.makeApiClient(api.k8s.AppsV1Api);
  const gone = async (send: () => Promise<unknown>): Promise<void> => {
    try {
      await send();
    } catch (error) {
      if (error instanceof KubernetesApiError && error.status === 404) return;
      throw error;
    }
  };
  const deadline = performance.now() + timeoutMs;
  await retrying(
    () =>
      gone(() =>
        api.call('delete deployments', () =>
          apps.deleteNamespacedDeployment({ namespace: api.namespace, name: names.scheduler, body: asModel<V1DeleteOptions>({ propagationPolicy: 'Foreground' }) }),
        ),
      ),
    { withinMs: 30_000 },
  );
  const schedulerSelector = `${LABEL_CLUSTER}=${cluster},${LABEL_COMPONENT}=scheduler`;
  while (performance.now() < deadline && (await api.listPods(schedulerSelector)).pods.length > 0) await new Promise((resolve) => setTimeout(resolve, 250));
  await retrying(
    () =>
      gone(() =>
        api.call('delete configmaps', () =>
          api.core.deleteNamespacedConfigMap({
            namespace: api.namespace,
            name: names.root,
            body: asModel<V1DeleteOptions>({ propagationPolicy: 'Background', ...(rootUid === undefined ? {} : { preconditions: { uid: rootUid } }) }),
          }),
        ),
      ),
    { withinMs: 30_000 },
  );
  const selector = `${LABEL_CLUSTER}=${cluster}`;
  for (;;) {
    const [pods, deployments] = await Promise.all([
      api.listPods(selector).then((r) => r.pods.length),
      api.call('list deployments', () => apps.listNamespacedDeployment({ namespace: api.namespace, labelSelector: selector })).then((r) => r.items.length),
    ]);
    if (pods === 0 && deployments === 0) return;
    if (performance.now() > deadline) throw new KubernetesApiError('delete cluster', 0, `${pods} pod(s) and ${deployments} deployment(s) of cluster ${cluster} still there after ${Math.round(timeoutMs / 1000)} s`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
