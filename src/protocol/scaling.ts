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

/** Which backend a decision or a count is about, in a persistent pool that bursts. */
export type ScalingBackend = 'persistent' | 'burst';

/** One backend's workers in a sample: asked for, up, being stopped, and its share of the target. */
export interface ScalingSideSample {
  readonly requested: number;
  readonly running: number;
  readonly closing: number;
  readonly target: number;
}

/**
 * One sample of the cluster's size and load, taken every tick. `requested`, `running`,
 * `closing` and `target` count the whole cluster; with a burst backend, `persistent` and
 * `burst` say how those divide between the persistent pool and the burst (absent otherwise).
 */
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
  readonly persistent?: ScalingSideSample;
  readonly burst?: ScalingSideSample;
}

/** A worker the backend could not start (an image that cannot be pulled, a crash loop, no room). */
export interface WorkerFailedEntry {
  readonly op: 'worker-failed';
  readonly target: number;
  readonly worker: string;
  readonly reason: string;
}

/**
 * A decision as recorded. With a burst backend each side decides on its own: `backend`
 * says whose decision it is (and whose worker failed), and `target` is that side's target.
 * Absent when the cluster has one backend.
 */
export type ScalingDecision = (AdaptiveDecision | WorkerFailedEntry) & { readonly t: number; readonly backend?: ScalingBackend };

export interface ScalingHistory {
  readonly samples: readonly ScalingSample[];
  readonly decisions: readonly ScalingDecision[];
}
