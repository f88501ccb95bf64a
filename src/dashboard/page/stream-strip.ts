/**
 * The task stream's drawing surface as a ring of pixel columns: column `a` holds the time
 * [a·msPerPx, (a+1)·msPerPx) and lives at x = a mod width. Moving on in time clears only
 * the columns that come into view, and each frame paints only the bars that arrived since
 * the last, so a frame costs the new bars, not the whole window. Bars narrower than a
 * column merge into one cell per row and column, which takes the colour of the longest bar
 * in it. Errors never merge: each is drawn on its own, at least `minErrorWidth` columns wide
 * and ending where the task stopped, so one that took no time (or was reported without its
 * span) still shows; the view fills them last, over whatever shares their columns.
 *
 * Pure geometry (no DOM): the view hands it a sink that fills rectangles on a canvas.
 */

/** Colour ids: transfers, errors, then one per task prefix (`PREFIX_COLOR + prefix id`). */
export const TRANSFER_COLOR_ID = 0;
export const ERROR_COLOR_ID = 1;
export const PREFIX_COLOR_ID = 2;

export interface StripSink {
  /** Clears strip columns [x, x + w) over the whole height. */
  clear(x: number, w: number): void;
  /** Fills a rectangle in colour `color` (strip pixels; x + w never passes the width). */
  rect(color: number, x: number, y: number, w: number, h: number): void;
}

export interface RowGeometry {
  readonly rowHeight: number;
  /** Vertical gap under each row's bars. */
  readonly gap: number;
  /** The narrowest an error bar is drawn, in columns (default 3). */
  readonly minErrorWidth?: number;
}

const mod = (a: number, n: number): number => ((a % n) + n) % n;

export class StreamStrip {
  readonly width: number;
  readonly msPerPx: number;
  #head = Number.NEGATIVE_INFINITY;
  #rowHeight = 1;
  #barHeight = 1;
  #transferDy = 0;
  #transferHeight = 1;
  #minErrorWidth = 3;
  // One pending sub-column cell per row, for tasks (and errors) and for transfers apart.
  #cellCol: number[] = [];
  #cellColor: number[] = [];
  #cellSpan: number[] = [];
  #transferCol: number[] = [];

  constructor(width: number, windowMs: number) {
    if (!(width >= 1) || !(windowMs > 0)) throw new RangeError(`stream strip: width ${width} and window ${windowMs} ms must be positive`);
    this.width = Math.floor(width);
    this.msPerPx = windowMs / this.width;
  }

  /** The newest column prepared (absolute), or -Infinity before the first `advance`. */
  get head(): number {
    return this.#head;
  }

  /** The strip column shown at the left edge of the window: copy [origin, width) then [0, origin). */
  get origin(): number {
    return this.#head === Number.NEGATIVE_INFINITY ? 0 : mod(this.#head + 1, this.width);
  }

  /** Row pitch in strip pixels. */
  get rowHeight(): number {
    return this.#rowHeight;
  }

  /** The narrowest an error bar is drawn, in columns. */
  get minErrorWidth(): number {
    return this.#minErrorWidth;
  }

  layout(rows: RowGeometry): void {
    const minError = rows.minErrorWidth ?? 3;
    if (!(minError >= 1)) throw new RangeError(`stream strip: minErrorWidth ${minError} must be at least one column`);
    this.#minErrorWidth = minError;
    this.#rowHeight = rows.rowHeight;
    this.#barHeight = Math.max(1, rows.rowHeight - rows.gap);
    this.#transferDy = rows.rowHeight * 0.3;
    this.#transferHeight = Math.max(1, rows.rowHeight * 0.4);
  }

  /** Brings the columns up to `now` into view, clearing what they held a window ago. */
  advance(now: number, sink: StripSink): void {
    const a = Math.floor(now / this.msPerPx);
    if (!(a > this.#head)) return;
    const w = this.width;
    if (this.#head === Number.NEGATIVE_INFINITY || a - this.#head >= w) {
      sink.clear(0, w);
    } else {
      const from = mod(this.#head + 1, w);
      const n = a - this.#head;
      if (from + n <= w) sink.clear(from, n);
      else {
        sink.clear(from, w - from);
        sink.clear(0, n - (w - from));
      }
    }
    this.#head = a;
  }

  /**
   * Paints one bar on `row` from `start` to `stop` (ms), clipped to the window; call
   * `flush` after the last bar of a frame.
   */
  bar(row: number, color: number, start: number, stop: number, sink: StripSink): void {
    const lo = this.#head - this.width + 1;
    const hi = this.#head + 1;
    let u1 = Math.min(stop / this.msPerPx, hi);
    if (u1 < lo) return;
    const u0 = Math.min(Math.max(start / this.msPerPx, lo), u1);
    const span = u1 - u0;
    if (color === ERROR_COLOR_ID && span < this.#minErrorWidth) {
      const e0 = Math.max(lo, u1 - this.#minErrorWidth);
      if (u1 > e0) this.#rect(color, row, e0, u1 - e0, sink);
      return;
    }
    const transfer = color === TRANSFER_COLOR_ID;
    if (span < 1) {
      const col = Math.min(Math.floor(u0), this.#head);
      if (transfer) {
        if (this.#transferCol[row] === col) return;
        this.#flushTransfer(row, sink);
        this.#transferCol[row] = col;
        return;
      }
      if (this.#cellCol[row] === col) {
        if (span > (this.#cellSpan[row] ?? 0)) {
          this.#cellColor[row] = color;
          this.#cellSpan[row] = span;
        }
        return;
      }
      this.#flushCell(row, sink);
      this.#cellCol[row] = col;
      this.#cellColor[row] = color;
      this.#cellSpan[row] = span;
      return;
    }
    // A pixel between wide neighbours, so back-to-back tasks of one prefix stay apart.
    if (span > 4) u1 -= 1;
    this.#rect(color, row, u0, u1 - u0, sink);
  }

  /**
   * The time a screen column shows (0 is the window's left edge): its start in ms; it ends
   * `msPerPx` later. For finding what is under the pointer.
   */
  columnTime(screenX: number): number {
    return (this.#head - this.width + 1 + Math.floor(screenX)) * this.msPerPx;
  }

  /** The row at strip height `y`. */
  rowAt(y: number): number {
    return Math.floor(y / this.#rowHeight);
  }

  /** Draws the cells still pending (the newest column of each row). */
  flush(sink: StripSink): void {
    for (let r = 0; r < this.#cellCol.length; r++) this.#flushCell(r, sink);
    for (let r = 0; r < this.#transferCol.length; r++) this.#flushTransfer(r, sink);
  }

  #flushCell(row: number, sink: StripSink): void {
    const col = this.#cellCol[row];
    if (col === undefined || Number.isNaN(col)) return;
    this.#cellCol[row] = Number.NaN;
    this.#rect(this.#cellColor[row] ?? PREFIX_COLOR_ID, row, col, 1, sink);
  }

  #flushTransfer(row: number, sink: StripSink): void {
    const col = this.#transferCol[row];
    if (col === undefined || Number.isNaN(col)) return;
    this.#transferCol[row] = Number.NaN;
    this.#rect(TRANSFER_COLOR_ID, row, col, 1, sink);
  }

  /** A rectangle from absolute column `u` (fractional), `w` columns wide, split where the ring wraps. */
  #rect(color: number, row: number, u: number, w: number, sink: StripSink): void {
    const transfer = color === TRANSFER_COLOR_ID;
    const y = row * this.#rowHeight + (transfer ? this.#transferDy : 0);
    const h = transfer ? this.#transferHeight : this.#barHeight;
    const x = u - Math.floor(u / this.width) * this.width;
    const first = Math.min(w, this.width - x);
    sink.rect(color, x, y, first, h);
    if (w > first) sink.rect(color, 0, y, w - first, h);
  }
}
