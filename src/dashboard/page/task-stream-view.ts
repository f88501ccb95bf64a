/**
 * The task stream: one row per worker thread, a bar per task over the last window,
 * coloured by prefix; transfers are thin red bars, errors black. Bars are painted once,
 * into a ring of pixel columns (StreamStrip) that moves on with time; a frame paints the
 * bars that arrived since the last and copies the ring onto the canvas in two pieces.
 * Everything is repainted only when the rows change (a worker thread comes or goes), the
 * canvas is resized or the page reconnects.
 *
 * Hovering a bar shows its key, worker, thread and duration. The entry under the pointer
 * is looked up when the pointer moves, never while painting; a frame only checks, in
 * constant time, that the bar shown is still under the pointer, and hides the tip if not.
 */
import { CanvasBox } from './canvas-box.js';
import { ERROR_COLOR, prefixColor, TRANSFER_COLOR } from './colors.js';
import { formatDuration } from './format.js';
import type { DashboardModel, StreamStore } from './model.js';
import { entryAt } from './stream-lookup.js';
import { ERROR_COLOR_ID, PREFIX_COLOR_ID, StreamStrip, type StripSink, TRANSFER_COLOR_ID } from './stream-strip.js';

const AXIS = 18;
const MAX_ROW = 16;
/** The narrowest an error is drawn, in CSS pixels: one that took no time still shows. */
const MIN_ERROR_CSS = 3;
/** Store kinds (`STREAM_KINDS`). */
const TRANSFER = 1;
const ERROR = 2;

/** The bar the tip shows, and where the pointer was (screen column and row, device pixels). */
interface Shown {
  readonly index: number;
  readonly lane: number;
  readonly stop: number;
  readonly x: number;
  readonly y: number;
}

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
  readonly #tip: HTMLElement;
  /** What the last frame drew from, for the pointer's lookups. */
  #model: DashboardModel | undefined;
  #dpr = 1;
  #ringH = 1;
  #shown: Shown | undefined;

  /** `tip` is an absolutely positioned box in the canvas' positioned parent. */
  constructor(canvas: HTMLCanvasElement, legend: HTMLElement, tip: HTMLElement, onResize: () => void) {
    this.#box = new CanvasBox(canvas, 300, 120, onResize);
    this.#legend = legend;
    this.#tip = tip;
    canvas.addEventListener('pointermove', (e) => this.#hover(e));
    canvas.addEventListener('pointerleave', () => this.#hide());
  }

  render(m: DashboardModel): void {
    const canvas = this.#box.canvas;
    const { cssWidth: cssW, cssHeight: cssH, dpr, width, height } = this.#box.fit();
    const ctx = canvas.getContext('2d');
    const ring = this.#ring.getContext('2d');
    if (ctx === null || ring === null) return;
    this.#model = m;
    this.#dpr = dpr;

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
      strip.layout({ rowHeight: rowH * dpr, gap: rowH >= 6 ? dpr : 0, minErrorWidth: MIN_ERROR_CSS * dpr });
      fresh = st.size;
    }
    this.#ringH = ringH;
    this.#paintedUpTo = st.received;
    this.#paint(st, strip, ring, now, fresh, ringH);
    if (this.#shown !== undefined && !this.#stillUnder(this.#shown)) this.#hide();

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
      if (path === undefined || c === ERROR_COLOR_ID) continue;
      ring.fillStyle = colors[c] ?? ERROR_COLOR;
      ring.fill(path);
    }
    // Errors last: one drawn wider than it ran stays black over its neighbours.
    const errors = paths[ERROR_COLOR_ID];
    if (errors !== undefined) {
      ring.fillStyle = ERROR_COLOR;
      ring.fill(errors);
    }
  }

  /** The time span a pointer at screen column `x` points at: its column and a CSS pixel either side. */
  #span(strip: StreamStrip, x: number): [number, number] {
    const pad = Math.max(1, Math.round(this.#dpr));
    return [strip.columnTime(x - pad), strip.columnTime(x + pad) + strip.msPerPx];
  }

  #hover(e: PointerEvent): void {
    const strip = this.#strip;
    const m = this.#model;
    if (strip === undefined || m === undefined) return;
    const st = m.stream;
    const x = Math.floor(e.offsetX * this.#dpr);
    const y = e.offsetY * this.#dpr;
    const lane = this.#lanesSorted[strip.rowAt(y)];
    // Lane ids from another epoch would name other threads: wait for the next frame.
    if (x < 0 || x >= strip.width || y < 0 || y >= this.#ringH || lane === undefined || st.epoch !== this.#lanesEpoch) {
      this.#hide();
      return;
    }
    const [from, to] = this.#span(strip, x);
    const hit = entryAt(st, lane, from, to, strip.minErrorWidth * strip.msPerPx);
    if (hit === undefined) {
      this.#hide();
      return;
    }
    const i = hit.index;
    this.#shown = { index: i, lane, stop: st.stop[i] as number, x, y };
    this.#fillTip(st, i, hit.others);
    this.#placeTip(e);
  }

  /** Whether the bar the tip shows is still in the store and under the pointer after the strip moved on. */
  #stillUnder(s: Shown): boolean {
    const strip = this.#strip;
    const st = this.#model?.stream;
    if (strip === undefined || st === undefined || st.epoch !== this.#lanesEpoch) return false;
    if (st.lane[s.index] !== s.lane || st.stop[s.index] !== s.stop || this.#lanesSorted[strip.rowAt(s.y)] !== s.lane) return false;
    const [from, to] = this.#span(strip, s.x);
    let start = st.start[s.index] as number;
    if (st.kind[s.index] === ERROR) start = Math.min(start, s.stop - strip.minErrorWidth * strip.msPerPx);
    return s.stop >= from && start < to;
  }

  #fillTip(st: StreamStore, i: number, others: number): void {
    const kind = st.kind[i] as number;
    const start = st.start[i] as number;
    const stop = st.stop[i] as number;
    const lane = st.lane[i] as number;
    const worker = st.laneWorker[lane] ?? '?';
    const key = document.createElement('div');
    key.className = 'key';
    const k = st.key[i] ?? '';
    key.textContent = k !== '' ? k : (st.prefixNames[st.prefix[i] as number] ?? '?');
    const what = document.createElement('div');
    what.className = 'what';
    if (kind === TRANSFER) what.textContent = 'transfer';
    else if (kind === ERROR) what.textContent = stop > start ? `erred after ${formatDuration(stop - start)}` : 'erred (how long it ran is not known)';
    else what.textContent = `ran ${formatDuration(stop - start)}`;
    const where = document.createElement('div');
    where.className = 'where';
    where.textContent = kind === TRANSFER ? `to ${worker}` : `${worker} · thread ${st.laneThread[lane] ?? 0}`;
    const parts = [key, what, where];
    if (others > 0) {
      const more = document.createElement('div');
      more.className = 'more';
      more.textContent = `+${others} more in this pixel`;
      parts.push(more);
    }
    this.#tip.replaceChildren(...parts);
    this.#tip.dataset['kind'] = kind === TRANSFER ? 'transfer' : kind === ERROR ? 'error' : 'compute';
    this.#tip.hidden = false;
  }

  /** Beside the pointer, flipped to its other side where the panel would cut it off. */
  #placeTip(e: PointerEvent): void {
    const tip = this.#tip;
    const parent = tip.offsetParent;
    if (!(parent instanceof HTMLElement)) return;
    const box = parent.getBoundingClientRect();
    const px = e.clientX - box.left;
    const py = e.clientY - box.top;
    const w = tip.offsetWidth;
    const h = tip.offsetHeight;
    const gap = 14;
    const left = px + gap + w <= parent.clientWidth ? px + gap : Math.max(0, px - gap - w);
    const top = py + gap + h <= parent.clientHeight ? py + gap : Math.max(0, py - gap - h);
    tip.style.transform = `translate(${Math.round(left)}px, ${Math.round(top)}px)`;
  }

  #hide(): void {
    this.#shown = undefined;
    if (!this.#tip.hidden) this.#tip.hidden = true;
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
