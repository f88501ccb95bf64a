/**
 * The adaptive loop's history, as the dashboard and clients read it. Types only, so the
 * browser page can share them.
 */
import type { AdaptiveDecision } from '../scheduler/adaptive-policy.js';

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

export type ScalingDecision = AdaptiveDecision & { readonly t: number };

export interface ScalingHistory {
  readonly samples: readonly ScalingSample[];
  readonly decisions: readonly ScalingDecision[];
}
