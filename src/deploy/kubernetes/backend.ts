/**
 * Worker pods for an adaptive scheduler: one pod per worker, through the API server.
 *
 * ```ts
 * const backend = await KubernetesBackend.start({ scheduler: scheduler.address, image: 'tessera:0.1.0', namespace: 'analysis' });
 * scheduler.adapt(backend, { minimum: 0, maximum: 50 });
 * ```
 *
 * - The worker's name is its pod's name; `scaleDown(names)` deletes exactly those pods
 *   (the scheduler has retired them already), never "the last n".
 * - Pods are watched, not polled. Pending pods count as asked for (a cluster autoscaler
 *   may be adding a node for them), so a slow start is never asked for twice.
 * - A pod that cannot start (ImagePullBackOff, CrashLoopBackOff, unschedulable past
 *   `pendingTimeout`, Failed) is reported in the log with its events and last log lines,
 *   deleted, and counts no more; new pods are then held back with a growing backoff, and
 *   `scaleUp` says why (the adaptive loop logs it and backs off too).
 * - API failures (403, 409, 429, 5xx, a watch expiring with 410, no answer) are retried
 *   with backoff. `scaleUp` returns at once (pods are created in the background), so a
 *   slow API server never holds up the adaptive loop.
 * - Nothing is orphaned: pods carry an owner reference (in a cluster, to the scheduler's
 *   own pod, so the garbage collector removes them if it dies), `close()` and process
 *   exit delete them, and at start pods labelled with this cluster's name are adopted if
 *   they are alive and ours, deleted if they are finished or left by another scheduler.
 *
 * Why one file: creating, watching and deleting pods share one table of pods and the
 * failures it reports; split, each part would reach into the others' bookkeeping.
 */
import { WorkerStartError, InvalidArgumentError } from '../../errors.js';
import { Resource } from '../../lifecycle.js';
import { checkOptions, optionNames } from '../../options.js';
import { parseDuration } from '../../adaptive/policy.js';
import type { BackendFailure, ClusterBackend } from '../../adaptive/backend.js';
import type { KubeConfig } from '@kubernetes/client-node';
import { type EventSummary, errorText, KubeApi, loadKubeConfig } from './api.js';
import { KubernetesApiError } from './errors.js';
import { deleteOnExit, objectUrl } from './exit-cleanup.js';
import { ListWatch } from './list-watch.js';
import type { OwnerReference, PodManifest } from './manifest-types.js';
import { checkClusterName, type KubernetesWorkerOptions, resolveWorkerSpec, WORKER_OPTIONS, type WorkerSpec } from './options.js';
import { readPodReport, reportLines } from './pod-report.js';
import { classifyPod, type PodState } from './pod-status.js';
import { isAborted, retrying } from './retry.js';
import { WORKER_CONTAINER, WORKER_GRACE_SECONDS, workerPod, workerPodName, workerSelector, type WorkerToken } from './worker-pod.js';

export interface KubernetesBackendOptions extends KubernetesWorkerOptions {
  /** The scheduler's address as workers reach it: tcp://host:port. */
  readonly scheduler: string;
  /** Default: the kubeconfig context's namespace, or the pod's own in a cluster, else 'default'. */
  readonly namespace?: string;
  /** Names the pods (`<cluster>-worker-xxxxx`) and labels them as this cluster's. Default 'tessera'. */
  readonly cluster?: string;
  /**
   * The token workers present: `{ secret: 'name', key?: 'token' }` reads it from a Secret
   * (the value never appears in a pod spec); a string puts it in the pods' environment.
   */
  readonly token?: string | { readonly secret: string; readonly key?: string };
  /**
   * The object worker pods belong to: the garbage collector deletes them when it goes.
   * Default: in a cluster, the scheduler's own pod; outside, none (false: none anyway).
   */
  readonly owner?: OwnerReference | false;
  /** A KubeConfig or a kubeconfig file. Default: in-cluster, else KUBECONFIG or ~/.kube/config. */
  readonly kubeconfig?: KubeConfig | string;
  /** A pod the scheduler cannot place fails after this long ('5m'; milliseconds or a duration). Default 5 minutes. */
  readonly pendingTimeout?: number | string;
  /** Milliseconds `close()` waits for the pods to be gone. Default 30 000. */
  readonly closeTimeout?: number;
  /** Where reports go: failed pods with their events and logs, API trouble. Default: stderr. */
  readonly log?: (line: string) => void;
}

const BACKEND_OPTIONS = optionNames<KubernetesBackendOptions>()([
  ...(WORKER_OPTIONS as readonly (keyof KubernetesWorkerOptions)[]),
  'scheduler', 'namespace', 'cluster', 'token', 'owner', 'kubeconfig', 'pendingTimeout', 'closeTimeout', 'log',
]);

/** A worker pod that could not start, as reported. */
export interface WorkerPodFailure {
  readonly pod: string;
  /** ImagePullBackOff, CrashLoopBackOff, Unschedulable, Evicted, … */
  readonly reason: string;
  readonly message: string;
  readonly events: readonly EventSummary[];
  /** The worker container's last lines (of its previous run after a crash). */
  readonly log: readonly string[];
  readonly at: Date;
}

type Phase = 'creating' | 'starting' | 'running' | 'exited' | 'failed' | 'deleting';

interface TrackedPod {
  readonly name: string;
  uid: string | undefined;
  phase: Phase;
  /** When it was created or adopted (performance.now()). */
  readonly since: number;
  /** The creation request, while it is under way. */
  creating: Promise<void> | undefined;
  deleting: Promise<void> | undefined;
  reported: boolean;
  readonly gone: Promise<void>;
  markGone: () => void;
}

const MAX_CREATING = 16;
const FAILURES_KEPT = 100;
const FIRST_HOLD_MS = 5_000;
const MAX_HOLD_MS = 5 * 60_000;
/** API calls that change something are retried for this long before a failure counts. */
const WRITE_RETRY_MS = 60_000;

export class KubernetesBackend extends Resource implements ClusterBackend {
  readonly namespace: string;
  readonly cluster: string;
  readonly threadsPerWorker: number;
  readonly #api: KubeApi;
  readonly #spec: WorkerSpec;
  readonly #schedulerAddress: string;
  readonly #token: WorkerToken;
  readonly #owner: OwnerReference | undefined;
  readonly #pendingTimeoutMs: number;
  readonly #closeTimeoutMs: number;
  readonly #log: (line: string) => void;
  readonly #pods = new Map<string, TrackedPod>();
  /** Each pod as the watch last described it. */
  readonly #lastSeen = new Map<string, PodManifest>();
  readonly #failures: WorkerPodFailure[] = [];
  #failuresTaken = 0;
  readonly #abort = new AbortController();
  readonly #watch: ListWatch<PodManifest>;
  readonly #pendingTimer: NodeJS.Timeout;
  readonly #unregisterExit: () => void;
  #synced = false;
  #creatingNow = 0;
  readonly #createQueue: (() => void)[] = [];
  /** New pods are held back until then, after pods failed to start. */
  #holdUntil = 0;
  #consecutiveFailures = 0;
  #holdReason = '';
  #requestsAtLastScaleUp = 0;
  #scaleUps = 0;

  private constructor(api: KubeApi, spec: WorkerSpec, settings: { cluster: string; scheduler: string; token: WorkerToken; owner: OwnerReference | undefined; pendingTimeoutMs: number; closeTimeoutMs: number; log: (line: string) => void }) {
    super('the Kubernetes backend');
    this.#api = api;
    this.#spec = spec;
    this.namespace = api.namespace;
    this.cluster = settings.cluster;
    this.threadsPerWorker = spec.threadsPerWorker;
    this.#schedulerAddress = settings.scheduler;
    this.#token = settings.token;
    this.#owner = settings.owner;
    this.#pendingTimeoutMs = settings.pendingTimeoutMs;
    this.#closeTimeoutMs = settings.closeTimeoutMs;
    this.#log = settings.log;
    const selector = workerSelector(this.cluster);
    this.#watch = new ListWatch<PodManifest>({
      api,
      resource: 'pods',
      path: `/api/v1/namespaces/${encodeURIComponent(api.namespace)}/pods`,
      selector: { labelSelector: selector },
      list: async () => {
        const { pods, resourceVersion } = await api.listPods(selector);
        return { items: pods, resourceVersion };
      },
      onSync: (pods) => this.#onSync(pods),
      onEvent: (type, pod) => (type === 'DELETED' ? this.#onDeleted(pod) : this.#onPod(pod)),
      onTrouble: (error, wait) => this.#log(`kubernetes: watching pods: ${error.message}; again in ${(wait / 1000).toFixed(1)} s`),
    });
    // Unschedulable pods fail after pendingTimeout with no event to say so: look at them now and then.
    this.#pendingTimer = setInterval(() => this.#checkPending(), Math.min(5_000, Math.max(250, this.#pendingTimeoutMs / 4)));
    this.#pendingTimer.unref();
    this.#unregisterExit = deleteOnExit(api.config, () =>
      [...this.#pods.values()]
        .filter((p) => p.phase !== 'creating' || p.uid !== undefined)
        .map((p) => ({
          url: objectUrl(api.config, `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/pods/${encodeURIComponent(p.name)}`),
          body: JSON.stringify(p.uid === undefined ? {} : { preconditions: { uid: p.uid } }),
        })),
    );
  }

  /**
   * Connects to the API server, adopts or deletes the pods an earlier scheduler of this
   * cluster left, and starts watching. Resolves once the pods are known.
   */
  static async start(options: KubernetesBackendOptions): Promise<KubernetesBackend> {
    const where = 'KubernetesBackend.start()';
    checkOptions(options, BACKEND_OPTIONS, where);
    const { scheduler, namespace, cluster, token, owner, kubeconfig, pendingTimeout, closeTimeout, log, ...workerOptions } = options;
    const spec = resolveWorkerSpec(workerOptions, where);
    if (typeof scheduler !== 'string' || !/^(tcp|tls):\/\/.+:\d+$/.test(scheduler)) {
      throw new InvalidArgumentError(`${where}: options.scheduler must be the address workers dial, tcp://host:port, got ${JSON.stringify(scheduler)}`);
    }
    const clusterName = checkClusterName(cluster ?? 'tessera', where);
    let workerToken: WorkerToken;
    if (typeof token === 'string') {
      if (token === '') throw new InvalidArgumentError(`${where}: options.token must not be empty`);
      workerToken = { value: token };
    } else if (token !== undefined) {
      if (typeof token !== 'object' || typeof token.secret !== 'string' || token.secret === '') throw new InvalidArgumentError(`${where}: options.token must be a string or { secret: 'name', key?: 'token' }`);
      workerToken = { secret: token.secret, key: token.key ?? 'token' };
    }
    const pendingTimeoutMs = parseDuration(pendingTimeout ?? '5m', `${where}: options.pendingTimeout`);
    const closeTimeoutMs = closeTimeout ?? 30_000;
    if (typeof closeTimeoutMs !== 'number' || !(closeTimeoutMs >= 0)) throw new InvalidArgumentError(`${where}: options.closeTimeout must be a non-negative number of milliseconds`);
    if (log !== undefined && typeof log !== 'function') throw new InvalidArgumentError(`${where}: options.log must be a function`);
    if (namespace !== undefined && (typeof namespace !== 'string' || namespace === '')) throw new InvalidArgumentError(`${where}: options.namespace must be a non-empty string`);

    const loaded = await loadKubeConfig(kubeconfig, where);
    const api = await KubeApi.open(loaded.config, namespace ?? loaded.namespace ?? 'default');
    let ownerRef: OwnerReference | undefined;
    if (owner === false) ownerRef = undefined;
    else if (owner !== undefined) ownerRef = checkOwner(owner, where);
    else if (loaded.inCluster) ownerRef = await ownPod(api);
    const backend = new KubernetesBackend(api, spec, {
      cluster: clusterName,
      scheduler,
      token: workerToken,
      owner: ownerRef,
      pendingTimeoutMs,
      closeTimeoutMs,
      log: log ?? ((line) => process.stderr.write(`tessera: ${line}\n`)),
    });
    backend.#watch.start();
    await backend.#watch.synced;
    return backend;
  }

  // ---- ClusterBackend ----

  /** Pods asked for and not being stopped: being created, Pending, or running. */
  get requested(): number {
    let n = 0;
    for (const p of this.#pods.values()) if (p.deleting === undefined && (p.phase === 'creating' || p.phase === 'starting' || p.phase === 'running')) n++;
    return n;
  }

  /** Pods whose worker container runs. */
  get running(): number {
    let n = 0;
    for (const p of this.#pods.values()) if (p.deleting === undefined && p.phase === 'running') n++;
    return n;
  }

  /** Pods being deleted and not yet gone. */
  get closing(): number {
    let n = 0;
    for (const p of this.#pods.values()) if (p.deleting !== undefined || p.phase === 'deleting') n++;
    return n;
  }

  /**
   * Creates pods until `n` are asked for; returns at once (creation goes on in the
   * background). Throws WorkerStartError while new pods are held back after others failed
   * to start, saying why.
   */
  scaleUp(n: number): void {
    this.assertRunning();
    const now = performance.now();
    if (now < this.#holdUntil) {
      throw new WorkerStartError('', `worker pods are failing to start (${this.#holdReason}); creating none for another ${Math.ceil((this.#holdUntil - now) / 1000)} s`);
    }
    const missing = n - this.requested;
    if (missing <= 0) return;
    this.#scaleUps++;
    this.#requestsAtLastScaleUp = this.#api.totalRequests;
    for (let i = 0; i < missing; i++) this.#create();
  }

  /** Deletes exactly these pods (already retired workers) and waits until they are gone. */
  async scaleDown(names: readonly string[]): Promise<void> {
    const deleting: Promise<void>[] = [];
    for (const name of names) {
      const pod = this.#pods.get(name);
      if (pod === undefined) {
        this.#log(`kubernetes: scaleDown: ${name} is not a worker pod of cluster ${this.cluster}; left alone`);
        continue;
      }
      deleting.push(this.#delete(pod));
    }
    await Promise.all(deleting);
  }

  // ---- what else users and tests read ----

  /** The worker pods, by name, with the backend's view of each. */
  get pods(): readonly { readonly name: string; readonly phase: Phase; readonly uid: string | undefined }[] {
    return [...this.#pods.values()].map((p) => ({ name: p.name, phase: p.phase, uid: p.uid }));
  }

  /** Pods that could not start, most recent last (the last 100). */
  get failures(): readonly WorkerPodFailure[] {
    return this.#failures;
  }

  /** Failures not yet handed to the adaptive loop (ClusterBackend.takeFailures). */
  takeFailures(): readonly BackendFailure[] {
    const fresh = this.#failures.slice(this.#failuresTaken);
    this.#failuresTaken = this.#failures.length;
    return fresh.map((f) => ({ worker: f.pod, reason: `${f.reason}: ${f.message}` }));
  }

  /** API requests made so far, by kind ('create pods', 'watch pods'…). */
  get requests(): ReadonlyMap<string, number> {
    return this.#api.requests;
  }

  /** API requests made in total. */
  get totalRequests(): number {
    return this.#api.totalRequests;
  }

  /** Requests since the last scale-up began (the benchmark's per-scale-up figure), and scale-ups so far. */
  get scaleUpRequests(): { readonly scaleUps: number; readonly sinceLast: number } {
    return { scaleUps: this.#scaleUps, sinceLast: this.#api.totalRequests - this.#requestsAtLastScaleUp };
  }

  /** The owner reference each worker pod carries, if any. */
  get owner(): OwnerReference | undefined {
    return this.#owner;
  }

  // ---- lifecycle ----

  /** Deletes every worker pod and waits (up to closeTimeout) until they are gone. */
  protected async onClose(): Promise<void> {
    await this.#shutDown(undefined);
  }

  /** Deletes every worker pod at once (no grace period) and stops. */
  protected override async onDestroy(): Promise<void> {
    await this.#shutDown(0);
  }

  async #shutDown(gracePeriodSeconds: number | undefined): Promise<void> {
    clearInterval(this.#pendingTimer);
    this.#abort.abort();
    for (const start of this.#createQueue.splice(0)) start();
    const pods = [...this.#pods.values()];
    const deleted = Promise.allSettled(pods.map((p) => this.#delete(p, gracePeriodSeconds)));
    const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), this.#closeTimeoutMs).unref());
    const outcome = await Promise.race([deleted.then(() => 'done' as const), timeout]);
    if (outcome === 'timeout') {
      const left = [...this.#pods.values()].map((p) => p.name);
      if (left.length > 0) this.#log(`kubernetes: ${left.length} worker pod(s) still terminating after ${this.#closeTimeoutMs} ms: ${left.join(', ')}`);
    }
    await this.#watch.stop();
    // Pods whose deletion was accepted are the API server's to finish; others stay registered for the exit cleanup.
    if ([...this.#pods.values()].every((p) => p.deleting !== undefined)) this.#unregisterExit();
  }

  // ---- creating and deleting ----

  #track(name: string, uid: string | undefined, phase: Phase): TrackedPod {
    let markGone: () => void = () => undefined;
    const gone = new Promise<void>((resolve) => (markGone = resolve));
    const pod: TrackedPod = { name, uid, phase, since: performance.now(), creating: undefined, deleting: undefined, reported: false, gone, markGone };
    this.#pods.set(name, pod);
    return pod;
  }

  #forget(pod: TrackedPod): void {
    if (this.#pods.get(pod.name) === pod) {
      this.#pods.delete(pod.name);
      this.#lastSeen.delete(pod.name);
    }
    pod.markGone();
  }

  #create(): void {
    let name = workerPodName(this.cluster);
    while (this.#pods.has(name)) name = workerPodName(this.cluster);
    const pod = this.#track(name, undefined, 'creating');
    pod.creating = this.#whenCreateSlot()
      .then(() => this.#send(pod))
      .finally(() => {
        pod.creating = undefined;
        this.#creatingNow--;
        this.#createQueue.shift()?.();
      });
  }

  /** At most MAX_CREATING creations in flight: a burst of 500 does not trip the server's rate limits. */
  #whenCreateSlot(): Promise<void> {
    if (this.#creatingNow < MAX_CREATING) {
      this.#creatingNow++;
      return Promise.resolve();
    }
    return new Promise((resolve) =>
      this.#createQueue.push(() => {
        this.#creatingNow++;
        resolve();
      }),
    );
  }

  async #send(pod: TrackedPod): Promise<void> {
    if (this.#abort.signal.aborted || pod.deleting !== undefined) {
      this.#forget(pod);
      return;
    }
    const manifest = workerPod(this.#spec, { name: pod.name, namespace: this.namespace, cluster: this.cluster, scheduler: this.#schedulerAddress, token: this.#token, owner: this.#owner });
    try {
      const created = await retrying(
        async () => {
          try {
            return await this.#api.createPod(manifest);
          } catch (error) {
            // Our own earlier attempt got through (its answer was lost): the name is ours alone.
            if (error instanceof KubernetesApiError && error.status === 409 && error.reason === 'AlreadyExists') return await this.#api.readPod(pod.name);
            throw error;
          }
        },
        {
          withinMs: WRITE_RETRY_MS,
          signal: this.#abort.signal,
          onRetry: (error, wait) => this.#log(`kubernetes: creating pod ${pod.name}: ${errorText(error)}; again in ${(wait / 1000).toFixed(1)} s`),
        },
      );
      pod.uid ??= created.metadata?.uid;
      if (pod.phase === 'creating') pod.phase = 'starting';
    } catch (error) {
      if (isAborted(this.#abort.signal)) {
        this.#forget(pod);
        return;
      }
      this.#forget(pod);
      this.#hold(`creating pod ${pod.name} failed: ${errorText(error)}`);
      this.#log(`kubernetes: could not create worker pod ${pod.name}: ${errorText(error)}`);
    }
  }

  /** Deletes one pod (once), waits for its creation first, and resolves when it is gone. */
  #delete(pod: TrackedPod, gracePeriodSeconds?: number): Promise<void> {
    pod.deleting ??= (async () => {
      await pod.creating;
      if (!this.#pods.has(pod.name)) return;
      try {
        await retrying(
          async () => {
            try {
              await this.#api.deletePod(pod.name, { uid: pod.uid, ...(gracePeriodSeconds === undefined ? {} : { gracePeriodSeconds }) });
            } catch (error) {
              // Gone already (404), or replaced by another pod of the same name (409 on the precondition).
              if (error instanceof KubernetesApiError && (error.status === 404 || (error.status === 409 && error.reason !== 'AlreadyExists' && pod.uid !== undefined))) {
                this.#forget(pod);
                return;
              }
              throw error;
            }
          },
          { withinMs: WRITE_RETRY_MS, onRetry: (error, wait) => this.#log(`kubernetes: deleting pod ${pod.name}: ${errorText(error)}; again in ${(wait / 1000).toFixed(1)} s`) },
        );
      } catch (error) {
        this.#log(`kubernetes: could not delete worker pod ${pod.name}: ${errorText(error)}`);
        pod.deleting = undefined;
        return;
      }
      // The watch says when it is gone; a pod outliving its grace period by far is the kubelet's problem.
      await Promise.race([pod.gone, new Promise((resolve) => setTimeout(resolve, (WORKER_GRACE_SECONDS + 30) * 1000).unref())]);
    })();
    return pod.deleting;
  }

  // ---- what the watch says ----

  #onSync(pods: readonly PodManifest[]): void {
    const seen = new Set<string>();
    const first = !this.#synced;
    this.#synced = true;
    let adopted = 0;
    let cleared = 0;
    for (const manifest of pods) {
      const name = manifest.metadata?.name;
      if (name === undefined) continue;
      seen.add(name);
      if (first && !this.#pods.has(name)) {
        const terminal = manifest.status?.phase === 'Succeeded' || manifest.status?.phase === 'Failed';
        const ownerUid = manifest.metadata?.ownerReferences?.find((o) => o.controller === true)?.uid ?? manifest.metadata?.ownerReferences?.[0]?.uid;
        const foreign = this.#owner !== undefined && ownerUid !== this.#owner.uid;
        const leaving = manifest.metadata?.deletionTimestamp !== undefined;
        const pod = this.#track(name, manifest.metadata?.uid, 'starting');
        if (terminal || foreign || leaving) {
          // Finished, or left by a scheduler that is gone: its workers cannot serve this one.
          cleared++;
          void this.#delete(pod);
          continue;
        }
        adopted++;
      }
      this.#onPod(manifest);
    }
    for (const pod of [...this.#pods.values()]) {
      if (!seen.has(pod.name) && pod.phase !== 'creating' && pod.uid !== undefined) this.#forget(pod);
    }
    if (first && adopted + cleared > 0) this.#log(`kubernetes: found ${adopted + cleared} worker pod(s) of cluster ${this.cluster}: adopted ${adopted}, deleting ${cleared} finished or left by an earlier scheduler`);
  }

  #onPod(manifest: PodManifest): void {
    const name = manifest.metadata?.name ?? '';
    const pod = this.#pods.get(name);
    // Not one of ours (another scheduler using the same cluster name): not counted, not touched.
    if (pod === undefined) return;
    const uid = manifest.metadata?.uid;
    if (pod.uid !== undefined && uid !== undefined && uid !== pod.uid) return;
    pod.uid ??= uid;
    this.#lastSeen.set(name, manifest);
    this.#apply(pod, manifest, classifyPod(manifest, { pendingForMs: performance.now() - pod.since, pendingTimeoutMs: this.#pendingTimeoutMs }));
  }

  #apply(pod: TrackedPod, manifest: PodManifest, state: PodState): void {
    switch (state.kind) {
      case 'starting':
        if (pod.phase === 'creating' || pod.phase === 'running') pod.phase = 'starting';
        return;
      case 'running':
        if (pod.phase !== 'failed' && pod.phase !== 'exited') pod.phase = 'running';
        if (this.#consecutiveFailures > 0) {
          this.#consecutiveFailures = 0;
          this.#holdUntil = 0;
        }
        return;
      case 'exited':
        // The worker was retired and left: the pod has nothing more to do.
        pod.phase = 'exited';
        void this.#delete(pod);
        return;
      case 'deleting':
        pod.phase = 'deleting';
        return;
      case 'failed':
        pod.phase = 'failed';
        if (!pod.reported) {
          pod.reported = true;
          void this.#reportFailure(pod, manifest, state);
        }
        return;
    }
  }

  #onDeleted(manifest: PodManifest): void {
    const pod = this.#pods.get(manifest.metadata?.name ?? '');
    if (pod === undefined) return;
    if (pod.uid !== undefined && manifest.metadata?.uid !== undefined && manifest.metadata.uid !== pod.uid) return;
    this.#forget(pod);
  }

  #checkPending(): void {
    if (this.#pendingTimeoutMs === Infinity) return;
    for (const pod of this.#pods.values()) {
      if (pod.phase !== 'starting' || pod.reported) continue;
      if (performance.now() - pod.since < this.#pendingTimeoutMs) continue;
      // Re-read from the watch's last word about it.
      const manifest = this.#lastSeen.get(pod.name);
      if (manifest !== undefined) this.#onPod(manifest);
    }
  }

  /** New pods wait, doubling from 5 s to 5 minutes while pods keep failing to start. */
  #hold(reason: string): void {
    this.#consecutiveFailures++;
    const wait = Math.min(FIRST_HOLD_MS * 2 ** (this.#consecutiveFailures - 1), MAX_HOLD_MS);
    this.#holdUntil = Math.max(this.#holdUntil, performance.now() + wait);
    this.#holdReason = reason;
  }

  async #reportFailure(pod: TrackedPod, manifest: PodManifest, state: Extract<PodState, { kind: 'failed' }>): Promise<void> {
    this.#hold(`${pod.name}: ${state.reason}`);
    const containers = manifest.spec?.containers ?? [];
    const container = containers.some((c) => c.name === WORKER_CONTAINER) ? WORKER_CONTAINER : (containers[0]?.name ?? WORKER_CONTAINER);
    const report = await readPodReport(this.#api, pod, container, state);
    const failure: WorkerPodFailure = { pod: pod.name, reason: state.reason, message: state.message, events: report.events, log: report.log, at: new Date() };
    this.#failures.push(failure);
    if (this.#failures.length > FAILURES_KEPT) {
      const dropped = this.#failures.length - FAILURES_KEPT;
      this.#failures.splice(0, dropped);
      this.#failuresTaken = Math.max(0, this.#failuresTaken - dropped);
    }
    this.#log(
      [
        `kubernetes: worker pod ${pod.name} failed to start: ${state.reason}: ${state.message}`,
        ...reportLines(report, state.log === 'previous'),
        `  deleted; no new worker pods for ${Math.ceil((this.#holdUntil - performance.now()) / 1000)} s`,
      ].join('\n'),
    );
    // It never ran a task worth handing over: no grace period.
    await this.#delete(pod, 0);
  }
}

function checkOwner(owner: OwnerReference, where: string): OwnerReference {
  for (const field of ['apiVersion', 'kind', 'name', 'uid'] as const) {
    if (typeof owner[field] !== 'string' || owner[field] === '') throw new InvalidArgumentError(`${where}: options.owner.${field} must be a non-empty string`);
  }
  return { apiVersion: owner.apiVersion, kind: owner.kind, name: owner.name, uid: owner.uid, controller: true };
}

/** The scheduler's own pod, from the downward API (POD_NAME, POD_UID) or by its hostname. */
async function ownPod(api: KubeApi): Promise<OwnerReference> {
  const name = process.env['POD_NAME'] ?? process.env['HOSTNAME'];
  let uid = process.env['POD_UID'];
  if (name === undefined || name === '') throw new InvalidArgumentError('KubernetesBackend.start(): in a cluster, the scheduler pod needs POD_NAME (downward API) or HOSTNAME to own its workers; or pass options.owner (false for none)');
  if (uid === undefined || uid === '') uid = (await retrying(() => api.readPod(name), { withinMs: WRITE_RETRY_MS })).metadata?.uid;
  if (uid === undefined) throw new InvalidArgumentError(`KubernetesBackend.start(): pod ${name} has no uid`);
  return { apiVersion: 'v1', kind: 'Pod', name, uid, controller: true };
}
