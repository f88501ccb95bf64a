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
