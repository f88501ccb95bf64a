// `/metrics` as a Prometheus scraper sees it: parsed strictly, and checked against the
// scheduler's own state after a real graph ran on a LocalCluster; a worker's `/metrics` on
// its own port; and the token required once either is reachable from other machines.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client, LocalCluster, Scheduler, Worker } from '../../src/index.js';

// ---- a small, strict parser of the text exposition format (0.0.4) ----

type MetricType = 'counter' | 'gauge' | 'summary' | 'histogram' | 'untyped';

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

interface Family {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  readonly samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES: readonly string[] = ['counter', 'gauge', 'summary', 'histogram', 'untyped'];
const SUFFIXES: Readonly<Record<MetricType, readonly string[]>> = {
  counter: [''],
  gauge: [''],
  untyped: [''],
  summary: ['', '_sum', '_count'],
  histogram: ['_bucket', '_sum', '_count'],
};

function parseValue(raw: string, line: number): number {
  if (raw === '+Inf') return Infinity;
  if (raw === '-Inf') return -Infinity;
  if (raw === 'NaN') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw)) throw new Error(`line ${line}: bad value '${raw}'`);
  return Number(raw);
}

/** Parses `{a="x",b="y\"z"}` starting at `text[0] === '{'`; returns the labels and what follows. */
function parseLabels(text: string, line: number): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {};
  let i = 1;
  while (text[i] !== '}') {
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new Error(`line ${line}: label without '='`);
    const name = text.slice(i, eq);
    if (!LABEL_NAME.test(name)) throw new Error(`line ${line}: bad label name '${name}'`);
    if (name in labels) throw new Error(`line ${line}: label '${name}' repeated`);
    if (text[eq + 1] !== '"') throw new Error(`line ${line}: label value must be quoted`);
    let value = '';
    let j = eq + 2;
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] !== '\\') {
        value += text.charAt(j);
        continue;
      }
      const escaped = text[++j];
      if (escaped === 'n') value += '\n';
      else if (escaped === '\\' || escaped === '"') value += escaped;
      else throw new Error(`line ${line}: bad escape '\\${escaped ?? ''}'`);
    }
    if (j >= text.length) throw new Error(`line ${line}: unterminated label value`);
    labels[name] = value;
    i = j + 1;
    if (text[i] === ',') i++;
    else if (text[i] !== '}') throw new Error(`line ${line}: expected ',' or '}' after a label`);
  }
  return { labels, rest: text.slice(i + 1) };
}

/**
 * Every family declared once with HELP then TYPE before its samples, samples of a family
 * together, sample names the family's (plus the suffixes its type allows), no series twice,
 * counters never negative, and a final newline.
 */
function parseMetrics(text: string): Map<string, Family> {
  if (text !== '' && !text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  const families = new Map<string, Family>();
  const series = new Set<string>();
  let current: Family | undefined;
  let pendingHelp: { name: string; help: string } | undefined;
  const lines = text.split('\n').slice(0, -1);
  lines.forEach((raw, index) => {
    const line = index + 1;
    if (raw === '') throw new Error(`line ${line}: empty line`);
    if (raw.startsWith('# HELP ')) {
      const [name = '', ...help] = raw.slice(7).split(' ');
      if (!NAME.test(name)) throw new Error(`line ${line}: bad family name '${name}'`);
      if (families.has(name) || pendingHelp !== undefined) throw new Error(`line ${line}: HELP for '${name}' out of place`);
      pendingHelp = { name, help: help.join(' ') };
      return;
    }
    if (raw.startsWith('# TYPE ')) {
      const [name = '', type = '', ...extra] = raw.slice(7).split(' ');
      if (extra.length > 0 || !TYPES.includes(type)) throw new Error(`line ${line}: bad TYPE line`);
      if (pendingHelp?.name !== name) throw new Error(`line ${line}: TYPE for '${name}' without its HELP just before`);
      if (families.has(name)) throw new Error(`line ${line}: family '${name}' declared twice`);
      current = { name, type: type as MetricType, help: pendingHelp.help, samples: [] };
      families.set(name, current);
      pendingHelp = undefined;
      return;
    }
    if (raw.startsWith('#')) throw new Error(`line ${line}: unexpected comment`);
    if (current === undefined || pendingHelp !== undefined) throw new Error(`line ${line}: a sample outside a declared family`);
    const nameEnd = raw.search(/[{ ]/);
    if (nameEnd < 0) throw new Error(`line ${line}: a sample without a value`);
    const name = raw.slice(0, nameEnd);
    const suffix = name.startsWith(current.name) ? name.slice(current.name.length) : undefined;
    if (suffix === undefined || !SUFFIXES[current.type].includes(suffix)) {
      throw new Error(`line ${line}: sample '${name}' does not belong to family '${current.name}' (${current.type})`);
    }
    let rest = raw.slice(nameEnd);
    let labels: Record<string, string> = {};
    if (rest.startsWith('{')) ({ labels, rest } = parseLabels(rest, line));
    const parts = rest.split(' ');
    if (parts[0] !== '' || parts.length < 2 || parts.length > 3) throw new Error(`line ${line}: expected ' VALUE [TIMESTAMP]'`);
    const value = parseValue(parts[1] ?? '', line);
    if (parts[2] !== undefined && !/^-?\d+$/.test(parts[2])) throw new Error(`line ${line}: bad timestamp`);
    if (current.type === 'counter' && !(value >= 0)) throw new Error(`line ${line}: counter '${name}' is ${value}`);
    const id = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (series.has(id)) throw new Error(`line ${line}: series ${id} repeated`);
    series.add(id);
    current.samples.push({ name, labels, value });
  });
  if (pendingHelp !== undefined) throw new Error(`HELP for '${pendingHelp.name}' without TYPE`);
  return families;
}

/** The one sample of `name` whose labels include `labels`. */
function value(families: ReadonlyMap<string, Family>, name: string, labels: Readonly<Record<string, string>> = {}, family = name): number {
  const matches = (families.get(family)?.samples ?? []).filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  assert.equal(matches.length, 1, `one sample of ${name}${JSON.stringify(labels)}, got ${matches.length}`);
  return matches[0]!.value;
}

async function scrape(url: string | URL, init: RequestInit = {}): Promise<Map<string, Family>> {
  const res = await fetch(url, init);
  assert.equal(res.status, 200, `GET ${String(url)}`);
  assert.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  return parseMetrics(await res.text());
}

void describe('the parser is strict', () => {
  void test('accepts the format and refuses what a scraper would', () => {
    const ok = parseMetrics('# HELP a_total A.\n# TYPE a_total counter\na_total{x="1\\"2\\\\3\\n"} 4\n# HELP b B.\n# TYPE b summary\nb_sum 1.5e3\nb_count 2\n');
    assert.equal(value(ok, 'a_total', { x: '1"2\\3\n' }), 4);
    assert.equal(value(ok, 'b_sum', {}, 'b'), 1500);
    for (const bad of [
      'a 1\n',
      '# HELP a A.\n# TYPE a gauge\na 1',
      '# HELP a A.\n# TYPE a gauge\na 1\na 2\n',
      '# HELP a A.\n# TYPE a gauge\nb 1\n',
      '# HELP a A.\n# TYPE a counter\na -1\n',
      '# HELP a A.\n# TYPE a gauge\na{x=1} 1\n',
      '# HELP a A.\n# TYPE a gauge\na one\n',
      '# HELP a A.\n# TYPE a gauge\n# HELP a A.\n# TYPE a gauge\n',
      '# TYPE a gauge\na 1\n',
    ]) {
      assert.throws(() => parseMetrics(bad), Error, JSON.stringify(bad));
    }
  });
});

void describe('/metrics on a running LocalCluster', () => {
  let cluster: LocalCluster;
  let client: Client;

  before(async () => {
    cluster = await LocalCluster.start({ workers: 2, threadsPerWorker: 1, memoryLimit: '1GiB', dashboard: { port: 0 } });
    client = await Client.connect(cluster.address);
  });

  after(async () => {
    await client.close();
    await cluster.close();
  });

  void test("the scheduler's metrics match its state after a graph ran", async () => {
    const n = 200;
    const futures = client.map((x: number) => new Float64Array(64).fill(x), Array.from({ length: n }, (_, i) => i));
    const total = client.submit((...xs: Float64Array[]) => xs.reduce((s, x) => s + x[0]!, 0), ...futures);
    assert.equal(await total.result(), (n * (n - 1)) / 2);
    // Memory gauges come with heartbeats (every second): wait for one from each worker after the run.
    const ran = performance.now();
    const heard = (): boolean => cluster.scheduler.snapshot().workers.every((w) => w.lastSeen > ran + 50 && w.memory.process > 0);
    for (let i = 0; i < 200 && !heard(); i++) await new Promise((resolve) => setTimeout(resolve, 25));
    assert.ok(heard(), 'a heartbeat from every worker');

    const link = cluster.dashboardLink;
    assert.ok(link !== undefined);
    const before = cluster.scheduler.snapshot();
    const families = await scrape(new URL('metrics', link));
    const after = cluster.scheduler.snapshot();
    // A heartbeat may land between the scrape and a snapshot: the scrape matches one side.
    const either = (metric: number, pick: (s: typeof before) => number | undefined, what: string): void => {
      assert.ok(metric === pick(before) || metric === pick(after), `${what}: metrics say ${metric}, state ${pick(before)} / ${pick(after)}`);
    };

    assert.equal(value(families, 'tessera_workers'), 2);
    either(value(families, 'tessera_workers'), (s) => s.workers.length, 'workers');
    either(value(families, 'tessera_threads'), (s) => s.totalThreads, 'threads');
    const states = families.get('tessera_tasks')!.samples;
    assert.deepEqual(new Set(states.map((s) => s.labels['state'])), new Set(Object.keys(before.byState)), 'every task state is a label');
    for (const s of states) {
      const state = s.labels['state'] as keyof typeof before.byState;
      either(s.value, (snap) => snap.byState[state], `tessera_tasks{state="${state}"}`);
    }
    assert.equal(value(families, 'tessera_tasks', { state: 'memory' }), n + 1, 'the futures still held are in memory');
    assert.ok(value(families, 'tessera_tasks_finished_total') >= n + 1, 'finished total counts the graph');
    assert.equal(value(families, 'tessera_tasks_erred_total'), 0);
    assert.ok(value(families, 'tessera_task_duration_seconds_count', {}, 'tessera_task_duration_seconds') >= n + 1);
    assert.ok(value(families, 'tessera_task_duration_seconds_sum', {}, 'tessera_task_duration_seconds') >= 0);
    assert.equal(families.has('tessera_desired_workers'), false, 'no adaptive target on a fixed cluster');

    let stored = 0;
    for (const w of before.workers) {
      const labels = { worker: w.name };
      assert.equal(value(families, 'tessera_worker_memory_limit_bytes', labels), 2 ** 30);
      either(value(families, 'tessera_worker_memory_limit_bytes', labels), (s) => s.workers.find((x) => x.name === w.name)?.memoryLimit, 'limit');
      either(value(families, 'tessera_worker_bytes_stored', labels), (s) => s.workers.find((x) => x.name === w.name)?.nbytes, `bytes stored on ${w.name}`);
      either(value(families, 'tessera_worker_tasks_in_memory', labels), (s) => s.workers.find((x) => x.name === w.name)?.inMemory, `results on ${w.name}`);
      either(value(families, 'tessera_worker_memory_process_bytes', labels), (s) => s.workers.find((x) => x.name === w.name)?.memory.process, `rss of ${w.name}`);
      either(value(families, 'tessera_worker_bytes_spilled', labels), (s) => s.workers.find((x) => x.name === w.name)?.memory.spilled, `spilled on ${w.name}`);
      assert.equal(value(families, 'tessera_worker_threads', labels), 1);
      assert.ok(value(families, 'tessera_worker_memory_process_bytes', labels) > 0);
      stored += value(families, 'tessera_worker_bytes_stored', labels);
    }
    assert.ok(stored >= n * 64 * 8, `results are counted in bytes: ${stored}`);
    assert.equal(value(families, 'tessera_bytes_stored'), stored, 'the cluster gauge is the sum of the workers');
    for (const f of [...futures, total]) f.release();
  });

  void test("a worker's own /metrics and /health, closed with the worker", async () => {
    // LocalCluster's workers do not report their metrics port to the scheduler: join one here.
    const worker = await Worker.start({ scheduler: cluster.address, nthreads: 1, name: 'scraped', memoryLimit: '512MiB', log: () => undefined });
    let closed = false;
    try {
      assert.ok(worker.metricsLink !== null);
      assert.match(worker.metricsLink, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const squares = Array.from({ length: 10 }, (_, i) => client.submitWith({ workers: ['scraped'] }, (x: number) => x * x, i));
      assert.deepEqual(await client.gather(squares), Array.from({ length: 10 }, (_, i) => i * i));
      const labels = { worker: 'scraped' };
      const families = await scrape(worker.metricsLink);
      assert.equal(value(families, 'tessera_worker_threads', labels), 1);
      assert.equal(value(families, 'tessera_worker_memory_limit_bytes', labels), 512 * 2 ** 20);
      assert.equal(value(families, 'tessera_worker_tasks_finished_total', labels), 10);
      assert.equal(value(families, 'tessera_worker_task_duration_seconds_count', labels, 'tessera_worker_task_duration_seconds'), 10);
      assert.equal(value(families, 'tessera_worker_tasks_in_memory', labels), worker.keys.length);
      assert.equal(value(families, 'tessera_worker_memory_managed_bytes', labels), worker.memory.managed);
      assert.equal(value(families, 'tessera_worker_executing', labels), 0);
      assert.equal(value(families, 'tessera_worker_status', { ...labels, status: 'running' }, 'tessera_worker_status'), 1);
      assert.ok(value(families, 'tessera_worker_memory_process_bytes', labels) > 0);
      assert.ok(value(families, 'tessera_worker_uptime_seconds', labels) > 0);
      const health = await fetch(new URL('/health', worker.metricsLink));
      assert.equal(health.status, 200);
      assert.equal(await health.text(), 'ok');
      assert.equal((await fetch(new URL('/nothing', worker.metricsLink))).status, 404);
      assert.equal((await fetch(worker.metricsLink, { method: 'POST' })).status, 405);
      for (const f of squares) f.release();

      const link = worker.metricsLink;
      await worker.close();
      closed = true;
      await assert.rejects(fetch(link), 'the metrics server closed with the worker');
    } finally {
      if (!closed) await worker.close();
    }
  });

  void test('metricsPort: false serves nothing; a bad one is refused at the door', async () => {
    const worker = await Worker.start({ scheduler: cluster.address, nthreads: 1, metricsPort: false, log: () => undefined });
    try {
      assert.equal(worker.metricsLink, null);
    } finally {
      await worker.close();
    }
    await assert.rejects(Worker.start({ scheduler: cluster.address, metricsPort: 70_000 }), /options\.metricsPort/);
  });
});

void describe('the token when metrics are exposed', () => {
  void test("an exposed dashboard answers 401 without the cluster token and 200 with it", async () => {
    const scheduler = await Scheduler.start({ port: 0, token: 'metrics-secret', dashboard: { host: '0.0.0.0', port: 0 }, log: () => undefined });
    try {
      const link = scheduler.dashboardLink;
      assert.ok(link !== undefined);
      const url = `http://127.0.0.1:${new URL(link).port}/metrics`;
      const refused = await fetch(url);
      assert.equal(refused.status, 401);
      assert.match(refused.headers.get('www-authenticate') ?? '', /^Bearer/);
      assert.equal((await fetch(url, { headers: { authorization: 'Bearer wrong' } })).status, 401);
      const families = await scrape(url, { headers: { authorization: 'Bearer metrics-secret' } });
      assert.equal(value(families, 'tessera_workers'), 0);
      assert.equal((await fetch(`http://127.0.0.1:${new URL(link).port}/api/v1/workers`)).status, 401, 'the JSON API too');
    } finally {
      await scheduler.close();
    }
    await assert.rejects(Scheduler.start({ port: 0, dashboard: { host: '0.0.0.0', port: 0 } }), /token is required/);
  });

  void test("a worker's /metrics off loopback wants the token; /health does not", async () => {
    const scheduler = await Scheduler.start({ port: 0, token: 'metrics-secret', dashboard: false, log: () => undefined });
    // Listening on every interface: reachable from other machines.
    const worker = await Worker.start({ scheduler: scheduler.address, token: 'metrics-secret', host: '0.0.0.0', nthreads: 1, name: 'exposed', log: () => undefined });
    try {
      assert.ok(worker.metricsLink !== null);
      const url = `http://127.0.0.1:${new URL(worker.metricsLink).port}`;
      assert.equal((await fetch(`${url}/metrics`)).status, 401);
      assert.equal((await fetch(`${url}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
      const families = await scrape(`${url}/metrics`, { headers: { authorization: 'Bearer metrics-secret' } });
      assert.equal(value(families, 'tessera_worker_threads', { worker: 'exposed' }), 1);
      assert.equal((await fetch(`${url}/health`)).status, 200);
    } finally {
      await worker.close();
      await scheduler.close();
    }
  });
});
