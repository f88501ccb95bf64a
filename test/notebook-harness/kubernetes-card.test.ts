/**
 * KubernetesCluster's card on a real control plane: the scheduler in a pod, its worker pods
 * run by the test node agent, and this process reading the scheduler's dashboard API for
 * the card. In a kernel (here Deno.jupyter's display function, recorded) the card is one
 * display, updated in place as a worker pod joins, shown closed once the cluster is gone,
 * and then nothing more is read or sent. Needs scripts/kubernetes/ensure.sh's binaries:
 * without them the test skips outside CI and fails under CI.
 */
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { KubernetesCluster } from '../../src/deploy/kubernetes/index.js';
import type { MimeBundle } from '../../src/notebook/kernel.js';
import { skipWithoutKubernetes } from '../helpers/kubernetes/binaries.js';
import { type ControlPlane, startControlPlane } from '../helpers/kubernetes/control-plane.js';
import { type NodeAgent, startNodeAgent } from '../helpers/kubernetes/node-agent.js';
import { TESSERA_IMAGE, tesseraImages } from '../helpers/kubernetes/tessera-image.js';
import { until } from '../helpers/wait.js';

const DISPLAY = Symbol.for('Jupyter.display');
const field = (markup: string | undefined, name: string): string | undefined => new RegExp(`data-field="${name}">([^<]*)<`).exec(markup ?? '')?.[1];
/** Every pod of the node agent shares this machine's network: the scheduler listens on its pod's IP. */
const LISTEN_ON_POD_IP = { name: 'TESSERA_LISTEN_HOST', value: '$(POD_IP)' };

void describe('KubernetesCluster’s card', { skip: skipWithoutKubernetes }, () => {
  let control: ControlPlane;
  let agent: NodeAgent;

  before(async () => {
    control = await startControlPlane();
    agent = await startNodeAgent(control, { images: tesseraImages(), capacity: { cpu: '8', memory: '16Gi', pods: 20 } });
  });

  after(async () => {
    await agent.stop();
    await control.stop();
  });

  test('shows the namespace, the dashboard, workers as they join, and stops when the cluster closes', async (t) => {
    const namespace = 'cards';
    await control.kubectl(['create', 'namespace', namespace]);
    const cluster = await KubernetesCluster.start({
      namespace,
      image: TESSERA_IMAGE,
      workers: 0,
      kubeconfig: control.adminKubeConfig(),
      schedulerTemplate: { spec: { containers: [{ name: 'scheduler', env: [LISTEN_ON_POD_IP] }] } },
      log: () => undefined,
    });
    const sent: { bundle: MimeBundle; id: string | undefined; update: boolean }[] = [];
    const global = globalThis as { Deno?: unknown };
    try {
      await until(() => !inspect(cluster).includes('Report:'), 'the dashboard API answered', 30_000, 50);
      const text = inspect(cluster);
      assert.match(text, new RegExp(`^KubernetesCluster\n {2}Scheduler: ${cluster.address}\n {2}Dashboard: ${cluster.dashboardLink}\\?token=`));
      assert.match(text, new RegExp(`\n {2}Namespace: cards\n {2}Reached: (at its Service's cluster IP|through a port-forward to its pod)\n {2}Workers: 0\n`));
      assert.doesNotMatch(text, /Adaptive:/, 'a fixed size until adapt()');

      global.Deno = {
        jupyter: {
          display: (bundle: MimeBundle, options: { display_id?: string; update?: boolean }) => {
            sent.push({ bundle, id: options.display_id, update: options.update === true });
            return Promise.resolve();
          },
        },
      };
      t.after(() => delete global.Deno);
      const result = await (cluster as unknown as Record<symbol, () => Promise<MimeBundle>>)[DISPLAY]!();
      assert.deepEqual(result, {});
      assert.equal(field(sent[0]?.bundle['text/html'], 'namespace'), 'cards');
      assert.equal(field(sent[0]?.bundle['text/html'], 'workers'), '0');

      await cluster.adapt({ minimum: 1, maximum: 2 });
      await until(() => field(sent.at(-1)?.bundle['text/html'], 'workers') === '1', 'the card shows the worker pod', 120_000, 100);
      const shown = sent.at(-1)!.bundle;
      assert.equal(field(shown['text/html'], 'adaptive'), 'minimum 1, maximum 2');
      assert.match(shown['text/html'] ?? '', new RegExp(`<summary>Workers</summary>.*${cluster.name}-worker-`));
      assert.ok(sent.slice(1).every((s) => s.update && s.id === sent[0]!.id), 'one display, updated in place');
    } finally {
      await cluster.close();
    }
    await until(() => /^KubernetesCluster \(closed\)\n/.test(sent.at(-1)?.bundle['text/plain'] ?? ''), 'the card shows the cluster closed', 5_000, 20);
    const count = sent.length;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(sent.length, count, 'nothing is sent after the cluster closed');
  });
});
