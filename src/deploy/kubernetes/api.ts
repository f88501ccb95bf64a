/**
 * The Kubernetes API as Tessera uses it, through the official client: only the calls the
 * backend and the cluster class make, each counted (the benchmark reports requests per
 * scale-up) and each failure turned into a KubernetesApiError with the server's status,
 * reason and Retry-After.
 *
 * client-node takes most of a second to import, so it is loaded on first use: importing
 * `tessera` costs nothing for users who never touch Kubernetes.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { CoreV1Api, KubeConfig, V1DeleteOptions, V1Pod } from '@kubernetes/client-node';
import { InvalidArgumentError } from '../../errors.js';
import { KubernetesApiError } from './errors.js';
import { asModel, type PodManifest } from './manifest-types.js';

export type ClientNode = typeof import('@kubernetes/client-node');

let loading: Promise<ClientNode> | undefined;

/** The client library, imported once. */
export function clientNode(): Promise<ClientNode> {
  return (loading ??= import('@kubernetes/client-node'));
}

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** What went wrong, in words: an Error's message, or a WebSocket ErrorEvent's, or the value. */
export function errorText(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'object' && error !== null) {
    const inner = (error as { error?: unknown }).error;
    if (inner instanceof Error) return inner.message;
    const message = (error as { message?: unknown }).message;
    if (typeof message === 'string' && message !== '') return message;
  }
  return String(error);
}

/** Where the API server is and who we are: a kubeconfig file, a KubeConfig, or (default) in-cluster, else ~/.kube/config. */
export type KubeConfigSource = KubeConfig | string | undefined;

/** True inside a pod that has its service-account token mounted. */
export function inCluster(): boolean {
  return process.env['KUBERNETES_SERVICE_HOST'] !== undefined && existsSync(`${SERVICE_ACCOUNT_DIR}/token`);
}

export async function loadKubeConfig(source: KubeConfigSource, where: string): Promise<{ config: KubeConfig; inCluster: boolean; namespace: string | undefined }> {
  const k8s = await clientNode();
  if (typeof source === 'object') {
    if (typeof (source as Partial<KubeConfig>).makeApiClient !== 'function') throw new InvalidArgumentError(`${where}: options.kubeconfig must be a KubeConfig or the path of a kubeconfig file`);
    return { config: source, inCluster: false, namespace: contextNamespace(source) };
  }
  const config = new k8s.KubeConfig();
  if (typeof source === 'string') {
    config.loadFromFile(source);
    return { config, inCluster: false, namespace: contextNamespace(config) };
  }
  if ((source as unknown) !== undefined) throw new InvalidArgumentError(`${where}: options.kubeconfig must be a KubeConfig or the path of a kubeconfig file`);
  if (inCluster()) {
    config.loadFromCluster();
    return { config, inCluster: true, namespace: contextNamespace(config) };
  }
  const files = (process.env['KUBECONFIG'] ?? '').split(delimiter).filter((f) => f !== '');
  const home = process.env['HOME'] ?? homedir();
  if (!files.some((f) => existsSync(f)) && !existsSync(join(home, '.kube', 'config'))) {
    // client-node would guess http://localhost:8080 and every call would fail from then on.
    throw new InvalidArgumentError(`${where}: no Kubernetes configuration: not in a pod with a service-account token, KUBECONFIG names no file, and there is no ~/.kube/config; pass options.kubeconfig`);
  }
  config.loadFromDefault();
  return { config, inCluster: false, namespace: contextNamespace(config) };
}

function contextNamespace(config: KubeConfig): string | undefined {
  const namespace = config.getContextObject(config.getCurrentContext())?.namespace;
  return namespace === undefined || namespace === '' ? undefined : namespace.trim();
}

/** The parts of an Event a report shows. */
export interface EventSummary {
  readonly type: string;
  readonly reason: string;
  readonly message: string;
  readonly count: number;
}

export interface WatchEvent<T> {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  readonly object: T;
}

/** An open watch: `stop()` ends it without calling its end handler. */
export interface OpenWatch {
  stop(): void;
}

function parseStatus(body: unknown): { message?: string; reason?: string } {
  let value = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body) as unknown;
    } catch {
      return body.trim() === '' ? {} : { message: body.trim().slice(0, 500) };
    }
  }
  if (typeof value !== 'object' || value === null) return {};
  const status = value as { message?: unknown; reason?: unknown };
  return {
    ...(typeof status.message === 'string' ? { message: status.message } : {}),
    ...(typeof status.reason === 'string' ? { reason: status.reason } : {}),
  };
}

function retryAfter(headers: unknown): number | undefined {
  if (typeof headers !== 'object' || headers === null) return undefined;
  const value = (headers as Record<string, unknown>)['retry-after'];
  const seconds = typeof value === 'string' ? Number(value) : NaN;
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : undefined;
}

/** Any failure of a client-node call, as a KubernetesApiError. */
export function toApiError(request: string, error: unknown, k8s: ClientNode): KubernetesApiError {
  if (error instanceof KubernetesApiError) return error;
  if (error instanceof k8s.ApiException) {
    const { code, body, headers } = error as InstanceType<ClientNode['ApiException']> & { code: number; body: unknown; headers: unknown };
    const status = parseStatus(body);
    return new KubernetesApiError(request, code, status.message ?? (code === 401 ? 'Unauthorized' : 'the API server refused'), { reason: status.reason, retryAfterMs: retryAfter(headers), cause: error });
  }
  const statusCode = (error as { statusCode?: unknown } | null)?.statusCode;
  if (typeof statusCode === 'number') return new KubernetesApiError(request, statusCode, error instanceof Error ? error.message : String(error), { cause: error });
  const message = error instanceof Error ? `${error.message}${typeof (error as NodeJS.ErrnoException).code === 'string' ? ` (${(error as NodeJS.ErrnoException).code})` : ''}` : String(error);
  return new KubernetesApiError(request, 0, `no answer from the API server: ${message}`, { cause: error });
}

/**
 * One API server, one namespace, as one identity. `requests` counts every call by what it
 * asked ('create pods', 'watch pods'…), each retry included.
 */
export class KubeApi {
  readonly k8s: ClientNode;
  readonly config: KubeConfig;
  readonly namespace: string;
  readonly core: CoreV1Api;
  readonly #requests = new Map<string, number>();

  private constructor(k8s: ClientNode, config: KubeConfig, namespace: string) {
    this.k8s = k8s;
    this.config = config;
    this.namespace = namespace;
    this.core = config.makeApiClient(k8s.CoreV1Api);
  }

  static async open(config: KubeConfig, namespace: string): Promise<KubeApi> {
    return new KubeApi(await clientNode(), config, namespace);
  }

  /** Requests made so far, by kind. */
  get requests(): ReadonlyMap<string, number> {
    return this.#requests;
  }

  get totalRequests(): number {
    let total = 0;
    for (const n of this.#requests.values()) total += n;
    return total;
  }

  /** Counts the request and turns its failure into a KubernetesApiError. */
  async call<T>(request: string, send: () => Promise<T>): Promise<T> {
    this.#requests.set(request, (this.#requests.get(request) ?? 0) + 1);
    try {
      return await send();
    } catch (error) {
      throw toApiError(request, error, this.k8s);
    }
  }

  // ---- pods ----

  async listPods(labelSelector: string): Promise<{ readonly pods: readonly PodManifest[]; readonly resourceVersion: string }> {
    const list = await this.call('list pods', () => this.core.listNamespacedPod({ namespace: this.namespace, labelSelector }));
    return { pods: list.items as unknown as PodManifest[], resourceVersion: list.metadata?.resourceVersion ?? '' };
  }

  readPod(name: string): Promise<PodManifest> {
    return this.call('get pods', async () => await this.core.readNamespacedPod({ namespace: this.namespace, name }));
  }

  createPod(pod: PodManifest): Promise<PodManifest> {
    return this.call('create pods', async () => await this.core.createNamespacedPod({ namespace: this.namespace, body: asModel<V1Pod>(pod) }));
  }

  /** Deletes a pod; when `uid` is given, only that pod (not a later one of the same name). */
  async deletePod(name: string, options: { readonly uid?: string | undefined; readonly gracePeriodSeconds?: number } = {}): Promise<void> {
    await this.call('delete pods', () =>
      this.core.deleteNamespacedPod({
        namespace: this.namespace,
        name,
        // With a body, the API server reads the options from it, not the query.
        body: asModel<V1DeleteOptions>({
          ...(options.uid === undefined ? {} : { preconditions: { uid: options.uid } }),
          ...(options.gracePeriodSeconds === undefined ? {} : { gracePeriodSeconds: options.gracePeriodSeconds }),
        }),
      }),
    );
  }

  /** The last lines a container wrote (of its previous run, with `previous`). */
  podLog(name: string, container: string, tailLines: number, previous: boolean): Promise<string> {
    return this.call('get pods/log', () => this.core.readNamespacedPodLog({ namespace: this.namespace, name, container, tailLines, previous }));
  }

  /** The events about one pod, oldest first. */
  async podEvents(name: string, uid: string | undefined): Promise<EventSummary[]> {
    const fieldSelector = `involvedObject.kind=Pod,involvedObject.name=${name}${uid === undefined ? '' : `,involvedObject.uid=${uid}`}`;
    const list = await this.call('list events', () => this.core.listNamespacedEvent({ namespace: this.namespace, fieldSelector }));
    const time = (e: (typeof list.items)[number]): number => new Date(e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? 0).getTime();
    return [...list.items]
      .sort((a, b) => time(a) - time(b))
      .map((e) => ({ type: e.type ?? '', reason: e.reason ?? '', message: (e.message ?? '').trim(), count: e.count ?? 1 }));
  }

  /**
   * Watches `path` (a collection: /api/v1/namespaces/NS/pods) from `resourceVersion`.
   * `onEnd` runs once when the server ends the watch or the connection fails.
   */
  async watch<T>(request: string, path: string, query: Readonly<Record<string, string>>, onEvent: (event: WatchEvent<T>) => void, onEnd: (error?: KubernetesApiError) => void): Promise<OpenWatch> {
    let stopped = false;
    const watch = new this.k8s.Watch(this.config);
    const controller = await this.call(request, () =>
      watch.watch(
        path,
        { allowWatchBookmarks: 'true', ...query },
        (type: string, object: unknown) => {
          if (!stopped) onEvent({ type: type as WatchEvent<T>['type'], object: object as T });
        },
        (error: unknown) => {
          if (stopped) return;
          stopped = true;
          onEnd(error === null || error === undefined ? undefined : toApiError(request, error, this.k8s));
        },
      ),
    );
    return {
      stop() {
        stopped = true;
        controller.abort();
      },
    };
  }
}
