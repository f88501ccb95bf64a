/**
 * The task stream's ring of pixel columns: painting bars as they arrive, frame by frame,
 * must show on screen what painting the whole window at once shows.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ERROR_COLOR_ID, PREFIX_COLOR_ID, StreamStrip, type StripSink, TRANSFER_COLOR_ID } from '../../../src/dashboard/page/stream-strip.js';
import { mulberry32 } from '../../helpers/random.js';

interface Rect {
  readonly color: number;
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
}

/** A canvas of `width` columns × `rows` rows at one cell per column and row, holding colour ids (-1 empty). */
class Grid implements StripSink {
  readonly cells: Int32Array;
  readonly rects: Rect[] = [];
  readonly clears: [number, number][] = [];

  constructor(
    readonly width: number,
    readonly rows: number,
    readonly rowHeight: number,
  ) {
    this.cells = new Int32Array(width * rows).fill(-1);
  }

  clear(x: number, w: number): void {
    assert.ok(x >= 0 && w > 0 && x + w <= this.width, `clear ${x}+${w} within ${this.width}`);
    this.clears.push([x, w]);
    for (let r = 0; r < this.rows; r++) this.cells.fill(-1, r * this.width + x, r * this.width + x + w);
  }

  rect(color: number, x: number, y: number, w: number, h: number): void {
    assert.ok(x >= 0 && w > 0 && x + w <= this.width + 1e-9, `rect ${x}+${w} within ${this.width}`);
    this.rects.push({ color, x, y, w, h });
    const row = Math.floor((y + 1e-9) / this.rowHeight);
    for (let c = Math.floor(x); c < Math.ceil(x + w - 1e-9); c++) this.cells[row * this.width + c] = color;
  }

  /** What the view copies to the screen: columns from `origin` on, then those before it. */
  screen(origin: number): number[][] {
    const out: number[][] = [];
    for (let r = 0; r < this.rows; r++) {
      const row: number[] = [];
      for (let x = 0; x < this.width; x++) row.push(this.cells[r * this.width + ((origin + x) % this.width)] as number);
      out.push(row);
    }
    return out;
  }
}

const painted = (screen: number[][]): boolean[][] => screen.map((row) => row.map((c) => c >= 0));

void describe('StreamStrip', () => {
  void test('maps time to columns and the screen origin to the oldest column in view', () => {
    const strip = new StreamStrip(10, 1000); // 100 ms a column
    const g = new Grid(10, 1, 10);
    strip.layout({ rowHeight: 10, gap: 0 });
    strip.advance(2_050, g); // newest column 20
    assert.equal(strip.head, 20);
    assert.deepEqual(g.clears, [[0, 10]]);
    assert.equal(strip.origin, 1); // columns 11..20 in view; column 11 lives at 1
    strip.bar(0, PREFIX_COLOR_ID, 1_500, 1_800, g); // columns 15 to 17: 3 wide, too narrow for a gap pixel
    strip.flush(g);
    assert.deepEqual(g.rects, [{ color: PREFIX_COLOR_ID, x: 5, y: 0, w: 3, h: 10 }]);
    // On screen: column 15 is the 5th in view (11, 12, 13, 14, 15).
    assert.deepEqual(g.screen(strip.origin)[0], [-1, -1, -1, -1, 2, 2, 2, -1, -1, -1]);
  });

  void test('moving on clears only the columns that come into view, split where the ring wraps', () => {
    const strip = new StreamStrip(10, 1000);
    const g = new Grid(10, 1, 10);
    strip.advance(1_750, g); // head 17
    strip.advance(1_790, g); // same column: nothing
    strip.advance(2_250, g); // head 22: columns 18..22 → x 8, 9 then 0, 1, 2
    assert.deepEqual(g.clears, [
      [0, 10],
      [8, 2],
      [0, 3],
    ]);
    strip.advance(9_000, g); // a window or more later: all of it
    assert.deepEqual(g.clears.at(-1), [0, 10]);
    strip.advance(8_000, g); // never backwards
    assert.equal(strip.head, 90);
  });

  void test('a wide bar across the wrap is split in two, with a pixel left between wide bars', () => {
    const strip = new StreamStrip(10, 1000);
    const g = new Grid(10, 2, 8);
    strip.layout({ rowHeight: 8, gap: 1 });
    strip.advance(2_599, g); // head 25: columns 16..25 in view
    strip.bar(1, PREFIX_COLOR_ID + 3, 1_700, 2_300, g); // columns 17 to 23, 6 wide: 5 after the gap pixel
    strip.flush(g);
    assert.deepEqual(
      g.rects.map((r) => [r.x, r.w, r.y, r.h]),
      [
        [7, 3, 8, 7],
        [0, 2, 8, 7],
      ],
    );
  });

  void test('clips to the window: older bars are dropped, bars reaching into it start at its edge', () => {
    const strip = new StreamStrip(10, 1000);
    const g = new Grid(10, 1, 10);
    strip.advance(5_000, g); // head 50: columns 41..50
    strip.bar(0, PREFIX_COLOR_ID, 3_000, 4_000, g);
    assert.equal(g.rects.length, 0);
    strip.bar(0, PREFIX_COLOR_ID, 3_000, 4_300, g); // 41 to 43
    strip.bar(0, PREFIX_COLOR_ID, 4_800, 9_900, g); // into the future: up to the head's end
    assert.deepEqual(
      g.rects.map((r) => [r.x, r.w]),
      [
        [1, 2],
        [8, 2],
        [0, 1],
      ],
    );
  });

  void test('bars narrower than a column merge: one cell per row and column, in the colour of the longest', () => {
    const strip = new StreamStrip(100, 1000); // 10 ms a column
    const g = new Grid(100, 2, 10);
    strip.layout({ rowHeight: 10, gap: 0 });
    strip.advance(1_000, g); // head 100
    for (let i = 0; i < 10; i++) strip.bar(0, PREFIX_COLOR_ID + (i % 2), 500 + i * 0.5, 500 + i * 0.5 + (i === 7 ? 0.4 : 0.2), g); // column 50
    for (let i = 0; i < 10; i++) strip.bar(1, PREFIX_COLOR_ID, 500 + i, 500 + i + 0.5, g); // all in column 50
    strip.bar(1, PREFIX_COLOR_ID + 1, 506, 509, g);
    strip.bar(0, TRANSFER_COLOR_ID, 501, 501, g);
    strip.bar(0, TRANSFER_COLOR_ID, 502, 502, g);
    strip.flush(g);
    const cells = g.rects.map((r) => [r.color, r.x, r.y]);
    assert.deepEqual(
      cells.sort((a, b) => (a[0] as number) - (b[0] as number) || (a[2] as number) - (b[2] as number)),
      [
        [TRANSFER_COLOR_ID, 50, 3],
        [PREFIX_COLOR_ID + 1, 50, 0],
        [PREFIX_COLOR_ID + 1, 50, 10],
      ],
    );
  });

  void test('errors are drawn on their own, at least minErrorWidth wide, ending where they stopped', () => {
    const strip = new StreamStrip(100, 1000); // 10 ms a column
    const g = new Grid(100, 2, 10);
    strip.layout({ rowHeight: 10, gap: 0 }); // minErrorWidth 3 by default
    assert.equal(strip.minErrorWidth, 3);
    strip.advance(1_000, g); // head 100: columns 1..100 in view
    strip.bar(0, PREFIX_COLOR_ID, 504, 505.5, g); // a tiny task in column 50: a cell of its own
    strip.bar(0, ERROR_COLOR_ID, 505, 505, g); // reported without its span: 3 columns up to 50.5
    strip.bar(1, ERROR_COLOR_ID, 300, 320, g); // ran 2 columns: widened to 3, ending at 32
    strip.bar(1, ERROR_COLOR_ID, 600, 700, g); // ran 10 columns: drawn as it ran, gap pixel included
    strip.bar(1, ERROR_COLOR_ID, 5, 15, g); // at the window's left edge: clipped there
    strip.bar(1, ERROR_COLOR_ID, 0, 5, g); // gone from the window
    strip.flush(g);
    const errors = g.rects.filter((r) => r.color === ERROR_COLOR_ID).map((r) => [r.y, r.x, r.w]);
    assert.deepEqual(errors, [
      [0, 47.5, 3],
      [10, 29, 3],
      [10, 60, 9],
      [10, 1, 0.5],
    ]);
    assert.deepEqual(
      g.rects.filter((r) => r.color !== ERROR_COLOR_ID).map((r) => [r.color, r.y, r.x, r.w]),
      [[PREFIX_COLOR_ID, 0, 50, 1]],
    );
    // Wider on a denser screen, as the view asks; never under a column.
    const dense = new StreamStrip(100, 1000);
    dense.layout({ rowHeight: 20, gap: 2, minErrorWidth: 6 });
    dense.advance(1_000, g);
    const before = g.rects.length;
    dense.bar(0, ERROR_COLOR_ID, 505, 505, g);
    assert.deepEqual(g.rects.slice(before).map((r) => [r.x, r.w, r.h]), [[44.5, 6, 18]]);
    assert.throws(() => dense.layout({ rowHeight: 20, gap: 2, minErrorWidth: 0.5 }), RangeError);
  });

  void test('maps a screen column back to the time it shows, and a height to its row', () => {
    const strip = new StreamStrip(10, 1000); // 100 ms a column
    const g = new Grid(10, 1, 10);
    strip.layout({ rowHeight: 12, gap: 1 });
    strip.advance(2_050, g); // columns 11..20 in view
    assert.equal(strip.columnTime(0), 1_100);
    assert.equal(strip.columnTime(9.7), 2_000);
    assert.equal(strip.rowAt(11.9), 0);
    assert.equal(strip.rowAt(12), 1);
  });

  void test('painted frame by frame, the screen shows what one full paint shows (random streams)', () => {
    frameByFrameIsWhole(7, 0);
  });

  void test('…and so with errors that took no time, drawn wider than they ran', () => {
    frameByFrameIsWhole(11, 0.5);
  });
});

/** The property above on 40 random streams; `zeroErrors` of the errors are reported without a span. */
function frameByFrameIsWhole(seed: number, zeroErrors: number): void {
  const rand = mulberry32(seed);
  for (let trial = 0; trial < 40; trial++) {
    const width = 20 + Math.floor(rand() * 200);
    const windowMs = 500 + rand() * 5000;
    const rows = 1 + Math.floor(rand() * 4);
    const bars: { row: number; color: number; start: number; stop: number }[] = [];
    // Tasks back to back on each row, some tiny, some wide; a transfer now and then.
    let t = rand() * 1e6;
    const ends = new Array<number>(rows).fill(t);
    const frames: number[] = [];
    for (let f = 0; f < 30; f++) {
      const frameEnd = t + rand() * windowMs * 0.4;
      for (let r = 0; r < rows; r++) {
        while ((ends[r] as number) < frameEnd) {
          const start = ends[r] as number;
          const d = rand() < 0.7 ? rand() * (windowMs / width) : rand() * windowMs * 0.2;
          const stop = Math.min(start + d, frameEnd);
          const color = rand() < 0.05 ? TRANSFER_COLOR_ID : rand() < 0.03 ? ERROR_COLOR_ID : PREFIX_COLOR_ID + Math.floor(rand() * 3);
          bars.push({ row: r, color, start: zeroErrors > 0 && color === ERROR_COLOR_ID && rand() < zeroErrors ? stop : start, stop });
          ends[r] = stop;
        }
      }
      t = frameEnd;
      frames.push(frameEnd);
    }
    const rowHeight = 10;
    const incremental = new StreamStrip(width, windowMs);
    const gi = new Grid(width, rows, rowHeight);
    incremental.layout({ rowHeight, gap: 0 });
    let next = 0;
    for (const now of frames) {
      incremental.advance(now, gi);
      for (; next < bars.length && (bars[next] as { stop: number }).stop <= now; next++) {
        const b = bars[next]!;
        incremental.bar(b.row, b.color, b.start, b.stop, gi);
      }
      incremental.flush(gi);
    }
    const now = frames.at(-1)!;
    const whole = new StreamStrip(width, windowMs);
    const gw = new Grid(width, rows, rowHeight);
    whole.layout({ rowHeight, gap: 0 });
    whole.advance(now, gw);
    for (const b of bars) whole.bar(b.row, b.color, b.start, b.stop, gw);
    whole.flush(gw);
    assert.equal(incremental.origin, whole.origin);
    assert.deepEqual(painted(gi.screen(incremental.origin)), painted(gw.screen(whole.origin)), `trial ${trial}: width ${width}, window ${windowMs.toFixed(0)} ms`);
  }
}
