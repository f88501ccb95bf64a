/**
 * An estimate of the bytes a value occupies, for the scheduler's cost of moving it and
 * the worker's memory accounting. Binary data counts exactly; the rest roughly, and deep
 * or huge structures are sampled rather than walked, because this runs once per result.
 */
const MAX_DEPTH = 8;
const SAMPLE = 64;

export function sizeOf(value: unknown, depth = 0): number {
  switch (typeof value) {
    case 'number':
      return 8;
    case 'boolean':
    case 'undefined':
      return 8;
    case 'bigint':
      return 16;
    case 'string':
      return 16 + value.length * 2;
    case 'object':
      break;
    default:
      return 16;
  }
  if (value === null) return 8;
  if (ArrayBuffer.isView(value)) return 64 + value.byteLength;
  if (value instanceof ArrayBuffer) return 64 + value.byteLength;
  if (depth >= MAX_DEPTH) return 64;
  if (Array.isArray(value)) return 32 + sampled(value as unknown[], depth);
  if (value instanceof Map) {
    let total = 64;
    for (const [k, v] of value) total += sizeOf(k, depth + 1) + sizeOf(v, depth + 1);
    return total;
  }
  if (value instanceof Set) {
    let total = 64;
    for (const v of value) total += sizeOf(v, depth + 1);
    return total;
  }
  const keys = Object.keys(value);
  let total = 32;
  for (const k of keys) total += 16 + k.length * 2;
  return total + sampled(keys.map((k) => (value as Record<string, unknown>)[k]), depth);
}

/** Sum over the items, or over a sample of them scaled up when there are many. */
function sampled(items: readonly unknown[], depth: number): number {
  const n = items.length;
  if (n <= SAMPLE) {
    let total = 0;
    for (const item of items) total += sizeOf(item, depth + 1);
    return total;
  }
  let total = 0;
  const step = n / SAMPLE;
  for (let i = 0; i < SAMPLE; i++) total += sizeOf(items[Math.floor(i * step)], depth + 1);
  return Math.round((total * n) / SAMPLE);
}
