/**
 * Progress per task prefix: a bar of done / in memory / erred / processing / waiting,
 * with counts. Rows are reused across updates and capped, so many prefixes cost a
 * bounded number of DOM nodes.
 */
import type { PrefixRow } from '../feed-protocol.js';
import { prefixColor } from './colors.js';
import { formatCount } from './format.js';
import type { DashboardModel } from './model.js';

const MAX_ROWS = 60;

export interface Progress {
  readonly done: number;
  readonly memory: number;
  readonly erred: number;
  readonly processing: number;
  readonly waiting: number;
  readonly total: number;
}

/** Done counts finished tasks already released; without totals, the released ones held. */
export function progressOf(r: PrefixRow): Progress {
  const c = r.counts;
  const done = r.finished >= 0 ? Math.max(0, r.finished - c.memory) : c.released;
  const erred = Math.max(c.erred, r.erred);
  const waiting = c.waiting + c['no-worker'] + c.queued;
  return { done, memory: c.memory, erred, processing: c.processing, waiting, total: done + c.memory + erred + c.processing + waiting };
}

interface RowEls {
  readonly row: HTMLElement;
  readonly segs: readonly HTMLElement[];
  readonly counts: HTMLElement;
  text: string;
}

export class ProgressView {
  readonly #el: HTMLElement;
  readonly #more: HTMLElement;
  readonly #rows = new Map<string, RowEls>();
  /** First-seen order keeps rows from jumping around between updates. */
  readonly #order = new Map<string, number>();

  constructor(el: HTMLElement, more: HTMLElement) {
    this.#el = el;
    this.#more = more;
  }

  render(m: DashboardModel): void {
    for (const r of m.prefixes) if (!this.#order.has(r.prefix)) this.#order.set(r.prefix, this.#order.size);
    const rows = m.prefixes.map((r) => ({ r, p: progressOf(r) })).filter((x) => x.p.total > 0);
    const active = (x: { p: Progress }): number => (x.p.processing + x.p.waiting > 0 ? 0 : 1);
    rows.sort((a, b) => active(a) - active(b) || (this.#order.get(a.r.prefix) ?? 0) - (this.#order.get(b.r.prefix) ?? 0));
    const shown = rows.slice(0, MAX_ROWS);
    const keep = new Set(shown.map((x) => x.r.prefix));
    for (const [prefix, els] of this.#rows) {
      if (!keep.has(prefix)) {
        els.row.remove();
        this.#rows.delete(prefix);
      }
    }
    let prev: HTMLElement | null = null;
    for (const { r, p } of shown) {
      const els = this.#rows.get(r.prefix) ?? this.#create(r.prefix);
      this.#fill(els, p);
      // Move only rows out of place: DOM moves are what costs.
      const want: ChildNode | null = prev === null ? this.#el.firstChild : prev.nextSibling;
      if (want !== els.row) this.#el.insertBefore(els.row, want);
      prev = els.row;
    }
    const hidden = rows.length - shown.length + m.prefixesOmitted;
    this.#more.textContent = hidden > 0 ? `+${formatCount(hidden)} more prefixes` : '';
    this.#el.dataset['prefixes'] = String(shown.length);
    if (shown.length === 0 && this.#el.childElementCount === 0) this.#more.textContent = 'No tasks yet.';
  }

  #create(prefix: string): RowEls {
    const row = document.createElement('div');
    row.className = 'progress-row';
    row.dataset['prefix'] = prefix;
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = prefix;
    name.title = prefix;
    const bar = document.createElement('div');
    bar.className = 'bar';
    const color = prefixColor(prefix);
    const segs = ['done', 'memory', 'erred', 'processing'].map((cls) => {
      const s = document.createElement('span');
      s.className = `seg ${cls}`;
      if (cls !== 'erred') s.style.background = color;
      bar.append(s);
      return s;
    });
    const counts = document.createElement('span');
    counts.className = 'counts';
    row.append(name, bar, counts);
    const els: RowEls = { row, segs, counts, text: '' };
    this.#rows.set(prefix, els);
    return els;
  }

  #fill(els: RowEls, p: Progress): void {
    const parts = [p.done, p.memory, p.erred, p.processing];
    const text =
      `${formatCount(p.done + p.memory)} / ${formatCount(p.total)}` +
      (p.memory > 0 ? ` · ${formatCount(p.memory)} in memory` : '') +
      (p.erred > 0 ? ` · ${formatCount(p.erred)} erred` : '') +
      (p.processing > 0 ? ` · ${formatCount(p.processing)} running` : '') +
      (p.waiting > 0 ? ` · ${formatCount(p.waiting)} waiting` : '');
    if (text === els.text) return;
    els.text = text;
    els.counts.textContent = text;
    els.segs.forEach((s, i) => (s.style.width = `${((parts[i] ?? 0) / p.total) * 100}%`));
    const done = p.processing + p.waiting === 0 && p.erred === 0;
    els.row.dataset['done'] = String(done);
    els.row.dataset['finished'] = String(p.done + p.memory);
    els.row.dataset['total'] = String(p.total);
    els.row.title = `done ${p.done}, in memory ${p.memory}, erred ${p.erred}, processing ${p.processing}, waiting ${p.waiting}`;
  }
}
