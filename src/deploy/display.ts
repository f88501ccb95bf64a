/**
 * How a cluster whose scheduler runs in this process summarises itself for its card (and
 * its client's card): every backend with such a scheduler uses this, so that all clusters
 * display alike. See src/notebook/cards.ts.
 */
import type { ResourceState } from '../lifecycle.js';
import { linkWithToken } from '../notebook/html.js';
import type { ClusterSummary } from '../notebook/cards.js';
import type { Scheduler } from '../process/scheduler.js';

export function schedulerClusterSummary(
  type: string,
  state: ResourceState,
  scheduler: Scheduler,
  token: string | undefined,
  requested: number | undefined,
): ClusterSummary {
  const running = state === 'running' && scheduler.state === 'running';
  const workers = running
    ? scheduler.snapshot().workers.map((w) => ({
        name: w.name,
        status: w.status,
        threads: w.nthreads,
        memory: w.memory.managed,
        memoryLimit: w.memoryLimit,
        processing: w.processing,
      }))
    : [];
  const adaptive = running ? scheduler.adaptive?.options : undefined;
  const link = scheduler.dashboardLink;
  return {
    type,
    state: state === 'running' && !running ? 'closing' : state,
    address: scheduler.address,
    dashboard: link === undefined || !running ? undefined : linkWithToken(link, token),
    workers,
    requested: running ? requested : 0,
    adaptive: adaptive === undefined ? undefined : { minimum: adaptive.minimum, maximum: adaptive.maximum },
  };
}

/** Calls `changed` whenever a worker registers with the scheduler or leaves it; returns how to stop. */
export function watchSchedulerWorkers(scheduler: Scheduler, changed: () => void): () => void {
  if (scheduler.state !== 'running') return () => undefined;
  return scheduler.addPlugin({ name: 'notebook card', addWorker: changed, removeWorker: changed });
}
