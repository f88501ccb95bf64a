/**
 * Large ArrayBuffers a worker is done with — copies its threads were handed, frames whose
 * values it let go — kept to take the next copies or frames of the same size. Memory the
 * process has touched is cheap to write into again; fresh memory costs a page fault per
 * page (about 16 ms for 64 MiB in huge pages here, and up to 200 ms on a virtual machine
 * whose host backs guest memory on first touch), so arrays of equal chunks — the common
 * case — stop paying it once per task.
 *
 *   const pool = new BufferPool(128 * 2 ** 20);
 *   const copy = pool.take(n) ?? new ArrayBuffer(n);
 *   pool.give(copy); // when nothing refers to it any more
 *
 * Bounded by `maxBytes` in all and `perSize` buffers of one size; a buffer given when the
 * pool is full takes the room of those of the sizes given longest ago, so the sizes in use
 * now win over a size used once. After `idleMs` without a take or give it empties, so a
 * burst's buffers are not held for good.
 */
export class BufferPool {
  /** Free buffers by size; a size moves to the end each time one of it is given. */
  readonly #free = new Map<number, ArrayBuffer[]>();
  #bytes = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    readonly maxBytes: number,
    readonly perSize = 2,
    readonly idleMs = 10_000,
  ) {}

  /** Bytes held now. */
  get bytes(): number {
    return this.#bytes;
  }

  /** A buffer of exactly `byteLength` bytes, with stale contents, or undefined. */
  take(byteLength: number): ArrayBuffer | undefined {
    const list = this.#free.get(byteLength);
    const buffer = list?.pop();
    if (buffer === undefined) return undefined;
    if (list!.length === 0) this.#free.delete(byteLength);
    this.#bytes -= byteLength;
    this.#touch();
    return buffer;
  }

  /**
   * Keeps `buffer` for a later take, dropping buffers of other sizes, those given longest
   * ago first, to make room; one larger than `maxBytes`, one of a size the pool holds
   * `perSize` of already, and a detached one are ignored.
   */
  give(buffer: ArrayBuffer): void {
    const n = buffer.byteLength;
    if (n === 0 || n > this.maxBytes) return;
    let list = this.#free.get(n);
    if (list !== undefined && list.length >= this.perSize) return;
    for (const [size, others] of this.#free) {
      if (this.#bytes + n <= this.maxBytes) break;
      if (size === n) continue;
      while (others.length > 0 && this.#bytes + n > this.maxBytes) {
        others.shift();
        this.#bytes -= size;
      }
      if (others.length === 0) this.#free.delete(size);
    }
    if (this.#bytes + n > this.maxBytes) return;
    // The most recently given size goes last: the first to keep its buffers.
    if (list === undefined) list = [];
    else this.#free.delete(n);
    this.#free.set(n, list);
    list.push(buffer);
    this.#bytes += n;
    this.#touch();
  }

  clear(): void {
    this.#free.clear();
    this.#bytes = 0;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #touch(): void {
    if (this.#bytes === 0) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    } else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => this.clear(), this.idleMs).unref();
    } else {
      this.#timer.refresh();
    }
  }
}
