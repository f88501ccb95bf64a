/** A binary min-heap of non-negative integers (node indices; lower runs first). */
export class IntMinHeap {
  #items: Int32Array;
  #size = 0;

  constructor(capacity = 64) {
    this.#items = new Int32Array(Math.max(capacity, 4));
  }

  get size(): number {
    return this.#size;
  }

  push(value: number): void {
    if (this.#size === this.#items.length) {
      const grown = new Int32Array(this.#items.length * 2);
      grown.set(this.#items);
      this.#items = grown;
    }
    const items = this.#items;
    let i = this.#size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent]!;
      if (p <= value) break;
      items[i] = p;
      i = parent;
    }
    items[i] = value;
  }

  /** Removes and returns the smallest value; -1 when empty. */
  pop(): number {
    if (this.#size === 0) return -1;
    const items = this.#items;
    const top = items[0]!;
    const last = items[--this.#size]!;
    const n = this.#size;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      const right = child + 1;
      if (right < n && items[right]! < items[child]!) child = right;
      if (items[child]! >= last) break;
      items[i] = items[child]!;
      i = child;
    }
    if (n > 0) items[i] = last;
    return top;
  }
}
