/**
 * The scheduler's `GET /metrics`: cluster gauges, totals, and per-worker gauges labelled
 * with the worker's name. Computed from one snapshot per scrape.
 */
import { MetricsWriter, type MetricSample } from '../comm/prometheus.js';
import type { DashboardSource } from './source.js';

export function schedulerMetricsText(source: DashboardSource): string {
  const snap = source.snapshot();
  const counters = source.counters();
  const target = source.adaptiveTarget();
  const now = source.clock?.() ?? snap.now;
  const w = new MetricsWriter();

  let bytesStored = 0;
  for (const ws of snap.workers) bytesStored += ws.nbytes;

  w.single('tessera_workers', 'gauge', 'Workers connected to the scheduler.', snap.workers.length);
  w.family(
    'tessera_tasks',
    'gauge',
    'Tasks the scheduler holds, by state.',
    Object.entries(snap.byState).map(([state, value]) => ({ labels: { state }, value })),
  );
  if (target !== undefined) {
    w.single('tessera_desired_workers', 'gauge', 'Workers the adaptive loop wants (its latest target).', target.target);
  }
  w.single('tessera_threads', 'gauge', 'Threads across the connected workers.', snap.totalThreads);
  w.single('tessera_bytes_stored', 'gauge', 'Bytes of task results held by workers, as the scheduler accounts them.', bytesStored);
  w.single('tessera_bytes_spilled', 'gauge', 'Bytes of task results spilled to disk across workers.', counters.bytesSpilled);
  w.single('tessera_clients', 'gauge', 'Clients holding tasks.', snap.clients);
  w.single('tessera_expected_remaining_work_seconds', 'gauge', 'Seconds of work left in unfinished tasks, estimated.', snap.expectedRemainingWork);
  w.single('tessera_transfers_total', 'counter', 'Data transfers between workers.', counters.transfersTotal);
  w.single('tessera_transfer_bytes_total', 'counter', 'Bytes moved between workers.', counters.transferBytesTotal);
  w.single('tessera_tasks_finished_total', 'counter', 'Tasks that finished successfully.', counters.tasksFinishedTotal);
  w.single('tessera_tasks_erred_total', 'counter', 'Tasks that raised an error.', counters.tasksErredTotal);
  w.family('tessera_task_duration_seconds', 'summary', 'Compute time of finished tasks.', [
    { suffix: '_sum', value: counters.taskDurationSecondsSum },
    { suffix: '_count', value: counters.taskDurationCount },
  ]);

  const perWorker = (pick: (ws: (typeof snap.workers)[number]) => number): MetricSample[] =>
    snap.workers.map((ws) => ({ labels: { worker: ws.name }, value: pick(ws) }));
  w.family('tessera_worker_threads', 'gauge', 'Threads of the worker.', perWorker((ws) => ws.nthreads));
  w.family('tessera_worker_processing', 'gauge', 'Tasks assigned to the worker and not yet reported back.', perWorker((ws) => ws.processing));
  w.family('tessera_worker_tasks_in_memory', 'gauge', 'Task results the worker holds.', perWorker((ws) => ws.inMemory));
  w.family('tessera_worker_bytes_stored', 'gauge', 'Bytes of task results the worker holds.', perWorker((ws) => ws.nbytes));
  w.family('tessera_worker_bytes_spilled', 'gauge', 'Bytes of task results the worker spilled to disk.', perWorker((ws) => ws.memory.spilled));
  w.family('tessera_worker_memory_process_bytes', 'gauge', 'Resident size of the worker process at its last heartbeat.', perWorker((ws) => ws.memory.process));
  w.family('tessera_worker_memory_limit_bytes', 'gauge', 'Memory limit of the worker.', perWorker((ws) => ws.memoryLimit));
  w.family('tessera_worker_occupancy_seconds', 'gauge', 'Seconds of work assigned to the worker, estimated.', perWorker((ws) => ws.occupancy));
  w.family('tessera_worker_last_seen_seconds', 'gauge', 'Seconds since the scheduler last heard from the worker.', perWorker((ws) => Math.max(0, (now - ws.lastSeen) / 1000)));
  return w.text();
}
