/**
 * Workers as a sortable table. At most `MAX_ROWS` rows exist, reused across updates
 * (the top ones by the chosen column, with a count of the rest), so a thousand workers
 * cost as much as two hundred.
 */
import { WORKER_FIELD as F, type WorkerRow } from '../feed-protocol.js';
import { formatAge, formatBytes, formatCount } from './format.js';
import type { DashboardModel } from './model.js';
import { compareNames } from './task-stream-view.js';

const MAX_ROWS = 200;

interface Column {
  readonly key: string;
  readonly label: string;
  readonly numeric: boolean;
  /** Sort value. */
  readonly value: (w: WorkerRow, now: number) => number | string;
  readonly text: (w: WorkerRow, now: number) => string;
}

const memoryUsed = (w: WorkerRow): number => (w[F.process] > 0 ? w[F.process] : Math.max(w[F.managed], w[F.nbytes]));

const NAME: Column = { key: 'name', label: 'Name', numeric: false, value: (w) => w[F.name], text: (w) => w[F.name] };

const COLUMNS: readonly Column[] = [
  NAME,
  { key: 'address', label: 'Address', numeric: false, value: (w) => w[F.worker], text: (w) => w[F.worker] },
  { key: 'status', label: 'Status', numeric: false, value: (w) => w[F.status], text: (w) => w[F.status] },
  { key: 'threads', label: 'Threads', numeric: true, value: (w) => w[F.nthreads], text: (w) => formatCount(w[F.nthreads]) },
  { key: 'processing', label: 'Processing', numeric: true, value: (w) => w[F.processing], text: (w) => formatCount(w[F.processing]) },
  { key: 'keys', label: 'Keys', numeric: true, value: (w) => w[F.inMemory], text: (w) => formatCount(w[F.inMemory]) },
  {
    key: 'memory',
    label: 'Memory / limit',
    numeric: true,
    value: (w) => memoryUsed(w) / (w[F.memoryLimit] > 0 ? w[F.memoryLimit] : 1),
    text: (w) => `${formatBytes(memoryUsed(w))} / ${formatBytes(w[F.memoryLimit])}`,
  },
  { key: 'stored', label: 'Stored', numeric: true, value: (w) => w[F.nbytes], text: (w) => formatBytes(w[F.nbytes]) },
  { key: 'spilled', label: 'Spilled', numeric: true, value: (w) => w[F.spilled], text: (w) => formatBytes(w[F.spilled]) },
  { key: 'occupancy', label: 'Occupancy', numeric: true, value: (w) => w[F.occupancy], text: (w) => `${w[F.occupancy].toFixed(1)} s` },
  { key: 'seen', label: 'Last heartbeat', numeric: true, value: (w, now) => now - w[F.lastSeen], text: (w, now) => `${formatAge(now - w[F.lastSeen])} ago` },
];

interface RowEls {
  readonly tr: HTMLTableRowElement;
  readonly cells: readonly HTMLTableCellElement[];
}

export class WorkersTable {
  readonly #table: HTMLTableElement;
  readonly #body: HTMLTableSectionElement;
  readonly #more: HTMLElement;
  readonly #rows: RowEls[] = [];
  #sortKey = 'memory';
  #descending = true;
  #sorted: readonly WorkerRow[] = [];
  #sortedVersion = -1;
  #onSort: () => void;

  constructor(table: HTMLTableElement, more: HTMLElement, onSort: () => void) {
    this.#table = table;
    this.#more = more;
    this.#onSort = onSort;
    const head = table.createTHead().insertRow();
    for (const c of COLUMNS) {
      const th = document.createElement('th');
      th.textContent = c.label;
      th.dataset['sort'] = c.key;
      th.className = c.numeric ? 'num' : '';
      th.tabIndex = 0;
      th.addEventListener('click', () => this.sortBy(c.key));
      th.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') this.sortBy(c.key);
      });
      head.append(th);
    }
    this.#body = table.createTBody();
    this.#markHeader();
  }

  /** Sorts by a column; the same column again flips the direction. */
  sortBy(key: string): void {
    if (!COLUMNS.some((c) => c.key === key)) return;
    if (key === this.#sortKey) this.#descending = !this.#descending;
    else {
      this.#sortKey = key;
      this.#descending = COLUMNS.find((c) => c.key === key)?.numeric ?? false;
    }
    this.#sortedVersion = -1;
    this.#markHeader();
    this.#onSort();
  }

  render(m: DashboardModel): void {
    const col = COLUMNS.find((c) => c.key === this.#sortKey) ?? NAME;
    if (this.#sortedVersion !== m.workersVersion) {
      const now = m.now;
      const dir = this.#descending ? -1 : 1;
      this.#sorted = [...m.workers].sort((a, b) => {
        const va = col.value(a, now);
        const vb = col.value(b, now);
        const d = typeof va === 'number' && typeof vb === 'number' ? va - vb : compareNames(String(va), String(vb));
        return d * dir || compareNames(a[F.name], b[F.name]);
      });
      this.#sortedVersion = m.workersVersion;
    }
    const shown = Math.min(MAX_ROWS, this.#sorted.length);
    while (this.#rows.length < shown) {
      const tr = this.#body.insertRow();
      const cells = COLUMNS.map((c) => {
        const td = tr.insertCell();
        if (c.numeric) td.className = 'num';
        return td;
      });
      this.#rows.push({ tr, cells });
    }
    for (let i = 0; i < this.#rows.length; i++) {
      const r = this.#rows[i] as RowEls;
      const w = this.#sorted[i];
      r.tr.hidden = w === undefined;
      if (w === undefined) continue;
      for (let c = 0; c < COLUMNS.length; c++) {
        const text = (COLUMNS[c] as Column).text(w, m.now);
        const cell = r.cells[c] as HTMLTableCellElement;
        if (cell.textContent !== text) cell.textContent = text;
      }
      const status = w[F.status];
      if (r.tr.dataset['status'] !== status) r.tr.dataset['status'] = status;
    }
    const rest = m.workerCount - shown;
    this.#more.textContent = rest > 0 ? `and ${formatCount(rest)} more workers (sorted by ${col.label.toLowerCase()})` : '';
    this.#table.dataset['rows'] = String(shown);
    this.#table.dataset['workers'] = String(m.workerCount);
  }

  #markHeader(): void {
    for (const th of this.#table.tHead?.rows[0]?.cells ?? []) {
      const active = th.dataset['sort'] === this.#sortKey;
      th.classList.toggle('sorted', active);
      th.setAttribute('aria-sort', active ? (this.#descending ? 'descending' : 'ascending') : 'none');
    }
  }
}
