/**
 * Cards of the cluster backends other than LocalCluster: a simulated cluster's, and the
 * card of a cluster whose scheduler runs elsewhere (KubernetesCluster's), read from that
 * scheduler's dashboard API — here a real scheduler and dashboard, a LocalCluster's, with a
 * token, as a scheduler pod serves them. In-place updates are checked against a recording
 * kernel; the real kernel runs the machinery in adaptive.test.ts.
 */
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { LocalCluster } from '../../src/index.js';
import { RemoteSchedulerView } from '../../src/deploy/display.js';
import { SimulatedCluster } from '../../src/deploy/simulated/cluster.js';
import { CLUSTER_CHANGES, CLUSTER_SUMMARY, clusterBundle, type SummarizedCluster } from '../../src/notebook/cards.js';
import { linkWithToken } from '../../src/notebook/html.js';
import { type Kernel, type MimeBundle, showLive } from '../../src/notebook/kernel.js';
import { until } from '../helpers/wait.js';

const DISPLAY = Symbol.for('Jupyter.display');
const field = (markup: string | undefined, name: string): string | undefined => new RegExp(`data-field="${name}">([^<]*)<`).exec(markup ?? '')?.[1];

void describe('a simulated cluster’s card', () => {
  test('shows its workers, virtual time, results and adaptive bounds, as HTML and as text', async () => {
    const sim = new SimulatedCluster({ startupDelay: 1000, threadsPerWorker: 2, memoryLimit: 1024 ** 3, adapt: { minimum: 0, maximum: 4, targetDuration: 2000 } });
    sim.submit(Array.from({ length: 40 }, (_, i) => ({ key: `sleep-${i}`, duration: 1000 })));
    const before = clusterBundle(sim[CLUSTER_SUMMARY]());
    assert.match(before['text/plain']!, /^SimulatedCluster\n {2}Scheduler: none: a simulation in this process, in virtual time\n {2}Dashboard: off\n {2}Virtual time: 0\.0 s\n {2}Results: 0 of 40\n {2}Workers: 0\n/);
    assert.match(before['text/plain']!, /Adaptive: minimum 0, maximum 4$/);

    // Stopped halfway, with workers running.
    await sim.run(6000);
    const bundle = (sim as unknown as Record<symbol, () => MimeBundle>)[DISPLAY]!();
    assert.equal(bundle['text/plain'], inspect(sim));
    const markup = bundle['text/html'];
    assert.match(markup ?? '', /^<div class="tessera-cluster"/);
    const workers = Number(field(markup, 'workers')?.split(' ')[0]);
    assert.ok(workers >= 1 && workers <= 4, markup);
    assert.equal(field(markup, 'threads'), String(2 * workers));
    assert.equal(field(markup, 'time'), `${(sim.now / 1000).toFixed(1)} s`);
    assert.match(field(markup, 'results') ?? '', /^\d+ of 40$/);
    assert.equal(field(markup, 'adaptive'), 'minimum 0, maximum 4');
    assert.match(markup ?? '', /<summary>Workers<\/summary>.*worker-0/);
    assert.match(field(markup, 'memory') ?? '', new RegExp(`of ${workers}\\.00 GiB$`));
  });
});

/** A kernel that records what would have been sent. */
function recordingKernel(): { kernel: Kernel; sent: { kind: 'display' | 'update'; id: string; bundle: MimeBundle }[] } {
  const sent: { kind: 'display' | 'update'; id: string; bundle: MimeBundle }[] = [];
  const record = (kind: 'display' | 'update') => (bundle: MimeBundle, id: string) => {
    sent.push({ kind, id, bundle });
    return Promise.resolve();
  };
  return { sent, kernel: { display: record('display'), update: record('update') } };
}

void describe('the card of a cluster whose scheduler is elsewhere', () => {
  let cluster: LocalCluster;
  const token = 'sesame';

  before(async () => {
    cluster = await LocalCluster.start({ workers: 1, token, log: false, dashboard: { port: 0 } });
    cluster.adapt({ minimum: 1, maximum: 3 });
  });

  after(async () => {
    await cluster.close();
  });

  const viewOf = (options: { token?: string; intervalMs?: number } = {}): RemoteSchedulerView =>
    new RemoteSchedulerView({ dashboard: cluster.dashboardLink!, token: options.token ?? token, intervalMs: options.intervalMs ?? 1000 });
  const details = [{ label: 'Namespace', field: 'namespace', text: 'analysis' }];
  const summaryOf = (view: RemoteSchedulerView, state: 'running' | 'closing' | 'closed' = 'running') =>
    view.summary('KubernetesCluster', state, cluster.address, linkWithToken(cluster.dashboardLink!, token), details, { minimum: 1, maximum: 3 });

  test('reads workers, threads and memory from the dashboard API, with the token', async () => {
    const view = viewOf();
    const unasked = clusterBundle(summaryOf(view));
    assert.match(unasked['text/plain']!, /\n {2}Namespace: analysis\n {2}Report: the scheduler was not asked yet\n {2}Workers: 0\n/);

    await view.refresh();
    const { 'text/plain': text, 'text/html': markup } = clusterBundle(summaryOf(view));
    assert.match(text!, new RegExp(`^KubernetesCluster\n {2}Scheduler: ${cluster.address}\n {2}Dashboard: ${cluster.dashboardLink}\\?token=sesame\n {2}Namespace: analysis\n {2}Workers: 1\n {2}Threads: 1\n`));
    assert.doesNotMatch(text!, /Report:/);
    assert.match(text!, /Adaptive: minimum 1, maximum 3$/);
    assert.equal(field(markup, 'namespace'), 'analysis');
    assert.equal(field(markup, 'workers'), '1');
    assert.ok(markup?.includes(`<a href="${cluster.dashboardLink}?token=sesame" target="_blank" rel="noopener">${cluster.dashboardLink}</a>`), markup);
    assert.match(markup ?? '', /<summary>Workers<\/summary>.*local-0/);
    assert.match(field(markup, 'memory') ?? '', / of \d/);
  });

  test('a scheduler that refuses or does not answer is said so on the card', async () => {
    const refused = viewOf({ token: 'wrong' });
    await refused.refresh();
    assert.match(clusterBundle(summaryOf(refused))['text/plain']!, /Report: the scheduler is not answering: \/api\/v1\/workers: HTTP 401\n/);
    const closed = await LocalCluster.start({ workers: 0, log: false, dashboard: { port: 0 } });
    const link = closed.dashboardLink!;
    await closed.close();
    const gone = new RemoteSchedulerView({ dashboard: link, token: undefined });
    await gone.refresh();
    assert.match(clusterBundle(summaryOf(gone))['text/plain']!, /Report: the scheduler is not answering: /);
  });

  test('a displayed card is updated when workers come, shows the cluster closed, and its reading stops', async () => {
    const view = viewOf({ intervalMs: 50 });
    await view.refresh();
    let state: 'running' | 'closing' | 'closed' = 'running';
    let close!: () => void;
    const closed = new Promise<void>((resolve) => (close = resolve));
    const shown: SummarizedCluster = {
      [CLUSTER_SUMMARY]: () => summaryOf(view, state),
      [CLUSTER_CHANGES]: (changed) => view.watch(changed),
    };
    const { kernel, sent } = recordingKernel();
    await showLive(kernel, 'cluster', () => clusterBundle(shown[CLUSTER_SUMMARY]()), () => state === 'running', {
      intervalMs: 60_000, // only changes the view tells of, and the end, update it
      minGapMs: 10,
      ended: closed,
      subscribe: (changed) => shown[CLUSTER_CHANGES]!(changed),
    });
    assert.equal(view.watched, true, 'the dashboard is read while the card is shown');
    await cluster.scale(2);
    await until(() => sent.some((s) => field(s.bundle['text/html'], 'workers') === '2'), 'the card shows the second worker', 15_000, 20);
    state = 'closed';
    close();
    await until(() => !view.watched, 'the reading stops with the display', 5_000, 10);
    await new Promise((resolve) => setTimeout(resolve, 150));
    const last = sent.at(-1)!;
    assert.match(last.bundle['text/plain']!, /^KubernetesCluster \(closed\)\n/);
    assert.equal(field(last.bundle['text/html'], 'workers'), '0');
    assert.equal(new Set(sent.map((s) => s.id)).size, 1, 'one display, updated in place');
    assert.deepEqual([...new Set(sent.map((s) => s.kind))], ['display', 'update']);
    const count = sent.length;
    await cluster.scale(1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(sent.length, count, 'nothing is sent after the end');
  });
});
