/**
 * What every progress display counts and how it says it: tasks done of a total, how many
 * erred, time since the start, and when the next draw is due. The terminal's ProgressBar
 * (src/client/progress-bar.ts) and the notebook's NotebookProgress draw from one of these,
 * so the two cannot drift apart in what they count or how the counts read.
 */

export interface ProgressCountOptions {
  readonly total: number;
  readonly clock?: () => number;
}

export class ProgressCount {
  readonly total: number;
  readonly started: number;
  readonly #clock: () => number;
  #done = 0;
  #erred = 0;
  #lastDraw = -Infinity;
  #finished = false;

  constructor(options: ProgressCountOptions) {
    this.total = options.total;
    this.#clock = options.clock ?? (() => performance.now());
    this.started = this.#clock();
  }

  get done(): number {
    return this.#done;
  }

  get erred(): number {
    return this.#erred;
  }

  get finished(): boolean {
    return this.#finished;
  }

  now(): number {
    return this.#clock();
  }

  /**
   * Records progress; the time to draw it, or undefined when finished already or when less
   * than `interval` ms passed since the last draw (the first draw is never held back).
   */
  record(done: number, erred: number, interval: number): number | undefined {
    if (this.#finished) return undefined;
    this.#done = done;
    this.#erred = erred;
    const now = this.#clock();
    if (now - this.#lastDraw < interval) return undefined;
    this.#lastDraw = now;
    return now;
  }

  /** Marks the end: the time of the final draw the first time, undefined after. */
  finish(): number | undefined {
    if (this.#finished) return undefined;
    this.#finished = true;
    return this.#clock();
  }

  /** Done of total, from 0 to 1 (an empty job is complete). */
  fraction(): number {
    return this.total === 0 ? 1 : Math.min(1, this.#done / this.total);
  }

  /** '50/200', or '50/200 (2 erred)'. */
  counts(): string {
    return `${this.#done}/${this.total}${this.#erred > 0 ? ` (${this.#erred} erred)` : ''}`;
  }

  /** Seconds from the start to `now`, at least `floorMs` ms (a rate needs a non-zero time). */
  elapsed(now: number, floorMs = 0): number {
    return Math.max(now - this.started, floorMs) / 1000;
  }
}

/** 12.5 → '12.5s', 125 → '2m05s', 7500 → '2h05m'; '?' when not finite. */
export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${Math.round(s % 60).toString().padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${(m % 60).toString().padStart(2, '0')}m`;
}
