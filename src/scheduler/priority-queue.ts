/**
 * A binary min-heap whose items remember their own position (`heapIndex`, -1 when out),
 * so that removing or re-keying an arbitrary item is O(log n) without a side table.
 * The scheduler keeps two: queued tasks by priority and running workers by load.
 */
export interface HeapItem {
  heapIndex: number;
}

export class IndexedHeap<T extends HeapItem> {
  private readonly items: T[] = [];
  private readonly less: (a: T, b: T) => boolean;

  /** `less(a, b)`: a comes out before b. */
  constructor(less: (a: T, b: T) => boolean) {
    this.less = less;
  }

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  /** The item at heap position i (0 is the least; 1 and 2 are its children). */
  at(i: number): T | undefined {
    return this.items[i];
  }

  has(item: T): boolean {
    const i = item.heapIndex;
    return i >= 0 && this.items[i] === item;
  }

  push(item: T): void {
    const i = this.items.length;
    this.items.push(item);
    item.heapIndex = i;
    this.up(i);
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    if (top === undefined) return undefined;
    const last = items.pop() as T;
    if (last !== top) {
      items[0] = last;
      last.heapIndex = 0;
      this.down(0);
    }
    top.heapIndex = -1;
    return top;
  }

  remove(item: T): void {
    const i = item.heapIndex;
    const items = this.items;
    if (i < 0 || items[i] !== item) return;
    const last = items.pop() as T;
    item.heapIndex = -1;
    if (last !== item) {
      items[i] = last;
      last.heapIndex = i;
      this.update(last);
    }
  }

  /** Restore order after the item's key changed. */
  update(item: T): void {
    const i = item.heapIndex;
    if (i < 0) return;
    if (i > 0 && this.less(item, this.items[(i - 1) >> 1] as T)) this.up(i);
    else this.down(i);
  }

  /** Items in heap order (not sorted); for snapshots and tests. */
  values(): readonly T[] {
    return this.items;
  }

  private up(i: number): void {
    const items = this.items;
    const item = items[i] as T;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = items[p] as T;
      if (!this.less(item, parent)) break;
      items[i] = parent;
      parent.heapIndex = i;
      i = p;
    }
    items[i] = item;
    item.heapIndex = i;
  }

  private down(i: number): void {
    const items = this.items;
    const n = items.length;
    const item = items[i] as T;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      let child = items[l] as T;
      if (r < n) {
        const right = items[r] as T;
        if (this.less(right, child)) {
          c = r;
          child = right;
        }
      }
      if (!this.less(child, item)) break;
      items[i] = child;
      child.heapIndex = i;
      i = c;
    }
    items[i] = item;
    item.heapIndex = i;
  }
}

/**
 * A priority queue for items that mostly arrive in order: those that come no earlier than
 * the last one in the run wait in a first-in-first-out run (O(1) in and out), the others
 * in an IndexedHeap; `pop` takes the better of the two heads. The scheduler's queued tasks
 * arrive so — each graph's ready roots are pushed sorted, in graph order — so a million
 * queued roots cost a comparison each rather than a heap's twenty, each a cache miss.
 *
 * An item in the run has `heapIndex` ≤ -2: -2 - its sequence number in the run (the heap's
 * items have theirs, out ones -1). Removing from the run leaves a hole the head skips.
 */
export class RunQueue<T extends HeapItem> {
  private readonly heap: IndexedHeap<T>;
  private readonly less: (a: T, b: T) => boolean;
  private run: (T | null)[] = [];
  /** Sequence number of run[0]. */
  private base = 0;
  /** Index in `run` of the first slot not yet taken (possibly a hole). */
  private head = 0;
  private inRun = 0;
  /** The item last added to the run: a new one joins the run only if it is not better. */
  private last: T | null = null;

  /** `less(a, b)`: a comes out before b. */
  constructor(less: (a: T, b: T) => boolean) {
    this.less = less;
    this.heap = new IndexedHeap(less);
  }

  get size(): number {
    return this.inRun + this.heap.size;
  }

  has(item: T): boolean {
    const i = item.heapIndex;
    if (i >= 0) return this.heap.has(item);
    return i <= -2 && this.run[-2 - i - this.base] === item;
  }

  push(item: T): void {
    if (this.last === null || !this.less(item, this.last)) {
      item.heapIndex = -2 - (this.base + this.run.length);
      this.run.push(item);
      this.inRun++;
      this.last = item;
    } else {
      this.heap.push(item);
    }
  }

  peek(): T | undefined {
    const first = this.skipHoles();
    const top = this.heap.peek();
    if (first === null) return top;
    return top !== undefined && this.less(top, first) ? top : first;
  }

  pop(): T | undefined {
    const first = this.skipHoles();
    const top = this.heap.peek();
    if (first === null || (top !== undefined && this.less(top, first))) return this.heap.pop();
    this.run[this.head++] = null;
    this.inRun--;
    first.heapIndex = -1;
    this.settle();
    return first;
  }

  remove(item: T): void {
    const i = item.heapIndex;
    if (i >= 0) {
      this.heap.remove(item);
      return;
    }
    const at = -2 - i - this.base;
    if (i > -2 || this.run[at] !== item) return;
    this.run[at] = null;
    this.inRun--;
    item.heapIndex = -1;
    this.settle();
  }

  /** Items in no particular order; for snapshots and tests. */
  values(): T[] {
    const out: T[] = [];
    for (let i = this.head; i < this.run.length; i++) {
      const item = this.run[i];
      if (item !== null && item !== undefined) out.push(item);
    }
    return out.concat(this.heap.values());
  }

  /** The run's first item, holes at the head dropped; null when the run is empty. */
  private skipHoles(): T | null {
    const run = this.run;
    while (this.head < run.length) {
      const item = run[this.head];
      if (item !== null && item !== undefined) return item;
      this.head++;
    }
    return null;
  }

  /** Drops what was taken from the run's front once it is half the array; empties it when empty. */
  private settle(): void {
    if (this.inRun === 0) {
      // Nothing refers to a sequence number now: start again from 0 (heapIndex stays small).
      this.base = 0;
      this.run = [];
      this.head = 0;
      this.last = null;
    } else if (this.head > 1024 && this.head * 2 > this.run.length) {
      this.run = this.run.slice(this.head);
      this.base += this.head;
      this.head = 0;
    }
  }
}
