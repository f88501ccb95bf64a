/**
 * A persistent pool that bursts: one target for the whole cluster (the ordinary policy's),
 * split between the persistent backend, which takes the first `persistent` workers, and a
 * burst backend (Lambda), which takes the excess. The persistent pool fills first and
 * empties last, so results end on it; the burst scales to zero when the work is done. Each
 * side then follows its own target with the ordinary rules (scale up at once, retire idle
 * workers after `waitCount` nominations). Pure, as policy.ts.
 */
import { InvalidArgumentError } from '../errors.js';
import type { AdaptiveDecision } from '../protocol/scaling.js';
import { type AdaptiveInput, type AdaptiveObservation, AdaptivePolicy, type ResolvedAdaptiveOptions, type WorkerView } from './policy.js';

/** The persistent pool's size limit, checked against the cluster's bounds. */
export function resolvePersistent(input: AdaptiveInput, options: ResolvedAdaptiveOptions): number {
  const persistent = input.persistent ?? Math.max(1, options.minimum);
  if (!Number.isInteger(persistent) || persistent < 0) throw new InvalidArgumentError('adapt(): persistent must be a non-negative integer');
  if (persistent < options.minimum) throw new InvalidArgumentError(`adapt(): persistent (${persistent}) is below minimum (${options.minimum})`);
  if (persistent > options.maximum) throw new InvalidArgumentError(`adapt(): persistent (${persistent}) is above maximum (${options.maximum})`);
  return persistent;
}

/** How many of `total` workers each backend holds: the persistent pool first. */
export function splitTarget(total: number, persistent: number): { readonly persistent: number; readonly burst: number } {
  const kept = Math.min(total, persistent);
  return { persistent: kept, burst: total - kept };
}

/** One side of the cluster: its workers and its backend's counts. */
export interface SideView {
  readonly workers: readonly WorkerView[];
  readonly requested: number;
  readonly closing: number;
}

export interface BurstObservation extends Omit<AdaptiveObservation, 'workers' | 'requested' | 'closing'> {
  readonly persistent: SideView;
  readonly burst: SideView;
}

export interface BurstDecision {
  readonly target: number;
  readonly reason: string;
  readonly persistent: AdaptiveDecision;
  readonly burst: AdaptiveDecision;
}

export class BurstPolicy {
  readonly persistent: number;
  readonly #whole: AdaptivePolicy;
  readonly #pool: AdaptivePolicy;
  readonly #burst: AdaptivePolicy;

  constructor(options: ResolvedAdaptiveOptions, persistent: number) {
    this.persistent = persistent;
    this.#whole = new AdaptivePolicy(options);
    this.#pool = new AdaptivePolicy({ ...options, maximum: persistent });
    this.#burst = new AdaptivePolicy({ ...options, minimum: 0, maximum: options.maximum - persistent });
  }

  decide(o: BurstObservation): BurstDecision {
    const { persistent, burst, ...rest } = o;
    const whole: AdaptiveObservation = {
      ...rest,
      workers: [...persistent.workers, ...burst.workers],
      requested: persistent.requested + burst.requested,
      closing: persistent.closing + burst.closing,
    };
    const { target, reason } = this.#whole.target(whole);
    const split = splitTarget(target, this.persistent);
    return {
      target,
      reason,
      persistent: this.#pool.decide({ ...rest, ...persistent }, { target: split.persistent, reason: `${reason}; pool ${split.persistent} of ${target}` }),
      burst: this.#burst.decide({ ...rest, ...burst }, { target: split.burst, reason: `${reason}; burst ${split.burst} of ${target}` }),
    };
  }

  /** A scale-up of one side failed: that side backs off. */
  failed(side: 'persistent' | 'burst', now: number): void {
    (side === 'persistent' ? this.#pool : this.#burst).failed(now);
  }
}
