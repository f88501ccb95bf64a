// Random event sequences against the worker's core, checking its bookkeeping after every
// event, then driving everything to quiescence: nothing left running or being fetched,
// every result the scheduler waits for in memory or reported erred, and once everything
// is freed, nothing held at all.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { DependencyHolders, ExecuteTask, TaskDependency, WorkerEvent, WorkerInstruction } from '../../src/worker/events.js';
import { WorkerState } from '../../src/worker/state.js';
import { mulberry32 as rng } from '../helpers/random.js';
import { spec } from './helpers.js';

const ME = 'tcp://me:1';
const PEERS = ['tcp://p1:1', 'tcp://p2:1', 'tcp://p3:1', 'relay://p4'];

function pick<T>(r: () => number, xs: readonly T[]): T | undefined {
  return xs.length === 0 ? undefined : xs[Math.floor(r() * xs.length)];
}

/** The worker's surroundings as the instructions describe them: its store, threads, peers, and a scheduler. */
class World {
  readonly store = new Map<string, unknown>();
  readonly batches = new Map<number, ExecuteTask[]>();
  readonly gathers = new Map<number, { holder: string; keys: readonly string[] }>();
  readonly peerHas = new Map<string, Set<string>>(PEERS.map((p) => [p, new Set()]));
  /** Tasks the scheduler assigned here and waits to hear about. */
  readonly wanted = new Set<string>();
  /** Keys the scheduler counts this worker among the holders of. */
  readonly held = new Set<string>();
  readonly erred = new Set<string>();
  readonly depsOf = new Map<string, readonly string[]>();
  instructions = 0;

  apply(where: string, out: readonly WorkerInstruction[]): void {
    for (const i of out) {
      this.instructions++;
      switch (i.op) {
        case 'execute':
          for (const key of i.inputs) assert.ok(this.store.has(key), `${where}: input ${key} of batch ${i.batch} not in the store`);
          for (const t of i.tasks) assert.ok(this.wanted.has(t.key), `${where}: ${t.key} runs, but nobody wants it`);
          assert.ok(i.tasks.length > 0, `${where}: empty batch`);
          this.batches.set(i.batch, [...i.tasks]);
          break;
        case 'gather':
          assert.notEqual(i.holder, ME, `${where}: asks itself`);
          assert.ok(i.keys.length > 0, `${where}: empty gather`);
          assert.ok(!this.gathers.has(i.request), `${where}: request id reused`);
          this.gathers.set(i.request, { holder: i.holder, keys: i.keys });
          break;
        case 'store':
          this.store.set(i.key, i.value);
          break;
        case 'delete-data':
          assert.ok(this.store.has(i.key), `${where}: deletes ${i.key}, which is not stored`);
          this.store.delete(i.key);
          break;
        case 'task-finished':
          assert.ok(this.store.has(i.key), `${where}: ${i.key} finished, not stored`);
          assert.ok(i.finishedAt >= i.startedAt, `${where}: ${i.key} ends before it starts`);
          this.wanted.delete(i.key);
          this.held.add(i.key);
          break;
        case 'add-keys':
          for (const key of i.keys) {
            assert.ok(this.store.has(key), `${where}: add-keys ${key}, not stored`);
            this.held.add(key);
          }
          break;
        case 'task-erred':
          this.wanted.delete(i.key);
          this.erred.add(i.key);
          break;
        case 'steal-response':
          if (i.accepted) this.wanted.delete(i.key);
          break;
        case 'missing-data':
        case 'put-data-done':
        case 'worker-status':
        case 'retire':
          break;
      }
    }
  }
}

function fuzz(seed: number, steps: number): void {
  const r = rng(seed);
  const s = new WorkerState({
    id: ME,
    nthreads: 1 + Math.floor(r() * 3),
    memoryPause: 1000,
    maxRequests: 1 + Math.floor(r() * 4),
    transitionLogLength: 200,
    random: r,
  });
  const w = new World();
  const dataKeys: string[] = [];
  let now = 0;
  let nextKey = 0;
  let nextStimulus = 0;
  const send = (e: WorkerEvent): readonly WorkerInstruction[] => {
    const out = s.handle(e);
    const where = `seed ${seed}, ${e.op}${'key' in e ? ` ${e.key}` : ''}`;
    w.apply(where, out);
    try {
      s.validate();
    } catch (error) {
      assert.fail(`${where}: ${error instanceof Error ? error.message : String(error)}`);
    }
    return out;
  };
  const holdersOf = (key: string): string[] => {
    const out = PEERS.filter((p) => w.peerHas.get(p)!.has(key) && r() < 0.8);
    // Sometimes the scheduler is wrong: a peer that no longer has it, or this worker itself.
    if (r() < 0.1) out.push(pick(r, PEERS)!);
    if (r() < 0.03) out.push(ME);
    return out;
  };
  const newData = (): void => {
    const key = `d-${nextKey++}`;
    dataKeys.push(key);
    for (const p of PEERS) if (r() < 0.4) w.peerHas.get(p)!.add(key);
  };
  const compute = (key: string, leaf = false): void => {
    const deps = new Set<string>();
    // A key that was data gets no dependencies: the graph stays acyclic, as the scheduler's is.
    const n = leaf ? 0 : Math.floor(r() * 4);
    for (let j = 0; j < n; j++) {
      const x = r();
      const d = x < 0.6 ? pick(r, dataKeys) : x < 0.85 ? pick(r, [...w.held]) : pick(r, [...w.wanted]);
      if (d !== undefined && d !== key) deps.add(d);
    }
    const dependencies: TaskDependency[] = [...deps].map((d) => (w.store.has(d) && w.held.has(d) ? (r() < 0.5 ? d : [d, [ME]]) : [d, holdersOf(d)]));
    w.wanted.add(key);
    w.depsOf.set(key, [...deps]);
    send({ op: 'compute-task', key, spec: spec(key), dependencies, now, ...(r() < 0.7 ? { stimulus: `compute-${nextStimulus++}` } : {}) });
  };
  const answerGather = (complete: boolean): void => {
    const id = pick(r, [...w.gathers.keys()]);
    if (id === undefined) return;
    const { holder, keys } = w.gathers.get(id)!;
    w.gathers.delete(id);
    const has = w.peerHas.get(holder)!;
    const values = keys.filter((k) => has.has(k) && (complete || r() < 0.85)).map((k) => [k, `value of ${k}`] as const);
    send({ op: 'gather-done', request: id, values, now });
  };
  const endBatch = (ok: boolean): void => {
    const id = pick(r, [...w.batches.keys()]);
    if (id === undefined) return;
    const tasks = w.batches.get(id)!;
    w.batches.delete(id);
    const x = ok ? 0 : r();
    if (x < 0.75) {
      const times: number[] = [];
      let t = now;
      for (let i = 0; i < tasks.length; i++) times.push(t, (t += Math.floor(r() * 5)));
      send({ op: 'batch-done', batch: id, thread: 0, values: tasks.map((t) => `result of ${t.key}`), times, now });
    } else if (x < 0.87) {
      const culprit = pick(r, tasks)!;
      send({ op: 'batch-task-failed', batch: id, key: culprit.key, error: { kind: 'task', name: 'Error', message: 'no', stack: '', key: culprit.key }, now });
    } else if (x < 0.96) {
      send({ op: 'batch-thread-died', batch: id, message: 'thread exited with code 1', now });
    } else {
      send({ op: 'batch-unrunnable', batch: id, error: { name: 'BundleError', message: 'cannot write', stack: '' }, now });
    }
  };
  const free = (keys: readonly string[]): void => {
    for (const k of keys) {
      w.wanted.delete(k);
      w.held.delete(k);
    }
    send({ op: 'free-keys', keys, now, stimulus: `free-${nextStimulus++}` });
  };

  for (let i = 0; i < 3; i++) newData();
  for (let step = 0; step < steps; step++) {
    now += Math.floor(r() * 10);
    const x = r();
    if (x < 0.2) {
      // Mostly new tasks; sometimes a key being fetched here, which the scheduler now wants computed here.
      const fetching = r() < 0.15 ? pick(r, [...s.keysIn('fetch'), ...s.keysIn('flight'), ...s.keysIn('missing')]) : undefined;
      if (fetching !== undefined && !w.held.has(fetching)) compute(fetching, true);
      else compute(`t-${nextKey++}`);
    } else if (x < 0.23) {
      // Asked again, maybe with other holders for its dependencies.
      const key = pick(r, [...w.wanted]);
      if (key !== undefined) {
        const dependencies: DependencyHolders[] = (w.depsOf.get(key) ?? []).map((d) => [d, holdersOf(d)]);
        send({ op: 'compute-task', key, spec: spec(key), dependencies, now });
      }
    } else if (x < 0.26) {
      newData();
    } else if (x < 0.4) {
      send({ op: 'pump', now });
    } else if (x < 0.55) {
      answerGather(false);
    } else if (x < 0.72) {
      endBatch(false);
    } else if (x < 0.77) {
      const keys = [pick(r, [...w.wanted]), pick(r, [...w.held])].filter((k): k is string => k !== undefined && r() < 0.7);
      if (keys.length > 0) free(keys);
    } else if (x < 0.81) {
      const key = pick(r, [...w.wanted]);
      // A task waiting in a batch: sometimes the shell cut the batch before it first.
      const at = key === undefined ? null : s.batched(key);
      if (at !== null && r() < 0.6) {
        // Cut whole, the batch is over: its thread's empty answer would name nothing.
        if (at.index === 0) w.batches.delete(at.batch);
        else w.batches.set(at.batch, w.batches.get(at.batch)!.slice(0, at.index));
        send({ op: 'steal-request', key: key!, now, cut: { batch: at.batch, cut: at.index } });
      } else if (key !== undefined) send({ op: 'steal-request', key, now });
    } else if (x < 0.84) {
      const keys: DependencyHolders[] = [];
      for (let j = 0; j < 3; j++) {
        const key = pick(r, dataKeys);
        if (key !== undefined) keys.push([key, holdersOf(key)]);
      }
      send({ op: 'replicate', keys, now });
    } else if (x < 0.86) {
      const key = `s-${nextKey++}`;
      w.held.add(key);
      send({ op: 'put-data', id: nextKey, items: [[key, 'scattered']], now });
    } else if (x < 0.875) {
      send({ op: 'memory-sample', process: Math.floor(r() * 2000), now });
    } else if (x < 0.89) {
      // The result store held a key already: its value replaces the one here, if any is.
      const key = pick(r, [...w.held, ...w.wanted]);
      if (key !== undefined) send({ op: 'store-kept', key, value: `stored ${key}`, now });
    } else if (x < 0.9) {
      send({ op: 'retire', now });
    } else if (x < 0.94) {
      // A peer loses a copy; another gets one of this worker's results.
      const p = pick(r, PEERS)!;
      const lost = pick(r, [...w.peerHas.get(p)!]);
      if (lost !== undefined) w.peerHas.get(p)!.delete(lost);
      const copied = pick(r, [...w.held]);
      if (copied !== undefined) w.peerHas.get(pick(r, PEERS)!)!.add(copied);
    } else {
      endBatch(true);
    }
  }

  // Quiescence: answer everything; as the scheduler, find a holder for what went missing.
  let round = 0;
  for (; round < 100_000; round++) {
    now++;
    if (w.gathers.size > 0) answerGather(true);
    else if (w.batches.size > 0) endBatch(true);
    else if (s.wantsPump) send({ op: 'pump', now });
    else {
      const missing = s.keysIn('missing');
      const waiting = [...w.wanted].filter((k) => s.stateOf(k) === 'waiting');
      if (missing.length === 0 && waiting.length === 0) break;
      assert.ok(missing.length > 0, `seed ${seed}: ${waiting.join(', ')} waiting, on nothing missing`);
      // The scheduler recomputes what was lost onto a peer and names it.
      for (const d of missing) w.peerHas.get(PEERS[0]!)!.add(d);
      for (const key of waiting) {
        const dependencies: DependencyHolders[] = (w.depsOf.get(key) ?? []).map((d) => [d, [PEERS[0]!]]);
        send({ op: 'compute-task', key, spec: spec(key), dependencies, now });
      }
    }
  }
  assert.ok(round < 100_000, `seed ${seed}: no quiescence`);
  for (const state of ['waiting', 'ready', 'running', 'fetch', 'flight', 'missing'] as const) {
    assert.equal(s.count(state), 0, `seed ${seed}: ${s.keysIn(state).join(', ')} left ${state}`);
  }
  assert.equal(s.batchesInFlight, 0);
  assert.equal(s.requestsInFlight, 0);
  assert.deepEqual([...w.wanted], [], `seed ${seed}: the scheduler still waits for these`);
  // Everything the scheduler counts here is here, and nothing else.
  assert.deepEqual(new Set(s.keysIn('memory')), w.held, `seed ${seed}: memory vs what the scheduler was told`);
  assert.deepEqual(new Set(w.store.keys()), w.held, `seed ${seed}: the store vs what the scheduler was told`);
  // Freed, everything goes.
  if (w.held.size > 0) free([...w.held]);
  assert.equal(w.store.size, 0, `seed ${seed}: values left in the store`);
  for (const state of ['waiting', 'ready', 'running', 'memory', 'fetch', 'flight', 'missing'] as const) assert.equal(s.count(state), 0);
  assert.ok(w.instructions > 0);
}

void describe('the worker core under random events', () => {
  void test('bookkeeping stays consistent; quiescence leaves nothing running, fetching or lost', () => {
    const from = Number(process.env['FUZZ_FROM'] ?? 1);
    const to = Number(process.env['FUZZ_SEEDS'] ?? 150);
    for (let seed = from; seed <= to; seed++) fuzz(seed, Number(process.env['FUZZ_STEPS'] ?? 400));
  });
});
