import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { after, describe, test } from 'node:test';
import { DashboardServer, startDashboard, type Dashboard } from '../../src/dashboard/server.js';
import type { DashboardSource, TaskStreamEntry } from '../../src/dashboard/source.js';
import type { FeedMessage } from '../../src/dashboard/feed-protocol.js';
import { metricsText } from '../../src/worker/metrics.js';
import { InvalidArgumentError } from '../../src/errors.js';
import { counts, FakeSource, fakeWorker, get, parseMetrics, sample } from './helpers.js';
import { sleep, until } from '../helpers/wait.js';

const open: Dashboard[] = [];
async function start(options: Partial<Parameters<typeof startDashboard>[0]> & { source: DashboardSource }): Promise<Dashboard> {
  const d = await startDashboard({ port: 0, ...options });
  open.push(d);
  return d;
}
after(async () => {
  await Promise.all(open.map((d) => d.close()));
});

void describe('GET /metrics', () => {
  void test('is valid exposition text and matches the source', async () => {
    const source = new FakeSource();
    source.workers = [fakeWorker(1), fakeWorker(2, { name: 'odd "name"\\with\nnewline', nthreads: 2 })];
    source.target = { target: 9, reason: 'work for 9' };
    const d = await start({ source });
    const res = await get(`${d.url}metrics`);
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const m = parseMetrics(res.body);
    for (const f of m.values()) assert.notEqual(f.help, '', `${f.name} has HELP text`);
    assert.equal(sample(m, 'tessera_workers'), 2);
    assert.equal(m.get('tessera_workers')?.type, 'gauge');
    for (const [state, n] of Object.entries(source.byState)) assert.equal(sample(m, 'tessera_tasks', { state }), n, state);
    assert.equal(sample(m, 'tessera_desired_workers'), 9);
    assert.equal(sample(m, 'tessera_threads'), 6);
    assert.equal(sample(m, 'tessera_bytes_stored'), 3e6);
    assert.equal(sample(m, 'tessera_bytes_spilled'), 3000);
    assert.equal(sample(m, 'tessera_transfers_total'), 7);
    assert.equal(m.get('tessera_transfers_total')?.type, 'counter');
    assert.equal(sample(m, 'tessera_transfer_bytes_total'), 7e6);
    assert.equal(sample(m, 'tessera_tasks_finished_total'), 120);
    assert.equal(sample(m, 'tessera_tasks_erred_total'), 1);
    assert.equal(m.get('tessera_task_duration_seconds')?.type, 'summary');
    assert.equal(sample(m, 'tessera_task_duration_seconds_sum', {}, 'tessera_task_duration_seconds'), 12.5);
    assert.equal(sample(m, 'tessera_task_duration_seconds_count', {}, 'tessera_task_duration_seconds'), 120);
    assert.equal(sample(m, 'tessera_worker_threads', { worker: 'worker-1' }), 4);
    // Label values survive quotes, backslashes and newlines.
    assert.equal(sample(m, 'tessera_worker_threads', { worker: 'odd "name"\\with\nnewline' }), 2);
    assert.equal(sample(m, 'tessera_worker_bytes_stored', { worker: 'worker-1' }), 1e6);
    assert.equal(sample(m, 'tessera_worker_memory_limit_bytes', { worker: 'worker-1' }), 4e9);
    assert.equal(sample(m, 'tessera_worker_last_seen_seconds', { worker: 'worker-1' }), 4);
  });

  void test('leaves out the desired workers when the cluster is not adaptive', async () => {
    const d = await start({ source: new FakeSource() });
    const m = parseMetrics((await get(`${d.url}metrics`)).body);
    assert.equal(m.has('tessera_desired_workers'), false);
    assert.equal(m.has('tessera_workers'), true);
  });

  void test('a worker metricsText parses and carries its numbers', () => {
    const text = metricsText({
      name: 'w-1',
      status: 'paused',
      nthreads: 8,
      memoryLimit: 8e9,
      memory: { managed: 1e9, spilled: 2e8, process: 1.5e9 },
      executing: 3,
      ready: 11,
      inMemory: 40,
      tasksFinishedTotal: 1000,
      tasksErredTotal: 2,
      taskDurationSecondsSum: 31.5,
      taskDurationCount: 1002,
      transfersTotal: 5,
    });
    const m = parseMetrics(text);
    assert.equal(sample(m, 'tessera_worker_threads', { worker: 'w-1' }), 8);
    assert.equal(sample(m, 'tessera_worker_status', { worker: 'w-1', status: 'paused' }), 1);
    assert.equal(sample(m, 'tessera_worker_status', { worker: 'w-1', status: 'running' }), 0);
    assert.equal(sample(m, 'tessera_worker_bytes_spilled', { worker: 'w-1' }), 2e8);
    assert.equal(sample(m, 'tessera_worker_tasks_finished_total', { worker: 'w-1' }), 1000);
    assert.equal(sample(m, 'tessera_worker_task_duration_seconds_count', { worker: 'w-1' }, 'tessera_worker_task_duration_seconds'), 1002);
    assert.equal(sample(m, 'tessera_worker_transfers_total', { worker: 'w-1' }), 5);
    assert.equal(m.has('tessera_worker_transfer_bytes_total'), false);
  });
});

void describe('binding and the token', () => {
  void test('refuses to start exposed without a token, naming the option', async () => {
    const source = new FakeSource();
    assert.throws(() => new DashboardServer({ source, host: '0.0.0.0' }), (e: unknown) => e instanceof InvalidArgumentError && e.message.includes('options.token'));
    assert.throws(() => new DashboardServer({ source, exposed: true }), (e: unknown) => e instanceof InvalidArgumentError && e.message.includes('options.token'));
    await assert.rejects(startDashboard({ source, host: '0.0.0.0', port: 0 }), InvalidArgumentError);
    assert.throws(() => new DashboardServer({ source, host: '0.0.0.0', exposed: false, token: 't' }), InvalidArgumentError);
    assert.throws(() => new DashboardServer({ source, port: 70000 }), (e: unknown) => e instanceof InvalidArgumentError && e.message.includes('options.port'));
    assert.throws(() => new DashboardServer({ source, token: '' }), (e: unknown) => e instanceof InvalidArgumentError && e.message.includes('options.token'));
    assert.throws(() => new DashboardServer({ source, updateIntervalMs: 0 }), (e: unknown) => e instanceof InvalidArgumentError && e.message.includes('options.updateIntervalMs'));
  });

  void test('binds to loopback by default', async () => {
    const d = await start({ source: new FakeSource() });
    assert.equal(d.host, '127.0.0.1');
    assert.equal(d.exposed, false);
    assert.match(d.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  });

  void test('exposed: 401 without the token, 200 with it on every route, cookie after ?token=', async () => {
    const token = 's3cret-token';
    const d = await start({ source: new FakeSource(), exposed: true, token });
    for (const path of ['', 'health', 'metrics', 'api/v1/workers', 'api/v1/tasks', 'api/v1/events', 'app.js']) {
      const res = await get(`${d.url}${path}`);
      assert.equal(res.status, 401, path);
      assert.match(String(res.headers['www-authenticate']), /^Bearer/);
    }
    assert.equal((await get(`${d.url}health`, { authorization: 'Bearer wrong' })).status, 401);
    assert.equal((await get(`${d.url}health?token=wrong`)).status, 401);
    const ok = await get(`${d.url}health`, { authorization: `Bearer ${token}` });
    assert.equal(ok.status, 200);
    assert.equal(ok.body, 'ok');
    assert.equal((await get(`${d.url}api/v1/tasks`, { authorization: `Bearer ${token}` })).status, 200);

    // ?token= once: a cookie, and the page URL without the token.
    const first = await get(`${d.url}?token=${token}&x=1`);
    assert.equal(first.status, 303);
    assert.equal(first.headers.location, '/?x=1');
    const setCookie = String(first.headers['set-cookie']);
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Strict/);
    const cookie = setCookie.split(';')[0] as string;
    assert.equal((await get(`${d.url}metrics`, { cookie })).status, 200);
    assert.equal((await get(`${d.url}metrics`, { cookie: 'tessera_dashboard_token=nope' })).status, 401);
    const api = await get(`${d.url}api/v1/workers?token=${token}`);
    assert.equal(api.status, 200);
  });

  void test('unauthenticated loopback refuses foreign Host names (DNS rebinding)', async () => {
    const d = await start({ source: new FakeSource() });
    assert.equal((await get(`${d.url}health`, { host: 'evil.example:8787' })).status, 403);
    assert.equal((await get(`${d.url}health`, { host: `localhost:${d.port}` })).status, 200);
  });

  void test('a busy port is replaced by a free one, and the url says which', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const busy = (blocker.address() as AddressInfo).port;
    try {
      const d = await start({ source: new FakeSource(), port: busy });
      assert.notEqual(d.port, busy);
      assert.ok(d.port > 0);
      assert.equal(d.url, `http://127.0.0.1:${d.port}/`);
      assert.equal((await get(`${d.url}health`)).status, 200);
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  });

  void test('close is idempotent and releases the port and live connections', async () => {
    const d = await startDashboard({ source: new FakeSource(), port: 0, updateIntervalMs: 50 });
    const ended = new Promise<void>((resolve, reject) => {
      request(`${d.url}api/v1/events`, { agent: false }, (res) => {
        res.resume();
        res.on('end', resolve);
        res.on('error', resolve);
        res.on('close', resolve);
      })
        .on('error', reject)
        .end();
    });
    await until(() => d.feedStats().clients.length === 1, 'the live client');
    const closing = d.close();
    assert.equal(d.close(), closing);
    await closing;
    await ended;
    await d.close();
    assert.equal(d.feedStats().clients.length, 0);
    await assert.rejects(
      new Promise((resolve, reject) => {
        const s = connect(d.port, '127.0.0.1');
        s.on('connect', () => {
          s.destroy();
          resolve(undefined);
        });
        s.on('error', reject);
      }),
    );
  });
});

void describe('JSON API', () => {
  void test('workers, tasks, scaling, adaptive target and task stream', async () => {
    const source = new FakeSource();
    source.history = {
      samples: [1000, 2000, 3000].map((t) => ({ t, requested: 2, running: 2, closing: 0, target: 2, queued: 1, processing: 2, waiting: 0, inMemory: 0 })),
      decisions: [{ op: 'scale-up', target: 2, reason: 'work for 2', t: 1000 }],
    };
    source.target = { target: 2, reason: 'work for 2' };
    for (let i = 0; i < 5; i++) source.stream.record({ key: `inc-${i}`, prefix: 'inc', worker: 'tcp://a', start: i * 100, stop: i * 100 + 50, kind: 'compute' });
    const d = await start({ source });
    const json = async <T>(path: string): Promise<T> => {
      const res = await get(`${d.url}${path}`);
      assert.equal(res.status, 200, `${path}: ${res.body}`);
      assert.match(String(res.headers['content-type']), /^application\/json/);
      return JSON.parse(res.body) as T;
    };
    const workers = await json<{ workers: { name: string }[] }>('api/v1/workers');
    assert.deepEqual(
      workers.workers.map((w) => w.name),
      ['worker-1', 'worker-2'],
    );
    const tasks = await json<{ total: number; byState: Record<string, number>; prefixes: { prefix: string; finished: number; duration: number }[] }>('api/v1/tasks');
    assert.equal(tasks.total, 21);
    assert.equal(tasks.byState['processing'], 5);
    assert.equal(tasks.prefixes.find((p) => p.prefix === 'inc')?.finished, 5);
    assert.equal(tasks.prefixes.find((p) => p.prefix === 'add')?.duration, 0.5);
    const scaling = await json<{ adaptive: boolean; samples: unknown[]; decisions: unknown[] }>('api/v1/scaling?since=1500');
    assert.equal(scaling.adaptive, true);
    assert.equal(scaling.samples.length, 2);
    assert.equal(scaling.decisions.length, 0);
    assert.deepEqual(await json('api/v1/adaptive-target'), { adaptive: true, target: 2, reason: 'work for 2' });
    const stream = await json<{ entries: TaskStreamEntry[]; truncated: boolean }>('api/v1/task-stream?since=150');
    assert.deepEqual(
      stream.entries.map((e) => e.key),
      ['inc-2', 'inc-3', 'inc-4'],
    );
    const limited = await json<{ entries: TaskStreamEntry[]; truncated: boolean }>('api/v1/task-stream?limit=2');
    assert.deepEqual(
      limited.entries.map((e) => e.key),
      ['inc-3', 'inc-4'],
    );
    assert.equal(limited.truncated, true);
    assert.equal((await get(`${d.url}api/v1/scaling?since=abc`)).status, 400);
    assert.equal((await get(`${d.url}api/v1/task-stream?limit=0`)).status, 400);
    assert.equal((await get(`${d.url}api/v1/nope`)).status, 404);
    assert.equal((await get(`${d.url}health`, {}, 'POST')).status, 405);
  });

  void test('a source that is not adaptive says so', async () => {
    const d = await start({ source: new FakeSource() });
    assert.deepEqual(JSON.parse((await get(`${d.url}api/v1/adaptive-target`)).body), { adaptive: false });
    assert.deepEqual(JSON.parse((await get(`${d.url}api/v1/scaling`)).body), { adaptive: false, samples: [], decisions: [] });
  });
});

void describe('a pool that bursts', () => {
  void test("the API and the live feed carry each backend's counts and whose decision it is", async () => {
    const source = new FakeSource();
    const side = (requested: number, running: number, target: number) => ({ requested, running, closing: 0, target });
    const sample = { t: 1000, requested: 8, running: 5, closing: 0, target: 8, queued: 30, processing: 5, waiting: 0, inMemory: 0, persistent: side(1, 1, 1), burst: side(7, 4, 7) };
    const decision = { op: 'scale-up', target: 7, reason: 'burst: work; burst 7 of 8', t: 1000, backend: 'burst' } as const;
    source.history = { samples: [sample], decisions: [decision] };
    const d = await start({ source, updateIntervalMs: 100 });
    const scaling = JSON.parse((await get(`${d.url}api/v1/scaling`)).body) as unknown;
    assert.deepEqual(scaling, { adaptive: true, samples: [sample], decisions: [decision] });
    const updates = (await readFeed(d.url, 400)).filter((m) => m.op === 'update');
    assert.deepEqual(updates.flatMap((u) => u.samples), [sample]);
    assert.deepEqual(updates.flatMap((u) => u.decisions), [decision]);
  });
});

/** Reads a live feed for `ms`, returning its messages. */
function readFeed(url: string, ms: number): Promise<FeedMessage[]> {
  return new Promise((resolve, reject) => {
    const messages: FeedMessage[] = [];
    let buf = '';
    const req = request(`${url}api/v1/events`, { agent: false }, (res) => {
      assert.equal(res.statusCode, 200);
      assert.match(String(res.headers['content-type']), /^text\/event-stream/);
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let end;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const event = buf.slice(0, end);
          buf = buf.slice(end + 2);
          for (const line of event.split('\n')) if (line.startsWith('data: ')) messages.push(JSON.parse(line.slice(6)) as FeedMessage);
        }
      });
      setTimeout(() => {
        req.destroy();
        resolve(messages);
      }, ms);
    });
    req.on('error', (e) => (messages.length > 0 ? undefined : reject(e)));
    req.end();
  });
}

void describe('live feed', () => {
  void test('sends one aggregated update per interval however fast the source changes', async () => {
    const source = new FakeSource();
    // Every read sees a new state and a new finished task: the source changes continuously.
    let n = 0;
    const snapshot = source.snapshot.bind(source);
    source.snapshot = () => {
      n++;
      source.now += 7;
      source.stream.record({ key: `inc-${n}`, prefix: 'inc', worker: 'tcp://a', start: source.now - 5, stop: source.now, kind: 'compute' });
      source.byState = counts({ processing: n % 10, memory: n });
      return snapshot();
    };
    const d = await start({ source, updateIntervalMs: 200 });
    const messages = await readFeed(d.url, 1050);
    const updates = messages.filter((m) => m.op === 'update');
    assert.equal(messages[0]?.op, 'hello');
    assert.ok(updates.length >= 3 && updates.length <= 6, `${updates.length} updates in ~1 s`);
    // Each update carries every entry finished since the previous one: none lost, none twice.
    const rows = updates.flatMap((u) => {
      const out: number[] = [];
      for (let i = 4; i < u.stream.rows.length; i += 6) out.push(u.stream.rows[i] as number);
      return out;
    });
    assert.deepEqual(rows, [...new Set(rows)].sort((a, b) => a - b));
    assert.ok(rows.length >= updates.length);
  });

  void test('over the entry cap, an update samples its whole interval evenly', async () => {
    const source = new FakeSource();
    for (let i = 1; i <= 5000; i++) source.stream.record({ key: `inc-${i}`, prefix: 'inc', worker: 'tcp://a', thread: 0, start: i - 1, stop: i, kind: 'compute' });
    source.now = 6000;
    const d = await start({ source, updateIntervalMs: 100, maxStreamEntries: 100 });
    const updates = (await readFeed(d.url, 300)).filter((m) => m.op === 'update');
    const first = updates[0];
    assert.ok(first !== undefined);
    assert.equal(first.streamCapped, true);
    const stops: number[] = [];
    for (let i = 4; i < first.stream.rows.length; i += 6) stops.push(first.stream.rows[i] as number);
    assert.equal(stops.length, 100);
    assert.equal(stops.at(-1), 5000, 'the newest is sent');
    assert.ok((stops[0] as number) <= 50, `the oldest part is sampled too: first stop ${stops[0]}`);
    // Evenly: every 50th entry.
    for (let i = 1; i < stops.length; i++) assert.equal((stops[i] as number) - (stops[i - 1] as number), 50);
    // Nothing sent twice afterwards: the cursor moved past all 5,000.
    assert.ok(updates.slice(1).every((u) => u.stream.rows.length === 0));
  });

  void test('an idle source sends nothing after the first update but keepalives', async () => {
    const d = await start({ source: new FakeSource(), updateIntervalMs: 50 });
    const messages = await readFeed(d.url, 600);
    assert.equal(messages.filter((m) => m.op === 'update').length, 1);
  });

  void test('a page that never reads does not grow the server memory and is disconnected', async (t) => {
    const cap = 256 * 1024;
    // A firehose: every tick has 2,000 new stream entries and a worker list that changed.
    const source = new FakeSource();
    source.workers = Array.from({ length: 1000 }, (_, i) => fakeWorker(i, { name: `worker-with-a-rather-long-name-${i}`, worker: `tcp://10.1.${i >> 8}.${i & 255}:40000` }));
    let clock = 0;
    source.clock = () => clock;
    source.taskStream = (since: number, limit = Infinity): TaskStreamEntry[] => {
      clock += 100;
      const n = Math.min(limit, 2000);
      const from = Math.max(since, clock - 100);
      return Array.from({ length: n }, (_, i) => ({
        key: `k-${i}`,
        prefix: `prefix-${i % 50}`,
        worker: `tcp://10.1.0.${i % 250}:40000`,
        thread: i % 4,
        start: from,
        stop: from + ((i + 1) * (clock - from)) / n,
        kind: 'compute' as const,
      }));
    };
    const snapshot = source.snapshot.bind(source);
    source.snapshot = () => {
      source.workers = source.workers.map((w) => ({ ...w, lastSeen: clock }));
      return snapshot();
    };
    const d = await start({ source, updateIntervalMs: 20, maxBufferedBytes: cap, stallTimeoutMs: 1500 });
    const socket = connect(d.port, '127.0.0.1');
    await new Promise<void>((r) => socket.on('connect', r));
    socket.write(`GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:${d.port}\r\n\r\n`);
    // Never read: once the kernel buffers fill, bytes can only pile up in the server.
    socket.pause();
    let maxBuffered = 0;
    let maxDropped = 0;
    const heapBefore = process.memoryUsage().heapUsed;
    let heapPeak = heapBefore;
    await until(
      () => {
        const stats = d.feedStats();
        for (const c of stats.clients) {
          maxBuffered = Math.max(maxBuffered, c.bufferedBytes, c.maxBufferedBytes);
          maxDropped = Math.max(maxDropped, c.dropped);
        }
        heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
        return stats.stalledDisconnects === 1 && stats.clients.length === 0;
      },
      'the stalled page to be disconnected',
      20_000,
    );
    socket.destroy();
    t.diagnostic(`most buffered for the page: ${maxBuffered} bytes; updates skipped: ${maxDropped}; ticks: ${d.feedStats().ticks}; heap growth ${heapPeak - heapBefore}`);
    const largestMessage = 600 * 1024;
    assert.ok(maxBuffered > 0, 'the server did buffer for the page');
    assert.ok(maxBuffered <= cap + largestMessage, `buffered ${maxBuffered} bytes for one page (cap ${cap})`);
    assert.ok(maxDropped > 0, 'updates were skipped rather than queued');
    // Dozens of megabytes were offered to the page; the server held on to a few.
    assert.ok(d.feedStats().ticks > 20);
    assert.ok(heapPeak - heapBefore < 64 * 1024 * 1024, `heap grew ${heapPeak - heapBefore} bytes`);
    // And a page that reads still gets updates.
    const messages = await readFeed(d.url, 300);
    assert.ok(messages.some((m) => m.op === 'update'));
  });

  void test('at most maxClients pages at once', async () => {
    const d = await start({ source: new FakeSource(), maxClients: 1 });
    const first = readFeed(d.url, 400);
    await until(() => d.feedStats().clients.length === 1, 'the first page');
    assert.equal((await get(`${d.url}api/v1/events`)).status, 503);
    await first;
    await sleep(10);
  });
});
