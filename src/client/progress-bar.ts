/**
 * A terminal progress bar: counts, rate and ETA on one redrawn line when the stream is a
 * TTY; otherwise plain lines, at most one every few seconds, so logs stay readable.
 */

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
  readonly #label: string;
  readonly #stream: NonNullable<ProgressBarOptions['stream']>;
  readonly #tty: boolean;
  readonly #plainInterval: number;
  readonly #redrawInterval: number;
  readonly #clock: () => number;
  readonly #started: number;
  #done = 0;
  #erred = 0;
  #lastDraw = -Infinity;
  #finished = false;

  constructor(options: ProgressBarOptions) {
    this.total = options.total;
    this.#label = options.label ?? '';
    this.#stream = options.stream ?? process.stderr;
    this.#tty = this.#stream.isTTY === true;
    this.#plainInterval = options.plainInterval ?? 5000;
    this.#redrawInterval = options.redrawInterval ?? 100;
    this.#clock = options.clock ?? (() => performance.now());
    this.#started = this.#clock();
  }

  /** Records progress; draws if enough time has passed since the last draw. */
  update(done: number, erred = this.#erred): void {
    if (this.#finished) return;
    this.#done = done;
    this.#erred = erred;
    const now = this.#clock();
    if (now - this.#lastDraw < (this.#tty ? this.#redrawInterval : this.#plainInterval)) return;
    this.#lastDraw = now;
    this.#draw(now, false);
  }

  /** Draws the final state and ends the line. Idempotent. */
  finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#draw(this.#clock(), true);
  }

  /** The text of one line (without control characters), for the given width. */
  line(now: number, width = 80): string {
    const elapsed = Math.max(now - this.#started, 1) / 1000;
    const fraction = this.total === 0 ? 1 : Math.min(1, this.#done / this.total);
    const rate = this.#done / elapsed;
    const remaining = this.total - this.#done;
    const eta = this.#done === 0 ? '?' : formatSeconds(remaining / rate);
    const counts = `${this.#done}/${this.total}${this.#erred > 0 ? ` (${this.#erred} erred)` : ''}`;
    const tail = ` ${Math.floor(fraction * 100)
      .toString()
      .padStart(3)}% ${counts} | ${rate.toFixed(rate < 10 ? 1 : 0)}/s | ${fraction === 1 ? formatSeconds(elapsed) : `ETA ${eta}`}`;
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

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${Math.round(s % 60).toString().padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${(m % 60).toString().padStart(2, '0')}m`;
}
