/**
 * The task stream: one row per worker thread, a bar per task over the last window,
 * coloured by prefix; transfers are thin red bars, errors black. Drawn on one canvas,
 * batched by colour, so 100,000 bars cost a few fills rather than 100,000 DOM nodes.
 */
import { ERROR_COLOR, prefixColor, TRANSFER_COLOR } from './colors.js';
import type { DashboardModel } from './model.js';

const AXIS = 18;
const MAX_ROW = 16;

export class TaskStreamView {
  readonly #canvas: HTMLCanvasElement;
  readonly #legend: HTMLElement;
  #legendKey = '';
  /** The last frame's lanes (by lane id) and their sorted order, reused while unchanged. */
  #lanesUsed: number[] = [];
  #lanesSorted: number[] = [];

  constructor(canvas: HTMLCanvasElement, legend: HTMLElement) {
    this.#canvas = canvas;
    this.#legend = legend;
  }

  render(m: DashboardModel): void {
    const canvas = this.#canvas;
    const dpr = devicePixelRatio;
    const cssW = Math.max(300, canvas.clientWidth);
    const cssH = Math.max(120, canvas.clientHeight);
    if (canvas.width !== Math.round(cssW * dpr) || canvas.height !== Math.round(cssH * dpr)) {
      canvas.width = Math.round(cssW * dpr);
      canvas.height = Math.round(cssH * dpr);
    }
    const ctx = canvas.getContext('2d');
    if (ctx === null) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cssW, cssH);

    const st = m.stream;
    const windowMs = m.hello?.streamWindowMs ?? 30_000;
    const t1 = m.now;
    const t0 = t1 - windowMs;
    const plotH = cssH - AXIS;

    // Rows: the lanes with a bar in the window, by worker then thread.
    const used = new Uint8Array(st.laneWorker.length);
    for (let k = 0; k < st.size; k++) {
      const i = st.at(k);
      if ((st.stop[i] as number) >= t0) used[st.lane[i] as number] = 1;
    }
    const usedList: number[] = [];
    for (let l = 0; l < used.length; l++) if (used[l] === 1) usedList.push(l);
    if (!sameList(usedList, this.#lanesUsed)) {
      this.#lanesUsed = usedList;
      this.#lanesSorted = [...usedList].sort(
        (a, b) => compareNames(st.laneWorker[a] ?? '', st.laneWorker[b] ?? '') || (st.laneThread[a] ?? 0) - (st.laneThread[b] ?? 0),
      );
    }
    const lanes = this.#lanesSorted;
    const rowOf = new Int32Array(st.laneWorker.length);
    lanes.forEach((l, r) => (rowOf[l] = r));
    const rows = Math.max(1, lanes.length);
    const rowH = Math.min(MAX_ROW, plotH / rows);
    const gap = rowH >= 6 ? 1 : 0;

    // Batch rectangles by fill colour: one path and one fill per colour.
    const paths = new Map<string, Path2D>();
    const pathFor = (color: string): Path2D => {
      let p = paths.get(color);
      if (p === undefined) {
        p = new Path2D();
        paths.set(color, p);
      }
      return p;
    };
    const scale = cssW / windowMs;
    const seen = new Set<number>();
    let bars = 0;
    for (let k = 0; k < st.size; k++) {
      const i = st.at(k);
      const stop = st.stop[i] as number;
      if (stop < t0) continue;
      const start = Math.max(st.start[i] as number, t0);
      const x = (start - t0) * scale;
      const span = (stop - start) * scale;
      // A pixel between wide neighbours, so back-to-back tasks of one prefix stay apart.
      const w = span > 4 ? span - 1 : Math.max(1, span);
      const y = (rowOf[st.lane[i] as number] as number) * rowH;
      const kind = st.kind[i] as number;
      if (kind === 1) {
        pathFor(TRANSFER_COLOR).rect(x, y + rowH * 0.3, w, Math.max(1, rowH * 0.4));
      } else if (kind === 2) {
        pathFor(ERROR_COLOR).rect(x, y, w, Math.max(1, rowH - gap));
      } else {
        const p = st.prefix[i] as number;
        seen.add(p);
        pathFor(prefixColor(st.prefixNames[p] ?? '?')).rect(x, y, w, Math.max(1, rowH - gap));
      }
      bars++;
    }
    for (const [color, path] of paths) {
      ctx.fillStyle = color;
      ctx.fill(path);
    }
    this.#axis(ctx, cssW, plotH, windowMs);
    if (bars === 0) {
      ctx.fillStyle = '#8a94a6';
      ctx.font = '13px system-ui, sans-serif';
      ctx.textAlign = 'center';
      ctx.fillText('No tasks finished in the last ' + String(Math.round(windowMs / 1000)) + ' s', cssW / 2, plotH / 2);
    }
    canvas.dataset['bars'] = String(bars);
    canvas.dataset['lanes'] = String(lanes.length);
    canvas.dataset['received'] = String(st.received);
    this.#renderLegend([...seen].map((p) => st.prefixNames[p] ?? '?'));
  }

  #axis(ctx: CanvasRenderingContext2D, w: number, plotH: number, windowMs: number): void {
    ctx.strokeStyle = '#d5d9e0';
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(0, plotH + 0.5);
    ctx.lineTo(w, plotH + 0.5);
    ctx.stroke();
    ctx.fillStyle = '#5b6475';
    ctx.font = '11px system-ui, sans-serif';
    ctx.textBaseline = 'top';
    const seconds = windowMs / 1000;
    const step = seconds <= 15 ? 2 : seconds <= 40 ? 5 : seconds <= 120 ? 15 : 60;
    for (let s = 0; s <= seconds; s += step) {
      const x = w - (s / seconds) * w;
      ctx.textAlign = s === 0 ? 'right' : x < 20 ? 'left' : 'center';
      ctx.fillText(s === 0 ? 'now' : `-${s}s`, x, plotH + 4);
    }
  }

  #renderLegend(prefixes: string[]): void {
    prefixes.sort(compareNames);
    const key = prefixes.join('\u0000');
    if (key === this.#legendKey) return;
    this.#legendKey = key;
    const items: HTMLElement[] = [];
    const item = (label: string, color: string, cls: string): void => {
      const span = document.createElement('span');
      span.className = `legend-item ${cls}`;
      const sw = document.createElement('i');
      sw.style.background = color;
      span.append(sw, label);
      items.push(span);
    };
    for (const p of prefixes.slice(0, 30)) item(p, prefixColor(p), 'prefix');
    if (prefixes.length > 30) {
      const more = document.createElement('span');
      more.className = 'legend-item more';
      more.textContent = `+${prefixes.length - 30} more`;
      items.push(more);
    }
    item('transfer', TRANSFER_COLOR, 'transfer');
    item('error', ERROR_COLOR, 'error');
    this.#legend.replaceChildren(...items);
  }
}

/** Orders worker-3 before worker-10. */
const collator = new Intl.Collator('en', { numeric: true });
export function compareNames(a: string, b: string): number {
  return collator.compare(a, b);
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
