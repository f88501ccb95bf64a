/**
 * A real Kubernetes control plane for tests: etcd, kube-apiserver, kube-controller-manager
 * and kube-scheduler of the release pinned in scripts/kubernetes/, on free ports of
 * 127.0.0.1, in a temporary directory removed by `stop()` (or at exit).
 *
 *   const cluster = await startControlPlane();
 *   const agent = await startNodeAgent(cluster, { images: { 'busybox': { command: [] } } });
 *   await cluster.kubectl(['apply', '-k', 'deploy/kubernetes']);
 *   ...
 *   await agent.stop();
 *   await cluster.stop();
 *
 * The API server authorises with Node and RBAC, signs service-account tokens, and knows an
 * admin (group system:masters) by a static token. Service cluster IPs are in a /16 of
 * loopback (network.ts) that the node agent's proxy serves. EndpointSlices cannot name
 * loopback addresses (the API rejects them), so the endpoint controllers are off and the
 * node agent's proxy finds a Service's ready pods itself (service-proxy.ts).
 */
import { type ChildProcess, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { request as httpRequest } from 'node:http';
import path from 'node:path';
import { type AuthenticationV1TokenRequest, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { binary, kubernetesMissing, KUBERNETES_VERSION } from './binaries.js';
import { claimNetworkSlot, freePort, type NetworkSlot } from './network.js';
import { ClusterPki, type IssuedCertificate } from './pki.js';
import { plain } from './plain.js';
import { keepDirectory, removeDirectory, spawnGroup, stopGroup, temporaryDirectory } from './processes.js';

type Server = 'etcd' | 'kube-apiserver' | 'kube-controller-manager' | 'kube-scheduler';

export interface ControlPlaneOptions {
  /** Start kube-controller-manager (garbage collector, service accounts, namespaces…). Default true. */
  controllerManager?: boolean;
  /** Start kube-scheduler. Default true. */
  scheduler?: boolean;
  /** Extra command-line flags per component, after the harness's own (so they win). */
  flags?: Partial<Record<Server, readonly string[]>>;
  /** Keep the temporary directory (logs, certificates, etcd data) after stop(). Default: TESSERA_KEEP_KUBERNETES=1. */
  keepDir?: boolean;
  /** How long the components may take to become ready. Default 90 s. */
  startTimeoutMs?: number;
}

export interface KubectlOptions {
  /** Written to kubectl's stdin (for `-f -`). */
  input?: string;
  /** Authenticate with this bearer token instead of the admin's. */
  token?: string;
  /** Throw KubectlError on a non-zero exit. Default true. */
  check?: boolean;
  cwd?: string;
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class KubectlError extends Error {
  constructor(
    readonly args: readonly string[],
    readonly result: KubectlResult,
  ) {
    super(`kubectl ${args.join(' ')} exited ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`);
    this.name = 'KubectlError';
  }
}

export interface ServiceAccountTokenOptions {
  expirationSeconds?: number;
  audiences?: readonly string[];
  /** Bind the token to an object (a Pod, a Secret): it stops working when that object is deleted. */
  boundObject?: { kind: 'Pod' | 'Secret'; name: string; uid: string };
}

export interface ControlPlane {
  readonly version: string;
  /** https://127.0.0.1:<port> */
  readonly server: string;
  /** The cluster CA: it signed the API server's serving certificate. */
  readonly caPem: string;
  /** A bearer token of user `admin` in group system:masters. */
  readonly adminToken: string;
  /** A kubeconfig for the admin (context `admin`), in the temporary directory. */
  readonly kubeconfigPath: string;
  /** The service-account token issuer, as in tokens' `iss`. */
  readonly serviceAccountIssuer: string;
  readonly serviceCidr: string;
  /** The cluster IP of default/kubernetes (port 443), as pods see it. */
  readonly kubernetesServiceIp: string;
  readonly dir: string;
  readonly logDir: string;
  /** Milliseconds from the start to each step: certificates made, etcd healthy, API server ready, controllers ready. */
  readonly startup: Readonly<Record<'certificates' | 'etcd' | 'apiserver' | 'controllers', number>>;
  readonly pki: ClusterPki;
  /** The apiserver's client certificate for kubelets: node agents trust its CA. */
  readonly kubeletClientCaPem: string;
  /** A client-node KubeConfig for the admin. */
  adminKubeConfig(): KubeConfig;
  /** A client-node KubeConfig that authenticates with `token`. */
  kubeConfigForToken(token: string): KubeConfig;
  /** Runs kubectl against this cluster, as the admin unless `token` is given. */
  kubectl(args: readonly string[], options?: KubectlOptions): Promise<KubectlResult>;
  /** A token for a service account, from the TokenRequest API. */
  createServiceAccountToken(namespace: string, serviceAccount: string, options?: ServiceAccountTokenOptions): Promise<string>;
  /** The next node's pod subnet: `127.P.N` (a /24), distinct for each call. */
  allocatePodSubnet(): string;
  /** Stops every component (TERM, then KILL after a few seconds) and removes the directory. */
  stop(): Promise<void>;
}

const STOP_GRACE_MS = 3_000;

/** Starts a control plane; throws (naming the log to read) if it does not come up. */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  if (kubernetesMissing !== false) throw new Error(kubernetesMissing);
  const dir = temporaryDirectory('tessera-kube-');
  const keepDir = options.keepDir ?? process.env.TESSERA_KEEP_KUBERNETES === '1';
  if (keepDir) keepDirectory(dir);
  const started = new Map<Server, ChildProcess>();
  let slot: NetworkSlot | undefined;
  try {
    slot = claimNetworkSlot();
    const plane = await launch(dir, slot, started, options);
    return plane;
  } catch (error) {
    await Promise.all([...started.values()].map((child) => stopGroup(child, 'SIGKILL')));
    slot?.release();
    // Keep the logs of a failed start where the error says they are.
    keepDirectory(dir);
    rmSync(path.join(dir, 'etcd'), { recursive: true, force: true });
    throw error;
  }
}

async function launch(dir: string, slot: NetworkSlot, started: Map<Server, ChildProcess>, options: ControlPlaneOptions): Promise<ControlPlane> {
  const t0 = performance.now();
  const timeoutMs = options.startTimeoutMs ?? 90_000;
  const deadline = t0 + timeoutMs;
  const logDir = path.join(dir, 'logs');
  const pkiDir = path.join(dir, 'pki');
  mkdirSync(logDir);
  mkdirSync(pkiDir);

  const [pki, etcdPort, etcdPeerPort, apiPort] = await Promise.all([ClusterPki.create(pkiDir), freePort(), freePort(), freePort()]);
  const server = `https://127.0.0.1:${apiPort}`;
  const elapsed = (): number => Math.round(performance.now() - t0);
  const [serving, kubeletClient] = await Promise.all([
    pki.issue({
      name: 'apiserver',
      commonName: 'kube-apiserver',
      usage: 'server',
      ips: ['127.0.0.1', slot.kubernetesServiceIp],
      dnsNames: ['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'],
    }),
    pki.issue({ name: 'apiserver-kubelet-client', commonName: 'kube-apiserver-kubelet-client', organizations: ['system:masters'], usage: 'client' }),
  ]);

  const certificatesMs = elapsed();
  const adminToken = randomBytes(24).toString('hex');
  const tokenFile = path.join(pkiDir, 'tokens.csv');
  writeFileSync(tokenFile, `${adminToken},admin,admin-uid,"system:masters"\n`, { mode: 0o600 });
  const kubeconfigPath = path.join(dir, 'admin.kubeconfig');
  writeFileSync(kubeconfigPath, kubeconfigJson(server, pki.caPem, adminToken), { mode: 0o600 });
  const issuer = 'https://kubernetes.default.svc.cluster.local';

  const spawnServer = (name: Server, args: readonly string[]): ChildProcess => {
    const log = openSync(path.join(logDir, `${name}.log`), 'a');
    try {
      const child = spawnGroup(binary(name), [...args, ...(options.flags?.[name] ?? [])], { stdio: ['ignore', log, log], cwd: dir });
      started.set(name, child);
      return child;
    } finally {
      closeSync(log);
    }
  };
  const ensureRunning = (): void => {
    for (const [name, child] of started) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}) while the control plane started; ${logTail(logDir, name)}`);
      }
    }
  };
  const waitFor = async (what: string, ready: () => Promise<boolean>): Promise<void> => {
    for (;;) {
      ensureRunning();
      if (await ready().catch(() => false)) return;
      if (performance.now() > deadline) throw new Error(`the control plane did not start in ${timeoutMs} ms: no ${what}; logs in ${logDir}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  const etcdUrl = `http://127.0.0.1:${etcdPort}`;
  const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;
  spawnServer('etcd', [
    '--name=default', `--data-dir=${path.join(dir, 'etcd')}`,
    `--listen-client-urls=${etcdUrl}`, `--advertise-client-urls=${etcdUrl}`,
    `--listen-peer-urls=${peerUrl}`, `--initial-advertise-peer-urls=${peerUrl}`, `--initial-cluster=default=${peerUrl}`,
    // Test data: nothing to keep across a crash, so no fsync (the largest cost of a write).
    '--unsafe-no-fsync', '--log-level=warn',
    // One member on loopback: elect it in a tenth of the default time.
    '--heartbeat-interval=10', '--election-timeout=100',
  ]);
  await waitFor('etcd /health', async () => (await httpGet(`${etcdUrl}/health`)).includes('"health":"true"'));
  const etcdMs = elapsed();

  spawnServer('kube-apiserver', [
    `--etcd-servers=${etcdUrl}`,
    '--bind-address=127.0.0.1', `--secure-port=${apiPort}`, '--advertise-address=127.0.0.1',
    `--cert-dir=${pkiDir}`, `--tls-cert-file=${serving.certFile}`, `--tls-private-key-file=${serving.keyFile}`,
    `--client-ca-file=${pki.caFile}`, `--token-auth-file=${tokenFile}`,
    '--authorization-mode=Node,RBAC',
    `--service-account-issuer=${issuer}`, `--service-account-key-file=${pki.serviceAccountPublicKeyFile}`,
    `--service-account-signing-key-file=${pki.serviceAccountKeyFile}`,
    `--service-cluster-ip-range=${slot.serviceCidr}`,
    // The apiserver's own address is loopback, which no Endpoints object may hold: the node
    // agent's proxy sends the kubernetes Service to `server` instead.
    '--endpoint-reconciler-type=none',
    // pods/log and friends: the apiserver calls the node agent's kubelet port with a client
    // certificate, and verifies the agent's serving certificate against the cluster CA.
    `--kubelet-client-certificate=${kubeletClient.certFile}`, `--kubelet-client-key=${kubeletClient.keyFile}`,
    `--kubelet-certificate-authority=${pki.caFile}`, '--kubelet-preferred-address-types=InternalIP',
    // API Priority and Fairness takes a second and a half of every start to set up; tests
    // have no tenants to keep apart. `flags` can turn it back on.
    '--enable-priority-and-fairness=false',
    '--profiling=false', '--v=1',
  ]);

  await waitFor('kube-apiserver /readyz', async () => (await httpsGet(`${server}/readyz`, pki.caPem)) === 'ok');
  const apiserverMs = elapsed();

  // They give up if the API server is not healthy within seconds of their start: after it.
  const controllerFlags = [`--kubeconfig=${kubeconfigPath}`, '--leader-elect=false', '--secure-port=0', '--profiling=false', '--v=1'];
  if (options.controllerManager ?? true) {
    spawnServer('kube-controller-manager', [
      ...controllerFlags,
      `--root-ca-file=${pki.caFile}`, `--service-account-private-key-file=${pki.serviceAccountKeyFile}`,
      `--cluster-signing-cert-file=${pki.caFile}`, `--cluster-signing-key-file=${pki.caKeyFile}`,
      // See the header: EndpointSlices cannot hold the pods' loopback addresses.
      '--controllers=*,-endpoints-controller,-endpointslice-controller,-endpointslice-mirroring-controller',
    ]);
  }
  if (options.scheduler ?? true) spawnServer('kube-scheduler', controllerFlags);

  const adminKubeConfig = (): KubeConfig => kubeConfigFor(server, pki.caPem, adminToken);
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  if (options.controllerManager ?? true) {
    // The service-account controller has made the default namespace's account: pods can be created.
    await waitFor('default/default ServiceAccount', async () => (await core.readNamespacedServiceAccount({ namespace: 'default', name: 'default' })).metadata?.name === 'default');
  }

  const startup = { certificates: certificatesMs, etcd: etcdMs, apiserver: apiserverMs, controllers: elapsed() };
  let nextSubnet = 1;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      const order: Server[][] = [['kube-scheduler', 'kube-controller-manager'], ['kube-apiserver'], ['etcd']];
      for (const names of order) {
        const children = names.flatMap((name) => started.get(name) ?? []);
        await Promise.all(children.map((child) => stopGroup(child, 'SIGTERM', STOP_GRACE_MS)));
      }
      slot.release();
      if (!(options.keepDir ?? process.env.TESSERA_KEEP_KUBERNETES === '1')) removeDirectory(dir);
    })());

  return {
    version: KUBERNETES_VERSION,
    server,
    caPem: pki.caPem,
    adminToken,
    kubeconfigPath,
    serviceAccountIssuer: issuer,
    serviceCidr: slot.serviceCidr,
    kubernetesServiceIp: slot.kubernetesServiceIp,
    dir,
    logDir,
    startup,
    pki,
    kubeletClientCaPem: pki.caPem,
    adminKubeConfig,
    kubeConfigForToken: (token) => kubeConfigFor(server, pki.caPem, token),
    kubectl: (args, kubectlOptions) => kubectl(kubeconfigPath, server, args, kubectlOptions),
    async createServiceAccountToken(namespace, serviceAccount, tokenOptions = {}) {
      const response = await core.createNamespacedServiceAccountToken({
        namespace,
        name: serviceAccount,
        body: plain<AuthenticationV1TokenRequest>({
          spec: {
            audiences: [...(tokenOptions.audiences ?? [])],
            ...(tokenOptions.expirationSeconds === undefined ? {} : { expirationSeconds: tokenOptions.expirationSeconds }),
            ...(tokenOptions.boundObject === undefined ? {} : { boundObjectRef: { apiVersion: 'v1', ...tokenOptions.boundObject } }),
          },
        }),
      });
      const token = response.status?.token;
      if (token === undefined) throw new Error(`TokenRequest for ${namespace}/${serviceAccount} returned no token`);
      return token;
    },
    allocatePodSubnet() {
      if (nextSubnet > 254) throw new Error('no pod subnet left in this cluster');
      return `${slot.podNetworkPrefix}.${nextSubnet++}`;
    },
    stop,
  } satisfies ControlPlane;
}

function kubeconfigJson(server: string, caPem: string, token: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'tessera-test', cluster: { server, 'certificate-authority-data': Buffer.from(caPem).toString('base64') } }],
    users: [{ name: 'admin', user: { token } }],
    contexts: [{ name: 'admin', context: { cluster: 'tessera-test', user: 'admin' } }],
    'current-context': 'admin',
  });
}

function kubeConfigFor(server: string, caPem: string, token: string): KubeConfig {
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: 'tessera-test', server, caData: Buffer.from(caPem).toString('base64'), skipTLSVerify: false }],
    users: [{ name: 'user', token }],
    contexts: [{ name: 'user', cluster: 'tessera-test', user: 'user' }],
    currentContext: 'user',
  });
  return config;
}

function kubectl(kubeconfigPath: string, server: string, args: readonly string[], options: KubectlOptions = {}): Promise<KubectlResult> {
  // With a token, the kubeconfig still gives the server and CA; --token overrides the user.
  const argv = [`--kubeconfig=${kubeconfigPath}`, ...(options.token === undefined ? [] : [`--token=${options.token}`]), ...args];
  return new Promise<KubectlResult>((resolve, reject) => {
    const child = execFile(
      binary('kubectl'),
      argv,
      { cwd: options.cwd, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, KUBECONFIG: kubeconfigPath, HOME: path.dirname(kubeconfigPath) } },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        const result = { code, stdout, stderr };
        if (code !== 0 && (options.check ?? true)) reject(new KubectlError(args, result));
        else resolve(result);
      },
    );
    child.stdin?.end(options.input ?? '');
  }).catch((error: unknown) => {
    if (error instanceof KubectlError) throw error;
    throw new Error(`kubectl against ${server} could not run`, { cause: error });
  });
}

function logTail(logDir: string, name: string): string {
  try {
    const lines = readFileSync(path.join(logDir, `${name}.log`), 'utf8').trimEnd().split('\n');
    return `the end of ${name}.log:\n${lines.slice(-15).join('\n')}`;
  } catch {
    return `no ${name}.log`;
  }
}

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { timeout: 2_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

function httpsGet(url: string, caPem: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca: caPem, timeout: 2_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(res.statusCode === 200 ? body : `${res.statusCode}: ${body}`));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

export type { IssuedCertificate };
