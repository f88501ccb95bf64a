/**
 * What a worker pod's status means to the backend, pure: still starting (Pending counts as
 * asked for: a cluster autoscaler may be adding a node), running, exited (retired and
 * done), being deleted, or failed — with the reason to report.
 */
import type { PodManifest } from './manifest-types.js';
import { WORKER_CONTAINER } from './worker-pod.js';

export type PodState =
  | { readonly kind: 'starting' }
  | { readonly kind: 'running' }
  | { readonly kind: 'exited' }
  | { readonly kind: 'deleting' }
  | {
      readonly kind: 'failed';
      /** ImagePullBackOff, CrashLoopBackOff, Unschedulable, Evicted… */
      readonly reason: string;
      readonly message: string;
      /** Whether the worker's container ran (so its log says something), and which run to read. */
      readonly log: 'none' | 'current' | 'previous';
    };

/** Waiting reasons that do not clear up by themselves. */
const STUCK = new Set(['ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull', 'CrashLoopBackOff', 'CreateContainerConfigError', 'CreateContainerError', 'RunContainerError']);

export interface ClassifyContext {
  /** Milliseconds the pod has been Pending (since Tessera created or adopted it). */
  readonly pendingForMs: number;
  /** An unschedulable pod fails after this long. */
  readonly pendingTimeoutMs: number;
}

function containerStatus(pod: PodManifest): NonNullable<NonNullable<PodManifest['status']>['containerStatuses']>[number] | undefined {
  const statuses = pod.status?.containerStatuses ?? [];
  return statuses.find((s) => s.name === WORKER_CONTAINER) ?? statuses[0];
}

function lastExit(status: ReturnType<typeof containerStatus>): string {
  const t = status?.lastState?.terminated ?? status?.state?.terminated;
  if (t === undefined) return '';
  return `; last exit code ${t.exitCode}${t.reason === undefined || t.reason === '' ? '' : ` (${t.reason})`}`;
}

export function classifyPod(pod: PodManifest, context: ClassifyContext): PodState {
  if (pod.metadata?.deletionTimestamp !== undefined) return { kind: 'deleting' };
  const phase = pod.status?.phase;
  const status = containerStatus(pod);
  if (phase === 'Succeeded') return { kind: 'exited' };
  if (phase === 'Failed') {
    const terminated = status?.state?.terminated;
    const reason = pod.status?.reason ?? terminated?.reason ?? 'Failed';
    const message = pod.status?.message ?? terminated?.message ?? `the worker container exited${lastExit(status)}`;
    return { kind: 'failed', reason, message, log: terminated === undefined ? 'none' : 'current' };
  }
  const waiting = status?.state?.waiting;
  if (waiting?.reason !== undefined && STUCK.has(waiting.reason)) {
    const ran = (status?.restartCount ?? 0) > 0 || status?.lastState?.terminated !== undefined;
    return {
      kind: 'failed',
      reason: waiting.reason,
      message: `${(waiting.message ?? '').trim() || waiting.reason}${lastExit(status)}`,
      log: ran ? 'previous' : 'none',
    };
  }
  if (phase === 'Running' && status?.state?.running !== undefined) return { kind: 'running' };
  const unschedulable = pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable');
  if (unschedulable !== undefined && context.pendingForMs >= context.pendingTimeoutMs) {
    return {
      kind: 'failed',
      reason: 'Unschedulable',
      message: `not scheduled within ${Math.round(context.pendingTimeoutMs / 1000)} s: ${(unschedulable.message ?? '').trim() || 'no node fits the pod'}`,
      log: 'none',
    };
  }
  return { kind: 'starting' };
}
