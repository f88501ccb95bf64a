// Random event sequences against the state machine, checking its internal bookkeeping after
// every event, then driving everything to completion and releasing it all.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SchedulerCommand, SchedulerEvent } from '../../src/scheduler/events.js';
import type { WorkerPool } from '../../src/scheduler/placement.js';
import type { IndexedHeap } from '../../src/scheduler/priority-queue.js';
import {
  ERRED,
  FORGOTTEN,
  isActive,
  MEMORY,
  NO_WORKER,
  PROCESSING,
  QUEUED,
  RELEASED,
  WAITING,
  type TaskState,
  type WorkerState,
} from '../../src/scheduler/records.js';
import { SchedulerState } from '../../src/scheduler/state.js';
import { mulberry32 as rng } from '../helpers/random.js';

interface Internals {
  tasks: Map<string, TaskState>;
  workers: Map<string, WorkerState>;
  queue: IndexedHeap<TaskState>;
  pool: WorkerPool;
  unrunnable: Set<TaskState>;
  counts: number[];
  clients: Map<string, Set<TaskState>>;
}

function check(s: SchedulerState, where: string): void {
  const st = s as unknown as Internals;
  const counts = [0, 0, 0, 0, 0, 0, 0, 0];
  const fail = (ts: TaskState | null, msg: string): never => {
    assert.fail(`${where}: ${ts === null ? '' : `${ts.key} (state ${ts.state}): `}${msg}`);
  };
  for (const [key, ts] of st.tasks) {
    if (ts.key !== key) fail(ts, 'key mismatch');
    if (ts.state === FORGOTTEN) fail(ts, 'forgotten task still held');
    counts[ts.state] = (counts[ts.state] as number) + 1;
    const needed = ts.wantedBy !== null || ts.activeDependents > 0;
    for (const d of ts.dependencies) {
      if (d.state === FORGOTTEN || st.tasks.get(d.key) !== d) fail(ts, `dependency ${d.key} not held`);
      if (!d.dependents.includes(ts)) fail(ts, `not among ${d.key}'s dependents`);
    }
    let active = 0;
    let dead = 0;
    for (const d of ts.dependents) {
      if (d.state === FORGOTTEN) dead++;
      else if (isActive(d.state)) active++;
    }
    if (active !== ts.activeDependents) fail(ts, `activeDependents ${ts.activeDependents}, counted ${active}`);
    if (dead !== ts.deadDependents) fail(ts, `deadDependents ${ts.deadDependents}, counted ${dead}`);
    if ((ts.whoHas !== null) !== (ts.state === MEMORY)) fail(ts, 'whoHas iff memory');
    if (ts.whoHas !== null) {
      if (ts.whoHas.length === 0) fail(ts, 'in memory nowhere');
      for (const w of ts.whoHas) {
        if (st.workers.get(w.id) !== w) fail(ts, `held by unknown worker ${w.id}`);
        if (!w.hasWhat.has(ts)) fail(ts, `${w.id}.hasWhat misses it`);
      }
    }
    if ((ts.processingOn !== null) !== (ts.state === PROCESSING)) fail(ts, 'processingOn iff processing');
    if (ts.processingOn !== null && !ts.processingOn.processing.has(ts)) fail(ts, 'not in its worker processing');
    if ((ts.state === QUEUED) !== (ts.heapIndex >= 0 && st.queue.has(ts))) fail(ts, 'queued iff in queue');
    if ((ts.state === NO_WORKER) !== st.unrunnable.has(ts)) fail(ts, 'no-worker iff unrunnable');
    if (ts.state === NO_WORKER) {
      const could = [...st.workers.values()].some(
        (w) => w.status === 'running' && (ts.restrictions === null || ts.restrictions.includes(w.id) || ts.restrictions.includes(w.name)),
      );
      if (could) fail(ts, 'no-worker although a running worker could take it');
    }
    if (ts.state === WAITING) {
      const missing = ts.dependencies.filter((d) => d.state !== MEMORY).length;
      if (ts.waitingOn !== missing) fail(ts, `waitingOn ${ts.waitingOn}, missing ${missing}`);
      if (missing === 0) fail(ts, 'ready task left waiting');
      if (ts.dependencies.some((d) => d.state === ERRED)) fail(ts, 'waiting on an erred dependency');
    }
    if (ts.state === QUEUED || ts.state === PROCESSING || ts.state === NO_WORKER) {
      if (ts.dependencies.some((d) => d.state !== MEMORY)) fail(ts, 'runnable with a dependency not in memory');
    }
    if ((isActive(ts.state) || ts.state === MEMORY) && !needed) fail(ts, 'held in an active state or memory, unneeded');
    if ((ts.state === RELEASED || ts.state === ERRED) && !needed && ts.dependents.length === ts.deadDependents) {
      fail(ts, 'should have been forgotten');
    }
    if (ts.state === ERRED && ts.dependents.some((d) => isActive(d.state))) fail(ts, 'erred with active dependents');
    if (ts.wantedBy !== null) {
      if (ts.wantedBy.length === 0) fail(ts, 'empty wantedBy');
      for (const c of ts.wantedBy) if (st.clients.get(c)?.has(ts) !== true) fail(ts, `client ${c} does not list it`);
    }
  }
  for (let i = 0; i < FORGOTTEN; i++) {
    if (counts[i] !== st.counts[i]) fail(null, `count of state ${i}: ${st.counts[i]} kept, ${counts[i]} counted`);
  }
  let freeSlot = false;
  for (const w of st.workers.values()) {
    if ((w.status === 'running') !== st.pool.has(w)) fail(null, `${w.id}: in pool iff running`);
    if (w.status === 'running' && w.processing.size < w.slots) freeSlot = true;
    let nbytes = 0;
    for (const ts of w.hasWhat) {
      if (ts.whoHas?.includes(w) !== true) fail(ts, `${w.id}.hasWhat lists it, whoHas does not`);
      nbytes += Math.max(0, ts.nbytes);
    }
    if (nbytes !== w.nbytes) fail(null, `${w.id}.nbytes ${w.nbytes}, counted ${nbytes}`);
    for (const ts of w.processing) if (ts.processingOn !== w) fail(ts, `${w.id}.processing lists it`);
    const perPrefix = w.processingCounts.reduce((a, b) => a + b, 0);
    if (perPrefix !== w.processing.size) fail(null, `${w.id}: prefix counts ${perPrefix} vs ${w.processing.size}`);
    if (w.stealIncoming < 0) fail(null, `${w.id}: negative stealIncoming`);
  }
  if (st.queue.size > 0 && freeSlot) fail(null, 'queued tasks while a running worker has a free slot');
  for (const [c, set] of st.clients) {
    if (set.size === 0) fail(null, `client ${c} with an empty set`);
    for (const ts of set) if (ts.wantedBy?.includes(c) !== true || st.tasks.get(ts.key) !== ts) fail(ts, `client ${c} lists it`);
  }
}


/** Workers as the commands describe them: what each runs and holds. */
class Cluster {
  readonly running = new Map<string, Set<string>>();
  readonly holding = new Map<string, Set<string>>();
  readonly steals: Array<{ worker: string; key: string }> = [];
  readonly replicas: Array<{ worker: string; keys: string[] }> = [];
  readonly results = new Map<string, string>(); // key -> last client report

  apply(cmds: readonly SchedulerCommand[]): void {
    for (const c of cmds) {
      switch (c.op) {
        case 'compute-task':
          this.running.get(c.worker)?.add(c.key);
          break;
        case 'free-keys':
          for (const k of c.keys) {
            this.running.get(c.worker)?.delete(k);
            this.holding.get(c.worker)?.delete(k);
          }
          break;
        case 'steal-request':
          this.steals.push({ worker: c.worker, key: c.key });
          break;
        case 'replicate':
          this.replicas.push({ worker: c.worker, keys: c.keys.map((k) => k.key) });
          break;
        case 'close-worker':
          this.running.delete(c.worker);
          this.holding.delete(c.worker);
          break;
        case 'key-in-memory':
        case 'key-erred':
        case 'key-lost':
        case 'key-cancelled':
          this.results.set(c.key, c.op);
          break;
        case 'retire-aborted':
          break;
      }
    }
  }
}

function pick<T>(r: () => number, xs: readonly T[]): T | undefined {
  return xs.length === 0 ? undefined : xs[Math.floor(r() * xs.length)];
}

function fuzz(seed: number, steps: number): void {
  const r = rng(seed);
  const s = new SchedulerState({ saturation: r() < 0.3 ? Infinity : 1.1, allowedFailures: 2, workerTtlMs: 5000 });
  const cluster = new Cluster();
  let now = 0;
  let nextWorker = 0;
  let nextKey = 0;
  const clients = ['c1', 'c2', 'c3'];
  const known: string[] = [];
  const send = (e: SchedulerEvent): void => {
    const cmds = s.handle(e);
    cluster.apply(cmds);
    check(s, `seed ${seed}, after ${e.op}`);
  };
  const addWorker = (): void => {
    const id = `w${nextWorker++}`;
    cluster.running.set(id, new Set());
    cluster.holding.set(id, new Set());
    send({ op: 'add-worker', worker: id, name: id, nthreads: 1 + Math.floor(r() * 3), memoryLimit: 1e9, now });
  };
  const workers = (): string[] => [...cluster.running.keys()].filter((w) => s.hasWorker(w));
  const finishSomething = (error: boolean): void => {
    const w = pick(r, workers());
    if (w === undefined) return;
    const key = pick(r, [...(cluster.running.get(w) ?? [])]);
    if (key === undefined) return;
    cluster.running.get(w)?.delete(key);
    if (error) {
      send({ op: 'task-erred', worker: w, key, error: { kind: 'task', name: 'E', message: 'no', stack: '' }, now });
    } else {
      cluster.holding.get(w)?.add(key);
      const nbytes = r() < 0.5 ? 8 : Math.floor(r() * 1e6);
      send({ op: 'task-finished', worker: w, key, nbytes, startedAt: now - 10, finishedAt: now, now });
    }
  };

  addWorker();
  for (let step = 0; step < steps; step++) {
    now += Math.floor(r() * 200);
    const x = r();
    if (x < 0.3) finishSomething(r() < 0.05);
    else if (x < 0.42) {
      // A small random DAG, sometimes on keys already known.
      const n = 1 + Math.floor(r() * 6);
      const batch: { key: string; dependencies: string[]; spec: null; retries?: number; restrictions?: string[] }[] = [];
      for (let i = 0; i < n; i++) {
        const key = `k${r() < 0.5 ? 'a' : 'b'}-${nextKey++}`;
        const deps = new Set<string>();
        const ndeps = Math.floor(r() * 3);
        for (let j = 0; j < ndeps; j++) {
          const pool = r() < 0.5 && batch.length > 0 ? batch.map((t) => t.key) : known;
          const d = pick(r, pool);
          if (d !== undefined) deps.add(d);
        }
        if (r() < 0.02) deps.add('missing-key');
        const task: (typeof batch)[number] = { key, dependencies: [...deps], spec: null };
        if (r() < 0.1) task.retries = 1;
        if (r() < 0.05) task.restrictions = [`w${Math.floor(r() * (nextWorker + 2))}`];
        batch.push(task);
      }
      for (const t of batch) known.push(t.key);
      const wanted = batch.filter(() => r() < 0.5).map((t) => t.key);
      if (r() < 0.2) {
        const old = pick(r, known);
        if (old !== undefined) wanted.push(old);
      }
      send({ op: 'update-graph', client: pick(r, clients) as string, tasks: batch, wanted, now, userPriority: r() < 0.1 ? 1 : 0 });
    } else if (x < 0.48) {
      const key = pick(r, known);
      if (key !== undefined) send({ op: r() < 0.5 ? 'release-keys' : 'cancel', client: pick(r, clients) as string, keys: [key] });
    } else if (x < 0.5) {
      send({ op: 'client-removed', client: pick(r, clients) as string });
    } else if (x < 0.55) {
      if (workers().length < 6) addWorker();
    } else if (x < 0.59) {
      const w = pick(r, workers());
      if (w !== undefined) {
        send({ op: 'remove-worker', worker: w, reason: r() < 0.7 ? 'lost' : 'closed', now });
        cluster.running.delete(w);
        cluster.holding.delete(w);
      }
    } else if (x < 0.63) {
      const w = pick(r, workers());
      if (w !== undefined) send({ op: 'worker-status', worker: w, status: r() < 0.5 ? 'paused' : 'running' });
    } else if (x < 0.7) {
      for (const w of workers()) send({ op: 'heartbeat', worker: w, now, memory: { managed: 0, spilled: 0, process: 0 } });
      send({ op: 'tick', now });
    } else if (x < 0.76) {
      const st = cluster.steals.shift();
      if (st !== undefined && s.hasWorker(st.worker)) {
        const accepted = r() < 0.6 && cluster.running.get(st.worker)?.has(st.key) === true;
        if (accepted) cluster.running.get(st.worker)?.delete(st.key);
        send({ op: 'steal-response', worker: st.worker, key: st.key, accepted });
      }
    } else if (x < 0.8) {
      const rep = cluster.replicas.shift();
      if (rep !== undefined && s.hasWorker(rep.worker)) {
        for (const k of rep.keys) cluster.holding.get(rep.worker)?.add(k);
        send({ op: 'add-keys', worker: rep.worker, keys: rep.keys });
      }
    } else if (x < 0.83) {
      const w = pick(r, workers());
      const key = w === undefined ? undefined : pick(r, [...(cluster.holding.get(w) ?? [])]);
      const to = pick(r, workers());
      if (w !== undefined && key !== undefined && to !== undefined && to !== w && r() < 0.5) {
        cluster.holding.get(to)?.add(key);
        send({ op: 'add-keys', worker: to, keys: [key] });
      } else if (w !== undefined && key !== undefined) {
        cluster.holding.get(w)?.delete(key);
        send({ op: 'missing-data', worker: to ?? w, key, from: w });
      }
    } else if (x < 0.85) {
      const w = pick(r, workers());
      if (w !== undefined) send({ op: 'retire-workers', workers: [w], now });
    } else if (x < 0.87) {
      const w = pick(r, workers());
      if (w !== undefined) {
        const key = `sc-${nextKey++}`;
        known.push(key);
        cluster.holding.get(w)?.add(key);
        send({ op: 'scatter', client: pick(r, clients) as string, worker: w, keys: [{ key, nbytes: 100 }] });
      }
    } else if (x < 0.9) {
      const w = pick(r, workers());
      const key = w === undefined ? undefined : pick(r, [...(cluster.running.get(w) ?? [])]);
      if (w !== undefined && key !== undefined) send({ op: 'task-started', worker: w, key, startedAt: now });
    } else {
      finishSomething(false);
    }
  }

  // Drain: keep a worker up, answer everything, until nothing runs.
  if (workers().length === 0) addWorker();
  for (const w of workers()) send({ op: 'worker-status', worker: w, status: 'running' });
  // Bring up the workers that restricted tasks wait for.
  const bringUpRestricted = (): boolean => {
    let added = false;
    for (const ts of [...(s as unknown as Internals).unrunnable]) {
      for (const w of ts.restrictions ?? []) {
        if (!s.hasWorker(w)) {
          cluster.running.set(w, new Set());
          cluster.holding.set(w, new Set());
          send({ op: 'add-worker', worker: w, name: w, nthreads: 1, memoryLimit: 1e9, now });
          added = true;
        }
      }
    }
    return added;
  };
  for (let round = 0; round < 100_000; round++) {
    const st = cluster.steals.shift();
    if (st !== undefined) {
      if (s.hasWorker(st.worker)) send({ op: 'steal-response', worker: st.worker, key: st.key, accepted: false });
      continue;
    }
    const rep = cluster.replicas.shift();
    if (rep !== undefined) {
      if (s.hasWorker(rep.worker)) send({ op: 'add-keys', worker: rep.worker, keys: rep.keys });
      continue;
    }
    if (workers().every((w) => (cluster.running.get(w)?.size ?? 0) === 0) && !bringUpRestricted()) break;
    finishSomething(false);
  }
  const counts = s.stateCounts();
  assert.equal(counts.processing, 0, `seed ${seed}: work left running`);
  assert.equal(counts.queued, 0, `seed ${seed}: work left queued`);
  assert.equal(counts.waiting, 0, `seed ${seed}: work left waiting`);
  for (const c of clients) send({ op: 'client-removed', client: c });
  assert.equal(s.taskCount, 0, `seed ${seed}: tasks held after every client left`);
  for (const w of workers()) {
    assert.equal(s.snapshot().workers.find((x) => x.worker === w)?.inMemory, 0);
  }
}

describe('invariants under random events', () => {
  test('bookkeeping stays consistent and everything is released at the end', () => {
    for (let seed = Number(process.env.FUZZ_FROM ?? 1); seed <= Number(process.env.FUZZ_SEEDS ?? 60); seed++) fuzz(seed, Number(process.env.FUZZ_STEPS ?? 400));
  });
});
