/**
 * A progress bar in a notebook: one display, updated in place (update_display_data) at a
 * bounded rate, ending in a summary — counts, errors, time taken. The terminal's
 * ProgressBar draws the same counts (one ProgressCount each) on one redrawn line; this is
 * its notebook twin.
 */
import { escapeHtml } from './html.js';
import { type Kernel, jupyterKernel, type MimeBundle, newDisplayId } from './kernel.js';
import { ProgressCount } from './progress-count.js';

export interface NotebookProgressOptions {
  readonly total: number;
  readonly label?: string;
  /** Milliseconds between updates at most (default 200): a frontend redraws every one. */
  readonly redrawInterval?: number;
  readonly clock?: () => number;
}

export class NotebookProgress {
  readonly total: number;
  readonly #count: ProgressCount;
  readonly #kernel: Kernel;
  readonly #id = newDisplayId('progress');
  readonly #label: string;
  readonly #interval: number;
  /** Sends go out one after another, in order. */
  #sending: Promise<void> = Promise.resolve();
  #shown = false;

  /** A progress display, or undefined when not running in a notebook's kernel. */
  static create(options: NotebookProgressOptions): NotebookProgress | undefined {
    const kernel = jupyterKernel();
    return kernel === undefined ? undefined : new NotebookProgress(kernel, options);
  }

  constructor(kernel: Kernel, options: NotebookProgressOptions) {
    this.#kernel = kernel;
    this.total = options.total;
    this.#count = new ProgressCount({ total: options.total, ...(options.clock === undefined ? {} : { clock: options.clock }) });
    this.#label = options.label ?? '';
    this.#interval = options.redrawInterval ?? 200;
  }

  /** Records progress; updates the display if enough time has passed since the last update. */
  update(done: number, erred = this.#count.erred): void {
    const now = this.#count.record(done, erred, this.#interval);
    if (now !== undefined) this.#send(this.bundle(now, false));
  }

  /** Shows the final state; resolves once every update has been sent. Idempotent. */
  finish(): Promise<void> {
    const now = this.#count.finish();
    if (now !== undefined) this.#send(this.bundle(now, true));
    return this.#sending;
  }

  /** The bundle shown at `now`: an HTML bar and the same counts as text. */
  bundle(now: number, final: boolean): MimeBundle {
    const count = this.#count;
    const elapsed = count.elapsed(now);
    const counts = count.counts();
    const time = final ? `done in ${elapsed.toFixed(1)}s` : `${elapsed.toFixed(1)}s`;
    const head = this.#label === '' ? '' : `${this.#label} `;
    const colour = count.erred > 0 ? '#c0392b' : '#e07a1f';
    return {
      'text/plain': `${head}${counts} | ${time}`,
      'text/html':
        `<div class="tessera-progress" data-done="${count.done}" data-total="${count.total}" data-erred="${count.erred}" data-final="${final}" ` +
        'style="font-family: var(--jp-ui-font-family, sans-serif); font-size: 13px; display: flex; align-items: center; gap: 8px">' +
        (head === '' ? '' : `<span>${escapeHtml(this.#label)}</span>`) +
        `<div style="width: 300px; height: 12px; background: #eee; border-radius: 2px; overflow: hidden">` +
        `<div style="width: ${(count.fraction() * 100).toFixed(1)}%; height: 100%; background: ${colour}"></div></div>` +
        `<span>${escapeHtml(counts)}</span><span style="color: #777">${time}</span></div>`,
    };
  }

  #send(bundle: MimeBundle): void {
    const first = !this.#shown;
    this.#shown = true;
    this.#sending = this.#sending
      .then(() => (first ? this.#kernel.display(bundle, this.#id) : this.#kernel.update(bundle, this.#id)))
      // A display that cannot be sent (the kernel going away) must not fail the computation.
      .catch(() => undefined);
  }
}
