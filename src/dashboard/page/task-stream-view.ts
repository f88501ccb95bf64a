/**
 * The task stream: one row per worker thread, a bar per task over the last window,
 * coloured by prefix; transfers are thin red bars, errors black. Bars are painted once,
 * into a ring of pixel columns (StreamStrip) that moves on with time; a frame paints the
 * bars that arrived since the last and copies the ring onto the canvas in two pieces.
 * Everything is repainted only when the rows change (a worker thread comes or goes), the
 * canvas is resized or the page reconnects.
 */
import { CanvasBox } from './canvas-box.js';
import { ERROR_COLOR, prefixColor, TRANSFER_COLOR } from './colors.js';
import type { DashboardModel, StreamStore } from './model.js';
import { ERROR_COLOR_ID, PREFIX_COLOR_ID, StreamStrip, type StripSink, TRANSFER_COLOR_ID } from './stream-strip.js';

const AXIS = 18;
const MAX_ROW = 16;

export class TaskStreamView {
  readonly #box: CanvasBox;
  readonly #legend: HTMLElement;
  readonly #ring = document.createElement('canvas');
  #strip: StreamStrip | undefined;
  /** What the ring was painted for: when any of it changes, everything is repainted. */
  #paintedFor = '';
  /** `StreamStore.received` when the ring was last painted. */
  #paintedUpTo = 0;
  #legendKey = '';
  /** The lanes in view (by lane id) and their sorted order, reused while unchanged. */
  #lanesUsed: number[] = [];
  #lanesSorted: number[] = [];
  /** Lane ids mean something only within one StreamStore epoch. */
  #lanesEpoch = -1;
  /** Bumped when the rows change, which repaints everything. */
  #lanesVersion = 0;
  #rowOf = new Int32Array(0);
  readonly #colors: string[] = [TRANSFER_COLOR, ERROR_COLOR];
  #colorEpoch = -1;

  constructor(canvas: HTMLCanvasElement, legend: HTMLElement, onResize: () => void) {
    this.#box = new CanvasBox(canvas, 300, 120, onResize);
    this.#legend = legend;
  }

  render(m: DashboardModel): void {
    const canvas = this.#box.canvas;
    const { cssWidth: cssW, cssHeight: cssH, dpr, width, height } = this.#box.fit();
    const ctx = canvas.getContext('2d');
    const ring = this.#ring.getContext('2d');
    if (ctx === null || ring === null) return;

    const st = m.stream;
    const windowMs = m.hello?.streamWindowMs ?? 30_000;
    const now = m.now;
    const t0 = now - windowMs;
    const plotH = cssH - AXIS;
    const ringH = Math.max(1, Math.round(plotH * dpr));

    // Rows: the lanes with a bar in the window, by worker then thread.
    const usedList: number[] = [];
    for (let l = 0; l < st.laneLastStop.length; l++) if ((st.laneLastStop[l] as number) >= t0) usedList.push(l);
    if (st.epoch !== this.#lanesEpoch || !sameList(usedList, this.#lanesUsed)) {
      this.#lanesEpoch = st.epoch;
      this.#lanesVersion++;
      this.#lanesUsed = usedList;
      this.#lanesSorted = [...usedList].sort(
        (a, b) => compareNames(st.laneWorker[a] ?? '', st.laneWorker[b] ?? '') || (st.laneThread[a] ?? 0) - (st.laneThread[b] ?? 0),
      );
      this.#rowOf = new Int32Array(st.laneWorker.length).fill(-1);
      this.#lanesSorted.forEach((l, r) => (this.#rowOf[l] = r));
    }
    const lanes = this.#lanesSorted;

    const paintedFor = `${width}x${ringH}@${dpr} ${windowMs} ${this.#lanesVersion}`;
    let strip = this.#strip;
    let fresh = st.received - this.#paintedUpTo;
    if (strip === undefined || paintedFor !== this.#paintedFor || fresh > st.size) {
      this.#paintedFor = paintedFor;
      this.#ring.width = width;
      this.#ring.height = ringH;
      strip = this.#strip = new StreamStrip(width, windowMs);
      const rowH = Math.min(MAX_ROW, plotH / Math.max(1, lanes.length));
      strip.layout({ rowHeight: rowH * dpr, gap: rowH >= 6 ? dpr : 0 });
      fresh = st.size;
    }
    this.#paintedUpTo = st.received;
    this.#paint(st, strip, ring, now, fresh, ringH);

    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const origin = strip.origin;
    if (width - origin > 0) ctx.drawImage(this.#ring, origin, 0, width - origin, ringH, 0, 0, width - origin, ringH);
    if (origin > 0) ctx.drawImage(this.#ring, 0, 0, origin, ringH, width - origin, 0, origin, ringH);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    this.#axis(ctx, cssW, plotH, windowMs);
    if (st.size === 0) {
      ctx.fillStyle = '#8a94a6';
      ctx.font = '13px system-ui, sans-serif';
      ctx.textAlign = 'center';
      ctx.fillText('No tasks finished in the last ' + String(Math.round(windowMs / 1000)) + ' s', cssW / 2, plotH / 2);
    }
    canvas.dataset['bars'] = String(st.size);
    canvas.dataset['lanes'] = String(lanes.length);
    canvas.dataset['received'] = String(st.received);
    canvas.dataset['painted'] = String(this.#paintedUpTo);
    const inView: string[] = [];
    for (let p = 0; p < st.prefixLastStop.length; p++) if ((st.prefixLastStop[p] as number) >= t0) inView.push(st.prefixNames[p] ?? '?');
    this.#renderLegend(inView);
  }

  /** Moves the ring on to `now` and paints the newest `fresh` entries, one path per colour. */
  #paint(st: StreamStore, strip: StreamStrip, ring: CanvasRenderingContext2D, now: number, fresh: number, ringH: number): void {
    const paths: (Path2D | undefined)[] = [];
    const sink: StripSink = {
      clear: (x, w) => ring.clearRect(x, 0, w, ringH),
      rect: (c, x, y, w, h) => {
        let p = paths[c];
        if (p === undefined) paths[c] = p = new Path2D();
        p.rect(x, y, w, h);
      },
    };
    strip.advance(now, sink);
    const rowOf = this.#rowOf;
    for (let k = Math.max(0, st.size - fresh); k < st.size; k++) {
      const i = st.at(k);
      const row = rowOf[st.lane[i] as number] ?? -1;
      if (row < 0) continue;
      const kind = st.kind[i] as number;
      const color = kind === 1 ? TRANSFER_COLOR_ID : kind === 2 ? ERROR_COLOR_ID : PREFIX_COLOR_ID + (st.prefix[i] as number);
      strip.bar(row, color, st.start[i] as number, st.stop[i] as number, sink);
    }
    strip.flush(sink);
    const colors = this.#colorsFor(st.prefixNames, st.epoch);
    for (let c = 0; c < paths.length; c++) {
      const path = paths[c];
      if (path === undefined) continue;
      ring.fillStyle = colors[c] ?? ERROR_COLOR;
      ring.fill(path);
    }
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
