/**
 * map-10,000, map-100,000, tree-50,000 and transfer (BENCHMARKS.md) on a LocalCluster of
 * 2 worker processes × 1 thread and, in the same run, the anchors on the same workloads;
 * prints JSON lines with µs per task and the ratio against each:
 *
 *   dask         Dask distributed 2026.8 (PyPI), LocalCluster of the same shape
 *   ray          Ray 2.60 (PyPI), ray.init(num_cpus=2), one remote call per task; its
 *                transfer between two raylets on this host (see bench/anchors/ray_cluster.py)
 *   dask-debian  Debian's Dask 2022.12, same cluster shape, while it is installed
 *
 *   npm run build && npm run bench -- distributed [--repeat 3] [--transfer-repeat 9] [--workloads map-10000,tree-50000]
 *       [--anchors dask,ray,dask-debian] [--no-anchor] [--saturation 1.1] [--backlog-ms 5]
 *
 * The transfer runs `--transfer-repeat` times (each under a second; the anchors alike): a
 * single 64 MiB hop's time has a long tail (the kernel handing out memory never touched
 * since boot, which a virtual machine's host backs on first touch, at about 3 ms per MiB
 * here), and a median of three is one unlucky run from it.
 *
 * `--saturation` is the scheduler's root-task queue bound (tasks per thread; default the
 * state machine's 1.1, as Dask's); `Infinity` turns queuing off. `--backlog-ms` is how much
 * work of short, measured tasks a worker is given beyond those slots (default 5; 0: the
 * slots only, where tiny tasks are bound by the worker ⇄ scheduler round trip).
 *
 * Each map and tree row also carries the CPU it cost, from the kernel's accounting, so that
 * the work per task can be compared on a machine whose load makes wall times drift:
 * `cpuUsPerTask` of this process (the scheduler and the client, which share it in a
 * LocalCluster) and `workersCpuUsPerTask` of the worker processes (their threads included);
 * and the write system calls (nearly all packets sent) per task, `writesPerTask` and
 * `workersWritesPerTask`, from /proc/PID/io: a count the machine's load does not blur.
 *
 * Dashboard overhead: tree-50,000 again, alternately without and with a client of the
 * dashboard's live feed (without, with, without, with…; `--overhead-repeat` pairs), and
 * the relative change of the medians (target: at most +5%). The client is headless
 * Chromium on the page when /usr/bin/chromium exists, else a reader of the raw
 * server-sent events (`--feed-client chromium|sse` to choose). `--only overhead` runs just
 * this part; `--no-overhead` skips it. With Chromium, the CPU its processes used during each
 * watched run is reported too (clientCpuSeconds, from /proc).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { get as httpGet } from 'node:http';
import { parseArgs } from 'node:util';
import { Client, type Future, LocalCluster, get } from 'tessera';
import { anchorLabel, median, runAnchor, selectAnchors } from './anchor.js';
import { inc, treeExpected, treeGraph } from './workloads.js';

const { values: args } = parseArgs({
  options: {
    repeat: { type: 'string', default: '3' },
    'transfer-repeat': { type: 'string', default: '9' },
    workloads: { type: 'string', default: 'map-10000,map-100000,tree-50000,transfer' },
    'transfer-bytes': { type: 'string', default: String(64 * 2 ** 20) },
    'no-anchor': { type: 'boolean', default: false },
    anchors: { type: 'string' },
    saturation: { type: 'string' },
    'backlog-ms': { type: 'string' },
    only: { type: 'string' },
    'no-overhead': { type: 'boolean', default: false },
    'overhead-repeat': { type: 'string', default: '7' },
    'overhead-workload': { type: 'string', default: 'tree-50000' },
    'feed-client': { type: 'string', default: 'auto' },
  },
});
if (args.only !== undefined && args.only !== 'overhead') throw new Error(`--only takes 'overhead', got '${args.only}'`);
const onlyOverhead = args.only === 'overhead';
const feedClient = args['feed-client'];
if (feedClient !== 'auto' && feedClient !== 'chromium' && feedClient !== 'sse') throw new Error(`--feed-client takes auto, chromium or sse, got '${feedClient}'`);
const overheadPairs = Number(args['overhead-repeat']);
if (!Number.isInteger(overheadPairs) || overheadPairs < 1) throw new Error('--overhead-repeat must be a positive integer');
const overheadTree = Number(/^tree-(\d+)$/.exec(args['overhead-workload'])?.[1] ?? NaN);
if (!(overheadTree > 0)) throw new Error(`--overhead-workload must be tree-N, got '${args['overhead-workload']}'`);
const repeat = Number(args.repeat);
const transferRepeat = Number(args['transfer-repeat']);
if (!Number.isInteger(transferRepeat) || transferRepeat < 1) throw new Error('--transfer-repeat must be a positive integer');
const workloads = onlyOverhead ? [] : args.workloads.split(',').filter((w) => w !== '');
const transferBytes = Number(args['transfer-bytes']);

const emit = (line: Record<string, unknown>): void => {
  console.log(JSON.stringify({ bench: 'distributed', workers: 2, threadsPerWorker: 1, ...(saturation === undefined ? {} : { saturation }), ...(backlogMs === undefined ? {} : { backlogMs }), ...line }));
};

const saturation = args.saturation === undefined ? undefined : Number(args.saturation);
const backlogMs = args['backlog-ms'] === undefined ? undefined : Number(args['backlog-ms']);
const cluster = await LocalCluster.start({
  workers: 2,
  threadsPerWorker: 1,
  scheduler: { ...(saturation === undefined ? {} : { saturation }), ...(backlogMs === undefined ? {} : { backlogMs }) },
});
const client = await Client.connect(cluster.address);
const ours = new Map<string, number>();

async function idle(): Promise<void> {
  // Like the anchor's wait_idle: the scheduler has forgotten the previous run.
  while (cluster.scheduler.taskCount > 0) await new Promise((resolve) => setTimeout(resolve, 10));
}

/** CPU seconds and write system calls of this process's child processes (the workers), from /proc; 0 without it. */
function workersUsage(): { cpu: number; writes: number } {
  if (!existsSync('/proc/self/stat')) return { cpu: 0, writes: 0 };
  let cpu = 0;
  let writes = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) !== process.pid) continue;
      cpu += (Number(f[11]) + Number(f[12])) / 100;
      writes += writeCalls(entry);
    } catch {
      // Gone between readdir and read.
    }
  }
  return { cpu, writes };
}

/**
 * Write system calls of a process so far (/proc/PID/io; 0 where it cannot be read): on
 * this bench nearly all are packets sent, each of which costs its sender the loopback's
 * work for the receiver too.
 */
function writeCalls(pid: string): number {
  try {
    return Number(/syscw:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

interface Cost {
  readonly cpuUsPerTask: number;
  readonly workersCpuUsPerTask: number;
  /** Write system calls per task of this process (the scheduler and the client) and of the workers. */
  readonly writesPerTask: number;
  readonly workersWritesPerTask: number;
}

/** Runs `work` and adds what it cost in CPU and in writes, per task, to its row. */
async function costed<R extends { tasks: number }>(work: () => Promise<R>): Promise<R & Cost> {
  const own = process.cpuUsage();
  const ownWrites = writeCalls('self');
  const workers = workersUsage();
  const row = await work();
  const used = process.cpuUsage(own);
  const writes = writeCalls('self') - ownWrites;
  const after = workersUsage();
  return {
    ...row,
    cpuUsPerTask: (used.user + used.system) / row.tasks,
    workersCpuUsPerTask: ((after.cpu - workers.cpu) * 1e6) / row.tasks,
    writesPerTask: writes / row.tasks,
    workersWritesPerTask: (after.writes - workers.writes) / row.tasks,
  };
}

async function runMap(n: number): Promise<{ tasks: number; seconds: number }> {
  const items = Array.from({ length: n }, (_, i) => i);
  const start = performance.now();
  const futures = client.map(inc, items);
  const results = await client.gather(futures);
  const seconds = (performance.now() - start) / 1000;
  for (const f of futures) f.release();
  if (results.length !== n || results[0] !== 1 || results[n - 1] !== n) throw new Error(`map-${n}: wrong results`);
  return { tasks: n, seconds };
}

const trees = new Map<number, ReturnType<typeof treeGraph>>();
async function runTree(n: number): Promise<{ tasks: number; seconds: number }> {
  let tree = trees.get(n);
  if (tree === undefined) trees.set(n, (tree = treeGraph(n)));
  const start = performance.now();
  const [value] = await client.get(tree.graph, [tree.root]);
  const seconds = (performance.now() - start) / 1000;
  if (value !== treeExpected(n)) throw new Error(`tree-${n}: wrong result ${String(value)}`);
  return { tasks: tree.tasks, seconds };
}

/** As the anchor: a payload made on worker A, summed on A (baseline, twice), then on B (one hop). */
async function runTransfer(): Promise<{ bytes: number; seconds: number; mbPerSecond: number }> {
  const [a, b] = ['local-0', 'local-1'];
  const make = (nbytes: number): Float64Array => new Float64Array(nbytes / 8).fill(1);
  const total = (xs: Float64Array): [number, number] => {
    const t0 = performance.now();
    let s = 0;
    for (let i = 0; i < xs.length; i++) s += xs[i]!;
    return [s, (performance.now() - t0) / 1000];
  };
  const payload = client.submitWith({ workers: [a] }, make, transferBytes);
  await client.wait([payload]);
  const timed = async (worker: string): Promise<[number, number, number]> => {
    const start = performance.now();
    const f: Future<[number, number]> = client.submitWith({ workers: [worker] }, total, payload);
    const [s, c] = await f.result();
    f.release();
    return [s, c, (performance.now() - start) / 1000];
  };
  // The baseline twice, the better kept: a slow baseline (a page-faulting copy for the
  // thread, a collection) would pass its delay off as a faster hop. The anchor does the same.
  const first = await timed(a);
  const second = await timed(a);
  const [sLocal, cLocal, tLocal] = second[2] - second[1] < first[2] - first[1] ? second : first;
  const [sRemote, cRemote, tRemote] = await timed(b);
  payload.release();
  if (sLocal !== sRemote || sLocal !== transferBytes / 8) throw new Error(`transfer: sums differ: ${sLocal} ${sRemote}`);
  const seconds = tRemote - cRemote - (tLocal - cLocal);
  return { bytes: transferBytes, seconds, mbPerSecond: transferBytes / seconds / 1e6 };
}

// ---- dashboard overhead ----

const CHROMIUM = '/usr/bin/chromium';

/** A client of the live feed, connected for the runs measured "with". */
interface FeedClient {
  /** Live-feed updates it received (the page's count, or SSE messages). */
  updates(): Promise<number>;
  close(): Promise<void>;
}

interface FeedClientKind {
  readonly kind: 'chromium' | 'sse';
  connect(url: string): Promise<FeedClient>;
  /** CPU seconds the client's processes have used so far, where that can be read (Linux /proc). */
  cpuSeconds(): number | undefined;
  shutdown(): Promise<void>;
}

/** CPU seconds of a process and all its descendants, from /proc; undefined without /proc. */
function treeCpuSeconds(root: (cmdline: string) => boolean): number | undefined {
  if (!existsSync('/proc/self/stat')) return undefined;
  const ticks = 100; // USER_HZ, 100 on every Linux this runs on
  const procs = new Map<number, { ppid: number; cpu: number; cmdline: string }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the parenthesised command name: state ppid … utime(14) stime(15).
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      procs.set(Number(entry), { ppid: Number(f[1]), cpu: (Number(f[11]) + Number(f[12])) / ticks, cmdline });
    } catch {
      // Gone between readdir and read.
    }
  }
  const inTree = new Set<number>();
  for (const [pid, p] of procs) if (root(p.cmdline)) inTree.add(pid);
  if (inTree.size === 0) return undefined;
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, p] of procs) {
      if (!inTree.has(pid) && inTree.has(p.ppid)) {
        inTree.add(pid);
        grew = true;
      }
    }
  }
  let cpu = 0;
  for (const pid of inTree) cpu += procs.get(pid)?.cpu ?? 0;
  return cpu;
}

/** Headless Chromium on the page: the page parses every update and redraws, as a user's would. */
async function chromiumFeed(): Promise<FeedClientKind> {
  const { chromium } = await import('playwright-core');
  // A switch Chromium ignores, to find this browser's processes in /proc.
  const marker = `--tessera-bench=${process.pid}`;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', marker],
  });
  return {
    kind: 'chromium',
    async connect(url) {
      const page = await browser.newPage({ viewport: { width: 1440, height: 1300 } });
      await page.goto(url);
      // Runs in the page (functions, not strings: its CSP forbids eval); this file has no DOM types.
      const count = (): number =>
        Number((globalThis as unknown as { document: { body: { dataset: Record<string, string | undefined> } } }).document.body.dataset['updates'] ?? 0);
      // Connected and drawing before the clock starts.
      await page.waitForFunction(count, undefined, { timeout: 15_000 });
      return {
        updates: () => page.evaluate(count),
        close: () => page.close(),
      };
    },
    cpuSeconds: () => treeCpuSeconds((cmdline) => cmdline.split('\0').includes(marker)),
    shutdown: () => browser.close(),
  };
}

/** Without a browser: reads the server-sent events and counts messages, parsing nothing. */
function sseFeed(): FeedClientKind {
  return {
    kind: 'sse',
    connect: (url) =>
      new Promise<FeedClient>((resolve, reject) => {
        const req = httpGet(new URL('api/v1/events', url), (res) => {
          if (res.statusCode !== 200) {
            res.resume();
            reject(new Error(`GET /api/v1/events: ${res.statusCode ?? '?'}`));
            return;
          }
          res.setEncoding('utf8');
          let messages = 0;
          let partial = '';
          const ended = new Promise<void>((done) => res.once('close', done));
          res.on('data', (chunk: string) => {
            const lines = (partial + chunk).split('\n');
            partial = lines.pop() ?? '';
            for (const line of lines) if (line.startsWith('data:')) messages++;
            // The hello message: connected.
            if (messages > 0) {
              resolve({
                updates: () => Promise.resolve(messages),
                close: async () => {
                  req.destroy();
                  await ended;
                },
              });
            }
          });
        });
        req.once('error', reject);
      }),
    cpuSeconds: () => undefined,
    shutdown: () => Promise.resolve(),
  };
}

async function measureOverhead(): Promise<void> {
  const url = cluster.dashboardLink;
  if (url === undefined) {
    emit({ system: 'tessera', workload: `tree-${overheadTree}`, stat: 'overhead', skipped: true, reason: 'the dashboard is off' });
    return;
  }
  const feed = feedClient === 'chromium' || (feedClient === 'auto' && existsSync(CHROMIUM)) ? await chromiumFeed() : sseFeed();
  const without: number[] = [];
  const withFeed: number[] = [];
  // CPU of this process (scheduler and client) per task: what the feed costs the scheduler
  // itself, apart from a browser competing for the same cores.
  const cpuWithout: number[] = [];
  const cpuWith: number[] = [];
  // The client's own CPU per watched run (the browser's, all its processes).
  const clientCpu: number[] = [];
  let updates = 0;
  try {
    // Untimed: the tree's graph built and its functions on both workers.
    await runTree(overheadTree);
    await idle();
    for (let r = 0; r < overheadPairs; r++) {
      for (const watched of [false, true]) {
        const client = watched ? await feed.connect(url) : undefined;
        const before = (await client?.updates()) ?? 0;
        const cpu0 = process.cpuUsage();
        const clientCpu0 = watched ? feed.cpuSeconds() : undefined;
        const row = await runTree(overheadTree);
        const cpu = process.cpuUsage(cpu0);
        const clientCpu1 = watched ? feed.cpuSeconds() : undefined;
        const clientCpuSeconds = clientCpu0 === undefined || clientCpu1 === undefined ? undefined : clientCpu1 - clientCpu0;
        if (clientCpuSeconds !== undefined) clientCpu.push(Math.round(clientCpuSeconds * 1000) / 1000);
        const cpuUsPerTask = (cpu.user + cpu.system) / row.tasks;
        (watched ? cpuWith : cpuWithout).push(cpuUsPerTask);
        const received = client === undefined ? 0 : (await client.updates()) - before;
        await client?.close();
        await idle();
        const usPerTask = (row.seconds * 1e6) / row.tasks;
        (watched ? withFeed : without).push(usPerTask);
        updates += received;
        emit({ system: 'tessera', workload: `tree-${overheadTree}`, phase: 'overhead', feed: watched ? feed.kind : 'none', run: r + 1, ...row, usPerTask, schedulerCpuUsPerTask: cpuUsPerTask, ...(watched ? { updatesReceived: received } : {}), ...(clientCpuSeconds === undefined ? {} : { clientCpuSeconds: Math.round(clientCpuSeconds * 1000) / 1000 }) });
      }
    }
  } finally {
    await feed.shutdown();
  }
  const a = median(without);
  const b = median(withFeed);
  // Each pair runs back to back, so it shares the machine's mood of the moment; on a shared
  // machine that swings by a quarter within a minute, and the difference of the two medians
  // keeps the swing where the median of the pairs' own changes cancels it.
  const paired = median(withFeed.map((w, i) => (w - without[i]!) / without[i]!));
  emit({
    system: 'tessera',
    workload: `tree-${overheadTree}`,
    stat: 'overhead',
    feedClient: feed.kind,
    pairs: overheadPairs,
    medianUsPerTaskWithout: a,
    medianUsPerTaskWith: b,
    change: (b - a) / a,
    pairedChange: paired,
    target: 0.05,
    withinTarget: paired <= 0.05,
    medianSchedulerCpuUsPerTaskWithout: median(cpuWithout),
    medianSchedulerCpuUsPerTaskWith: median(cpuWith),
    schedulerCpuChange: (median(cpuWith) - median(cpuWithout)) / median(cpuWithout),
    ...(clientCpu.length === 0 ? {} : { medianClientCpuSecondsPerRun: median(clientCpu) }),
    cores: availableParallelism(),
    updatesReceived: updates,
  });
}

try {
  // Warm-up, untimed: threads started, functions loaded, connections open on both workers.
  await runMap(200);
  await get({ x: 1 }, ['x'], { client });
  await idle();
  for (const workload of workloads) {
    const rows: { seconds: number; tasks?: number; mbPerSecond?: number; cpuUsPerTask?: number; workersCpuUsPerTask?: number; writesPerTask?: number; workersWritesPerTask?: number }[] = [];
    for (let r = 0; r < (workload === 'transfer' ? transferRepeat : repeat); r++) {
      const [kind, num] = workload.split('-') as [string, string | undefined];
      const row = kind === 'map' ? await costed(() => runMap(Number(num))) : kind === 'tree' ? await costed(() => runTree(Number(num))) : await runTransfer();
      await idle();
      rows.push(row);
      emit({ system: 'tessera', workload, run: r + 1, ...row, ...('tasks' in row ? { usPerTask: (row.seconds * 1e6) / row.tasks } : {}) });
    }
    if (workload === 'transfer') {
      // A hop of zero or less (the baseline slower than the hop) is no measurement: left out, and counted.
      const valid = rows.filter((row) => row.seconds > 0);
      if (valid.length === 0) throw new Error('transfer: every run measured a hop of zero or less');
      const seconds = median(valid.map((row) => row.seconds));
      const mb = transferBytes / seconds / 1e6;
      ours.set(workload, mb);
      emit({ system: 'tessera', workload, stat: 'median', seconds, mbPerSecond: mb, invalidRuns: rows.length - valid.length });
    } else {
      const seconds = median(rows.map((row) => row.seconds));
      const tasks = rows[0]!.tasks!;
      ours.set(workload, (seconds * 1e6) / tasks);
      const cpu = median(rows.map((row) => row.cpuUsPerTask ?? 0));
      const workersCpu = median(rows.map((row) => row.workersCpuUsPerTask ?? 0));
      const writes = median(rows.map((row) => row.writesPerTask ?? 0));
      const workersWrites = median(rows.map((row) => row.workersWritesPerTask ?? 0));
      emit({ system: 'tessera', workload, stat: 'median', tasks, seconds, usPerTask: (seconds * 1e6) / tasks, cpuUsPerTask: cpu, workersCpuUsPerTask: workersCpu, writesPerTask: writes, workersWritesPerTask: workersWrites });
    }
  }
  if (!args['no-overhead']) await measureOverhead();
} finally {
  await client.close();
  await cluster.close();
}

for (const id of args['no-anchor'] || onlyOverhead ? [] : selectAnchors(args.anchors)) {
  const script = id === 'ray' ? 'ray_cluster.py' : 'dask_distributed.py';
  const anchor = await runAnchor(id, script, ['--workloads', workloads.join(','), '--repeat', String(repeat), '--transfer-repeat', String(transferRepeat)], { timeoutMs: 3 * 3_600_000 });
  if (!anchor.available) {
    emit({ system: id, skipped: true, reason: anchor.reason });
    continue;
  }
  for (const line of anchor.lines) {
    if (line['stat'] !== 'median') continue;
    const workload = String(line['workload']);
    const label = anchorLabel(id, line);
    emit({ ...line, system: id, label });
    const mine = ours.get(workload);
    if (mine === undefined) continue;
    if (workload === 'transfer') {
      // Ray's one-node figure is no hop between processes (shared memory): shown, not compared.
      if (line['mode'] === 'shared-memory') continue;
      const theirs = Number(line['mbPerSecond']);
      emit({ system: 'compare', anchor: id, label, workload, tesseraMbPerSecond: mine, anchorMbPerSecond: theirs, ratio: mine / theirs, ...(line['mode'] === undefined ? {} : { anchorMode: line['mode'] }) });
    } else {
      const theirs = Number(line['usPerTask']);
      emit({ system: 'compare', anchor: id, label, workload, tesseraUsPerTask: mine, anchorUsPerTask: theirs, speedup: theirs / mine });
    }
  }
}
