// Small drivers for the scheduler state machine in tests.
import type { GraphTask, SchedulerCommand } from '../../src/scheduler/events.js';
import { SchedulerState, type SchedulerStateOptions } from '../../src/scheduler/state.js';

export type Cmd<K extends SchedulerCommand['op']> = Extract<SchedulerCommand, { op: K }>;

export function only<K extends SchedulerCommand['op']>(cmds: readonly SchedulerCommand[], op: K): Cmd<K>[] {
  return cmds.filter((c): c is Cmd<K> => c.op === op);
}

/** Keys of compute-task commands, as "key@worker". */
export function computes(cmds: readonly SchedulerCommand[]): string[] {
  return only(cmds, 'compute-task').map((c) => `${c.key}@${c.worker}`);
}

/** Keys freed per worker, as "key@worker". */
export function frees(cmds: readonly SchedulerCommand[]): string[] {
  return only(cmds, 'free-keys').flatMap((c) => c.keys.map((k) => `${k}@${c.worker}`));
}

export function newState(options: SchedulerStateOptions = {}): SchedulerState {
  return new SchedulerState(options);
}

export function addWorker(s: SchedulerState, worker: string, nthreads = 1, now = 0): SchedulerCommand[] {
  return s.handle({ op: 'add-worker', worker, name: `name-${worker}`, nthreads, memoryLimit: 1e9, now });
}

/** [key, deps, extra] triples to GraphTask; graph order is the index unless given. */
export type T = [string, (string | number)[]?, Partial<Omit<GraphTask, 'key' | 'dependencies'>>?];

export function submit(
  s: SchedulerState,
  tasks: readonly T[],
  wanted: readonly string[],
  opts: { client?: string; userPriority?: number; more?: boolean; now?: number } = {},
): SchedulerCommand[] {
  const graph: GraphTask[] = tasks.map(([key, dependencies = [], extra = {}]) => ({
    key,
    dependencies,
    spec: { fn: key },
    ...extra,
  }));
  return s.handle({
    op: 'update-graph',
    client: opts.client ?? 'c1',
    tasks: graph,
    wanted,
    ...(opts.userPriority === undefined ? {} : { userPriority: opts.userPriority }),
    ...(opts.more === undefined ? {} : { more: opts.more }),
    now: opts.now ?? 0,
  });
}

export function finish(
  s: SchedulerState,
  worker: string,
  key: string,
  o: { nbytes?: number; startedAt?: number; finishedAt?: number; now?: number } = {},
): SchedulerCommand[] {
  const finishedAt = o.finishedAt ?? o.now ?? 0;
  return s.handle({
    op: 'task-finished',
    worker,
    key,
    nbytes: o.nbytes ?? 8,
    startedAt: o.startedAt ?? finishedAt,
    finishedAt,
    now: o.now ?? finishedAt,
  });
}

export function fail(s: SchedulerState, worker: string, key: string, message = 'boom', now = 0): SchedulerCommand[] {
  return s.handle({
    op: 'task-erred',
    worker,
    key,
    error: { kind: 'task', name: 'Error', message, stack: `Error: ${message}\n    at task` },
    now,
  });
}

export function stateOf(s: SchedulerState, key: string): string | undefined {
  return s.taskInfo(key)?.state;
}
