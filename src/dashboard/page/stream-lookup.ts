/**
 * What the task stream shows under the pointer: the entry of a lane drawn over a span of
 * time, found in the page's store of the window's entries. It runs on pointer moves only,
 * so painting keeps no index for it, and a pass over typed arrays is cheap enough for that.
 */
import type { StreamStore } from './model.js';

/** Store kinds (`STREAM_KINDS`): compute, transfer, error. */
const COMPUTE = 0;
const ERROR = 2;

export interface StreamHit {
  /** Physical index of the entry in the store's columns. */
  readonly index: number;
  /** Other entries of the lane drawn in the same span (tasks shorter than a pixel share it). */
  readonly others: number;
}

/**
 * The entry of `lane` drawn over [from, to) (store clock, ms), where errors are drawn at
 * least `minErrorMs` long, ending where they stopped. Several there: an error first (it is
 * what a black pixel says), then a task over a transfer, then one covering the span's middle,
 * then the longest (the colour a shared pixel takes).
 */
export function entryAt(st: StreamStore, lane: number, from: number, to: number, minErrorMs: number): StreamHit | undefined {
  const mid = (from + to) / 2;
  let best = -1;
  let bestRank = -1;
  let bestSpan = -1;
  let hits = 0;
  for (let k = 0; k < st.size; k++) {
    const i = st.at(k);
    if (st.lane[i] !== lane) continue;
    const stop = st.stop[i] as number;
    if (stop < from) continue;
    const kind = st.kind[i] as number;
    let start = st.start[i] as number;
    if (kind === ERROR) start = Math.min(start, stop - minErrorMs);
    if (start >= to) continue;
    hits++;
    const rank = (kind === ERROR ? 4 : kind === COMPUTE ? 2 : 0) + (start <= mid && mid <= stop ? 1 : 0);
    const span = stop - start;
    if (rank > bestRank || (rank === bestRank && span > bestSpan)) {
      best = i;
      bestRank = rank;
      bestSpan = span;
    }
  }
  return best < 0 ? undefined : { index: best, others: hits - 1 };
}
