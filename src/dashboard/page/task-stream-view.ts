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
  readonly #colors: string[] = [TRANSFER_COLOR, ERROR_COLOR];
  #colorEpoch = -1;

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

    // Batch rectangles by fill colour: one path and one fill per colour. Colour ids: 0 transfer,
    // 1 error, 2 + prefix id for tasks.
    const colors = this.#colorsFor(st.prefixNames, st.epoch);
    const paths: (Path2D | undefined)[] = [];
    const pathFor = (c: number): Path2D => {
      let p = paths[c];
      if (p === undefined) {
        p = new Path2D();
        paths[c] = p;
      }
      return p;
    };
    const barH = Math.max(1, rowH - gap);
    const transferDy = rowH * 0.3;
    const transferH = Math.max(1, rowH * 0.4);
    // Bars narrower than a pixel are coalesced per lane: a run of same-coloured sub-pixel bars
    // that touch becomes one rectangle, so thousands of tiny tasks cost a rect per pixel or so.
    const nRows = lanes.length;
    const runColor = new Int32Array(nRows).fill(-1);
    const runX0 = new Float64Array(nRows);
    const runX1 = new Float64Array(nRows);
    const flush = (r: number): void => {
      const c = runColor[r] as number;
      if (c < 0) return;
      const y = r * rowH;
      const x0 = runX0[r] as number;
      const w = Math.max(1, (runX1[r] as number) - x0);
      if (c === 0) pathFor(0).rect(x0, y + transferDy, w, transferH);
      else pathFor(c).rect(x0, y, w, barH);
      runColor[r] = -1;
    };
    const scale = cssW / windowMs;
    const seen = new Uint8Array(st.prefixNames.length);
    let bars = 0;
    const stopArr = st.stop;
    const startArr = st.start;
    for (let k = 0; k < st.size; k++) {
      const i = st.at(k);
      const stop = stopArr[i] as number;
      if (stop < t0) continue;
      bars++;
      const start = Math.max(startArr[i] as number, t0);
      const x = (start - t0) * scale;
      const span = (stop - start) * scale;
      const r = rowOf[st.lane[i] as number] as number;
      const kind = st.kind[i] as number;
      let c: number;
      if (kind === 1) c = 0;
      else if (kind === 2) c = 1;
      else {
        const p = st.prefix[i] as number;
        seen[p] = 1;
        c = 2 + p;
      }
      if (span < 1) {
        const x1 = x + Math.max(1, span);
        if (runColor[r] === c && x <= (runX1[r] as number) + 0.5 && x >= (runX0[r] as number) - 0.5) {
          if (x1 > (runX1[r] as number)) runX1[r] = x1;
          if (x < (runX0[r] as number)) runX0[r] = x;
          continue;
        }
        flush(r);
        runColor[r] = c;
        runX0[r] = x;
        runX1[r] = x1;
        continue;
      }
      // A pixel between wide neighbours, so back-to-back tasks of one prefix stay apart.
      const w = span > 4 ? span - 1 : span;
      const y = r * rowH;
      if (c === 0) pathFor(0).rect(x, y + transferDy, w, transferH);
      else pathFor(c).rect(x, y, w, barH);
    }
    for (let r = 0; r < nRows; r++) flush(r);
    for (let c = 0; c < paths.length; c++) {
      const path = paths[c];
      if (path === undefined) continue;
      ctx.fillStyle = colors[c] ?? ERROR_COLOR;
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
    const seenNames: string[] = [];
    for (let p = 0; p < seen.length; p++) if (seen[p] === 1) seenNames.push(st.prefixNames[p] ?? '?');
    this.#renderLegend(seenNames);
  }

  /** Fill colours by colour id, extended as prefixes appear (ids are stable until a compaction). */
  #colorsFor(names: readonly string[], epoch: number): string[] {
    const cs = this.#colors;
    if (cs.length - 2 > names.length || this.#colorEpoch !== epoch) {
      cs.length = 2;
      this.#colorEpoch = epoch;
    }
    for (let p = cs.length - 2; p < names.length; p++) cs.push(prefixColor(names[p] ?? '?'));
    return cs;
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
