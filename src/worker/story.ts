/**
 * The worker's memory of what happened to keys: a bounded ring of transitions, each with
 * the stimulus that caused it, so a key's story can be told across the scheduler and its
 * workers (Dask's `story()`). Parallel arrays: recording costs a few stores and no
 * allocation, whatever the load. The scheduler keeps a log of the same shape; this one
 * tells its entries as the worker's, on the worker's clock.
 */
import type { StoryEntry } from '../protocol/story.js';

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

  /** `worker`: the peer involved (the holder asked, the one data came from), if any. */
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
