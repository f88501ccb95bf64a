/**
 * The adaptive loop's decisions and history as they travel: to clients
 * (`client.scalingHistory()`), to the dashboard's API and to its page. Types only, so the
 * browser page can share them.
 */

/** What one adaptive tick decided. */
export type AdaptiveDecision =
  | { readonly op: 'scale-up'; readonly target: number; readonly reason: string }
  | { readonly op: 'scale-down'; readonly target: number; readonly workers: readonly string[]; readonly reason: string }
  | { readonly op: 'hold'; readonly target: number; readonly reason: string };

/** One sample of the cluster's size and load, taken every tick. */
export interface ScalingSample {
  readonly t: number;
  readonly requested: number;
  readonly running: number;
  readonly closing: number;
  readonly target: number;
  readonly queued: number;
  readonly processing: number;
  readonly waiting: number;
  readonly inMemory: number;
}

/** A worker the backend could not start (an image that cannot be pulled, a crash loop, no room). */
export interface WorkerFailedEntry {
  readonly op: 'worker-failed';
  readonly target: number;
  readonly worker: string;
  readonly reason: string;
}

export type ScalingDecision = (AdaptiveDecision | WorkerFailedEntry) & { readonly t: number };

export interface ScalingHistory {
  readonly samples: readonly ScalingSample[];
  readonly decisions: readonly ScalingDecision[];
}
