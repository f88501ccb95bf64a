/**
 * Futures inside structures, as `client.gather` takes them: one Future, or arrays and plain
 * objects holding Futures at any depth, rebuilt with their values.
 */
import { Future } from './future.js';
import type { FutureList } from './future-list.js';

/** What `gather` resolves to: the same shape, each Future replaced by its value. */
export type Gathered<T> =
  T extends Future<infer R>
    ? R
    : T extends FutureList<infer R>
      ? R[]
      : T extends readonly unknown[]
        ? { -readonly [I in keyof T]: Gathered<T[I]> }
        : T extends Record<string, unknown>
          ? { -readonly [K in keyof T]: Gathered<T[K]> }
          : T;

/** Every Future in `value`, depth first. */
export function collectFutures(value: unknown, out: Future[] = []): Future[] {
  if (value instanceof Future) out.push(value);
  else if (Array.isArray(value)) for (const item of value as unknown[]) collectFutures(item, out);
  else if (isPlain(value)) for (const item of Object.values(value)) collectFutures(item, out);
  return out;
}

/** `value` with each Future replaced by its value from `byKey`; containers copied, the rest kept. */
export function rebuild(value: unknown, byKey: ReadonlyMap<string, unknown>): unknown {
  if (value instanceof Future) return byKey.get(value.key);
  if (Array.isArray(value)) return (value as unknown[]).map((item) => rebuild(item, byKey));
  if (isPlain(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rebuild(v, byKey)]));
  return value;
}

function isPlain(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
