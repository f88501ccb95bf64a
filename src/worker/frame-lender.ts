/**
 * Memory for the large frames a worker fetches from its peers, taken back when the values
 * read from them are let go. A fetched 64 MiB array is a view onto the frame it arrived
 * in, and the store keeps it; without this each fetch reads into fresh memory, whose first
 * touch costs a page fault per page (see BufferPool). With it, the frame of the next
 * fetch of that size lands in memory touched already.
 *
 *   const lender = new FrameLender(pool);
 *   connect(address, { frameMemory: lender.memory });  // frames read into lent memory
 *   const lent = lender.held(value);                   // stored: what it holds, counted
 *   lender.released(lent);                             // let go: back to the pool at 0
 *   lender.sent(value);                                // sent on: never taken back
 *
 * A buffer goes back only when every stored value found holding it has been let go, and
 * never once a value holding it has been put in a reply (a socket may still be reading
 * it, and a peer could be sent what the next frame wrote there), nor when a task's thread
 * would clone it late (see `held`). A value too large to search might hold any of them:
 * then none lent so far comes back.
 */
import type { BufferPool } from '../serialize/buffer-pool.js';
import { copiedBuffers, eachBuffer } from '../serialize/check-value.js';

/** Frames smaller than this are read into fresh memory, as before. */
export const MIN_LENT_BYTES = 1024 * 1024;

const NONE: readonly ArrayBuffer[] = [];

export class FrameLender {
  readonly #pool: BufferPool;
  /** Each buffer lent and not yet back or sent on, with how many stored values hold it. */
  #lent = new WeakMap<ArrayBufferLike, number>();
  /** Lent buffers some stored value holds: while none is, a reply has nothing to look for. */
  #held = 0;
  #reused = 0;

  constructor(pool: BufferPool) {
    this.#pool = pool;
  }

  /** Frames read into memory the worker had used before. */
  get reused(): number {
    return this.#reused;
  }

  /** The connections' `frameMemory`: a buffer of the frame's size from the pool, or a fresh one, lent. */
  readonly memory = (length: number): Uint8Array | null => {
    if (length < MIN_LENT_BYTES) return null;
    const reused = this.#pool.take(length);
    if (reused !== undefined) this.#reused++;
    const buffer = reused ?? Buffer.allocUnsafeSlow(length).buffer;
    this.#lent.set(buffer, 0);
    return new Uint8Array(buffer);
  };

  /**
   * A fetched value now stored: the lent buffers it holds, each counted once more. Only
   * those a task's thread gets a copy of as its batch is posted; one deeper in the value is
   * cloned when the batch reaches its thread, which may be later, so it is never taken back.
   */
  held(value: unknown): readonly ArrayBuffer[] {
    if (typeof value !== 'object' || value === null) return NONE;
    const copied = copiedBuffers(value);
    const found: ArrayBuffer[] = [];
    const whole = eachBuffer([value], (buffer) => {
      const holders = this.#lent.get(buffer);
      if (holders === undefined || found.includes(buffer as ArrayBuffer)) return;
      if (!copied.has(buffer as ArrayBuffer)) {
        this.#lent.delete(buffer);
        return;
      }
      if (holders === 0) this.#held++;
      this.#lent.set(buffer, holders + 1);
      found.push(buffer as ArrayBuffer);
    });
    if (whole) return found;
    this.#forgetAll();
    return NONE;
  }

  /** A stored value let go: what `held` found, counted once less; a buffer nothing holds goes back. */
  released(buffers: readonly ArrayBuffer[]): void {
    for (const buffer of buffers) {
      const holders = this.#lent.get(buffer);
      if (holders === undefined) continue;
      if (holders > 1) {
        this.#lent.set(buffer, holders - 1);
        continue;
      }
      this.#lent.delete(buffer);
      this.#held--;
      this.#pool.give(buffer);
    }
  }

  /** A value put in a reply: the lent buffers it holds are never taken back. */
  sent(value: unknown): void {
    if (this.#held === 0 || typeof value !== 'object' || value === null) return;
    const whole = eachBuffer([value], (buffer) => {
      const holders = this.#lent.get(buffer);
      if (holders === undefined) return;
      this.#lent.delete(buffer);
      if (holders > 0) this.#held--;
    });
    if (!whole) this.#forgetAll();
  }

  /** Nothing lent so far comes back: it is left to the collector. */
  #forgetAll(): void {
    this.#lent = new WeakMap();
    this.#held = 0;
  }
}
