/**
 * Large ArrayBuffers a worker's threads have finished with, kept to take the next copies of
 * the same size. Memory the process has touched is cheap to write into again; fresh memory
 * costs a page fault per page (about 16 ms for 64 MiB in huge pages here, and up to 200 ms
 * on a virtual machine whose host backs guest memory on first touch), so arrays of equal
 * chunks — the common case — stop paying it once per task.
 *
 *   const pool = new BufferPool(128 * 2 ** 20);
 *   const copy = pool.take(n) ?? new ArrayBuffer(n);
 *   pool.give(copy); // when nothing refers to it any more
 *
 * Bounded by `maxBytes` in all and `perSize` buffers of one size; after `idleMs` without a
 * take or give it empties, so a burst's buffers are not held for good.
 */
export class BufferPool {
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

  /** Keeps `buffer` for a later take, if there is room; detached buffers are ignored. */
  give(buffer: ArrayBuffer): void {
    const n = buffer.byteLength;
    if (n === 0 || this.#bytes + n > this.maxBytes) return;
    let list = this.#free.get(n);
    if (list === undefined) this.#free.set(n, (list = []));
    if (list.length >= this.perSize) return;
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
