/**
 * Cluster size over time (workers requested / running / closing and the adaptive target
 * on the left axis, tasks queued / processing on the right) with the adaptive decisions
 * marked on the chart and listed with their reasons beside it. The legend shows the values
 * under the pointer, and the latest ones whenever the pointer is not on the chart.
 *
 * A cluster that bursts (a persistent pool and a burst backend) gets two more series once
 * its first such sample arrives: the pool's running workers as an area from zero, and the
 * burst's stacked on top of it (its legend shows the burst's own count).
 */
import uPlot from 'uplot';
import type { ScalingDecision } from '../../protocol/scaling.js';
import { formatClock } from './format.js';
import type { DashboardModel } from './model.js';

const UP = '#2ca02c';
const DOWN = '#d62728';
const FAILED = '#222222';
const POOL = '#1f77b4';
const BURST = '#e6550d';
const SHOWN_DECISIONS = 40;
/** Tick steps in seconds: whole seconds and minutes, as m:ss labels need. */
const X_INCRS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];

export class ClusterChart {
  readonly #el: HTMLElement;
  readonly #list: HTMLOListElement;
  readonly #plot: uPlot;
  #decisions: readonly ScalingDecision[] = [];
  #listedCount = -1;
  #listedLast = Number.NaN;
  #listedAdaptive: boolean | undefined;
  /** The burst's own counts, for the legend of its stacked series. */
  #burstRunning: readonly (number | null)[] = [];
  #stacked = false;

  constructor(el: HTMLElement, list: HTMLOListElement) {
    this.#el = el;
    this.#list = list;
    const stepped = uPlot.paths.stepped?.({ align: 1 });
    const workers = (label: string, stroke: string, extra: Partial<uPlot.Series> = {}): uPlot.Series => ({
      label,
      scale: 'workers',
      stroke,
      width: 2,
      points: { show: false },
      ...(stepped === undefined ? {} : { paths: stepped }),
      ...extra,
    });
    const opts: uPlot.Options = {
      width: Math.max(300, el.clientWidth),
      height: 260,
      scales: {
        // At least 30 s across, so a young cluster's first points are not stretched edge to edge.
        x: { time: false, range: (_u, min, max) => [min, Math.max(max, min + 30)] },
        workers: { range: (_u, _min, max) => [0, Math.max(4, Math.ceil((max || 0) * 1.15))] },
        tasks: { range: (_u, _min, max) => [0, Math.max(10, Math.ceil((max || 0) * 1.15))] },
      },
      axes: [
        { incrs: X_INCRS, values: (_u, splits) => splits.map((s) => formatClock(s)), grid: { stroke: '#eceff3' }, ticks: { stroke: '#d5d9e0' } },
        { scale: 'workers', label: 'workers', grid: { stroke: '#eceff3' }, ticks: { stroke: '#d5d9e0' }, size: 50 },
        // uPlot's Side is a const enum, which isolatedModules cannot use by name; 1 is Right.
        // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment
        { scale: 'tasks', label: 'tasks', side: 1, grid: { show: false }, ticks: { stroke: '#d5d9e0' }, size: 60 },
      ],
      series: [
        { label: 'time', value: (_u, v) => formatClock(v) },
        workers('requested', '#7f7f7f', { dash: [6, 4], width: 1.5 }),
        workers('running', UP, { fill: 'rgba(44,160,44,0.10)' }),
        workers('closing', '#ff7f0e', { width: 1.5 }),
        workers('target', '#9467bd', { dash: [2, 3], width: 1.5 }),
        { label: 'queued', scale: 'tasks', stroke: '#1f77b4', width: 1.5, points: { show: false } },
        { label: 'processing', scale: 'tasks', stroke: '#17becf', width: 1.5, points: { show: false } },
      ],
      hooks: { draw: [(u) => this.#drawDecisions(u)], setLegend: [(u) => this.#latestInLegend(u)] },
      cursor: { drag: { x: false, y: false } },
    };
    this.#plot = new uPlot(opts, [[], [], [], [], [], [], []], el);
  }

  resize(): void {
    this.#plot.setSize({ width: Math.max(300, this.#el.clientWidth), height: 260 });
  }

  render(m: DashboardModel): void {
    const s = m.series;
    this.#decisions = m.decisions;
    if (m.bursts && !this.#stacked) this.#addBurstSeries();
    const data: uPlot.AlignedData = [s.x, s.requested, s.running, s.closing, s.target, s.queued, s.processing];
    if (this.#stacked) {
      this.#burstRunning = s.burstRunning;
      const pool = s.persistentRunning;
      data.push(pool, s.burstRunning.map((b, i) => (b === null ? null : b + (pool[i] ?? 0))));
    }
    this.#plot.setData(data);
    const last = s.running[s.running.length - 1];
    this.#el.dataset['running'] = String(last ?? 0);
    this.#el.dataset['maxRunning'] = String(m.maxRunning);
    this.#el.dataset['points'] = String(s.x.length);
    this.#el.dataset['bursts'] = String(this.#stacked);
    if (this.#stacked) {
      this.#el.dataset['burstRunning'] = String(s.burstRunning[s.burstRunning.length - 1] ?? 0);
      this.#el.dataset['persistentRunning'] = String(s.persistentRunning[s.persistentRunning.length - 1] ?? 0);
      this.#el.dataset['maxBurstRunning'] = String(m.maxBurstRunning);
    }
    this.#latestInLegend(this.#plot);
    this.#renderList(m.decisions, m.adaptive);
  }

  /** The pool's running workers as an area, and the burst's stacked on it as a band. */
  #addBurstSeries(): void {
    this.#stacked = true;
    const stepped = uPlot.paths.stepped?.({ align: 1 });
    const paths = stepped === undefined ? {} : { paths: stepped };
    this.#plot.addSeries({ label: 'pool running', scale: 'workers', stroke: POOL, width: 1.5, fill: 'rgba(31,119,180,0.16)', points: { show: false }, ...paths });
    this.#plot.addSeries({
      label: 'burst running',
      scale: 'workers',
      stroke: BURST,
      width: 1.5,
      points: { show: false },
      // Drawn stacked on the pool; the legend tells the burst's own count.
      value: (_u, _v, _si, idx) => (idx === null ? '–' : String(this.#burstRunning[idx] ?? '–')),
      ...paths,
    });
    const n = this.#plot.series.length;
    this.#plot.addBand({ series: [n - 1, n - 2], fill: 'rgba(230,85,13,0.22)' });
  }

  /**
   * With the pointer off the chart uPlot empties the legend (after new data too); it shows
   * the latest sample instead. Passing no hook call back keeps this from calling itself.
   */
  #latestInLegend(u: uPlot): void {
    if (u.cursor.idx !== null && u.cursor.idx !== undefined) return;
    const last = u.data[0].length - 1;
    if (last >= 0 && u.legend.idx !== last) u.setLegend({ idx: last }, false);
  }

  #drawDecisions(u: uPlot): void {
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    const min = u.scales['x']?.min;
    const max = u.scales['x']?.max;
    if (min === undefined || max === undefined) return;
    ctx.save();
    ctx.lineWidth = Math.max(1, devicePixelRatio);
    for (const d of this.#decisions) {
      const x = d.t / 1000;
      if (x < min || x > max) continue;
      const px = Math.round(u.valToPos(x, 'x', true));
      if (px < left || px > left + width) continue;
      const color = d.op === 'scale-up' ? UP : d.op === 'worker-failed' ? FAILED : DOWN;
      ctx.strokeStyle = color;
      ctx.globalAlpha = 0.55;
      ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
      ctx.beginPath();
      ctx.moveTo(px, top);
      ctx.lineTo(px, top + height);
      ctx.stroke();
      // A small triangle at the top says which way.
      ctx.globalAlpha = 1;
      ctx.setLineDash([]);
      ctx.fillStyle = color;
      const s = 5 * devicePixelRatio;
      ctx.beginPath();
      if (d.op === 'scale-up') {
        ctx.moveTo(px - s, top + s * 1.6);
        ctx.lineTo(px + s, top + s * 1.6);
        ctx.lineTo(px, top);
      } else {
        ctx.moveTo(px - s, top);
        ctx.lineTo(px + s, top);
        ctx.lineTo(px, top + s * 1.6);
      }
      ctx.fill();
    }
    ctx.restore();
  }

  #renderList(decisions: readonly ScalingDecision[], adaptive: boolean): void {
    const last = decisions[decisions.length - 1];
    if (decisions.length === this.#listedCount && (last?.t ?? Number.NaN) === this.#listedLast && adaptive === this.#listedAdaptive) return;
    this.#listedCount = decisions.length;
    this.#listedLast = last?.t ?? Number.NaN;
    this.#listedAdaptive = adaptive;
    const frag = document.createDocumentFragment();
    const shown = decisions.slice(-SHOWN_DECISIONS).reverse();
    for (const d of shown) {
      const li = document.createElement('li');
      li.className = d.backend === undefined ? d.op : `${d.op} ${d.backend}`;
      const when = document.createElement('span');
      when.className = 'when';
      when.textContent = formatClock(d.t / 1000);
      const what = document.createElement('span');
      what.className = 'what';
      what.textContent = describe(d);
      const why = document.createElement('span');
      why.className = 'why';
      // The side is said once, in front: the loop's 'burst: ' on the reason would say it twice.
      why.textContent = d.backend === 'burst' ? d.reason.replace(/^burst: /, '') : d.reason;
      li.append(when, what, why);
      frag.append(li);
    }
    if (shown.length === 0) {
      const li = document.createElement('li');
      li.className = adaptive ? 'empty' : 'empty fixed';
      li.textContent = adaptive ? 'No scaling decisions yet.' : 'This cluster does not adapt: it has the workers it was given.';
      frag.append(li);
    }
    this.#list.replaceChildren(frag);
    this.#list.dataset['count'] = String(decisions.length);
    this.#list.dataset['adaptive'] = String(adaptive);
  }
}

function describe(d: ScalingDecision): string {
  // A cluster that bursts: whose decision it is.
  const side = d.backend === 'burst' ? 'burst: ' : d.backend === 'persistent' ? 'pool: ' : '';
  return side + describeOp(d);
}

function describeOp(d: ScalingDecision): string {
  switch (d.op) {
    case 'scale-up':
      return `▲ scale up to ${d.target}`;
    case 'scale-down':
      return `▼ scale down to ${d.target} (retire ${d.workers.length})`;
    case 'hold':
      return `hold at ${d.target}`;
    case 'worker-failed':
      return `✕ ${d.worker} failed to start`;
  }
}
