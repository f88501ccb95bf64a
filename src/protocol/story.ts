/**
 * A key's story: the transitions it went through in the scheduler and on workers, and
 * why (the stimulus that caused each), as Dask's `story()`: the entry's shape, and the
 * bounded log the scheduler and each worker keep of their own transitions.
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

/**
 * A bounded log of transitions, each with the stimulus that caused it. A ring of parallel
 * arrays: recording costs a few stores and no allocation, whatever the load. Told by the
 * scheduler ('scheduler') or by a worker (its id), on the teller's clock.
 */
export class TransitionLog {
  readonly capacity: number;
  readonly #names: readonly string[];
  readonly #keys: (string | undefined)[];
  readonly #from: Uint8Array;
  readonly #to: Uint8Array;
  readonly #stimulus: (string | undefined)[];
  readonly #worker: (string | null)[];
  readonly #at: Float64Array;
  #next = 0;
  #size = 0;

  /** `names` maps the state codes recorded to the names stories tell. */
  constructor(capacity: number, names: readonly string[]) {
    this.capacity = capacity;
    this.#names = names;
    this.#keys = new Array<string | undefined>(capacity);
    this.#from = new Uint8Array(capacity);
    this.#to = new Uint8Array(capacity);
    this.#stimulus = new Array<string | undefined>(capacity);
    this.#worker = new Array<string | null>(capacity).fill(null);
    this.#at = new Float64Array(capacity);
  }

  get size(): number {
    return this.#size;
  }

  /** `worker`: where the task runs or is held, or the peer data came from; null if none. */
  record(key: string, from: number, to: number, stimulus: string, at: number, worker: string | null): void {
    if (this.capacity === 0) return;
    const i = this.#next;
    this.#keys[i] = key;
    this.#from[i] = from;
    this.#to[i] = to;
    this.#stimulus[i] = stimulus;
    this.#worker[i] = worker;
    this.#at[i] = at;
    this.#next = i + 1 === this.capacity ? 0 : i + 1;
    if (this.#size < this.capacity) this.#size++;
  }

  /** The entries for these keys still in the log, oldest first, told by `where`. O(size). */
  story(keys: ReadonlySet<string>, where: string): StoryEntry[] {
    const out: StoryEntry[] = [];
    const start = this.#size < this.capacity ? 0 : this.#next;
    for (let n = 0; n < this.#size; n++) {
      const i = (start + n) % this.capacity;
      const key = this.#keys[i]!;
      if (!keys.has(key)) continue;
      const worker = this.#worker[i];
      out.push({
        key,
        from: this.#names[this.#from[i]!] ?? String(this.#from[i]),
        to: this.#names[this.#to[i]!] ?? String(this.#to[i]),
        stimulus: this.#stimulus[i]!,
        at: this.#at[i]!,
        where,
        ...(worker === null || worker === undefined ? {} : { worker }),
      });
    }
    return out;
  }
}
