/**
 * The worker core's ready tasks, in the order they became ready, and how a batch is taken
 * from them: as many as asked, oldest first, except that a task marked solo (it was in a
 * batch whose thread died) goes alone. Entries whose task is no longer ready are dropped as
 * they are met; a task is listed at most once however often it comes back.
 */
import { READY, type WorkerTask } from './records.js';

export class ReadyQueue {
  #items: WorkerTask[] = [];
  #head = 0;

  /** At the back. */
  push(t: WorkerTask): void {
    if (t.listed) return;
    t.listed = true;
    this.#items.push(t);
  }

  /** At the front, in this order: tasks sent back from a batch run before the rest. */
  pushFront(tasks: readonly WorkerTask[]): void {
    const fresh = tasks.filter((t) => !t.listed);
    if (fresh.length === 0) return;
    for (const t of fresh) t.listed = true;
    this.#items = [...fresh, ...this.#items.slice(this.#head)];
    this.#head = 0;
  }

  /** Up to `size` ready tasks, oldest first; a solo task is taken alone. */
  take(size: number): WorkerTask[] {
    const batch: WorkerTask[] = [];
    const items = this.#items;
    while (this.#head < items.length && batch.length < size) {
      const t = items[this.#head]!;
      if (t.state === READY && t.solo && batch.length > 0) break;
      this.#head++;
      t.listed = false;
      if (t.state !== READY) continue;
      batch.push(t);
      if (t.solo) break;
    }
    if (this.#head > 1024 && this.#head * 2 > items.length) {
      this.#items = items.slice(this.#head);
      this.#head = 0;
    }
    return batch;
  }

  /** The entries from the head (for validation). */
  entries(): readonly WorkerTask[] {
    return this.#items.slice(this.#head);
  }
}
