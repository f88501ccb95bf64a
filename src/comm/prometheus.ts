/**
 * Prometheus text exposition format (version 0.0.4): one HELP and one TYPE line per
 * family, then its samples, every family once. Shared by the scheduler's and the
 * workers' `/metrics`.
 */

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type MetricType = 'gauge' | 'counter' | 'summary';

export interface MetricSample {
  /** Appended to the family name: `_sum`, `_count` for summaries. */
  readonly suffix?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly value: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export class MetricsWriter {
  readonly #lines: string[] = [];
  readonly #families = new Set<string>();

  /** Adds a family; a family without samples is left out (Prometheus needs none). */
  family(name: string, type: MetricType, help: string, samples: readonly MetricSample[]): this {
    if (!NAME.test(name)) throw new Error(`invalid metric name '${name}'`);
    if (this.#families.has(name)) throw new Error(`metric family '${name}' written twice`);
    this.#families.add(name);
    if (samples.length === 0) return this;
    this.#lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
    for (const s of samples) this.#lines.push(`${name}${s.suffix ?? ''}${formatLabels(s.labels)} ${formatValue(s.value)}`);
    return this;
  }

  /** Shorthand for a family of one unlabelled sample. */
  single(name: string, type: MetricType, help: string, value: number): this {
    return this.family(name, type, help, [{ value }]);
  }

  text(): string {
    return this.#lines.length === 0 ? '' : `${this.#lines.join('\n')}\n`;
  }
}

function formatLabels(labels: Readonly<Record<string, string>> | undefined): string {
  if (labels === undefined) return '';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(labels)) {
    if (!LABEL.test(k) || k.startsWith('__')) throw new Error(`invalid label name '${k}'`);
    parts.push(`${k}="${escapeLabel(v)}"`);
  }
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}
