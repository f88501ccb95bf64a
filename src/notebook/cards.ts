/**
 * The cards of a cluster, a client and a future: MIME bundles with an HTML card and its
 * plain-text twin (the text is also what util.inspect shows outside a notebook).
 */
import { cardHtml, cardText, escapeHtml, formatBytes, linkHtml, type Row } from './html.js';
import { DISPLAY, jupyterKernel, type MimeBundle, showLive } from './kernel.js';

/** One worker as a card lists it. */
export interface WorkerSummary {
  readonly name: string;
  readonly status: string;
  readonly threads: number;
  /** Bytes of results it holds in memory. */
  readonly memory: number;
  readonly memoryLimit: number;
  /** Tasks assigned to it and not yet done. */
  readonly processing: number;
}

/** What every cluster shows of itself, whatever its backend. */
export interface ClusterSummary {
  /** The class: 'LocalCluster', … */
  readonly type: string;
  readonly state: 'running' | 'closing' | 'closed';
  readonly address: string;
  /** The dashboard's address, with the token when the dashboard needs one; undefined when off. */
  readonly dashboard: string | undefined;
  /** Workers registered with the scheduler. */
  readonly workers: readonly WorkerSummary[];
  /** Workers asked of the backend (starting or running); undefined when it cannot tell. */
  readonly requested: number | undefined;
  readonly adaptive: { readonly minimum: number; readonly maximum: number } | undefined;
  /** What only this backend has to tell (a Kubernetes namespace, a simulation's clock), shown after the dashboard. */
  readonly details?: readonly ClusterDetail[];
}

/** One backend's own row on a cluster's card. */
export interface ClusterDetail {
  readonly label: string;
  /** Names the row in the HTML (`data-field`). */
  readonly field: string;
  readonly text: string;
}

/** Implemented by every cluster: the summary its card and its client's card show. */
export const CLUSTER_SUMMARY: unique symbol = Symbol.for('tessera.cluster.summary') as never;

/** Implemented by clusters that can tell when workers come and go (their cards then show it at once). */
export const CLUSTER_CHANGES: unique symbol = Symbol.for('tessera.cluster.changes') as never;

export interface SummarizedCluster {
  [CLUSTER_SUMMARY](): ClusterSummary;
  /** Calls `changed` whenever a worker comes or leaves; returns how to stop. */
  [CLUSTER_CHANGES]?(changed: () => void): () => void;
}

export function isSummarizedCluster(value: unknown): value is SummarizedCluster {
  return typeof value === 'object' && value !== null && typeof (value as Partial<SummarizedCluster>)[CLUSTER_SUMMARY] === 'function';
}

// A card lists this many workers; past that it says how many more.
const WORKER_ROWS = 16;

function clusterRows(s: ClusterSummary): Row[] {
  const threads = s.workers.reduce((n, w) => n + w.threads, 0);
  const memory = s.workers.reduce((n, w) => n + w.memory, 0);
  const limit = s.workers.reduce((n, w) => n + w.memoryLimit, 0);
  const dashboard = s.dashboard === undefined ? undefined : new URL(s.dashboard);
  // The link carries the token; the text shown does not.
  const shown = dashboard === undefined ? '' : `${dashboard.origin}${dashboard.pathname}`;
  const rows: Row[] = [
    { label: 'Scheduler', field: 'address', text: s.address },
    {
      label: 'Dashboard',
      field: 'dashboard',
      text: s.dashboard ?? 'off',
      ...(s.dashboard === undefined ? {} : { html: linkHtml(s.dashboard, shown) }),
    },
    ...(s.details ?? []),
    {
      label: 'Workers',
      field: 'workers',
      text: `${s.workers.length}${s.requested !== undefined && s.requested !== s.workers.length ? ` (${s.requested} requested)` : ''}`,
    },
    { label: 'Threads', field: 'threads', text: String(threads) },
    { label: 'Memory', field: 'memory', text: limit > 0 ? `${formatBytes(memory)} of ${formatBytes(limit)}` : formatBytes(memory) },
  ];
  if (s.adaptive !== undefined) {
    rows.push({ label: 'Adaptive', field: 'adaptive', text: `minimum ${s.adaptive.minimum}, maximum ${s.adaptive.maximum}` });
  }
  return rows;
}

function workersHtml(workers: readonly WorkerSummary[]): string {
  if (workers.length === 0) return '';
  const cell = 'text-align: left; padding: 0 12px 0 0; font-weight: normal';
  const head = ['worker', 'status', 'threads', 'processing', 'memory'].map((h) => `<th style="${cell}; color: #777">${h}</th>`).join('');
  const rows = workers
    .slice(0, WORKER_ROWS)
    .map(
      (w) =>
        `<tr><td style="${cell}">${escapeHtml(w.name)}</td><td style="${cell}">${escapeHtml(w.status)}</td><td style="${cell}">${w.threads}</td>` +
        `<td style="${cell}">${w.processing}</td><td style="${cell}">${formatBytes(w.memory)} / ${formatBytes(w.memoryLimit)}</td></tr>`,
    )
    .join('');
  const more = workers.length > WORKER_ROWS ? `<tr><td colspan="5" style="${cell}">… and ${workers.length - WORKER_ROWS} more</td></tr>` : '';
  return `<details style="margin-top: 2px"><summary>Workers</summary><table style="border-collapse: collapse">${head}${rows}${more}</table></details>`;
}

export function clusterBundle(s: ClusterSummary): MimeBundle {
  const rows = clusterRows(s);
  const subtitle = s.state === 'running' ? '' : `(${s.state})`;
  return {
    'text/plain': cardText(s.type, subtitle, rows),
    'text/html': cardHtml('cluster', s.type, subtitle, rows, workersHtml(s.workers)),
  };
}

/**
 * What a cluster's `[DISPLAY]()` returns. In the kernel the card is sent as its own display
 * and refreshed in place while the cluster runs: about once a second, and soon after a
 * worker comes or leaves when the cluster tells of it; once more when it closes; the cell's result is then an empty bundle, which frontends
 * show as nothing. Elsewhere it is the card itself.
 */
export async function displayCluster(cluster: SummarizedCluster & { readonly closed?: Promise<void> }): Promise<MimeBundle> {
  const kernel = jupyterKernel();
  if (kernel === undefined) return clusterBundle(cluster[CLUSTER_SUMMARY]());
  let running = true;
  await showLive(
    kernel,
    'cluster',
    () => {
      const summary = cluster[CLUSTER_SUMMARY]();
      // A closing cluster still changes: stopping there would never show it closed.
      running = summary.state !== 'closed';
      return clusterBundle(summary);
    },
    () => running,
    {
      ...(cluster.closed === undefined ? {} : { ended: cluster.closed }),
      ...(cluster[CLUSTER_CHANGES] === undefined ? {} : { subscribe: (changed: () => void) => cluster[CLUSTER_CHANGES]!(changed) }),
    },
  );
  return {};
}

/** What a client's card shows. */
export interface ClientSummary {
  readonly id: string;
  readonly state: 'running' | 'closing' | 'closed';
  readonly address: string;
  /** Futures this client holds. */
  readonly futures: number;
  /** The cluster it was connected through, if it was given one. */
  readonly cluster: ClusterSummary | undefined;
}

export function clientBundle(s: ClientSummary): MimeBundle {
  const subtitle = s.state === 'running' ? s.id : `${s.id} (${s.state})`;
  const rows: Row[] = [
    { label: 'Connection', field: 'connection', text: s.cluster === undefined ? `direct, to ${s.address}` : `through a ${s.cluster.type}` },
    { label: 'Futures held', field: 'futures', text: String(s.futures) },
  ];
  if (s.cluster === undefined) {
    rows.unshift({ label: 'Scheduler', field: 'address', text: s.address });
    return { 'text/plain': cardText('Client', subtitle, rows), 'text/html': cardHtml('client', 'Client', subtitle, rows) };
  }
  const cluster = clusterBundle(s.cluster);
  const nested = cluster['text/plain']!.split('\n').map((line) => `  ${line}`).join('\n');
  return {
    'text/plain': `${cardText('Client', subtitle, rows)}\n${nested}`,
    'text/html': cardHtml('client', 'Client', subtitle, rows, cluster['text/html']),
  };
}

export function futureBundle(key: string, status: string): MimeBundle {
  const rows: Row[] = [
    { label: 'Key', field: 'key', text: key },
    { label: 'Status', field: 'status', text: status },
  ];
  return { 'text/plain': `Future(${key}, ${status})`, 'text/html': cardHtml('future', 'Future', '', rows) };
}

export { DISPLAY };

/** What a set of futures (a client's `map`, say) shows: how many are in each state, and the errors. */
export interface FutureSetSummary {
  readonly total: number;
  /** Futures per status, in the order shown; statuses with none are left out. */
  readonly byStatus: readonly { readonly status: string; readonly count: number }[];
  /** Errors alike grouped together, most frequent first. */
  readonly errors: readonly { readonly error: string; readonly count: number; readonly firstKey: string }[];
  /** Keys by what they start with (the function's name, `task`, `scatter`), most first. */
  readonly prefixes: readonly { readonly prefix: string; readonly count: number }[];
}

// A card names this many key prefixes; past that it says how many more.
const PREFIX_ROWS = 3;

// A card lists this many kinds of error; past that it says how many more.
const ERROR_ROWS = 5;
// Colours of the status bar: finished, pending, then the ways of not finishing.
const STATUS_COLOURS: Readonly<Record<string, string>> = { finished: '#e07a1f', pending: '#eee', error: '#c0392b', lost: '#8e44ad', cancelled: '#999' };

export function futureSetBundle(s: FutureSetSummary): MimeBundle {
  const named = s.prefixes.slice(0, PREFIX_ROWS).map((p) => `${p.prefix}-* (${p.count})`);
  if (s.prefixes.length > PREFIX_ROWS) named.push(`${s.prefixes.length - PREFIX_ROWS} more`);
  const keys = named.length === 0 ? 'none' : named.join(', ');
  const rows: Row[] = [
    { label: 'Status', field: 'status', text: s.byStatus.length === 0 ? 'empty' : s.byStatus.map((b) => `${b.count} ${b.status}`).join(', ') },
    { label: 'Keys', field: 'keys', text: keys },
  ];
  const shown = s.errors.slice(0, ERROR_ROWS);
  const more = s.errors.length - shown.length;
  const errorLines = shown.map((e) => `${e.count} × ${e.error} (first: ${e.firstKey})`);
  if (more > 0) errorLines.push(`… and ${more} more kinds`);
  const title = `${s.total} future${s.total === 1 ? '' : 's'}`;
  const text = [cardText(title, '', rows), ...(errorLines.length === 0 ? [] : ['  Errors:', ...errorLines.map((l) => `    ${l}`)])].join('\n');

  const bar =
    s.total === 0
      ? ''
      : '<div style="display: flex; width: 300px; height: 8px; margin: 3px 0; background: #eee; border-radius: 2px; overflow: hidden">' +
        s.byStatus.map((b) => `<div data-status="${escapeHtml(b.status)}" style="width: ${((b.count / s.total) * 100).toFixed(2)}%; background: ${STATUS_COLOURS[b.status] ?? '#777'}"></div>`).join('') +
        '</div>';
  const cell = 'text-align: left; padding: 0 12px 0 0; font-weight: normal; vertical-align: top';
  const errors =
    errorLines.length === 0
      ? ''
      : `<details style="margin-top: 2px"><summary>Errors</summary><table style="border-collapse: collapse">` +
        shown.map((e) => `<tr class="tessera-error"><td style="${cell}">${e.count} ×</td><td style="${cell}"><code>${escapeHtml(e.error)}</code></td><td style="${cell}; color: #777">first: ${escapeHtml(e.firstKey)}</td></tr>`).join('') +
        (more > 0 ? `<tr><td colspan="3" style="${cell}">… and ${more} more kinds</td></tr>` : '') +
        '</table></details>';
  return { 'text/plain': text, 'text/html': cardHtml('futures', title, '', rows, `${bar}${errors}`) };
}
