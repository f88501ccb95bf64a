/**
 * Bodies of the JSON API (`/api/v1/...`), as plain functions of the source so they are
 * tested without a server. Documented in API.md beside this file.
 */
import type { ScalingHistory } from '../protocol/scaling.js';
import type { StateCounts, WorkerSnapshot } from '../scheduler/state.js';
import type { PrefixRow } from './feed-protocol.js';
import { prefixRows } from './feed.js';
import type { DashboardSource, TaskStreamEntry } from './source.js';

export interface WorkersBody {
  readonly now: number;
  readonly workers: readonly WorkerSnapshot[];
}

export interface TasksBody {
  readonly now: number;
  readonly total: number;
  readonly byState: StateCounts;
  readonly prefixes: readonly (PrefixRow & { readonly duration: number | null })[];
}

export type ScalingBody = ({ readonly adaptive: true } & ScalingHistory) | { readonly adaptive: false; readonly samples: readonly []; readonly decisions: readonly [] };

export type AdaptiveTargetBody = { readonly adaptive: true; readonly target: number; readonly reason: string } | { readonly adaptive: false };

export interface TaskStreamBody {
  readonly now: number;
  readonly entries: readonly TaskStreamEntry[];
  /** True when more entries matched than `limit`: these are the newest, older ones were left out. */
  readonly truncated: boolean;
}

export const MAX_TASK_STREAM_LIMIT = 100_000;

function clockOf(source: DashboardSource, snapNow: number): number {
  return source.clock?.() ?? snapNow;
}

export function workersBody(source: DashboardSource): WorkersBody {
  const snap = source.snapshot();
  return { now: clockOf(source, snap.now), workers: snap.workers };
}

export function tasksBody(source: DashboardSource): TasksBody {
  const snap = source.snapshot();
  const durations = new Map(snap.prefixes.map((p) => [p.prefix, p.duration]));
  const { rows } = prefixRows(snap, source.prefixTotals?.(), Infinity);
  return {
    now: clockOf(source, snap.now),
    total: snap.tasks,
    byState: snap.byState,
    prefixes: rows.map((r) => ({ ...r, duration: durations.get(r.prefix) ?? null })),
  };
}

export function scalingBody(source: DashboardSource, since: number): ScalingBody {
  const h = source.scaling(since);
  if (h === undefined) return { adaptive: false, samples: [], decisions: [] };
  return { adaptive: true, samples: h.samples, decisions: h.decisions };
}

export function adaptiveTargetBody(source: DashboardSource): AdaptiveTargetBody {
  const t = source.adaptiveTarget();
  return t === undefined ? { adaptive: false } : { adaptive: true, target: t.target, reason: t.reason };
}

export function taskStreamBody(source: DashboardSource, since: number, limit: number): TaskStreamBody {
  // One more than asked tells whether the limit cut the answer.
  const entries = source.taskStream(since, limit + 1);
  const truncated = entries.length > limit;
  // The newest `limit + 1` came back; dropping the oldest keeps the answer contiguous from the end.
  const kept = truncated ? entries.slice(1) : entries;
  return { now: source.clock?.() ?? source.snapshot().now, entries: kept, truncated };
}
