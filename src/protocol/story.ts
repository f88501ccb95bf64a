/**
 * A key's story: the transitions it went through in the scheduler and on workers, and
 * why (the stimulus that caused each), as Dask's `story()`. Types only.
 */

export interface StoryEntry {
  readonly key: string;
  /** State before and after, in the teller's vocabulary (scheduler or worker task states). */
  readonly from: string;
  readonly to: string;
  /** The event that caused it; commands and messages it caused carry the same id. */
  readonly stimulus: string;
  /** Milliseconds on the scheduler's clock (workers' entries are moved onto it). */
  readonly at: number;
  /** Who tells it: 'scheduler', or the worker's id. */
  readonly where: string;
  /** The worker involved, when there is one: where it runs or is held. */
  readonly worker?: string;
}
