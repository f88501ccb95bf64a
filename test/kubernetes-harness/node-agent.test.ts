// The node agent runs pods of a real control plane as local processes and reports them as
// a kubelet would: Running with an IP of its own, logs through the API, SIGTERM on
// deletion, ImagePullBackOff, CrashLoopBackOff, the downward API and Secrets in the env,
// the service-account token where pods look for it, and Services reaching their pods.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApiException, CoreV1Api, type CoreV1Event, type V1ConfigMap, type V1Container, type V1Namespace, type V1Pod, type V1PodSpec, type V1Secret, type V1Service } from '@kubernetes/client-node';
import { type Plain, plain } from '../helpers/kubernetes/plain.js';
import { skipWithoutKubernetes } from '../helpers/kubernetes/binaries.js';
import { type ControlPlane, startControlPlane } from '../helpers/kubernetes/control-plane.js';
import { type NodeAgent, startNodeAgent } from '../helpers/kubernetes/node-agent.js';
import { until } from '../helpers/wait.js';

const skip = skipWithoutKubernetes;
const NODE = 'example/node:1';
const NAMESPACE = 'agent-check';

interface NodePod {
  /** Pod spec fields besides the container. */
  spec?: Omit<Plain<V1PodSpec>, 'containers'>;
  /** Container fields besides name, image and args. */
  container?: Omit<Plain<V1Container>, 'name' | 'image' | 'args'>;
  labels?: Record<string, string>;
}

/** A pod whose one container runs `node -e script`. */
function nodePod(name: string, script: string, options: NodePod = {}): V1Pod {
  return plain<V1Pod>({
    metadata: { name, namespace: NAMESPACE, labels: options.labels ?? {} },
    spec: { terminationGracePeriodSeconds: 10, ...options.spec, containers: [{ name: 'main', image: NODE, args: ['-e', script], ...options.container }] },
  });
}

/** POD_NAME and POD_IP from the downward API. */
const IDENTITY: Plain<V1Container>['env'] = [
  { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
  { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
];

void describe('the node agent', { skip }, () => {
  let cluster: ControlPlane;
  let agent: NodeAgent;
  let core: CoreV1Api;
  let scratch: string;

  const pod = (name: string): Promise<V1Pod> => core.readNamespacedPod({ namespace: NAMESPACE, name });
  const gone = async (name: string): Promise<boolean> => {
    try {
      await pod(name);
      return false;
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) return true;
      throw error;
    }
  };
  const events = async (name: string): Promise<CoreV1Event[]> =>
    (await core.listNamespacedEvent({ namespace: NAMESPACE, fieldSelector: `involvedObject.name=${name}` })).items;
  const waitRunning = (name: string): Promise<void> => until(async () => (await pod(name)).status?.phase === 'Running', `${name} runs`, 60_000, 100);

  before(async () => {
    scratch = mkdtempSync(path.join(tmpdir(), 'tessera-agent-test-'));
    const t0 = performance.now();
    cluster = await startControlPlane();
    const t1 = performance.now();
    agent = await startNodeAgent(cluster, { images: { [NODE]: { entrypoint: [process.execPath] } }, crashLoopBackoff: { initialMs: 200, maxMs: 1_000 } });
    console.log(`control plane ready in ${Math.round(t1 - t0)} ms, node agent in ${Math.round(performance.now() - t1)} ms`);
    core = cluster.adminKubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespace({ body: plain<V1Namespace>({ metadata: { name: NAMESPACE } }) });
    await until(async () => (await core.listNamespacedServiceAccount({ namespace: NAMESPACE })).items.some((a) => a.metadata?.name === 'default'), 'the namespace has its default service account');
  });

  after(async () => {
    await agent.stop();
    await cluster.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  void test('runs a pod: Running with its own loopback IP, log through the API, SIGTERM on deletion, then gone', async () => {
    const mark = path.join(scratch, 'sigterm');
    const script = `
      const ip = process.env.POD_IP;
      require('node:net').createServer().listen(8080, ip, () => console.log('hello from', process.env.POD_NAME, 'at', ip));
      process.on('SIGTERM', () => { require('node:fs').writeFileSync(${JSON.stringify(mark)}, 'SIGTERM'); console.log('stopping'); process.exit(0); });`;
    await core.createNamespacedPod({ namespace: NAMESPACE, body: nodePod('runner', script, { container: { env: IDENTITY } }) });
    await waitRunning('runner');
    const running = await pod('runner');
    const ip = running.status?.podIP ?? '';
    assert.match(ip, /^127\.\d+\.\d+\.\d+$/);
    assert.notEqual(ip, '127.0.0.1');
    assert.equal(running.status?.hostIP, '127.0.0.1');
    const status = running.status.containerStatuses?.[0];
    assert.ok(status?.state?.running?.startedAt);
    assert.equal(status.ready, true);
    assert.ok(running.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    const reasons = (await events('runner')).map((e) => e.reason);
    for (const reason of ['Scheduled', 'Pulled', 'Created', 'Started']) assert.ok(reasons.includes(reason), `event ${reason} in ${reasons.join(',')}`);

    await until(async () => (await core.readNamespacedPodLog({ namespace: NAMESPACE, name: 'runner' })).includes('hello from'), 'the log shows the greeting');
    assert.equal(await core.readNamespacedPodLog({ namespace: NAMESPACE, name: 'runner' }), `hello from runner at ${ip}\n`);
    const viaKubectl = await cluster.kubectl(['logs', '-n', NAMESPACE, 'runner', '--timestamps']);
    assert.match(viaKubectl.stdout, /^\d{4}-\d\d-\d\dT\S+Z hello from runner/);

    // A second pod binds the same port: it has an address of its own.
    await core.createNamespacedPod({ namespace: NAMESPACE, body: nodePod('neighbour', script.replace(mark, `${mark}-2`), { container: { env: IDENTITY } }) });
    await waitRunning('neighbour');
    await until(async () => (await core.readNamespacedPodLog({ namespace: NAMESPACE, name: 'neighbour' })).includes('hello from'), 'the neighbour listens too');
    assert.notEqual((await pod('neighbour')).status?.podIP, ip);

    const t0 = performance.now();
    await core.deleteNamespacedPod({ namespace: NAMESPACE, name: 'runner' });
    await until(() => gone('runner'), 'the deleted pod is gone', 30_000, 50);
    assert.ok(performance.now() - t0 < 10_000, 'the pod went before its grace period ran out: SIGTERM ended it');
    assert.equal(readFileSync(mark, 'utf8'), 'SIGTERM');
    assert.ok((await events('runner')).some((e) => e.reason === 'Killing'));
    await core.deleteNamespacedPod({ namespace: NAMESPACE, name: 'neighbour', gracePeriodSeconds: 0 });
  });

  void test('an image not in the table: ErrImagePull, then ImagePullBackOff', async () => {
    await core.createNamespacedPod({ namespace: NAMESPACE, body: plain<V1Pod>({ metadata: { name: 'no-image' }, spec: { containers: [{ name: 'main', image: 'example/missing:1' }] } }) });
    await until(async () => (await pod('no-image')).status?.containerStatuses?.[0]?.state?.waiting?.reason === 'ImagePullBackOff', 'ImagePullBackOff', 60_000, 50);
    const current = await pod('no-image');
    assert.equal(current.status?.phase, 'Pending');
    const messages = (await events('no-image')).map((e) => `${e.reason}: ${e.message}`);
    assert.ok(messages.includes('Failed: Error: ErrImagePull'), messages.join('\n'));
    assert.ok(messages.some((m) => m.startsWith('BackOff: Back-off pulling image "example/missing:1"')), messages.join('\n'));
    await core.deleteNamespacedPod({ namespace: NAMESPACE, name: 'no-image' });
    await until(() => gone('no-image'), 'the pod is gone');
  });

  void test('a crashing command: CrashLoopBackOff, restartCount growing, the previous run\'s log kept', async () => {
    await core.createNamespacedPod({ namespace: NAMESPACE, body: nodePod('crasher', "console.log('about to fail'); process.exit(3)") });
    await until(async () => {
      const status = (await pod('crasher')).status?.containerStatuses?.[0];
      return status?.state?.waiting?.reason === 'CrashLoopBackOff' && status.restartCount >= 2;
    }, 'CrashLoopBackOff with two restarts', 60_000, 50);
    const current = await pod('crasher');
    const status = current.status!.containerStatuses![0]!;
    assert.equal(status.lastState?.terminated?.exitCode, 3);
    assert.equal(status.lastState.terminated.reason, 'Error');
    assert.equal(current.status?.phase, 'Running');
    assert.ok((await events('crasher')).some((e) => e.reason === 'BackOff' && e.type === 'Warning' && (e.count ?? 0) >= 1));
    const previous = await core.readNamespacedPodLog({ namespace: NAMESPACE, name: 'crasher', previous: true });
    assert.equal(previous, 'about to fail\n');
    await core.deleteNamespacedPod({ namespace: NAMESPACE, name: 'crasher', gracePeriodSeconds: 0 });
  });

  void test('restartPolicy Never: Succeeded after exit 0, Failed after exit 1, no restart', async () => {
    await core.createNamespacedPod({ namespace: NAMESPACE, body: nodePod('once-ok', 'process.exit(0)', { spec: { restartPolicy: 'Never' } }) });
    await core.createNamespacedPod({ namespace: NAMESPACE, body: nodePod('once-bad', 'process.exit(1)', { spec: { restartPolicy: 'Never' } }) });
    await until(async () => (await pod('once-ok')).status?.phase === 'Succeeded', 'once-ok succeeds', 60_000, 50);
    await until(async () => (await pod('once-bad')).status?.phase === 'Failed', 'once-bad fails', 60_000, 50);
    assert.equal((await pod('once-bad')).status?.containerStatuses?.[0]?.restartCount, 0);
    assert.equal((await pod('once-bad')).status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 1);
  });

  void test('env: downward API, Secret and ConfigMap keys, envFrom, $(VAR) expansion, Service variables', async () => {
    await core.createNamespacedSecret({ namespace: NAMESPACE, body: plain<V1Secret>({ metadata: { name: 'creds' }, stringData: { password: 's3cret' } }) });
    await core.createNamespacedConfigMap({ namespace: NAMESPACE, body: plain<V1ConfigMap>({ metadata: { name: 'settings' }, data: { mode: 'fast', level: '3' } }) });
    const field = (name: string, fieldPath: string): NonNullable<Plain<V1Container>['env']>[number] => ({ name, valueFrom: { fieldRef: { fieldPath } } });
    const spec = nodePod('env-reader', 'console.log(JSON.stringify(process.env))', {
      spec: { restartPolicy: 'Never', serviceAccountName: 'default' },
      container: {
        env: [
          field('POD_NAME', 'metadata.name'), field('POD_NAMESPACE', 'metadata.namespace'), field('POD_UID', 'metadata.uid'),
          field('POD_IP', 'status.podIP'), field('NODE_NAME', 'spec.nodeName'), field('SA', 'spec.serviceAccountName'),
          { name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'creds', key: 'password' } } },
          { name: 'MODE', valueFrom: { configMapKeyRef: { name: 'settings', key: 'mode' } } },
          { name: 'GREETING', value: 'pod $(POD_NAME) in $(POD_NAMESPACE), $$(literal)' },
        ],
        envFrom: [{ prefix: 'CFG_', configMapRef: { name: 'settings' } }],
      },
    });
    await core.createNamespacedPod({ namespace: NAMESPACE, body: spec });
    await until(async () => (await pod('env-reader')).status?.phase === 'Succeeded', 'env-reader finishes', 60_000, 50);
    const env = JSON.parse(await core.readNamespacedPodLog({ namespace: NAMESPACE, name: 'env-reader' })) as Record<string, string>;
    const current = await pod('env-reader');
    assert.equal(env.POD_NAME, 'env-reader');
    assert.equal(env.POD_NAMESPACE, NAMESPACE);
    assert.equal(env.POD_UID, current.metadata?.uid);
    assert.equal(env.POD_IP, current.status?.podIP);
    assert.equal(env.NODE_NAME, agent.name);
    assert.equal(env.SA, 'default');
    assert.equal(env.PASSWORD, 's3cret');
    assert.equal(env.MODE, 'fast');
    assert.equal(env.CFG_level, '3');
    assert.equal(env.GREETING, `pod env-reader in ${NAMESPACE}, $(literal)`);
    assert.equal(env.HOSTNAME, 'env-reader');
    assert.equal(env.KUBERNETES_SERVICE_HOST, cluster.kubernetesServiceIp);
    assert.equal(env.KUBERNETES_SERVICE_PORT, '443');
  });

  void test('a pod sees its service-account token, CA and namespace, and reaches the API through the kubernetes Service', async (t) => {
    if (!agent.mountsVolumes && process.env.CI !== 'true') {
      t.skip('volume mounts need root and unshare');
      return;
    }
    const script = `
      const fs = require('node:fs'), https = require('node:https');
      const dir = '/var/run/secrets/kubernetes.io/serviceaccount';
      const token = fs.readFileSync(dir + '/token', 'utf8'), ca = fs.readFileSync(dir + '/ca.crt'), ns = fs.readFileSync(dir + '/namespace', 'utf8');
      const url = 'https://' + process.env.KUBERNETES_SERVICE_HOST + ':' + process.env.KUBERNETES_SERVICE_PORT + '/api/v1/namespaces/' + ns + '/pods';
      https.get(url, { ca, headers: { authorization: 'Bearer ' + token } }, (res) => {
        let body = ''; res.on('data', (c) => body += c);
        res.on('end', () => { console.log(JSON.stringify({ ns, status: res.statusCode, reason: JSON.parse(body).reason })); });
      }).on('error', (e) => { console.log(JSON.stringify({ error: e.message })); process.exit(1); });`;
    await core.createNamespacedPod({ namespace: NAMESPACE, body: nodePod('token-reader', script, { spec: { restartPolicy: 'Never' } }) });
    await until(async () => ['Succeeded', 'Failed'].includes((await pod('token-reader')).status?.phase ?? ''), 'token-reader finishes', 60_000, 50);
    const result = JSON.parse(await core.readNamespacedPodLog({ namespace: NAMESPACE, name: 'token-reader' })) as Record<string, unknown>;
    // The default account may not list pods: the API server knew the token and said so.
    assert.deepEqual(result, { ns: NAMESPACE, status: 403, reason: 'Forbidden' });
  });

  void test('a Service forwards to its ready pod, from the test and from another pod', async () => {
    const server = `
      require('node:net').createServer((s) => s.end('served by ' + process.env.POD_NAME + '\\n')).listen(8080, process.env.POD_IP);`;
    const spec = nodePod('backend', server, {
      labels: { app: 'backend' },
      container: { env: IDENTITY, ports: [{ name: 'serve', containerPort: 8080 }], readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 } },
    });
    const service = await core.createNamespacedService({
      namespace: NAMESPACE,
      body: plain<V1Service>({ metadata: { name: 'backend' }, spec: { selector: { app: 'backend' }, ports: [{ name: 'main', port: 80, targetPort: 'serve' }] } }),
    });
    const clusterIp = service.spec?.clusterIP ?? '';
    assert.ok(clusterIp.startsWith(cluster.serviceCidr.split('.').slice(0, 2).join('.')), `${clusterIp} in ${cluster.serviceCidr}`);
    await core.createNamespacedPod({ namespace: NAMESPACE, body: spec });
    await until(async () => (await pod('backend')).status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true, 'the backend is ready', 60_000, 50);

    // A pod turns ready before the endpoints controller lists it: until then the Service has
    // no endpoint and the connection is reset, as on a real cluster. Ask until it answers.
    const ask = (): Promise<string> =>
      new Promise<string>((resolve, reject) => {
        let data = '';
        const socket = connect({ host: clusterIp, port: 80 });
        socket.setTimeout(10_000, () => socket.destroy(new Error(`no answer from ${clusterIp}:80`)));
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => (data += chunk));
        socket.on('end', () => resolve(data));
        socket.on('error', reject);
      });
    let reply = '';
    await until(async () => {
      reply = await ask().catch(() => '');
      return reply !== '';
    }, `the Service at ${clusterIp}:80 answers`, 60_000, 200);
    assert.equal(reply, 'served by backend\n');

    const client = `
      let tries = 0;
      const ask = () => {
        const s = require('node:net').connect(Number(process.env.BACKEND_SERVICE_PORT), process.env.BACKEND_SERVICE_HOST);
        s.setEncoding('utf8'); s.on('data', (d) => process.stdout.write(d));
        s.on('error', (e) => { if (++tries < 50) setTimeout(ask, 200); else { console.log(e.message); process.exit(1); } });
      };
      ask();`;
    await core.createNamespacedPod({ namespace: NAMESPACE, body: nodePod('frontend', client, { spec: { restartPolicy: 'Never' } }) });
    await until(async () => ['Succeeded', 'Failed'].includes((await pod('frontend')).status?.phase ?? ''), 'the frontend finishes', 60_000, 50);
    assert.equal(await core.readNamespacedPodLog({ namespace: NAMESPACE, name: 'frontend' }), 'served by backend\n');
  });
});
