/**
 * The dashboard page: folds the live feed into a model and redraws the panels at most
 * once per animation frame. Built by scripts/build-dashboard.mjs into static/app.js.
 */
import { type FeedMessage, WORKER_FIELD } from '../feed-protocol.js';
import { ClusterChart } from './cluster-chart.js';
import { formatBytes, formatCount } from './format.js';
import { MemoryView } from './memory-view.js';
import { DashboardModel } from './model.js';
import { ProgressView } from './progress-view.js';
import { TaskStreamView } from './task-stream-view.js';
import { WorkersTable } from './workers-table.js';

/** Timings the page keeps about itself, for tests and for a curious user's console. */
export interface PageStats {
  updates: number;
  renders: number;
  /** Milliseconds spent in the message handler, the last 100 updates. */
  readonly handleMs: number[];
  /** Milliseconds spent redrawing, the last 100 frames. */
  readonly renderMs: number[];
  connected: boolean;
}

declare global {
  interface Window {
    tesseraDashboard: PageStats;
  }
}

function byId<T extends HTMLElement>(id: string, type: new () => T): T {
  const el = document.getElementById(id);
  if (!(el instanceof type)) throw new Error(`dashboard page: #${id} is missing`);
  return el;
}

function keep(list: number[], v: number): void {
  list.push(v);
  if (list.length > 100) list.shift();
}

const stats: PageStats = { updates: 0, renders: 0, handleMs: [], renderMs: [], connected: false };
window.tesseraDashboard = stats;

const model = new DashboardModel();
let scheduled = false;
const render = (): void => {
  scheduled = false;
  const t0 = performance.now();
  cluster.render(model);
  stream.render(model);
  progress.render(model);
  memory.render(model);
  workers.render(model);
  summary();
  stats.renders++;
  keep(stats.renderMs, performance.now() - t0);
  document.body.dataset['renders'] = String(stats.renders);
};
const schedule = (): void => {
  // A hidden tab draws nothing: the model keeps folding updates, and showing it redraws.
  if (scheduled || document.hidden) return;
  scheduled = true;
  requestAnimationFrame(render);
};

const cluster = new ClusterChart(byId('cluster-chart', HTMLDivElement), byId('decisions', HTMLOListElement));
const stream = new TaskStreamView(
  byId('task-stream', HTMLCanvasElement),
  byId('task-stream-legend', HTMLDivElement),
  byId('task-stream-tip', HTMLDivElement),
  schedule,
);
const progress = new ProgressView(byId('progress', HTMLDivElement), byId('progress-more', HTMLDivElement));
const memory = new MemoryView(byId('memory', HTMLCanvasElement), byId('memory-summary', HTMLDivElement), schedule);
const workers = new WorkersTable(byId('workers', HTMLTableElement), byId('workers-more', HTMLDivElement), schedule);
const status = byId('status', HTMLSpanElement);

function summary(): void {
  const set = (id: string, text: string): void => {
    const el = document.getElementById(id);
    if (el !== null && el.textContent !== text) el.textContent = text;
  };
  const c = model.byState;
  let mem = 0;
  for (const w of model.workers) mem += w[WORKER_FIELD.nbytes];
  set('sum-workers', formatCount(model.workerCount));
  set('sum-threads', formatCount(model.totalThreads));
  set('sum-processing', formatCount(c?.processing ?? 0));
  set('sum-waiting', formatCount(c === undefined ? 0 : c.waiting + c.queued + c['no-worker']));
  set('sum-finished', formatCount(model.counters?.tasksFinishedTotal ?? 0));
  set('sum-erred', formatCount(model.counters?.tasksErredTotal ?? 0));
  set('sum-memory', formatBytes(mem));
  set('sum-target', model.target === null ? '–' : formatCount(model.target.target));
  const target = document.getElementById('sum-target');
  if (target !== null) target.title = model.target?.reason ?? 'not adaptive';
  document.body.dataset['workers'] = String(model.workerCount);
}

function setStatus(connected: boolean, text: string): void {
  stats.connected = connected;
  status.textContent = text;
  status.className = connected ? 'live' : 'down';
}

const events = new EventSource('api/v1/events');
events.onopen = () => setStatus(true, 'live');
events.onerror = () => setStatus(false, events.readyState === EventSource.CLOSED ? 'disconnected' : 'reconnecting…');
events.onmessage = (ev: MessageEvent<string>) => {
  const t0 = performance.now();
  const msg = JSON.parse(ev.data) as FeedMessage;
  model.apply(msg);
  if (msg.op === 'update') {
    stats.updates++;
    document.body.dataset['updates'] = String(stats.updates);
  }
  keep(stats.handleMs, performance.now() - t0);
  schedule();
};

document.addEventListener('visibilitychange', schedule);

new ResizeObserver(() => {
  cluster.resize();
  schedule();
}).observe(byId('cluster-panel', HTMLElement));
