/**
 * The scheduler's work per task on the message path, in one process and without sockets,
 * so that the machine's load does not change how work is batched: the client's graph is
 * encoded and decoded as on the wire, taken in by the state machine, its commands become
 * messages (dispatch.ts) that are encoded and decoded, and two simulated one-thread
 * workers answer each compute message with one tasks-finished report (their specs
 * decoded as a worker would). CPU per task is reported for the whole path and for its
 * scheduler side alone (update-graph, handling reports, dispatching, encoding what it
 * sends and decoding what it receives).
 *
 *   npm run bench -- scheduler-path [--workloads map-100000,tree-50000] [--repeat 5]
 *       [--specs encoded|objects] [--reports batched|per-task]
 *
 * `--specs objects` sends specs as decoded objects (as before specs travelled encoded);
 * `--reports per-task` hands the state machine one task-finished event per key.
 */
import { parseArgs } from 'node:util';
import { decode, encode } from '../src/comm/codec.js';
import type { FnRef } from '../src/functions/fn-ref.js';
import { compile } from '../src/graph/plan.js';
import { specOf } from '../src/protocol/encoded-spec.js';
import type { ClientToScheduler, SchedulerToClient, SchedulerToWorker, WireGraphTask } from '../src/protocol/messages.js';
import { callTasks, planTasks } from '../src/client/tasks.js';
import { dispatch, type ClientEntry, type DispatchContext, type WorkerEntry } from '../src/scheduler/dispatch.js';
import type { SchedulerEvent } from '../src/scheduler/events.js';
import { FunctionShipping } from '../src/scheduler/functions.js';
import { graphTasks } from '../src/scheduler/held-spec.js';
import { SchedulerState } from '../src/scheduler/state.js';
import { ref, task } from '../src/graph/task.js';
import { inc, treeGraph, type GraphMakers } from './workloads.js';


const { values } = parseArgs({
  options: {
    workloads: { type: 'string', default: 'map-100000,tree-50000' },
    repeat: { type: 'string', default: '5' },
    specs: { type: 'string', default: 'encoded' },
    reports: { type: 'string', default: 'batched' },
  },
});
const encoded = values.specs === 'encoded';
const batched = values.reports === 'batched';
if (!encoded && values.specs !== 'objects') throw new Error('--specs takes encoded or objects');
if (!batched && values.reports !== 'per-task') throw new Error('--reports takes batched or per-task');

/** CPU microseconds of this process so far. */
function cpu(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** As it travels: encoded and decoded by the wire's codec. */
function wire<M>(message: M): M {
  return decode(encode(message)) as M;
}

/** Specs back to objects, as clients sent them before they travelled encoded. */
function asObjects(tasks: WireGraphTask[], fns: readonly FnRef[]): WireGraphTask[] {
  return tasks.map(([key, dependencies, spec, named, priority]) => {
    const ids = named === undefined || named === null ? [] : (typeof named === 'number' ? [named] : named).map((i) => fns[i]!.id);
    const object = specOf(spec, ids, key);
    return priority === undefined ? [key, dependencies, object] : [key, dependencies, object, null, priority];
  });
}

function run(workload: string): { tasks: number; cpuUsPerTask: number; schedulerCpuUsPerTask: number } {
  const [kind, num] = workload.split('-') as [string, string];
  const n = Number(num);
  let tasks: WireGraphTask[];
  let fns: FnRef[];
  let wanted: string[];
  if (kind === 'map') {
    const call = callTasks(inc, Array.from({ length: n }, (_, i) => [i]), {}, 'map()', () => '');
    ({ tasks, fns } = call);
    wanted = call.keys;
  } else {
    const tree = treeGraph(n, { task: task as GraphMakers['task'], ref });
    ({ tasks, fns } = planTasks(compile(tree.graph, [tree.root])));
    wanted = [tree.root];
  }
  if (!encoded) tasks = asObjects(tasks, fns);

  const state = new SchedulerState({});
  const functions = new FunctionShipping();
  const workers = new Map<string, WorkerEntry>();
  for (const id of ['w0', 'w1']) {
    workers.set(id, { id, name: id, fns: new Set(), modules: new Set(), outbox: [], leaving: 'lost', selfRetiring: false, clockOffset: 0 } as unknown as WorkerEntry);
    state.handle({ op: 'add-worker', worker: id, name: id, nthreads: 1, memoryLimit: 1e12, now: 0 });
  }
  const client = { id: 'c', outbox: [] } as unknown as ClientEntry;
  const ctx: DispatchContext = {
    workers,
    clients: new Map([['c', client]]),
    functions,
    stimulus: '',
    retireAborted: () => undefined,
    freeFromStore: () => undefined,
  };
  let schedulerCpu = 0;
  let now = 0;
  const apply = (event: SchedulerEvent): void => {
    const commands = state.handle(event);
    ctx.stimulus = state.lastStimulus;
    for (const command of commands) dispatch(command, ctx);
  };
  let remaining = wanted.length;
  const start = cpu();

  // The client's graph, as the scheduler takes it in.
  const message = wire<ClientToScheduler>({ op: 'update-graph', tasks, wanted, fns });
  let t0 = cpu();
  const m = wire<ClientToScheduler>(message) as Extract<ClientToScheduler, { op: 'update-graph' }>;
  functions.register(m.fns);
  apply({ op: 'update-graph', client: 'c', tasks: graphTasks(m.tasks, m.fns), wanted: m.wanted, now });
  schedulerCpu += cpu() - t0;

  while (remaining > 0) {
    let progressed = false;
    for (const w of workers.values()) {
      if (w.outbox.length === 0) continue;
      progressed = true;
      // The scheduler encodes what it sends this turn; the worker decodes it.
      t0 = cpu();
      const frames = w.outbox.map((message) => encode(message));
      w.outbox = [];
      schedulerCpu += cpu() - t0;
      const keys: string[] = [];
      for (const f of frames) {
        const message = decode(f) as SchedulerToWorker;
        if (message.op !== 'compute') continue;
        // As a worker reads them: the functions carried forward from the task that named them.
        let fns: readonly string[] | undefined;
        for (const [key, spec, , , given] of message.tasks) {
          if (given !== undefined) fns = typeof given === 'string' ? [given] : given;
          specOf(spec, fns, key);
          keys.push(key);
        }
      }
      if (keys.length === 0) continue;
      now += 1;
      const times = keys.map(() => now);
      const report = encode({ op: 'tasks-finished', keys, nbytes: keys.map(() => 8), startedAt: times, finishedAt: times, threads: keys.map(() => 0) });
      // The scheduler decodes the report and handles it.
      t0 = cpu();
      const r = decode(report) as unknown as { keys: string[]; nbytes: number[]; startedAt: number[]; finishedAt: number[] };
      if (batched) apply({ op: 'tasks-finished', worker: w.id, keys: r.keys, nbytes: r.nbytes, startedAt: r.startedAt, finishedAt: r.finishedAt, now });
      else for (let i = 0; i < r.keys.length; i++) apply({ op: 'task-finished', worker: w.id, key: r.keys[i]!, nbytes: r.nbytes[i]!, startedAt: r.startedAt[i]!, finishedAt: r.finishedAt[i]!, now });
      const toClient = client.outbox.map((message) => encode(message));
      client.outbox = [];
      schedulerCpu += cpu() - t0;
      for (const f of toClient) {
        const message = decode(f) as SchedulerToClient;
        if (message.op === 'keys-in-memory') remaining -= message.keys.length;
      }
    }
    if (!progressed) throw new Error(`${workload}: stuck with ${remaining} results outstanding`);
  }
  const total = cpu() - start;
  return { tasks: tasks.length, cpuUsPerTask: total / tasks.length, schedulerCpuUsPerTask: schedulerCpu / tasks.length };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const workload of values.workloads.split(',').filter((w) => w !== '')) {
  run(workload); // warm-up
  const rows = Array.from({ length: Number(values.repeat) }, () => run(workload));
  console.log(
    JSON.stringify({
      bench: 'scheduler-path',
      workload,
      specs: values.specs,
      reports: values.reports,
      tasks: rows[0]!.tasks,
      cpuUsPerTask: median(rows.map((r) => r.cpuUsPerTask)),
      schedulerCpuUsPerTask: median(rows.map((r) => r.schedulerCpuUsPerTask)),
      runs: rows.map((r) => Math.round(r.schedulerCpuUsPerTask * 10) / 10),
    }),
  );
}
