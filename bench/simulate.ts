/**
 * Drives the scheduler's state machine in-process against simulated workers, in virtual
 * time (no sleeping), and prints one JSON line per graph:
 *
 *   {"bench":"simulate","graph":"map-reduce","workers":1000,"tasks":1000000,
 *    "schedulerCpuUsPerTask":…,"heapBytesPerTask":…,"makespanVirtualS":…,…}
 *
 * node --import tsx --expose-gc bench/simulate.ts [--workers=1000] [--tasks=1000000]
 *      [--graph=map-reduce,tree] [--seed=1] [--no-started] [--tick-ms=100]
 *
 * Graphs: map-reduce (M/2 map tasks with 1–4 MB outputs, then a binary tree of reduce
 * tasks: placement by locality) and tree (BENCHMARKS.md tree-N with N = M/2: tiny inc
 * leaves, then a binary tree of add: everything goes through the root-task queue).
 *
 * schedulerCpuUsPerTask is time spent inside SchedulerState.handle (the simulation's own
 * work excluded) per task. heapBytesPerTask is the heap growth after the whole graph was
 * submitted (specs included) over the task count. The lower bound for the makespan is
 * total compute ÷ total threads, printed as idealMakespanS; simulated workers spend
 * fetch time (bytes ÷ 100 MB/s, no contention) on a thread as well.
 */
import { performance } from 'node:perf_hooks';
import { dependencyKey } from '../src/protocol/messages.js';
import type { ComputeTaskCommand, GraphTask, SchedulerCommand, SchedulerEvent } from '../src/scheduler/events.js';
import { SchedulerState } from '../src/scheduler/state.js';
import { mulberry32 as rng } from '../test/helpers/random.js';

interface Args {
  workers: number;
  tasks: number;
  graphs: string[];
  seed: number;
  started: boolean;
  tickMs: number;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { workers: 1000, tasks: 1_000_000, graphs: ['map-reduce', 'tree'], seed: 1, started: true, tickMs: 100 };
  for (const a of argv) {
    const [k, v = ''] = a.replace(/^--/, '').split('=');
    if (k === 'workers') args.workers = Number(v);
    else if (k === 'tasks') args.tasks = Number(v);
    else if (k === 'graph') args.graphs = v.split(',');
    else if (k === 'seed') args.seed = Number(v);
    else if (k === 'no-started') args.started = false;
    else if (k === 'tick-ms') args.tickMs = Number(v);
    else throw new Error(`unknown option ${a}`);
  }
  return args;
}


// ---------------------------------------------------------------------------------------
// Graphs
// ---------------------------------------------------------------------------------------

interface TaskModel {
  /** Seconds of compute. */
  duration: number;
  nbytes: number;
}

/** FNV-1a to [0, 1): the simulated cost of a task follows from its key, so no table is kept. */
function hashUnit(s: string, salt: number): number {
  let h = 2166136261 ^ salt;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  h = Math.imul(h ^ (h >>> 15), 2246822507);
  return ((h ^ (h >>> 13)) >>> 0) / 4294967296;
}

function modelOf(key: string): TaskModel {
  const u = hashUnit(key, 0);
  const v = hashUnit(key, 1);
  switch (key.slice(0, key.indexOf('-'))) {
    case 'map':
      return { duration: 0.05 + 0.1 * u, nbytes: Math.floor(1e6 + 3e6 * v) };
    case 'reduce':
      return { duration: 0.01 + 0.02 * u, nbytes: 1e6 };
    case 'inc':
      return { duration: 0.005 + 0.01 * u, nbytes: 8 };
    default:
      return { duration: 0.002 + 0.004 * u, nbytes: 8 };
  }
}

interface Graph {
  tasks: GraphTask[];
  root: string;
  totalWork: number;
}

/** `leaves` leaf tasks, then a binary tree over them; graph order depth-first (post-order). */
function binaryTree(leaves: number, leafPrefix: string, innerPrefix: string): Graph {
  const tasks: GraphTask[] = [];
  let order = 0;
  let totalWork = 0;
  const counters: number[] = [];
  const build = (lo: number, hi: number, level: number): string => {
    if (hi - lo === 1) {
      const key = `${leafPrefix}-${lo}`;
      tasks.push({ key, dependencies: [], spec: { fn: leafPrefix, args: [lo] }, priority: order++ });
      totalWork += modelOf(key).duration;
      return key;
    }
    const mid = (lo + hi) >>> 1;
    const a = build(lo, mid, level + 1);
    const b = build(mid, hi, level + 1);
    const i = counters[level] ?? 0;
    counters[level] = i + 1;
    const key = `${innerPrefix}-${level}_${i}`;
    tasks.push({ key, dependencies: [a, b], spec: { fn: innerPrefix, args: [a, b] }, priority: order++ });
    totalWork += modelOf(key).duration;
    return key;
  };
  const root = build(0, leaves, 0);
  return { tasks, root, totalWork };
}

/** M/2 map tasks with 1–4 MB outputs, then a binary tree of reduce tasks (1 MB each). */
function mapReduce(m: number): Graph {
  return binaryTree(Math.max(1, Math.floor(m / 2)), 'map', 'reduce');
}

/** BENCHMARKS.md tree-N with N = M/2: inc leaves, a binary tree of add; 8-byte results. */
function tree(m: number): Graph {
  return binaryTree(Math.max(1, Math.floor(m / 2)), 'inc', 'add');
}

// ---------------------------------------------------------------------------------------
// Simulation
// ---------------------------------------------------------------------------------------

const BANDWIDTH = 100e6;

interface Assigned {
  cmd: ComputeTaskCommand;
  /** Its graph order (one graph, one generation, no user priority: the only order there is). */
  order: number;
  heapIndex: number;
  cancelled: boolean;
}

interface Running {
  key: string;
  startedAt: number;
  cancelled: boolean;
}

class SimWorker {
  readonly id: string;
  readonly nthreads: number;
  running = 0;
  /** Assigned and not started, by priority. */
  readonly ready: Assigned[] = [];
  readonly assigned = new Map<string, Assigned>();
  readonly executing = new Map<string, Running>();
  readonly data = new Map<string, number>();
  alive = true;

  constructor(id: string, nthreads: number) {
    this.id = id;
    this.nthreads = nthreads;
  }
}

function before(a: Assigned, b: Assigned): boolean {
  return a.order < b.order;
}

function heapPush(h: Assigned[], x: Assigned): void {
  let i = h.length;
  h.push(x);
  while (i > 0) {
    const p = (i - 1) >> 1;
    const parent = h[p]!;
    if (!before(x, parent)) break;
    h[i] = parent;
    i = p;
  }
  h[i] = x;
}

function heapPop(h: Assigned[]): Assigned | undefined {
  const top = h[0];
  const last = h.pop();
  if (top === undefined || last === undefined || h.length === 0) return top;
  let i = 0;
  const n = h.length;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= n) break;
    const r = l + 1;
    let c = l;
    if (r < n && before(h[r]!, h[l]!)) c = r;
    if (!before(h[c]!, last)) break;
    h[i] = h[c]!;
    i = c;
  }
  h[i] = last;
  return top;
}

interface TimedEvent {
  t: number;
  seq: number;
  worker: SimWorker;
  run: Running;
}

class Simulation {
  readonly state: SchedulerState;
  readonly graph: Graph;
  /** Each task's graph order, by key. */
  private readonly orders = new Map<string, number>();
  readonly workers = new Map<string, SimWorker>();
  readonly random: () => number;
  readonly started: boolean;
  now = 0;
  private seq = 0;
  private readonly timeline: TimedEvent[] = [];
  private readonly inbox: SchedulerEvent[] = [];
  handleMs = 0;
  handleCalls = 0;
  finished = 0;
  doneAt = -1;
  steals = 0;
  transferBytes = 0;

  constructor(graph: Graph, state: SchedulerState, random: () => number, started: boolean) {
    this.graph = graph;
    for (const t of graph.tasks) this.orders.set(t.key, t.priority!);
    this.state = state;
    this.random = random;
    this.started = started;
  }

  send(event: SchedulerEvent): void {
    const t0 = performance.now();
    const commands = this.state.handle(event);
    this.handleMs += performance.now() - t0;
    this.handleCalls++;
    for (const c of commands) this.deliver(c);
  }

  /** Delivers messages the workers sent back while commands were being applied. */
  drainInbox(): void {
    while (this.inbox.length > 0) this.send(this.inbox.shift()!);
  }

  private deliver(c: SchedulerCommand): void {
    switch (c.op) {
      case 'compute-task': {
        const w = this.workers.get(c.worker)!;
        const a: Assigned = { cmd: c, order: this.orders.get(c.key)!, heapIndex: 0, cancelled: false };
        w.assigned.set(c.key, a);
        heapPush(w.ready, a);
        this.startWork(w);
        break;
      }
      case 'free-keys': {
        const w = this.workers.get(c.worker);
        if (w === undefined) break;
        for (const key of c.keys) {
          w.data.delete(key);
          const a = w.assigned.get(key);
          if (a !== undefined) {
            a.cancelled = true;
            w.assigned.delete(key);
          }
          const r = w.executing.get(key);
          if (r !== undefined) r.cancelled = true;
        }
        break;
      }
      case 'steal-request': {
        const w = this.workers.get(c.worker)!;
        const a = w.assigned.get(c.key);
        const accepted = a !== undefined && !a.cancelled;
        if (a !== undefined && accepted) {
          a.cancelled = true;
          w.assigned.delete(c.key);
          this.steals++;
        }
        this.inbox.push({ op: 'steal-response', worker: w.id, key: c.key, accepted });
        break;
      }
      case 'replicate': {
        const w = this.workers.get(c.worker)!;
        for (const { key } of c.keys) w.data.set(key, modelOf(key).nbytes);
        this.inbox.push({ op: 'add-keys', worker: w.id, keys: c.keys.map((k) => k.key) });
        break;
      }
      case 'close-worker': {
        const w = this.workers.get(c.worker);
        if (w !== undefined) w.alive = false;
        break;
      }
      case 'key-in-memory':
        if (c.key === this.graph.root) this.doneAt = this.now;
        break;
      case 'key-erred':
      case 'key-lost':
        throw new Error(`${c.op} ${c.key}: ${c.error.message}`);
      case 'key-cancelled':
      case 'retire-aborted':
        break;
    }
  }

  private startWork(w: SimWorker): void {
    while (w.running < w.nthreads) {
      const a = heapPop(w.ready);
      if (a === undefined) return;
      if (a.cancelled) continue;
      w.assigned.delete(a.cmd.key);
      let fetched = 0;
      const fetchedKeys: string[] = [];
      for (const dep of a.cmd.dependencies) {
        const key = dependencyKey(dep);
        if (!w.data.has(key)) {
          const nbytes = modelOf(key).nbytes;
          fetched += nbytes;
          fetchedKeys.push(key);
          w.data.set(key, nbytes);
        }
      }
      this.transferBytes += fetched;
      const model = modelOf(a.cmd.key);
      const run: Running = { key: a.cmd.key, startedAt: this.now, cancelled: false };
      w.executing.set(run.key, run);
      w.running++;
      const end = this.now + (fetched / BANDWIDTH + model.duration) * 1000;
      this.push({ t: end, seq: this.seq++, worker: w, run });
      if (this.started) this.inbox.push({ op: 'task-started', worker: w.id, key: run.key, startedAt: this.now });
      if (fetchedKeys.length > 0) this.inbox.push({ op: 'add-keys', worker: w.id, keys: fetchedKeys });
    }
  }

  private push(e: TimedEvent): void {
    const h = this.timeline;
    let i = h.length;
    h.push(e);
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = h[p]!;
      if (parent.t < e.t || (parent.t === e.t && parent.seq < e.seq)) break;
      h[i] = parent;
      i = p;
    }
    h[i] = e;
  }

  private pop(): TimedEvent | undefined {
    const h = this.timeline;
    const top = h[0];
    const last = h.pop();
    if (top === undefined || last === undefined || h.length === 0) return top;
    let i = 0;
    const n = h.length;
    const less = (a: TimedEvent, b: TimedEvent): boolean => a.t < b.t || (a.t === b.t && a.seq < b.seq);
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && less(h[r]!, h[l]!)) c = r;
      if (!less(h[c]!, last)) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
    return top;
  }

  run(tickMs: number): void {
    let nextTick = tickMs;
    while (this.doneAt < 0) {
      const e = this.timeline[0];
      if (e === undefined || e.t > nextTick) {
        if (e === undefined && this.inbox.length === 0 && this.state.stateCounts().processing === 0) {
          throw new Error('simulation stalled: nothing running and the result is not in memory');
        }
        this.now = nextTick;
        nextTick += tickMs;
        this.send({ op: 'tick', now: this.now });
        this.drainInbox();
        continue;
      }
      this.pop();
      this.now = e.t;
      const w = e.worker;
      w.running--;
      w.executing.delete(e.run.key);
      if (!e.run.cancelled && w.alive) {
        const model = modelOf(e.run.key);
        w.data.set(e.run.key, model.nbytes);
        this.finished++;
        this.send({
          op: 'task-finished',
          worker: w.id,
          key: e.run.key,
          nbytes: model.nbytes,
          startedAt: e.run.startedAt,
          finishedAt: this.now,
          now: this.now,
        });
      }
      this.startWork(w);
      this.drainInbox();
    }
  }
}

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g === undefined) return;
  g();
  g();
}

function simulate(kind: string, args: Args): Record<string, unknown> {
  const random = rng(args.seed);
  const state = new SchedulerState({ workerTtlMs: Infinity });
  let threads = 0;
  const sim0: SimWorker[] = [];
  for (let i = 0; i < args.workers; i++) {
    const nthreads = 1 + Math.floor(random() * 4);
    threads += nthreads;
    sim0.push(new SimWorker(`tcp://10.0.${i >> 8}.${i & 255}:9000`, nthreads));
  }

  gc();
  const heap0 = process.memoryUsage().heapUsed;
  const graph: Graph = kind === 'tree' ? tree(args.tasks) : mapReduce(args.tasks);
  const ntasks = graph.tasks.length;
  const sim = new Simulation(graph, state, random, args.started);
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  for (const w of sim0) {
    sim.workers.set(w.id, w);
    sim.send({ op: 'add-worker', worker: w.id, name: w.id, nthreads: w.nthreads, memoryLimit: 8e9, now: 0 });
  }
  sim.send({ op: 'update-graph', client: 'client-1', tasks: graph.tasks, wanted: [graph.root], now: 0 });
  const submitMs = sim.handleMs;
  sim.drainInbox();
  // Only the scheduler (and the small simulated workers) should hold the graph now.
  const root = graph.root;
  const totalWork = graph.totalWork;
  graph.tasks = [];
  gc();
  const heapHeld = process.memoryUsage().heapUsed - heap0;

  sim.run(args.tickMs);
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - wall0;
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const makespan = sim.doneAt / 1000;

  // Releasing the result must leave nothing behind.
  sim.send({ op: 'release-keys', client: 'client-1', keys: [root] });
  const leftover = state.taskCount;

  return {
    bench: 'simulate',
    graph: kind,
    workers: args.workers,
    threads,
    tasks: ntasks,
    // Wall time inside handle(), scaled by the share of the CPU the process got meanwhile
    // (shared machines deschedule us; GC helper threads may push the share above 1).
    schedulerCpuUsPerTask: round((sim.handleMs * 1000 * Math.min(1, cpuMs / wallMs)) / ntasks, 2),
    handleWallUsPerTask: round((sim.handleMs * 1000) / ntasks, 2),
    submitUsPerTask: round((submitMs * 1000) / ntasks, 2),
    heapBytesPerTask: Math.round(heapHeld / ntasks),
    makespanVirtualS: round(makespan, 2),
    idealMakespanS: round(totalWork / threads, 2),
    handleCalls: sim.handleCalls,
    steals: sim.steals,
    // Fetching inputs occupies a simulated thread, so it is what separates the two makespans.
    transferredGB: round(sim.transferBytes / 1e9, 1),
    finished: sim.finished,
    leftoverTasks: leftover,
    processCpuS: round(cpuMs / 1000, 2),
    wallS: round(wallMs / 1000, 2),
  };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

const args = parseArgs(process.argv.slice(2));
for (const kind of args.graphs) {
  if (kind !== 'map-reduce' && kind !== 'tree') throw new Error(`unknown graph ${kind}`);
  console.log(JSON.stringify(simulate(kind, args)));
  gc();
}
