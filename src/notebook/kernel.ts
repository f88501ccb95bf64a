/**
 * Where rich display goes: Deno's Jupyter kernel (`deno jupyter`), found at run time. A
 * value whose class has a `[DISPLAY]()` method is shown by the kernel through it; `display`
 * and `update` send a display that can be changed in place afterwards (display_data, then
 * update_display_data with the same display id). Everywhere else (Node, a Deno script)
 * there is no kernel, and objects fall back to their `[INSPECT]` text.
 */
import { randomBytes } from 'node:crypto';

/** The method the kernel calls on a cell's value: it returns a MIME bundle. */
export const DISPLAY: unique symbol = Symbol.for('Jupyter.display') as never;
/** util.inspect's hook (Node's, and Deno's console): the plain-text form. */
export const INSPECT: unique symbol = Symbol.for('nodejs.util.inspect.custom') as never;

/** MIME type to content: 'text/plain' always, 'text/html' for the rich form. */
export type MimeBundle = Readonly<Record<string, string>>;

interface DenoJupyter {
  display(bundle: MimeBundle, options: { readonly raw: true; readonly display_id?: string; readonly update?: boolean }): Promise<void>;
}

/** A display in the notebook that can be replaced in place. */
export interface Kernel {
  /** Sends a new display (display_data) under `id`. */
  display(bundle: MimeBundle, id: string): Promise<void>;
  /** Replaces what the display `id` shows (update_display_data), wherever it is. */
  update(bundle: MimeBundle, id: string): Promise<void>;
}

/**
 * The Jupyter kernel this code runs in, or undefined when there is none. `Deno.jupyter`
 * exists only under `deno jupyter`, and throws when read anywhere else.
 */
export function jupyterKernel(): Kernel | undefined {
  const deno = (globalThis as { Deno?: { jupyter?: unknown } }).Deno;
  if (deno === undefined) return undefined;
  let jupyter: unknown;
  try {
    jupyter = deno.jupyter;
  } catch {
    return undefined;
  }
  if (typeof jupyter !== 'object' || jupyter === null || typeof (jupyter as Partial<DenoJupyter>).display !== 'function') return undefined;
  const api = jupyter as DenoJupyter;
  return {
    display: (bundle, id) => api.display(bundle, { raw: true, display_id: id }),
    update: (bundle, id) => api.display(bundle, { raw: true, display_id: id, update: true }),
  };
}

/** A fresh display id: the kernel's frontends find a display by it, in any cell. */
export function newDisplayId(kind: string): string {
  return `tessera-${kind}-${randomBytes(6).toString('hex')}`;
}

export interface LiveOptions {
  /** Milliseconds between looks at the source; at most one update each (default 1,000). */
  readonly intervalMs?: number;
  /** When it settles, the display shows its last state at once, and stops. */
  readonly ended?: Promise<unknown>;
  /**
   * Tells of changes worth showing before the next look (a worker came or left): given a
   * function to call then, returns how to stop telling.
   */
  readonly subscribe?: (changed: () => void) => () => void;
  /** Milliseconds between looks prompted by `subscribe`, at least (default 250). */
  readonly minGapMs?: number;
}

/**
 * Shows `render()` now and keeps the display current: every interval (and soon after a
 * change `subscribe` tells of, at most every `minGapMs`) it renders again and updates the
 * display when what it shows changed, until `live()` (asked after each render) turns false
 * or `ended` settles — that render is the last, and it stops. Updates go out one at a time,
 * in order; no timer of it keeps the process alive.
 */
export async function showLive(kernel: Kernel, kind: string, render: () => MimeBundle, live: () => boolean, options: LiveOptions = {}): Promise<void> {
  const id = newDisplayId(kind);
  const minGap = options.minGapMs ?? 250;
  let last = render();
  let lastLook = performance.now();
  let stopped = false;
  let prompted: ReturnType<typeof setTimeout> | undefined;
  let unsubscribe = (): void => undefined;
  let sending: Promise<void> = kernel.display(last, id);
  const stop = (): void => {
    stopped = true;
    clearInterval(timer);
    clearTimeout(prompted);
    unsubscribe();
  };
  const refresh = (final: boolean): void => {
    if (stopped) return;
    lastLook = performance.now();
    const next = render();
    if (final || !live()) stop();
    if (next['text/plain'] === last['text/plain'] && next['text/html'] === last['text/html']) return;
    last = next;
    // The kernel going away: nothing more to show.
    sending = sending.then(() => kernel.update(next, id)).catch(stop);
  };
  const timer = setInterval(() => refresh(false), options.intervalMs ?? 1000);
  timer.unref();
  if (options.subscribe !== undefined) {
    unsubscribe = options.subscribe(() => {
      if (stopped || prompted !== undefined) return;
      prompted = setTimeout(
        () => {
          prompted = undefined;
          refresh(false);
        },
        Math.max(0, lastLook + minGap - performance.now()),
      );
      prompted.unref();
    });
  }
  void options.ended?.then(
    () => refresh(true),
    () => refresh(true),
  );
  await sending;
}
