/**
 * Test doubles for the dashboard: a fake source whose numbers a test sets, a Prometheus
 * text parser strict enough to catch format mistakes, and small HTTP helpers.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { ScalingHistory } from '../../src/adaptive/loop.js';
import type { AdaptiveTargetInfo, DashboardCounters, DashboardSource, TaskStreamEntry } from '../../src/dashboard/source.js';
import { TaskStreamBuffer } from '../../src/dashboard/task-stream.js';
import { emptyStateCounts, type PrefixSnapshot, type SchedulerSnapshot, type StateCounts, type WorkerSnapshot } from '../../src/scheduler/state.js';

export const counts = (partial: Partial<StateCounts> = {}): StateCounts => ({ ...emptyStateCounts(), ...partial });

export function fakeWorker(i: number, over: Partial<WorkerSnapshot> = {}): WorkerSnapshot {
  return {
    worker: `tcp://10.0.0.${i}:9000`,
    name: `worker-${i}`,
    status: 'running',
    nthreads: 4,
    memoryLimit: 4e9,
    processing: i % 3,
    inMemory: 10 * i,
    nbytes: 1e6 * i,
    occupancy: 0.5 * i,
    memory: { managed: 1e6 * i, spilled: 1000 * i, process: 2e8 + 1e6 * i },
    lastSeen: 1000,
    ...over,
  };
}

/** A source whose every number the test sets. */
export class FakeSource implements DashboardSource {
  now = 5000;
  workers: WorkerSnapshot[] = [fakeWorker(1), fakeWorker(2)];
  byState: StateCounts = counts({ waiting: 3, queued: 4, processing: 5, memory: 6, erred: 1, released: 2 });
  prefixes: PrefixSnapshot[] = [
    { prefix: 'inc', duration: 0.01, measured: true, counts: counts({ memory: 6, processing: 5 }) },
    { prefix: 'add', duration: 0.5, measured: false, counts: counts({ waiting: 3, queued: 4, erred: 1, released: 2 }) },
  ];
  history: ScalingHistory | undefined = undefined;
  target: AdaptiveTargetInfo | undefined = undefined;
  readonly stream = new TaskStreamBuffer();
  counterValues: DashboardCounters = {
    transfersTotal: 7,
    transferBytesTotal: 7e6,
    tasksFinishedTotal: 120,
    tasksErredTotal: 1,
    taskDurationSecondsSum: 12.5,
    taskDurationCount: 120,
    bytesSpilled: 3000,
  };

  snapshot(): SchedulerSnapshot {
    let threads = 0;
    for (const w of this.workers) threads += w.nthreads;
    let tasks = 0;
    for (const v of Object.values(this.byState)) tasks += v;
    return {
      now: this.now,
      tasks,
      byState: this.byState,
      workers: this.workers,
      prefixes: this.prefixes,
      totalThreads: threads,
      stealsInFlight: 0,
      retiring: [],
      clients: 1,
      expectedRemainingWork: 4.5,
    };
  }

  scaling(since = -Infinity): ScalingHistory | undefined {
    if (this.history === undefined) return undefined;
    return { samples: this.history.samples.filter((s) => s.t > since), decisions: this.history.decisions.filter((d) => d.t > since) };
  }

  adaptiveTarget(): AdaptiveTargetInfo | undefined {
    return this.target;
  }

  taskStream(since: number, limit?: number): readonly TaskStreamEntry[] {
    return this.stream.since(since, limit);
  }

  prefixTotals(): ReturnType<TaskStreamBuffer['prefixTotals']> {
    return this.stream.prefixTotals();
  }

  counters(): DashboardCounters {
    return this.counterValues;
  }

  clock(): number {
    return this.now;
  }
}

// ---------------------------------------------------------------------------------------
// Prometheus text format
// ---------------------------------------------------------------------------------------

export interface ParsedSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface ParsedFamily {
  readonly name: string;
  readonly type: string;
  readonly help: string;
  readonly samples: ParsedSample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const SAMPLE = new RegExp(`^(${NAME})(\\{(.*)\\})? (\\S+)$`);

/**
 * Parses text format 0.0.4 and fails on anything Prometheus would reject or that the
 * format forbids: a sample before its TYPE, a family split in two, a repeated HELP/TYPE,
 * bad label syntax, a value that is not a float.
 */
export function parseMetrics(text: string): Map<string, ParsedFamily> {
  assert.ok(text.endsWith('\n'), 'exposition must end with a newline');
  const families = new Map<string, ParsedFamily>();
  const finished = new Set<string>();
  let current: ParsedFamily | undefined;
  for (const line of text.slice(0, -1).split('\n')) {
    assert.notEqual(line, '', 'no blank lines');
    if (line.startsWith('# HELP ')) {
      const [, name = '', help = ''] = /^# HELP (\S+) (.*)$/.exec(line) ?? [];
      assert.match(name, new RegExp(`^${NAME}$`), line);
      assert.ok(!families.has(name), `HELP for ${name} twice`);
      if (current !== undefined) finished.add(current.name);
      current = { name, type: 'untyped', help, samples: [] };
      families.set(name, current);
      continue;
    }
    if (line.startsWith('# TYPE ')) {
      const [, name = '', type = ''] = /^# TYPE (\S+) (counter|gauge|summary|histogram|untyped)$/.exec(line) ?? [];
      assert.equal(current?.name, name, `TYPE ${name} must follow its HELP`);
      assert.equal(current.samples.length, 0, `TYPE ${name} after samples`);
      (current as { type: string }).type = type;
      continue;
    }
    assert.ok(!line.startsWith('#'), `unexpected comment ${line}`);
    const m = SAMPLE.exec(line);
    assert.ok(m !== null, `bad sample line: ${line}`);
    const [, name = '', , rawLabels, rawValue = ''] = m;
    assert.ok(current !== undefined, `sample ${name} before any TYPE`);
    const family = current.name;
    const allowed = current.type === 'summary' ? [family, `${family}_sum`, `${family}_count`] : [family];
    assert.ok(allowed.includes(name), `sample ${name} inside family ${family}`);
    assert.ok(!finished.has(family), `family ${family} split`);
    const value = rawValue === '+Inf' ? Infinity : rawValue === '-Inf' ? -Infinity : rawValue === 'NaN' ? NaN : Number(rawValue);
    assert.ok(rawValue === 'NaN' || !Number.isNaN(value), `bad value in ${line}`);
    current.samples.push({ name, labels: parseLabels(rawLabels ?? '', line), value });
  }
  return families;
}

function parseLabels(raw: string, line: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < raw.length) {
    const m = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(raw.slice(i));
    assert.ok(m !== null, `bad label in ${line}`);
    const key = m[1] as string;
    i += m[0].length;
    let value = '';
    for (;;) {
      const c = raw[i];
      assert.ok(c !== undefined, `unterminated label value in ${line}`);
      i++;
      if (c === '"') break;
      if (c === '\\') {
        const e = raw[i++];
        if (e === 'n') value += '\n';
        else if (e === '\\' || e === '"') value += e;
        else assert.fail(`bad escape \\${e ?? ''} in ${line}`);
      } else value += c;
    }
    assert.ok(!(key in out), `label ${key} twice in ${line}`);
    out[key] = value;
    if (raw[i] === ',') i++;
    else assert.equal(i, raw.length, `junk after label in ${line}`);
  }
  return out;
}

/** The one sample of a family matching the labels given. */
export function sample(families: Map<string, ParsedFamily>, name: string, labels: Record<string, string> = {}, family = name): number {
  const f = families.get(family);
  assert.ok(f !== undefined, `no family ${family}`);
  const found = f.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.equal(found.length, 1, `${name}${JSON.stringify(labels)}: ${found.length} samples`);
  return (found[0] as ParsedSample).value;
}

// ---------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------

export interface RawResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
}

/** A plain request with full control of headers (fetch forbids setting Host). */
export function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
