/**
 * The task stream's memory: a bounded ring of the latest finished tasks, transfers and
 * errors, kept in order of `stop` so a reader asks for "everything after t" with a binary
 * search. The scheduler shell only pushes; the dashboard reads.
 *
 * ```ts
 * const stream = new TaskStreamBuffer({ capacity: 50_000 });
 * // on task-finished:
 * stream.record({ key, prefix, worker, start: startedAt, stop: finishedAt, kind: 'compute' });
 * // on remove-worker:
 * stream.forgetWorker(worker);
 * ```
 */
import { InvalidArgumentError } from '../errors.js';
import type { PrefixTotals, TaskStreamEntry } from './source.js';

export interface TaskStreamBufferOptions {
  /** Entries kept; the oldest go first. Default 50,000. */
  readonly capacity?: number;
  /** Lanes one worker may take when `record` assigns them. Default 64. */
  readonly maxLanesPerWorker?: number;
  /** Distinct prefixes counted in `prefixTotals`; later ones are not counted. Default 10,000. */
  readonly maxPrefixes?: number;
}

/** An entry whose lane the buffer chooses when `thread` is absent. */
export type TaskStreamInput = Omit<TaskStreamEntry, 'thread'> & { readonly thread?: number };

interface MutableTotals {
  finished: number;
  erred: number;
}

/**
 * An out-of-order entry moves back at most this far; reports later than that stay where
 * they land, which costs a reader at worst a missed bar, never a wrong one.
 */
const MAX_REORDER = 1024;

export class TaskStreamBuffer {
  readonly capacity: number;
  readonly #maxLanes: number;
  readonly #maxPrefixes: number;
  readonly #ring: (TaskStreamEntry | undefined)[];
  /** Physical index of the oldest entry. */
  #head = 0;
  #size = 0;
  #pushed = 0;
  readonly #lanes = new Map<string, number[]>();
  readonly #totals = new Map<string, MutableTotals>();
  #lastPrefix = '';
  #lastTotals: MutableTotals | undefined;

  constructor(options: TaskStreamBufferOptions = {}) {
    this.capacity = positiveInteger('capacity', options.capacity, 50_000);
    this.#maxLanes = positiveInteger('maxLanesPerWorker', options.maxLanesPerWorker, 64);
    this.#maxPrefixes = positiveInteger('maxPrefixes', options.maxPrefixes, 10_000);
    this.#ring = new Array<TaskStreamEntry | undefined>(this.capacity);
  }

  /** Entries held now. */
  get size(): number {
    return this.#size;
  }

  /** Entries ever pushed. */
  get pushed(): number {
    return this.#pushed;
  }

  /**
   * Pushes an entry, choosing its lane (the lowest one free at `start`) unless given; an
   * input with its lane is kept as it is, so the caller must not change it afterwards.
   */
  record(input: TaskStreamInput): TaskStreamEntry {
    if (input.thread !== undefined) {
      const entry = input as TaskStreamEntry;
      this.push(entry);
      return entry;
    }
    const entry: TaskStreamEntry = {
      key: input.key,
      prefix: input.prefix,
      worker: input.worker,
      thread: this.#lane(input.worker, input.start, input.stop),
      start: input.start,
      stop: input.stop,
      kind: input.kind,
    };
    this.push(entry);
    return entry;
  }

  push(entry: TaskStreamEntry): void {
    this.#pushed++;
    this.#count(entry);
    const cap = this.capacity;
    const ring = this.#ring;
    if (this.#size === cap) {
      this.#head = this.#head + 1 === cap ? 0 : this.#head + 1;
    } else {
      this.#size++;
    }
    // Insertion into an almost sorted ring: reports arrive roughly in order of stop (each
    // worker's in order, a batch at a time), so an entry moves back past a batch at most.
    let i = this.#size - 1;
    let at = this.#head + i >= cap ? this.#head + i - cap : this.#head + i;
    const floor = Math.max(0, i - MAX_REORDER);
    while (i > floor) {
      const before = at === 0 ? cap - 1 : at - 1;
      const prev = ring[before] as TaskStreamEntry;
      if (prev.stop <= entry.stop) break;
      ring[at] = prev;
      at = before;
      i--;
    }
    ring[at] = entry;
  }

  /** Entries with `stop > since`, oldest first; with `limit`, the newest `limit` of them. */
  since(since: number, limit = Infinity): TaskStreamEntry[] {
    const cap = this.capacity;
    const ring = this.#ring;
    let lo = 0;
    let hi = this.#size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((ring[(this.#head + mid) % cap] as TaskStreamEntry).stop > since) hi = mid;
      else lo = mid + 1;
    }
    const from = Math.max(lo, this.#size - Math.max(0, Math.floor(limit)));
    const out = new Array<TaskStreamEntry>(this.#size - from);
    for (let i = from; i < this.#size; i++) out[i - from] = ring[(this.#head + i) % cap] as TaskStreamEntry;
    return out;
  }

  /** Finished and erred tasks per prefix since the start (transfers are not tasks). */
  prefixTotals(): ReadonlyMap<string, PrefixTotals> {
    return this.#totals;
  }

  /** Drops a departed worker's lane bookkeeping (its entries stay until pushed out). */
  forgetWorker(worker: string): void {
    this.#lanes.delete(worker);
  }

  clear(): void {
    this.#ring.fill(undefined);
    this.#head = 0;
    this.#size = 0;
    this.#lanes.clear();
    this.#totals.clear();
    this.#lastPrefix = '';
    this.#lastTotals = undefined;
  }

  #lane(worker: string, start: number, stop: number): number {
    let lanes = this.#lanes.get(worker);
    if (lanes === undefined) {
      lanes = [];
      this.#lanes.set(worker, lanes);
    }
    let chosen = -1;
    for (let i = 0; i < lanes.length; i++) {
      if ((lanes[i] as number) <= start) {
        chosen = i;
        break;
      }
    }
    if (chosen < 0) {
      // A mark without duration (a transfer or an error reported on arrival) shares the lane
      // that frees first rather than opening a row of its own.
      if (lanes.length < this.#maxLanes && (stop > start || lanes.length === 0)) {
        chosen = lanes.length;
        lanes.push(stop);
        return chosen;
      }
      // Every lane is busy: overlap on the one that frees first rather than grow without bound.
      chosen = lanes.indexOf(Math.min(...lanes));
    }
    lanes[chosen] = Math.max(lanes[chosen] as number, stop);
    return chosen;
  }

  #count(entry: TaskStreamEntry): void {
    if (entry.kind === 'transfer') return;
    // Tasks of one prefix come in runs: the last one's totals, without a lookup.
    let t = entry.prefix === this.#lastPrefix ? this.#lastTotals : this.#totals.get(entry.prefix);
    if (t === undefined) {
      if (this.#totals.size >= this.#maxPrefixes) return;
      t = { finished: 0, erred: 0 };
      this.#totals.set(entry.prefix, t);
    }
    this.#lastPrefix = entry.prefix;
    this.#lastTotals = t;
    if (entry.kind === 'compute') t.finished++;
    else t.erred++;
  }
}

function positiveInteger(name: string, value: number | undefined, dflt: number): number {
  if (value === undefined) return dflt;
  if (!Number.isInteger(value) || value <= 0) throw new InvalidArgumentError(`options.${name} must be a positive integer`);
  return value;
}
