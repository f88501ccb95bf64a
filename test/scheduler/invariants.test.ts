// Random event sequences against the state machine, checking its internal bookkeeping after
// every event, then driving everything to completion and releasing it all.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SchedulerCommand, SchedulerEvent } from '../../src/scheduler/events.js';
import { SchedulerState } from '../../src/scheduler/state.js';
import { mulberry32 as rng } from '../helpers/random.js';

/** The state machine's own invariant check, after every event, with where it happened. */
function check(s: SchedulerState, where: string): void {
  try {
    s.validate();
  } catch (error) {
    assert.fail(`${where}: ${error instanceof Error ? error.message : String(error)}`);
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
    for (const key of s.keysIn('no-worker')) {
      for (const w of s.taskInfo(key)?.restrictions ?? []) {
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
