/**
 * A node for a test cluster: the only stand-in in it, doing what the kubelet (and, for
 * Services, kube-proxy) would do, with local processes instead of containers.
 *
 *   const agent = await startNodeAgent(cluster, {
 *     images: { 'example/worker:1': { entrypoint: [process.execPath, 'worker.js'] } },
 *   });
 *
 * It registers a Ready Node with the capacity asked for, renews its Lease, and WATCHES the
 * pods bound to it (the scheduler binds them). For each pod it takes a loopback IP of its
 * own, writes the pod's volumes (the service-account token comes from the TokenRequest API,
 * bound to the pod) and runs each container's command and args, found through the image
 * table, with the environment the kubelet would give it. It reports the pod's status as the
 * kubelet does (phase, conditions, container states, restarts, IPs) and the kubelet's
 * events; restarts containers per restartPolicy with a CrashLoopBackOff backoff; reports an
 * image missing from the table as ErrImagePull then ImagePullBackOff; on deletion sends
 * SIGTERM, SIGKILL after the grace period, then removes the pod. Container output is
 * served on the kubelet's HTTPS log endpoint, which the API server proxies pods/log to.
 *
 * It authenticates as the node (user system:node:<name>, group system:nodes, a client
 * certificate from the cluster CA), so the API server's Node authorizer decides what it
 * may read, as for a kubelet.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { hostname as osHostname } from 'node:os';
import path from 'node:path';
import {
  ApiException,
  type AuthenticationV1TokenRequest,
  CoordinationV1Api,
  type CoreV1Event,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1ConfigMap,
  type V1Container,
  type V1DeleteOptions,
  type V1Lease,
  type V1Node,
  type V1Pod,
  type V1Probe,
  type V1Secret,
  type V1Taint,
} from '@kubernetes/client-node';
import { ContainerLog } from './container-log.js';
import type { ControlPlane } from './control-plane.js';
import { type Informer, startInformer } from './informer.js';
import { startKubeletServer } from './kubelet-server.js';
import { ContainerConfigError, containerEnv, expand, parseQuantity } from './pod-env.js';
import { removeDirectory, spawnGroup, stopGroup, temporaryDirectory } from './processes.js';
import { plain } from './plain.js';
import { ServiceProxy } from './service-proxy.js';
import { canMountNamespaces, containerMounts, inMountNamespace, materializeVolumes, type Mount, prepareMountPoints } from './volumes.js';

/** How to run an image: its ENTRYPOINT, CMD, WORKDIR and ENV, as a container runtime would read them. */
export interface ImageRunSpec {
  entrypoint?: readonly string[];
  cmd?: readonly string[];
  workingDir?: string;
  env?: Readonly<Record<string, string>>;
}

/** Image reference → how to run it; an image not found is reported as not pullable. */
export type ImageTable = Readonly<Record<string, ImageRunSpec>> | ((image: string) => ImageRunSpec | undefined);

export interface Backoff {
  /** The first wait. */
  initialMs?: number;
  /** Waits double up to this. */
  maxMs?: number;
}

export interface NodeAgentOptions {
  /** Node name. Default `node-<random>`. */
  name?: string;
  images: ImageTable;
  /** Node capacity (= allocatable). Default 4 CPUs, 8Gi, 110 pods. */
  capacity?: { cpu?: string; memory?: string; pods?: number };
  labels?: Readonly<Record<string, string>>;
  taints?: readonly V1Taint[];
  /** Between container restarts (the kubelet: 10 s to 5 min). Default 500 ms to 4 s. */
  crashLoopBackoff?: Backoff;
  /** Between pulls of an image that is not in the table (the kubelet: 10 s to 5 min). Default 500 ms to 4 s. */
  imagePullBackoff?: Backoff;
  /** Lease renewal period. Default 5 s (the kubelet: 10 s). */
  leaseRenewMs?: number;
  /** Run the Service proxy (one per cluster: the first agent does by default). */
  serviceProxy?: boolean;
  /** Mount pod volumes through a private mount namespace. Default: when root with unshare. */
  mountVolumes?: boolean;
  /** Where the agent's messages go (a failed API call, a proxy with no endpoint). Default: stderr with TESSERA_KUBERNETES_LOG=1, else nowhere. */
  log?: (message: string) => void;
}

export interface NodeAgent {
  readonly name: string;
  /** The pods' /24: `127.P.N` (pod IPs are `127.P.N.2` to `.254`). */
  readonly podSubnet: string;
  readonly kubeletPort: number;
  /** Whether pods see their volumes (service-account token included) at their mountPath. */
  readonly mountsVolumes: boolean;
  readonly serviceProxy: ServiceProxy | undefined;
  /** The pid of a container's current process, while it runs. */
  containerPid(namespace: string, pod: string, container: string): number | undefined;
  /** What a container has written so far (this run, or the previous one). */
  containerLog(namespace: string, pod: string, container: string, previous?: boolean): string | undefined;
  /** Kills every pod process, stops watching and serving. The Node object stays. Idempotent. */
  stop(): Promise<void>;
}

const proxies = new WeakMap<ControlPlane, ServiceProxy>();

const DEFAULT_BACKOFF = { initialMs: 500, maxMs: 4_000 };
/** Every node is this machine. */
const HOST_IP = '127.0.0.1';
/** The kubelet's floor for a termination grace period. */
const MIN_GRACE_SECONDS = 2;

const now = (): string => new Date().toISOString();
const microNow = (): string => new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Read through a call: a loop's own narrowing would take an earlier check as still true after an await. */
const isAborted = (signal: AbortSignal): boolean => signal.aborted;

/**
 * The kubelet's last word on a pod it has stopped: delete now, if it is still that pod. The
 * grace period goes in the body: with a body, the API server reads no query parameter.
 */
function finalDelete(uid: string): V1DeleteOptions {
  return plain<V1DeleteOptions>({ gracePeriodSeconds: 0, preconditions: { uid } });
}

function statusCode(error: unknown): number | undefined {
  return error instanceof ApiException ? error.code : undefined;
}

const SIGNALS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 };

interface Terminated {
  exitCode: number;
  signal?: number;
  reason: string;
  message?: string;
  startedAt: string;
  finishedAt: string;
  containerID: string;
}

type ContainerState = { kind: 'waiting'; reason: string; message?: string } | { kind: 'running'; startedAt: string } | { kind: 'terminated'; terminated: Terminated };

function stateJson(state: ContainerState | undefined): Record<string, unknown> {
  // Every key spelled out: a strategic merge patch would otherwise keep the old state's field.
  return {
    waiting: state?.kind === 'waiting' ? { reason: state.reason, ...(state.message === undefined ? {} : { message: state.message }) } : null,
    running: state?.kind === 'running' ? { startedAt: state.startedAt } : null,
    terminated: state?.kind === 'terminated' ? state.terminated : null,
  };
}

/** One container of one pod: its runs, restarts, probes and logs. */
class ContainerRunner {
  state: ContainerState = { kind: 'waiting', reason: 'ContainerCreating' };
  lastTerminated: Terminated | undefined;
  restartCount = 0;
  ready = false;
  started = false;
  child: ChildProcess | undefined;
  log: ContainerLog | undefined;
  previousLog: ContainerLog | undefined;
  /** Set when the pod no longer wants this container restarted. */
  done = false;
  private pulled = false;
  private containerId = '';

  constructor(
    readonly spec: V1Container,
    private readonly pod: PodWorker,
  ) {}

  get name(): string {
    return this.spec.name;
  }

  statusJson(): Record<string, unknown> {
    return {
      name: this.name,
      image: this.spec.image ?? '',
      imageID: `tessera-node-agent://${this.spec.image ?? ''}`,
      ...(this.containerId === '' ? {} : { containerID: this.containerId }),
      ready: this.ready,
      started: this.started,
      restartCount: this.restartCount,
      state: stateJson(this.state),
      lastState: stateJson(this.lastTerminated === undefined ? undefined : { kind: 'terminated', terminated: this.lastTerminated }),
    };
  }

  /** The container's life: pull, start, wait, restart per policy, until the pod stops it. */
  async run(signal: AbortSignal): Promise<void> {
    const agent = this.pod.agent;
    const fieldPath = `spec.containers{${this.name}}`;
    const pullBackoff = { ...DEFAULT_BACKOFF, ...agent.options.imagePullBackoff };
    const crashBackoff = { ...DEFAULT_BACKOFF, ...agent.options.crashLoopBackoff };
    let pullWait = pullBackoff.initialMs;
    let crashWait = crashBackoff.initialMs;
    const image = this.spec.image ?? '';
    while (!signal.aborted) {
      const run = agent.lookupImage(image);
      if (run === undefined) {
        const message = `Failed to pull image "${image}": image "${image}" is not in this node agent's image table`;
        this.setState({ kind: 'waiting', reason: 'ErrImagePull', message });
        agent.event(this.pod.pod, 'Normal', 'Pulling', `Pulling image "${image}"`, fieldPath);
        agent.event(this.pod.pod, 'Warning', 'Failed', message, fieldPath);
        agent.event(this.pod.pod, 'Warning', 'Failed', 'Error: ErrImagePull', fieldPath);
        await abortableSleep(pullWait, signal);
        if (isAborted(signal)) break;
        this.setState({ kind: 'waiting', reason: 'ImagePullBackOff', message: `Back-off pulling image "${image}"` });
        agent.event(this.pod.pod, 'Normal', 'BackOff', `Back-off pulling image "${image}"`, fieldPath);
        agent.event(this.pod.pod, 'Warning', 'Failed', 'Error: ImagePullBackOff', fieldPath);
        pullWait = Math.min(pullWait * 2, pullBackoff.maxMs);
        await abortableSleep(pullWait, signal);
        continue;
      }
      if (!this.pulled) {
        this.pulled = true;
        agent.event(this.pod.pod, 'Normal', 'Pulled', `Container image "${image}" already present on machine`, fieldPath);
      }

      let argv: string[];
      let env: Map<string, string>;
      let mounts: Mount[];
      try {
        ({ argv, env, mounts } = await this.prepare(run));
      } catch (error) {
        if (!(error instanceof ContainerConfigError)) throw error;
        this.setState({ kind: 'waiting', reason: 'CreateContainerConfigError', message: error.message });
        agent.event(this.pod.pod, 'Warning', 'Failed', `Error: ${error.message}`, fieldPath);
        await abortableSleep(crashWait, signal);
        continue;
      }
      if (isAborted(signal)) break;

      const startedAt = now();
      const ranFor = performance.now();
      this.containerId = `tessera://${randomBytes(16).toString('hex')}`;
      const terminated = await this.spawnAndWait(argv, env, mounts, run, startedAt, fieldPath);
      this.lastTerminated = terminated;
      this.ready = false;
      this.started = false;

      const policy = this.pod.pod.spec?.restartPolicy ?? 'Always';
      const restart = !isAborted(signal) && (policy === 'Always' || (policy === 'OnFailure' && terminated.exitCode !== 0));
      if (!restart) {
        this.done = true;
        this.setState({ kind: 'terminated', terminated });
        this.lastTerminated = undefined;
        return;
      }
      // A container that ran well past the longest backoff starts over from the first one.
      if (performance.now() - ranFor > 2 * crashBackoff.maxMs) crashWait = crashBackoff.initialMs;
      this.setState({
        kind: 'waiting',
        reason: 'CrashLoopBackOff',
        message: `back-off ${Math.ceil(crashWait / 1000)}s restarting failed container=${this.name} pod=${this.pod.name}_${this.pod.namespace}(${this.pod.uid})`,
      });
      agent.event(this.pod.pod, 'Warning', 'BackOff', `Back-off restarting failed container ${this.name} in pod ${this.pod.name}_${this.pod.namespace}(${this.pod.uid})`, fieldPath);
      await abortableSleep(crashWait, signal);
      crashWait = Math.min(crashWait * 2, crashBackoff.maxMs);
      if (isAborted(signal)) break;
      this.restartCount++;
    }
    this.done = true;
    if (this.state.kind !== 'terminated') {
      this.setState(this.lastTerminated ? { kind: 'terminated', terminated: this.lastTerminated } : this.state);
    }
  }

  private setState(state: ContainerState): void {
    this.state = state;
    this.pod.statusChanged();
  }

  private async prepare(run: ImageRunSpec): Promise<{ argv: string[]; env: Map<string, string>; mounts: Mount[] }> {
    const agent = this.pod.agent;
    const pod = this.pod.pod;
    const podEnv = await containerEnv(pod, { podIP: this.pod.ip ?? '', hostIP: HOST_IP }, this.spec, agent.envSources());
    const env = new Map<string, string>([
      ['PATH', process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      ['HOME', process.env.HOME ?? '/root'],
      ...Object.entries(run.env ?? {}),
      ['HOSTNAME', pod.spec?.hostname ?? this.pod.name],
      ...podEnv,
    ]);
    const command = this.spec.command ?? run.entrypoint ?? [];
    const args = this.spec.command !== undefined ? (this.spec.args ?? []) : (this.spec.args ?? run.cmd ?? []);
    const argv = [...command, ...args].map((part) => expand(part, podEnv));
    if (argv.length === 0) throw new ContainerConfigError(`no command specified for container ${this.name} (image ${this.spec.image ?? ''} has no entrypoint in the table)`);
    const volumes = await this.pod.volumes();
    const mounts = containerMounts(this.spec, volumes, pod);
    return { argv, env, mounts };
  }

  private spawnAndWait(argv: string[], env: Map<string, string>, mounts: Mount[], run: ImageRunSpec, startedAt: string, fieldPath: string): Promise<Terminated> {
    const agent = this.pod.agent;
    const useMounts = agent.mountsVolumes && mounts.length > 0;
    if (useMounts) prepareMountPoints(mounts);
    const full = useMounts ? inMountNamespace(argv, mounts) : argv;
    if (this.log) this.previousLog = this.log;
    const log = new ContainerLog();
    this.log = log;
    const cwd = this.spec.workingDir ?? run.workingDir ?? process.cwd();
    agent.event(this.pod.pod, 'Normal', 'Created', `Created container: ${this.name}`, fieldPath);
    return new Promise<Terminated>((resolve) => {
      const child = spawnGroup(full[0]!, full.slice(1), { cwd, env: Object.fromEntries(env), stdio: ['ignore', 'pipe', 'pipe'] });
      this.child = child;
      let failed: Error | undefined;
      child.once('error', (error) => (failed = error));
      child.once('spawn', () => {
        agent.event(this.pod.pod, 'Normal', 'Started', `Started container ${this.name}`, fieldPath);
        this.started = true;
        this.ready = this.spec.readinessProbe === undefined;
        this.setState({ kind: 'running', startedAt });
        this.probe(child, this.spec.readinessProbe, 'readiness', env);
        this.probe(child, this.spec.livenessProbe, 'liveness', env);
      });
      if (child.stdout) log.attach(child.stdout, 'stdout');
      if (child.stderr) log.attach(child.stderr, 'stderr');
      child.once('close', (code, signal) => {
        this.child = undefined;
        log.close();
        const finishedAt = now();
        if (failed !== undefined) {
          const message = `failed to start container "${this.name}": ${failed.message}`;
          agent.event(this.pod.pod, 'Warning', 'Failed', `Error: ${message}`, fieldPath);
          log.write('stderr', `${message}\n`);
          resolve({ exitCode: 128, reason: 'StartError', message, startedAt, finishedAt, containerID: this.containerId });
          return;
        }
        const signum = signal === null ? undefined : (SIGNALS[signal] ?? 0);
        const exitCode = signum === undefined ? (code ?? 0) : 128 + signum;
        resolve({ exitCode, ...(signum === undefined ? {} : { signal: signum }), reason: exitCode === 0 ? 'Completed' : 'Error', startedAt, finishedAt, containerID: this.containerId });
      });
    });
  }

  /** The probe with a named port (`port: health`) replaced by the container port of that name, as the kubelet does. */
  private withPortNumbers(probe: V1Probe): V1Probe {
    const resolve = (port: number | string): number | string => {
      if (typeof port === 'number' || /^\d+$/.test(port)) return port;
      return this.spec.ports?.find((p) => p.name === port)?.containerPort ?? port;
    };
    const copy = structuredClone(probe);
    if (copy.httpGet) copy.httpGet.port = resolve(copy.httpGet.port);
    if (copy.tcpSocket) copy.tcpSocket.port = resolve(copy.tcpSocket.port);
    return copy;
  }

  /** Runs a readiness or liveness probe every period while `child` lives. */
  private probe(child: ChildProcess, probe: V1Probe | undefined, kind: 'readiness' | 'liveness', env: Map<string, string>): void {
    if (probe === undefined) return;
    const period = Math.max(1, probe.periodSeconds ?? 10) * 1000;
    const failureThreshold = probe.failureThreshold ?? 3;
    const successThreshold = probe.successThreshold ?? 1;
    let failures = 0;
    let successes = 0;
    const alive = (): boolean => this.child === child && !this.pod.stopping;
    const tick = async (): Promise<void> => {
      if (!alive()) return;
      const result = await this.pod.agent.runProbe(this.withPortNumbers(probe), this.pod.ip ?? HOST_IP, env);
      if (!alive()) return;
      if (result === true) {
        failures = 0;
        successes++;
        if (kind === 'readiness' && !this.ready && successes >= successThreshold) {
          this.ready = true;
          this.pod.statusChanged();
        }
      } else {
        successes = 0;
        failures++;
        this.pod.agent.event(this.pod.pod, 'Warning', 'Unhealthy', `${kind === 'readiness' ? 'Readiness' : 'Liveness'} probe failed: ${result}`, `spec.containers{${this.name}}`);
        if (failures >= failureThreshold) {
          if (kind === 'readiness' && this.ready) {
            this.ready = false;
            this.pod.statusChanged();
          } else if (kind === 'liveness') {
            this.pod.agent.event(this.pod.pod, 'Normal', 'Killing', `Container ${this.name} failed liveness probe, will be restarted`, `spec.containers{${this.name}}`);
            void stopGroup(child, 'SIGTERM', this.pod.graceSeconds() * 1000);
            return;
          }
        }
      }
      setTimeout(() => void tick(), period).unref();
    };
    setTimeout(() => void tick(), (probe.initialDelaySeconds ?? 0) * 1000).unref();
  }
}

/** One pod on this node, from its first sight to its removal. */
class PodWorker {
  readonly uid: string;
  readonly name: string;
  readonly namespace: string;
  readonly containers: ContainerRunner[];
  ip: string | undefined;
  stopping = false;
  private readonly abort = new AbortController();
  private readonly startTime = now();
  private readonly conditionTimes = new Map<string, { status: string; time: string }>();
  private volumeDirs: Promise<Map<string, string>> | undefined;
  private statusQueued = false;
  private statusWrites: Promise<void> = Promise.resolve();
  private running: Promise<void> = Promise.resolve();
  private terminated: Promise<void> | undefined;
  readonly dir: string;

  constructor(
    public pod: V1Pod,
    readonly agent: Agent,
  ) {
    this.uid = pod.metadata?.uid ?? '';
    this.name = pod.metadata?.name ?? '';
    this.namespace = pod.metadata?.namespace ?? 'default';
    this.containers = (pod.spec?.containers ?? []).map((spec) => new ContainerRunner(spec, this));
    this.dir = path.join(agent.dir, 'pods', this.uid);
  }

  start(): void {
    this.ip = this.agent.allocateIp();
    mkdirSync(this.dir, { recursive: true });
    this.statusChanged();
    if ((this.pod.spec?.initContainers ?? []).length > 0) {
      this.agent.event(this.pod, 'Warning', 'Failed', 'init containers are not run by this node agent; starting the containers without them');
    }
    this.running = Promise.all(
      this.containers.map((c) =>
        c.run(this.abort.signal).catch((error: unknown) => {
          this.agent.log(`pod ${this.namespace}/${this.name} container ${c.name}: ${String(error)}`);
        }),
      ),
    ).then(() => this.statusChanged());
  }

  graceSeconds(): number {
    const grace = this.pod.metadata?.deletionGracePeriodSeconds ?? this.pod.spec?.terminationGracePeriodSeconds ?? 30;
    return Math.max(MIN_GRACE_SECONDS, grace);
  }

  /** The pod's volumes, written once on first use. */
  volumes(): Promise<Map<string, string>> {
    return (this.volumeDirs ??= materializeVolumes(this.pod, this.dir, this.agent.volumeSources()).catch((error: unknown) => {
      this.volumeDirs = undefined; // try again on the next start
      if (error instanceof ContainerConfigError) this.agent.event(this.pod, 'Warning', 'FailedMount', `MountVolume.SetUp failed: ${error.message}`);
      throw error;
    }));
  }

  /** Stops the containers: SIGTERM, then SIGKILL after the grace period. */
  private async killContainers(graceSeconds: number): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    await Promise.all(
      this.containers.map(async (c) => {
        const child = c.child;
        if (child === undefined) return;
        this.agent.event(this.pod, 'Normal', 'Killing', `Stopping container ${c.name}`, `spec.containers{${c.name}}`);
        await stopGroup(child, 'SIGTERM', graceSeconds * 1000);
      }),
    );
    await this.running;
  }

  /** Graceful deletion: kill, report the final status, then remove the pod from the API. */
  terminate(): Promise<void> {
    return (this.terminated ??= (async () => {
      await this.killContainers(this.graceSeconds());
      this.statusChanged();
      await this.statusWrites;
      try {
        await this.agent.core.deleteNamespacedPod({ name: this.name, namespace: this.namespace, body: finalDelete(this.uid) });
      } catch (error) {
        if (statusCode(error) !== 404 && statusCode(error) !== 409) this.agent.log(`deleting pod ${this.namespace}/${this.name}: ${String(error)}`);
      }
      this.cleanUp();
    })());
  }

  /** The pod is gone from the API (forced deletion, or the agent stops): kill, no API calls. */
  forget(graceSeconds = MIN_GRACE_SECONDS): Promise<void> {
    return (this.terminated ??= (async () => {
      this.agent.forgetting.add(this.uid);
      await this.killContainers(graceSeconds);
      this.cleanUp();
    })());
  }

  private cleanUp(): void {
    if (this.ip !== undefined) this.agent.releaseIp(this.ip);
    rmSync(this.dir, { recursive: true, force: true });
    this.agent.removeWorker(this);
  }

  phase(): string {
    let waiting = 0;
    let running = 0;
    let stopped = 0;
    let succeeded = 0;
    for (const c of this.containers) {
      if (c.state.kind === 'running') running++;
      else if (c.state.kind === 'terminated') {
        stopped++;
        if (c.state.terminated.exitCode === 0) succeeded++;
      } else if (c.lastTerminated !== undefined) {
        stopped++;
        if (c.lastTerminated.exitCode === 0) succeeded++;
      } else waiting++;
    }
    if (waiting > 0) return 'Pending';
    if (running > 0) return 'Running';
    const policy = this.pod.spec?.restartPolicy ?? 'Always';
    const final = this.containers.every((c) => c.done);
    if (policy === 'Always' && !final) return 'Running';
    if (succeeded === stopped) return 'Succeeded';
    if (policy === 'OnFailure' && !final) return 'Running';
    return 'Failed';
  }

  private condition(type: string, status: boolean, reason?: string, message?: string): Record<string, unknown> {
    const value = status ? 'True' : 'False';
    const previous = this.conditionTimes.get(type);
    const time = previous?.status === value ? previous.time : now();
    this.conditionTimes.set(type, { status: value, time });
    return { type, status: value, lastProbeTime: null, lastTransitionTime: time, reason: reason ?? null, message: message ?? null };
  }

  private statusJson(): Record<string, unknown> {
    const phase = this.phase();
    const terminal = phase === 'Succeeded' || phase === 'Failed';
    const unready = this.containers.filter((c) => !c.ready).map((c) => c.name);
    const containersReady = unready.length === 0;
    const gates = (this.pod.spec?.readinessGates ?? []).every((gate) => this.pod.status?.conditions?.some((c) => c.type === gate.conditionType && c.status === 'True'));
    const [reason, message] = terminal ? ['PodCompleted', undefined] : containersReady ? [undefined, undefined] : ['ContainersNotReady', `containers with unready status: [${unready.join(' ')}]`];
    return {
      phase,
      hostIP: HOST_IP,
      hostIPs: [{ ip: HOST_IP }],
      ...(this.ip === undefined ? {} : { podIP: this.ip, podIPs: [{ ip: this.ip }] }),
      startTime: this.startTime,
      conditions: [
        this.condition('PodReadyToStartContainers', this.ip !== undefined && !terminal),
        this.condition('Initialized', true),
        this.condition('ContainersReady', containersReady && !terminal, reason, message),
        this.condition('Ready', containersReady && gates && !terminal, reason, message),
      ],
      containerStatuses: this.containers.map((c) => c.statusJson()),
    };
  }

  /** Queues a status write; writes are one at a time, and bursts coalesce into one. */
  statusChanged(): void {
    if (this.statusQueued || this.agent.forgetting.has(this.uid)) return;
    this.statusQueued = true;
    this.statusWrites = this.statusWrites.then(async () => {
      await new Promise((resolve) => setImmediate(resolve));
      this.statusQueued = false;
      try {
        await this.agent.core.patchNamespacedPodStatus(
          { name: this.name, namespace: this.namespace, body: { metadata: { uid: this.uid }, status: this.statusJson() } },
          setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
        );
      } catch (error) {
        if (statusCode(error) !== 404) this.agent.log(`status of pod ${this.namespace}/${this.name}: ${String(error)}`);
      }
    });
  }
}

function imageFrom(table: ImageTable, image: string): ImageRunSpec | undefined {
  return typeof table === 'function' ? table(image) : Object.hasOwn(table, image) ? table[image] : undefined;
}

class Agent implements NodeAgent {
  readonly core: CoreV1Api;
  readonly forgetting = new Set<string>();
  readonly mountsVolumes: boolean;
  serviceProxy: ServiceProxy | undefined;
  kubeletPort = 0;
  private readonly workers = new Map<string, PodWorker>();
  /** Pods this agent has stopped: a late event about one must not start it again. */
  private readonly finished = new Set<string>();
  private readonly ipsInUse = new Set<string>();
  private nextIp = 2;
  private readonly events = new Map<string, { name: string; count: number }>();
  private pods: Informer<V1Pod> | undefined;
  private closeServer: (() => Promise<void>) | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  private readonly capacity: { cpu: string; memory: string; pods: string };

  constructor(
    readonly cluster: ControlPlane,
    readonly name: string,
    readonly podSubnet: string,
    readonly config: KubeConfig,
    readonly options: NodeAgentOptions,
    readonly dir: string,
  ) {
    this.core = config.makeApiClient(CoreV1Api);
    this.mountsVolumes = options.mountVolumes ?? canMountNamespaces();
    this.capacity = { cpu: options.capacity?.cpu ?? '4', memory: options.capacity?.memory ?? '8Gi', pods: String(options.capacity?.pods ?? 110) };
  }

  log(message: string): void {
    const log = this.options.log ?? (process.env.TESSERA_KUBERNETES_LOG === '1' ? (line: string) => console.error(line) : undefined);
    log?.(`node ${this.name}: ${message}`);
  }

  lookupImage(image: string): ImageRunSpec | undefined {
    return imageFrom(this.options.images, image);
  }

  allocateIp(): string {
    for (let i = 0; i < 253; i++) {
      const ip = `${this.podSubnet}.${this.nextIp}`;
      this.nextIp = this.nextIp >= 254 ? 2 : this.nextIp + 1;
      if (!this.ipsInUse.has(ip)) {
        this.ipsInUse.add(ip);
        return ip;
      }
    }
    throw new Error(`node ${this.name}: no pod IP left in ${this.podSubnet}.0/24`);
  }

  releaseIp(ip: string): void {
    this.ipsInUse.delete(ip);
  }

  removeWorker(worker: PodWorker): void {
    if (this.workers.get(worker.uid) === worker) this.workers.delete(worker.uid);
    this.forgetting.delete(worker.uid);
    this.finished.add(worker.uid);
  }

  private async readOptional<T>(read: () => Promise<T>): Promise<T | undefined> {
    // The Node authorizer learns a new pod's references a moment after the pod is bound.
    for (let attempt = 0; ; attempt++) {
      try {
        return await read();
      } catch (error) {
        if (statusCode(error) === 404) return undefined;
        if (statusCode(error) !== 403 || attempt >= 20) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }

  private secret = (namespace: string, name: string): Promise<V1Secret | undefined> => this.readOptional(() => this.core.readNamespacedSecret({ namespace, name }));
  private configMap = (namespace: string, name: string): Promise<V1ConfigMap | undefined> => this.readOptional(() => this.core.readNamespacedConfigMap({ namespace, name }));

  envSources(): Parameters<typeof containerEnv>[3] {
    return {
      secret: this.secret,
      configMap: this.configMap,
      services: (namespace) => this.serviceProxy?.servicesIn(namespace) ?? proxies.get(this.cluster)?.servicesIn(namespace) ?? [],
      allocatable: { cpu: parseQuantity(this.capacity.cpu), memory: parseQuantity(this.capacity.memory) },
    };
  }

  volumeSources(): Parameters<typeof materializeVolumes>[2] {
    return {
      secret: this.secret,
      configMap: this.configMap,
      token: async (pod, serviceAccount, audience, expirationSeconds) => {
        const response = await this.readOptional(() =>
          this.core.createNamespacedServiceAccountToken({
            namespace: pod.metadata?.namespace ?? 'default',
            name: serviceAccount,
            body: plain<AuthenticationV1TokenRequest>({
              spec: {
                audiences: audience === undefined || audience === '' ? [] : [audience],
                expirationSeconds: expirationSeconds ?? 3607,
                boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata?.name ?? '', uid: pod.metadata?.uid ?? '' },
              },
            }),
          }),
        );
        const token = response?.status?.token;
        if (token === undefined) throw new ContainerConfigError(`serviceaccount "${serviceAccount}" not found`);
        return token;
      },
    };
  }

  /** true, or why the probe failed. */
  async runProbe(probe: V1Probe, podIp: string, env: Map<string, string>): Promise<true | string> {
    const timeoutMs = Math.max(1, probe.timeoutSeconds ?? 1) * 1000;
    const port = (value: number | string): number => (typeof value === 'number' ? value : Number(value));
    if (probe.httpGet) {
      const get = probe.httpGet;
      const url = `${(get.scheme ?? 'HTTP').toLowerCase()}://${get.host ?? podIp}:${port(get.port)}${get.path ?? '/'}`;
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: Object.fromEntries((get.httpHeaders ?? []).map((h) => [h.name, h.value])) });
        await response.body?.cancel();
        return response.status >= 200 && response.status < 400 ? true : `HTTP probe failed with statuscode: ${response.status}`;
      } catch (error) {
        return `Get "${url}": ${error instanceof Error ? error.message : String(error)}`;
      }
    }
    if (probe.tcpSocket) {
      const host = probe.tcpSocket.host ?? podIp;
      const p = port(probe.tcpSocket.port);
      return new Promise((resolve) => {
        const socket = connect({ host, port: p, timeout: timeoutMs });
        socket.once('connect', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('timeout', () => {
          socket.destroy();
          resolve(`dial tcp ${host}:${p}: i/o timeout`);
        });
        socket.once('error', (error) => resolve(`dial tcp ${host}:${p}: ${error.message}`));
      });
    }
    if (probe.exec?.command && probe.exec.command.length > 0) {
      const [file, ...args] = probe.exec.command;
      return new Promise((resolve) => {
        const child = spawn(file!, args, { env: Object.fromEntries(env), stdio: 'ignore', timeout: timeoutMs });
        child.once('error', (error) => resolve(error.message));
        child.once('close', (code) => resolve(code === 0 ? true : `command exited ${code}`));
      });
    }
    return true;
  }

  /** Records an event as the kubelet does: a repeat of the same one counts up instead. */
  event(pod: V1Pod, type: 'Normal' | 'Warning', reason: string, message: string, fieldPath?: string): void {
    const namespace = pod.metadata?.namespace ?? 'default';
    const key = `${pod.metadata?.uid ?? ''}|${fieldPath ?? ''}|${type}|${reason}|${message}`;
    const seen = this.events.get(key);
    const at = new Date();
    const request = async (): Promise<void> => {
      if (seen !== undefined) {
        seen.count++;
        await this.core.patchNamespacedEvent(
          { name: seen.name, namespace, body: { count: seen.count, lastTimestamp: at.toISOString().replace(/\.\d{3}Z$/, 'Z') } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
        return;
      }
      const name = `${pod.metadata?.name ?? 'pod'}.${(BigInt(Date.now()) * 1_000_000n + BigInt(Math.floor(Math.random() * 1e6))).toString(16)}`;
      this.events.set(key, { name, count: 1 });
      await this.core.createNamespacedEvent({
        namespace,
        body: plain<CoreV1Event>({
          metadata: { name, namespace },
          involvedObject: { kind: 'Pod', apiVersion: 'v1', namespace, name: pod.metadata?.name ?? '', uid: pod.metadata?.uid ?? '', ...(fieldPath === undefined ? {} : { fieldPath }) },
          type,
          reason,
          message,
          source: { component: 'kubelet', host: this.name },
          reportingComponent: 'kubelet',
          reportingInstance: this.name,
          firstTimestamp: at,
          lastTimestamp: at,
          count: 1,
        }),
      });
    };
    request().catch((error: unknown) => {
      if (statusCode(error) !== 404) this.log(`event ${reason} for ${namespace}/${pod.metadata?.name ?? ''}: ${String(error)}`);
    });
  }

  findLog(namespace: string, podName: string, container: string, previous: boolean): ContainerLog | { status: number; message: string } {
    const worker = [...this.workers.values()].find((w) => w.namespace === namespace && w.name === podName);
    if (worker === undefined) return { status: 404, message: `pod "${podName}" in namespace "${namespace}" is not on node ${this.name}` };
    const runner = worker.containers.find((c) => c.name === container);
    if (runner === undefined) return { status: 400, message: `container "${container}" in pod "${podName}" is not valid` };
    // As the kubelet: between runs (CrashLoopBackOff), the run that just ended is the previous one.
    const between = runner.state.kind !== 'running' && runner.lastTerminated !== undefined;
    const log = previous ? (between ? runner.log : runner.previousLog) : runner.log;
    if (log === undefined) {
      if (previous) return { status: 400, message: `previous terminated container "${container}" in pod "${podName}" not found` };
      const waiting = runner.state.kind === 'waiting' ? runner.state.reason : 'ContainerCreating';
      return { status: 400, message: `container "${container}" in pod "${podName}" is waiting to start: ${waiting}` };
    }
    return log;
  }

  /** Where a port-forward to `pod` goes: its IP while it runs here. */
  podIp(namespace: string, pod: string): string | { status: number; message: string } {
    const worker = [...this.workers.values()].find((w) => w.namespace === namespace && w.name === pod);
    if (worker === undefined) return { status: 404, message: `pod ${namespace}/${pod} does not run on node ${this.name}` };
    if (worker.ip === undefined) return { status: 400, message: `pod ${namespace}/${pod} has no IP yet` };
    return worker.ip;
  }

  containerPid(namespace: string, pod: string, container: string): number | undefined {
    const worker = [...this.workers.values()].find((w) => w.namespace === namespace && w.name === pod);
    return worker?.containers.find((c) => c.name === container)?.child?.pid;
  }

  containerLog(namespace: string, pod: string, container: string, previous = false): string | undefined {
    const found = this.findLog(namespace, pod, container, previous);
    return 'read' in found ? found.text() : undefined;
  }

  private podSeen(pod: V1Pod): void {
    if (this.stopping !== undefined || pod.spec?.nodeName !== this.name) return;
    const uid = pod.metadata?.uid ?? '';
    let worker = this.workers.get(uid);
    if (worker === undefined) {
      const terminal = pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
      if (terminal || this.finished.has(uid) || pod.metadata?.deletionTimestamp !== undefined) {
        // Nothing to run (it finished, here or before this agent started, or is being
        // deleted before it ran), but a deletion is still the node's to finish.
        if (pod.metadata?.deletionTimestamp !== undefined) {
          this.core.deleteNamespacedPod({ name: pod.metadata.name ?? '', namespace: pod.metadata.namespace ?? '', body: finalDelete(uid) }).catch(() => undefined);
        }
        return;
      }
      worker = new PodWorker(pod, this);
      this.workers.set(uid, worker);
      worker.start();
    } else {
      worker.pod = pod;
    }
    if (pod.metadata?.deletionTimestamp !== undefined) void worker.terminate();
  }

  private podGone(pod: V1Pod): void {
    const worker = this.workers.get(pod.metadata?.uid ?? '');
    if (worker !== undefined) void worker.forget();
  }

  async register(): Promise<void> {
    const labels = {
      'kubernetes.io/hostname': this.name,
      'kubernetes.io/os': 'linux',
      'kubernetes.io/arch': process.arch === 'x64' ? 'amd64' : process.arch,
      ...this.options.labels,
    };
    try {
      await this.core.createNode({
        body: plain<V1Node>({
          metadata: { name: this.name, labels },
          spec: { podCIDR: `${this.podSubnet}.0/24`, podCIDRs: [`${this.podSubnet}.0/24`], ...(this.options.taints ? { taints: [...this.options.taints] } : {}) },
        }),
      });
    } catch (error) {
      if (statusCode(error) !== 409) throw error;
    }
    await this.reportNodeStatus();
    await this.renewLease();
  }

  private async reportNodeStatus(): Promise<void> {
    const time = now();
    const condition = (type: string, status: string, reason: string, message: string): Record<string, string> => ({ type, status, reason, message, lastHeartbeatTime: time, lastTransitionTime: time });
    const resources = { cpu: this.capacity.cpu, memory: this.capacity.memory, pods: this.capacity.pods, 'ephemeral-storage': '100Gi' };
    await this.core.patchNodeStatus(
      {
        name: this.name,
        body: {
          status: {
            capacity: resources,
            allocatable: resources,
            conditions: [
              condition('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'kubelet has sufficient memory available'),
              condition('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
              condition('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
              condition('Ready', 'True', 'KubeletReady', 'kubelet is posting ready status'),
            ],
            addresses: [
              { type: 'InternalIP', address: HOST_IP },
              { type: 'Hostname', address: this.name },
            ],
            daemonEndpoints: { kubeletEndpoint: { Port: this.kubeletPort } },
            nodeInfo: {
              machineID: this.name,
              systemUUID: this.name,
              bootID: this.name,
              kernelVersion: process.version,
              osImage: `Tessera test node on ${osHostname()}`,
              containerRuntimeVersion: 'tessera-node-agent://1',
              kubeletVersion: this.cluster.version,
              kubeProxyVersion: '',
              operatingSystem: 'linux',
              architecture: process.arch === 'x64' ? 'amd64' : process.arch,
            },
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
  }

  private async renewLease(): Promise<void> {
    const coordination = this.config.makeApiClient(CoordinationV1Api);
    const spec = { holderIdentity: this.name, leaseDurationSeconds: 40, renewTime: microNow() };
    try {
      await coordination.patchNamespacedLease({ name: this.name, namespace: 'kube-node-lease', body: { spec } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    } catch (error) {
      if (statusCode(error) !== 404) throw error;
      await coordination.createNamespacedLease({
        namespace: 'kube-node-lease',
        body: plain<V1Lease>({ metadata: { name: this.name, namespace: 'kube-node-lease' }, spec: { holderIdentity: this.name, leaseDurationSeconds: 40 } }),
      });
      await coordination.patchNamespacedLease({ name: this.name, namespace: 'kube-node-lease', body: { spec } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    }
  }

  async start(): Promise<void> {
    const serving = await this.cluster.pki.issue({ name: `kubelet-${this.name}`, commonName: `system:node:${this.name}`, organizations: ['system:nodes'], usage: 'server', ips: [HOST_IP], dnsNames: [this.name] });
    const server = await startKubeletServer({ certPem: serving.certPem, keyPem: serving.keyPem, clientCaPem: this.cluster.kubeletClientCaPem, lookup: (...args) => this.findLog(...args), podIp: (...args) => this.podIp(...args) });
    this.kubeletPort = server.port;
    this.closeServer = () => server.close();
    await this.register();
    const renewEvery = this.options.leaseRenewMs ?? 5_000;
    const heartbeat = (): void => {
      this.leaseTimer = setTimeout(() => {
        this.renewLease()
          .catch((error: unknown) => this.log(`lease: ${String(error)}`))
          .finally(() => {
            if (this.stopping === undefined) heartbeat();
          });
      }, renewEvery);
      this.leaseTimer.unref();
    };
    heartbeat();

    const wantProxy = this.options.serviceProxy ?? !proxies.has(this.cluster);
    if (wantProxy) {
      const url = new URL(this.cluster.server);
      // As the EndpointSlice controller it stands in for, it reads every pod: a node may not.
      this.serviceProxy = new ServiceProxy(this.cluster.adminKubeConfig(), { apiServer: { host: url.hostname, port: Number(url.port) }, log: (m) => this.log(m) });
      proxies.set(this.cluster, this.serviceProxy);
      await this.serviceProxy.ready();
    }
    this.pods = startInformer<V1Pod>(
      this.config,
      '/api/v1/pods',
      () => this.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${this.name}` }),
      { upsert: (pod) => this.podSeen(pod), deleted: (pod) => this.podGone(pod) },
      `spec.nodeName=${this.name}`,
    );
    await this.pods.synced;
  }

  stop(): Promise<void> {
    return (this.stopping ??= (async () => {
      clearTimeout(this.leaseTimer);
      this.pods?.stop();
      await Promise.all([...this.workers.values()].map((worker) => worker.forget(0)));
      if (this.serviceProxy !== undefined) {
        this.serviceProxy.stop();
        if (proxies.get(this.cluster) === this.serviceProxy) proxies.delete(this.cluster);
      }
      await this.closeServer?.();
      removeDirectory(this.dir);
    })());
  }
}

/** Registers a node with the cluster and starts running the pods bound to it. */
export async function startNodeAgent(cluster: ControlPlane, options: NodeAgentOptions): Promise<NodeAgent> {
  const name = options.name ?? `node-${randomBytes(3).toString('hex')}`;
  const identity = await cluster.pki.issue({ name: `node-client-${name}`, commonName: `system:node:${name}`, organizations: ['system:nodes'], usage: 'client' });
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: 'cluster', server: cluster.server, caData: Buffer.from(cluster.caPem).toString('base64'), skipTLSVerify: false }],
    users: [{ name, certData: Buffer.from(identity.certPem).toString('base64'), keyData: Buffer.from(identity.keyPem).toString('base64') }],
    contexts: [{ name, cluster: 'cluster', user: name }],
    currentContext: name,
  });
  const dir = temporaryDirectory('tessera-node-');
  const agent = new Agent(cluster, name, cluster.allocatePodSubnet(), config, options, dir);
  try {
    await agent.start();
  } catch (error) {
    await agent.stop();
    throw error;
  }
  return agent;
}
