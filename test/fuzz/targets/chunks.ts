/**
 * How a stream of `length` bytes is cut into chunks, decided by one seed byte so that the
 * fuzzer controls it and a saved input replays the same cuts: mostly short chunks, which
 * split every header and length table, with now and then a long one.
 */
export function chunkSizes(length: number, seed: number): number[] {
  // xorshift32; seed 0 would stay 0, hence the offset.
  let state = (seed + 1) * 0x9e3779b1;
  const next = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
  const sizes: number[] = [];
  for (let left = length; left > 0; ) {
    const r = next();
    const size = Math.min(left, r % 8 === 0 ? 1 + (r % 4096) : 1 + (r % 13));
    sizes.push(size);
    left -= size;
  }
  return sizes;
}
