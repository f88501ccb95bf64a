/**
 * The scheduler in a pod, made adaptive with worker pods:
 *
 *   tessera scheduler --preload dist/deploy/kubernetes/preload.js     (in the image's working directory)
 *
 * `setup(scheduler)` starts the Kubernetes backend with the pod's service account,
 * serves `/health` for the pod's probes, and follows the scaling range from a ConfigMap;
 * `teardown` deletes the worker pods. Settings come from the environment, which
 * deploy/kubernetes/deployment.yaml (or KubernetesCluster) sets:
 *
 * | variable | meaning | default |
 * |---|---|---|
 * | TESSERA_KUBERNETES_CLUSTER | names and labels the worker pods (`<cluster>-worker-xxxxx`) | `tessera` |
 * | TESSERA_KUBERNETES_NAMESPACE | where worker pods go | the pod's own |
 * | TESSERA_KUBERNETES_IMAGE | the workers' image | the scheduler pod's image |
 * | TESSERA_KUBERNETES_WORKER | the worker pods' shape: JSON of KubernetesWorkerOptions | `{}` |
 * | TESSERA_KUBERNETES_TOKEN_SECRET | the Secret (key `token`) workers read the cluster token from | none |
 * | TESSERA_KUBERNETES_SCHEDULER_ADDRESS | the address workers dial | `tcp://$POD_IP:<port>` |
 * | TESSERA_KUBERNETES_CONTROL | a ConfigMap whose `adapt` key (JSON of adapt() options) is followed live | none |
 * | TESSERA_KUBERNETES_ADAPT | adapt() options (JSON) to start with, when there is no CONTROL | none |
 * | TESSERA_KUBERNETES_PENDING_TIMEOUT | an unschedulable worker pod fails after this long | `5m` |
 * | TESSERA_KUBERNETES_HEALTH_PORT | the port of `/health` | `8788` |
 *
 * A TESSERA_KUBERNETES_ variable not in this table stops the start with a message naming
 * it (and what it may have meant), as an unknown option does.
 */
import { type AdaptiveInput, parseDuration, resolveAdaptiveOptions } from '../../adaptive/policy.js';
import { InvalidArgumentError } from '../../errors.js';
import { checkOptions, closest } from '../../options.js';
import type { Scheduler } from '../../process/scheduler.js';
import { KubeApi, loadKubeConfig } from './api.js';
import { KubernetesBackend } from './backend.js';
import { type HealthServer, startHealthServer } from './health.js';
import { ListWatch } from './list-watch.js';
import { type KubernetesWorkerOptions, WORKER_OPTIONS } from './options.js';

const PREFIX = 'TESSERA_KUBERNETES_';
const SETTINGS = ['CLUSTER', 'NAMESPACE', 'IMAGE', 'WORKER', 'TOKEN_SECRET', 'SCHEDULER_ADDRESS', 'CONTROL', 'ADAPT', 'PENDING_TIMEOUT', 'HEALTH_PORT'] as const;

/** The preload's settings, read from the environment and checked. */
export interface PreloadSettings {
  readonly cluster: string | undefined;
  readonly namespace: string | undefined;
  readonly image: string | undefined;
  readonly worker: KubernetesWorkerOptions;
  readonly tokenSecret: string | undefined;
  readonly schedulerAddress: string | undefined;
  readonly control: string | undefined;
  readonly adapt: AdaptiveInput | undefined;
  readonly pendingTimeout: string | undefined;
  readonly healthPort: number;
}

function json(name: string, value: string): unknown {
  try {
    return JSON.parse(value) as unknown;
  } catch (error) {
    throw new InvalidArgumentError(`${PREFIX}${name} must be JSON: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads and checks the TESSERA_KUBERNETES_* variables (throws InvalidArgumentError naming a wrong one). */
export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): PreloadSettings {
  const known: readonly string[] = SETTINGS;
  for (const key of Object.keys(env)) {
    if (!key.startsWith(PREFIX)) continue;
    const name = key.slice(PREFIX.length);
    if (known.includes(name)) continue;
    const hint = closest(name, known);
    throw new InvalidArgumentError(`unknown setting ${key}${hint === undefined ? ` (known: ${SETTINGS.map((s) => PREFIX + s).join(', ')})` : ` (did you mean ${PREFIX}${hint}?)`}`);
  }
  const get = (name: (typeof SETTINGS)[number]): string | undefined => {
    const value = env[PREFIX + name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const workerText = get('WORKER');
  const worker = workerText === undefined ? {} : json('WORKER', workerText);
  if (!isObject(worker)) throw new InvalidArgumentError(`${PREFIX}WORKER must be a JSON object of worker options`);
  checkOptions(worker, WORKER_OPTIONS, `${PREFIX}WORKER`);
  const adaptText = get('ADAPT');
  const adapt = adaptText === undefined ? undefined : json('ADAPT', adaptText);
  if (adapt !== undefined) {
    if (!isObject(adapt)) throw new InvalidArgumentError(`${PREFIX}ADAPT must be a JSON object of adapt() options`);
    resolveAdaptiveOptions(adapt);
  }
  const pendingTimeout = get('PENDING_TIMEOUT');
  if (pendingTimeout !== undefined) parseDuration(/^\d+$/.test(pendingTimeout) ? Number(pendingTimeout) : pendingTimeout, `${PREFIX}PENDING_TIMEOUT`);
  const healthText = get('HEALTH_PORT') ?? '8788';
  const healthPort = Number(healthText);
  if (!Number.isInteger(healthPort) || healthPort < 0 || healthPort > 65535) throw new InvalidArgumentError(`${PREFIX}HEALTH_PORT must be a port number, got ${healthText}`);
  return {
    cluster: get('CLUSTER'),
    namespace: get('NAMESPACE'),
    image: get('IMAGE'),
    worker: worker,
    tokenSecret: get('TOKEN_SECRET'),
    schedulerAddress: get('SCHEDULER_ADDRESS'),
    control: get('CONTROL'),
    adapt: adapt,
    pendingTimeout,
    healthPort,
  };
}

/** The address workers dial: the scheduler's own, with the pod's IP when it listens on every interface. */
export function workerFacingAddress(schedulerAddress: string, podIp: string | undefined): string {
  const match = /^(tcp|tls):\/\/(.+):(\d+)$/.exec(schedulerAddress);
  if (match === null) throw new InvalidArgumentError(`the scheduler's address ${schedulerAddress} is not tcp://host:port`);
  const host = match[2]!.replace(/^\[(.*)\]$/, '$1');
  if (host !== '0.0.0.0' && host !== '::' && host !== '') return schedulerAddress;
  if (podIp === undefined || podIp === '') {
    throw new InvalidArgumentError(`the scheduler listens on every interface (${schedulerAddress}): set POD_IP (downward API, status.podIP) or ${PREFIX}SCHEDULER_ADDRESS so workers know where to dial`);
  }
  return `${match[1]!}://${podIp.includes(':') ? `[${podIp}]` : podIp}:${match[3]!}`;
}

interface Running {
  readonly backend: KubernetesBackend;
  readonly health: HealthServer;
  readonly control: ListWatch<ControlMap> | undefined;
}

interface ControlMap {
  readonly metadata?: { readonly name?: string; readonly resourceVersion?: string };
  readonly data?: Readonly<Record<string, string>>;
}

const running = new WeakMap<Scheduler, Running>();

function log(line: string): void {
  process.stderr.write(`tessera scheduler: ${line}\n`);
}

/** Attaches worker pods to `scheduler` (called by `tessera scheduler --preload`). */
export async function setup(scheduler: Scheduler): Promise<void> {
  const settings = settingsFromEnv();
  const loaded = await loadKubeConfig(undefined, 'the Kubernetes preload');
  const namespace = settings.namespace ?? process.env['POD_NAMESPACE'] ?? loaded.namespace ?? 'default';
  const api = await KubeApi.open(loaded.config, namespace);
  let image = settings.worker.image ?? settings.image;
  if (image === undefined) {
    const podName = process.env['POD_NAME'] ?? process.env['HOSTNAME'];
    if (podName === undefined) throw new InvalidArgumentError(`set ${PREFIX}IMAGE: the scheduler's own pod (to take its image) is not known without POD_NAME`);
    const own = await api.readPod(podName);
    const containers = own.spec?.containers ?? [];
    image = (containers.find((c) => c.name === 'scheduler') ?? containers[0])?.image;
    if (image === undefined) throw new InvalidArgumentError(`set ${PREFIX}IMAGE: pod ${podName} names no image`);
  }
  const tokenGiven = process.env['TESSERA_TOKEN'];
  const backend = await KubernetesBackend.start({
    ...settings.worker,
    image,
    scheduler: settings.schedulerAddress ?? workerFacingAddress(scheduler.address, process.env['POD_IP']),
    namespace,
    ...(settings.cluster === undefined ? {} : { cluster: settings.cluster }),
    ...(settings.tokenSecret !== undefined ? { token: { secret: settings.tokenSecret } } : tokenGiven !== undefined && tokenGiven !== '' ? { token: tokenGiven } : {}),
    ...(settings.pendingTimeout === undefined ? {} : { pendingTimeout: /^\d+$/.test(settings.pendingTimeout) ? Number(settings.pendingTimeout) : settings.pendingTimeout }),
    // The backend loads the in-cluster configuration itself: in a pod, its workers are owned by this pod.
    // The scheduler closes right after teardown, and its workers leave with it.
    closeTimeout: 5_000,
    log,
  });
  let control: ListWatch<ControlMap> | undefined;
  let health: HealthServer | undefined;
  try {
    const host = /^(?:tcp|tls):\/\/\[?([^\]]*?)\]?:\d+$/.exec(scheduler.address)?.[1] ?? '0.0.0.0';
    health = await startHealthServer(host, settings.healthPort, () => scheduler.state === 'running' && backend.state === 'running');
    if (settings.control !== undefined) {
      control = followControl(api, settings.control, scheduler, backend);
      await control.synced;
    } else if (settings.adapt !== undefined) {
      scheduler.adapt(backend, settings.adapt);
      log(`kubernetes: adapting ${JSON.stringify(settings.adapt)}`);
    } else {
      log(`kubernetes: not adapting: set ${PREFIX}CONTROL (a ConfigMap with an 'adapt' key) or ${PREFIX}ADAPT`);
    }
  } catch (error) {
    await control?.stop();
    await health?.close();
    await backend.close();
    throw error;
  }
  running.set(scheduler, { backend, health, control });
  log(`kubernetes: worker pods of cluster ${backend.cluster} in namespace ${namespace}, image ${image}; /health on port ${health.port}`);
}

/** Stops adapting and deletes the worker pods; the scheduler closes next. */
export async function teardown(scheduler: Scheduler): Promise<void> {
  const state = running.get(scheduler);
  if (state === undefined) return;
  running.delete(scheduler);
  scheduler.stopAdapting();
  await state.control?.stop();
  await state.backend.close();
  await state.health.close();
}

/** The backend attached to `scheduler` by setup(), if any. */
export function backendOf(scheduler: Scheduler): KubernetesBackend | undefined {
  return running.get(scheduler)?.backend;
}

/** Follows the ConfigMap's `adapt` key: adapt with those options, or stop adapting when it is gone. */
function followControl(api: KubeApi, name: string, scheduler: Scheduler, backend: KubernetesBackend): ListWatch<ControlMap> {
  let current: string | undefined;
  const apply = (map: ControlMap | undefined): void => {
    const text = map?.data?.['adapt']?.trim();
    if (text === current) return;
    current = text;
    if (text === undefined || text === '') {
      scheduler.stopAdapting();
      log(`kubernetes: ConfigMap ${name} has no 'adapt': not adapting (workers stay as they are)`);
      return;
    }
    try {
      const options = JSON.parse(text) as unknown;
      if (!isObject(options)) throw new InvalidArgumentError('adapt must be a JSON object');
      resolveAdaptiveOptions(options);
      scheduler.adapt(backend, options);
      log(`kubernetes: adapting ${text} (from ConfigMap ${name})`);
    } catch (error) {
      log(`kubernetes: ConfigMap ${name}: 'adapt' ignored, scaling unchanged: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
  const fieldSelector = `metadata.name=${name}`;
  const watch = new ListWatch<ControlMap>({
    api,
    resource: 'configmaps',
    path: `/api/v1/namespaces/${encodeURIComponent(api.namespace)}/configmaps`,
    selector: { fieldSelector },
    list: async () => {
      const list = await api.call('list configmaps', () => api.core.listNamespacedConfigMap({ namespace: api.namespace, fieldSelector }));
      return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? '' };
    },
    onSync: (items) => apply(items[0]),
    onEvent: (type, map) => apply(type === 'DELETED' ? undefined : map),
    onTrouble: (error, wait) => log(`kubernetes: watching ConfigMap ${name}: ${error.message}; again in ${(wait / 1000).toFixed(1)} s`),
  });
  watch.start();
  return watch;
}
