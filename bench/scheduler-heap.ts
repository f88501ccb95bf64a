/**
 * The scheduler state machine's own heap per held task, in this process: tree-N taken in
 * (decoded from one update-graph message, specs held, tasks linked), with full garbage
 * collections before and after. Unlike `scheduler-memory` (a real process's RSS, which
 * keeps the peak of decoding the whole graph), this is what the held graph itself costs.
 *
 *   npm run bench -- scheduler-heap [--n 250000]
 */
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { planTasks } from '../src/client/tasks.js';
import { decode, encode } from '../src/comm/codec.js';
import { compile } from '../src/graph/plan.js';
import { ref, task } from '../src/graph/task.js';
import { graphTasks } from '../src/scheduler/held-spec.js';
import { SchedulerState } from '../src/scheduler/state.js';
import { type GraphMakers, treeGraph } from './workloads.js';

const { values } = parseArgs({ options: { n: { type: 'string', default: '250000' } } });
const n = Number(values.n);
if (!Number.isInteger(n) || n < 2) throw new Error('--n must be an integer >= 2');

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** The graph as the scheduler receives it: one update-graph message's frames. */
function graphFrames(): Uint8Array[] {
  const tree = treeGraph(n, { task: task as GraphMakers['task'], ref });
  const planned = planTasks(compile(tree.graph, [tree.root]));
  // Copies: the frames must not share memory with the planned graph, which is dropped.
  return encode({ op: 'update-graph', tasks: planned.tasks, wanted: [tree.root], fns: planned.fns }).map((f) => Buffer.from(f));
}

/** Takes the graph in as the scheduler's shell does; the decoded message is dropped after. */
function takeIn(frames: Uint8Array[]): { state: SchedulerState; tasks: number } {
  const message = decode(frames) as unknown as { tasks: Parameters<typeof graphTasks>[0]; wanted: string[]; fns: Parameters<typeof graphTasks>[1] };
  const state = new SchedulerState({});
  state.handle({ op: "update-graph", client: "c", tasks: graphTasks(message.tasks, message.fns), wanted: message.wanted, now: 0 });
  return { state, tasks: message.tasks.length };
}

const frames = graphFrames();
gc();
gc();
const before = process.memoryUsage().heapUsed;
const held = takeIn(frames.splice(0));
gc();
gc();
const after = process.memoryUsage().heapUsed;
// Still reachable here, so the collections above kept it.
const workers = held.state.snapshot().workers.length;
console.log(JSON.stringify({ bench: 'scheduler-heap', workload: `tree-${n}`, tasks: held.tasks, heapBytesPerTask: Math.round((after - before) / held.tasks), workers }));
