/**
 * A terminal progress bar: counts, rate and ETA on one redrawn line when the stream is a
 * TTY; otherwise plain lines, at most one every few seconds, so logs stay readable. What
 * it counts, and how the counts read, it shares with the notebook's progress display.
 */
import { formatSeconds, ProgressCount } from '../notebook/progress-count.js';

export interface ProgressBarOptions {
  readonly total: number;
  readonly label?: string;
  /** Default process.stderr. */
  readonly stream?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Milliseconds between plain lines when the stream is not a TTY (default 5,000). */
  readonly plainInterval?: number;
  /** Milliseconds between redraws on a TTY (default 100). */
  readonly redrawInterval?: number;
  readonly clock?: () => number;
}

export class ProgressBar {
  readonly total: number;
  readonly #count: ProgressCount;
  readonly #label: string;
  readonly #stream: NonNullable<ProgressBarOptions['stream']>;
  readonly #tty: boolean;
  readonly #plainInterval: number;
  readonly #redrawInterval: number;

  constructor(options: ProgressBarOptions) {
    this.total = options.total;
    this.#count = new ProgressCount({ total: options.total, ...(options.clock === undefined ? {} : { clock: options.clock }) });
    this.#label = options.label ?? '';
    this.#stream = options.stream ?? process.stderr;
    this.#tty = this.#stream.isTTY === true;
    this.#plainInterval = options.plainInterval ?? 5000;
    this.#redrawInterval = options.redrawInterval ?? 100;
  }

  /** Records progress; draws if enough time has passed since the last draw. */
  update(done: number, erred = this.#count.erred): void {
    const now = this.#count.record(done, erred, this.#tty ? this.#redrawInterval : this.#plainInterval);
    if (now !== undefined) this.#draw(now, false);
  }

  /** Draws the final state and ends the line. Idempotent. */
  finish(): void {
    const now = this.#count.finish();
    if (now !== undefined) this.#draw(now, true);
  }

  /** The text of one line (without control characters), for the given width. */
  line(now: number, width = 80): string {
    const count = this.#count;
    const elapsed = count.elapsed(now, 1);
    const fraction = count.fraction();
    const rate = count.done / elapsed;
    const eta = count.done === 0 ? '?' : formatSeconds((count.total - count.done) / rate);
    const tail = ` ${Math.floor(fraction * 100)
      .toString()
      .padStart(3)}% ${count.counts()} | ${rate.toFixed(rate < 10 ? 1 : 0)}/s | ${fraction === 1 ? formatSeconds(elapsed) : `ETA ${eta}`}`;
    const head = this.#label === '' ? '' : `${this.#label} `;
    const barWidth = Math.max(10, Math.min(40, width - head.length - tail.length - 2));
    const filled = Math.round(fraction * barWidth);
    return `${head}[${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}]${tail}`;
  }

  #draw(now: number, final: boolean): void {
    const text = this.line(now, this.#stream.columns ?? 80);
    if (this.#tty) this.#stream.write(`\r\x1b[2K${text}${final ? '\n' : ''}`);
    else this.#stream.write(`${text}\n`);
  }
}
