/**
 * The dashboard of a running scheduler: a plugin that records the task stream and the
 * totals `/metrics` reports, and the HTTP server that shows them. The scheduler knows
 * nothing of it; whatever composes a scheduler process attaches it.
 *
 * ```ts
 * const server = await SchedulerServer.start({ port: 0 });
 * const dashboard = await attachDashboard(server, { port: 8787 });
 * console.log(dashboard.url);
 * ```
 */
import type { ScalingHistory } from '../protocol/scaling.js';
import { keyPrefix, keyPrefixAfter } from '../scheduler/records.js';
import type { SchedulerServer } from '../scheduler/server.js';
import { type Dashboard, startDashboard } from './server.js';
import type { AdaptiveTargetInfo, DashboardCounters, DashboardSource } from './source.js';
import { TaskStreamBuffer } from './task-stream.js';

export interface AttachDashboardOptions {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 8787, or a free port when that one is taken; 0 picks a free one. */
  readonly port?: number;
  /** Treat the dashboard as reachable by others (requires `token`). */
  readonly exposed?: boolean;
  readonly updateIntervalMs?: number;
  readonly token?: string;
  /** Whether it keeps the process alive (default true). */
  readonly keepAlive?: boolean;
  /** The adaptive loop's history and latest target, when the cluster adapts. */
  readonly scaling?: {
    history(since?: number): ScalingHistory | undefined;
    lastTarget(): AdaptiveTargetInfo | undefined;
  };
}

/** Starts the dashboard of `server`; it closes with the server (or on its own `close()`). */
export async function attachDashboard(server: SchedulerServer, options: AttachDashboardOptions = {}): Promise<Dashboard> {
  const stream = new TaskStreamBuffer();
  const counters = { transfersTotal: 0, transferBytesTotal: 0, tasksFinishedTotal: 0, tasksErredTotal: 0, taskDurationSecondsSum: 0, taskDurationCount: 0 };
  const source: DashboardSource = {
    snapshot: () => server.snapshot(),
    scaling: (since) => options.scaling?.history(since),
    adaptiveTarget: () => options.scaling?.lastTarget(),
    taskStream: (since, limit) => stream.since(since, limit),
    prefixTotals: () => stream.prefixTotals(),
    counters: (): DashboardCounters => {
      let spilled = 0;
      for (const w of server.snapshot().workers) spilled += w.memory.spilled;
      return { ...counters, bytesSpilled: spilled };
    },
    clock: () => performance.now(),
  };
  const dashboard = await startDashboard({
    source,
    ...(options.host === undefined ? {} : { host: options.host }),
    ...(options.port === undefined ? {} : { port: options.port }),
    ...(options.exposed === undefined ? {} : { exposed: options.exposed }),
    ...(options.updateIntervalMs === undefined ? {} : { updateIntervalMs: options.updateIntervalMs }),
    ...(options.token === undefined ? {} : { token: options.token }),
    ...(options.keepAlive === undefined ? {} : { keepAlive: options.keepAlive }),
  });
  let lastPrefix = '';
  server.addPlugin({
    name: 'dashboard',
    taskFinished: (t) => {
      counters.tasksFinishedTotal++;
      counters.taskDurationSecondsSum += Math.max(0, t.stop - t.start) / 1000;
      counters.taskDurationCount++;
      stream.record({ key: t.key, prefix: (lastPrefix = keyPrefixAfter(t.key, lastPrefix)), worker: t.worker.name, thread: t.thread, start: t.start, stop: t.stop, kind: 'compute' });
    },
    taskErred: (t) => {
      counters.tasksErredTotal++;
      stream.record({ key: t.key, prefix: keyPrefix(t.key), worker: t.worker.name, thread: t.thread, start: t.start, stop: t.stop, kind: 'error' });
    },
    dataMoved: (key, nbytes, to, now) => {
      counters.transfersTotal++;
      counters.transferBytesTotal += nbytes;
      stream.record({ key, prefix: keyPrefix(key), worker: to.name, start: now, stop: now, kind: 'transfer' });
    },
    removeWorker: (worker) => stream.forgetWorker(worker.name),
    close: () => dashboard.close(),
  });
  return dashboard;
}
