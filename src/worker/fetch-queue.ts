/**
 * The worker core's keys to fetch, in the order they came to be wanted, and how they are
 * asked for: one request per holder for every key whose next holder it is, as many
 * holders at once as requests are free; the others wait their turn. A record is listed
 * at most once however often it goes back to fetch; records no longer in fetch are
 * dropped as they are met.
 */
import { FETCH, type WorkerTask } from './records.js';

export class FetchQueue {
  #items: WorkerTask[] = [];

  get length(): number {
    return this.#items.length;
  }

  push(d: WorkerTask): void {
    if (d.queued) return;
    d.queued = true;
    this.#items.push(d);
  }

  /** Holder → the records to ask it for now, for at most `holders` holders. */
  take(holders: number): Map<string, WorkerTask[]> {
    const byHolder = new Map<string, WorkerTask[]>();
    const rest: WorkerTask[] = [];
    for (const d of this.#items) {
      if (d.state !== FETCH) {
        d.queued = false;
        continue;
      }
      const holder = d.holders[0]!;
      let group = byHolder.get(holder);
      if (group === undefined) {
        if (byHolder.size >= holders) {
          // Asked when an answer frees a request.
          rest.push(d);
          continue;
        }
        byHolder.set(holder, (group = []));
      }
      d.queued = false;
      group.push(d);
    }
    this.#items = rest;
    return byHolder;
  }

  /** Every entry (for validation). */
  entries(): readonly WorkerTask[] {
    return this.#items;
  }
}
