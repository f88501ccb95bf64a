/**
 * A worker's `GET /metrics`, from the few numbers a worker keeps. Independent of the
 * scheduler's dashboard: the worker serves it on its own HTTP port.
 *
 * ```ts
 * res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE });
 * res.end(metricsText({ name, nthreads, memoryLimit, memory, executing, ready, inMemory, ... }));
 * ```
 */
import { MetricsWriter } from '../comm/prometheus.js';

export interface WorkerMetricsInput {
  readonly name: string;
  readonly status?: 'running' | 'paused' | 'closing' | 'closed';
  readonly nthreads: number;
  readonly memoryLimit: number;
  readonly memory: { readonly managed: number; readonly spilled: number; readonly process: number };
  /** Tasks running on its threads now. */
  readonly executing: number;
  /** Tasks received and waiting for a thread. */
  readonly ready: number;
  /** Task results held (in memory or spilled). */
  readonly inMemory: number;
  readonly tasksFinishedTotal: number;
  readonly tasksErredTotal: number;
  readonly taskDurationSecondsSum: number;
  readonly taskDurationCount: number;
  /** Data fetched from peers. */
  readonly transfersTotal?: number;
  readonly transferBytesTotal?: number;
  /** Large frames fetched from peers into memory the worker had used before. */
  readonly framesReusedTotal?: number;
  /** Bytes of large buffers kept for reuse (threads' copies, fetched frames let go). */
  readonly reusableBytes?: number;
  readonly bytesSpilledTotal?: number;
  /** Seconds since the worker started. */
  readonly uptimeSeconds?: number;
}

const STATUSES = ['running', 'paused', 'closing', 'closed'] as const;

export function metricsText(worker: WorkerMetricsInput): string {
  const w = new MetricsWriter();
  const labels = { worker: worker.name };
  const one = (value: number) => [{ labels, value }];
  if (worker.status !== undefined) {
    w.family(
      'tessera_worker_status',
      'gauge',
      '1 for the worker status it is in, 0 for the others.',
      STATUSES.map((s) => ({ labels: { worker: worker.name, status: s }, value: s === worker.status ? 1 : 0 })),
    );
  }
  w.family('tessera_worker_threads', 'gauge', 'Threads running tasks.', one(worker.nthreads));
  w.family('tessera_worker_executing', 'gauge', 'Tasks running on the threads now.', one(worker.executing));
  w.family('tessera_worker_ready', 'gauge', 'Tasks waiting for a thread.', one(worker.ready));
  w.family('tessera_worker_tasks_in_memory', 'gauge', 'Task results held, in memory or spilled.', one(worker.inMemory));
  w.family('tessera_worker_memory_managed_bytes', 'gauge', 'Bytes of task results held in memory.', one(worker.memory.managed));
  w.family('tessera_worker_bytes_spilled', 'gauge', 'Bytes of task results spilled to disk.', one(worker.memory.spilled));
  w.family('tessera_worker_memory_process_bytes', 'gauge', 'Resident size of the worker process.', one(worker.memory.process));
  w.family('tessera_worker_memory_limit_bytes', 'gauge', 'Memory limit of the worker.', one(worker.memoryLimit));
  w.family('tessera_worker_tasks_finished_total', 'counter', 'Tasks that finished successfully.', one(worker.tasksFinishedTotal));
  w.family('tessera_worker_tasks_erred_total', 'counter', 'Tasks that raised an error.', one(worker.tasksErredTotal));
  w.family('tessera_worker_task_duration_seconds', 'summary', 'Compute time of finished tasks.', [
    { suffix: '_sum', labels, value: worker.taskDurationSecondsSum },
    { suffix: '_count', labels, value: worker.taskDurationCount },
  ]);
  if (worker.transfersTotal !== undefined) w.family('tessera_worker_transfers_total', 'counter', 'Data fetched from peers.', one(worker.transfersTotal));
  if (worker.transferBytesTotal !== undefined) w.family('tessera_worker_transfer_bytes_total', 'counter', 'Bytes fetched from peers.', one(worker.transferBytesTotal));
  if (worker.framesReusedTotal !== undefined) w.family('tessera_worker_frames_reused_total', 'counter', 'Large frames fetched from peers into memory used before.', one(worker.framesReusedTotal));
  if (worker.reusableBytes !== undefined) w.family('tessera_worker_reusable_bytes', 'gauge', 'Bytes of large buffers kept for reuse: copies for threads, fetched frames let go.', one(worker.reusableBytes));
  if (worker.bytesSpilledTotal !== undefined) w.family('tessera_worker_spilled_bytes_total', 'counter', 'Bytes written to disk by spilling.', one(worker.bytesSpilledTotal));
  if (worker.uptimeSeconds !== undefined) w.family('tessera_worker_uptime_seconds', 'gauge', 'Seconds since the worker started.', one(worker.uptimeSeconds));
  return w.text();
}
