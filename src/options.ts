/**
 * Options objects checked at the door: a misspelt option name is an error naming it (and
 * the closest known one), never a silently ignored setting.
 *
 * ```ts
 * const KNOWN = optionNames<AdaptiveInput>()(['minimum', 'maximum', 'targetDuration', …]);
 * checkOptions(options, KNOWN, 'adapt()');   // adapt({ maximun: 4 }) →
 * // InvalidArgumentError: adapt(): unknown option 'maximun' (did you mean 'maximum'?)
 * ```
 */
import { InvalidArgumentError } from './errors.js';

/**
 * The names of an options type, checked for completeness at compile time: leaving one
 * out (or adding one the type does not have) does not compile.
 */
export function optionNames<T>(): <const K extends readonly (keyof T & string)[]>(
  names: K & ([Exclude<keyof T, K[number]>] extends [never] ? unknown : { readonly missing: Exclude<keyof T, K[number]> }),
) => readonly string[] {
  return (names) => names;
}

/** Names users bring from Dask (Python spelling) and what Tessera calls them. */
const FROM_DASK: Readonly<Record<string, string>> = {
  n_workers: 'workers',
  nWorkers: 'workers',
  threads_per_worker: 'threadsPerWorker',
  memory_limit: 'memoryLimit',
  target_duration: 'targetDuration',
  wait_count: 'waitCount',
};

/**
 * Throws InvalidArgumentError unless `options` is undefined or an object whose every
 * own key is in `known`. The message names `where`, the unknown key, and the closest
 * known one.
 */
export function checkOptions(options: unknown, known: readonly string[], where: string): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidArgumentError(`${where}: options must be an object, got ${options === null ? 'null' : Array.isArray(options) ? 'an array' : typeof options}`);
  }
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const hint = closest(key, known);
    throw new InvalidArgumentError(`${where}: unknown option '${key}'${hint === undefined ? ` (known: ${known.join(', ')})` : ` (did you mean '${hint}'?)`}`);
  }
}

/** The known name `key` most likely meant, or undefined when none is close. */
export function closest(key: string, known: readonly string[]): string | undefined {
  const dask = FROM_DASK[key];
  if (dask !== undefined && known.includes(dask)) return dask;
  const camel = key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  if (camel !== key && known.includes(camel)) return camel;
  const lower = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const name of known) {
    const d = distance(lower, name.toLowerCase());
    if (d < bestDistance) {
      best = name;
      bestDistance = d;
    }
  }
  // Close enough to be a typo: a third of the letters at most, and at least one kept right.
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(Math.max(key.length, best.length) / 3)) ? best : undefined;
}

/** Optimal-string-alignment distance: edits, with a swap of neighbours counting as one. */
function distance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d = new Array<number>(rows * cols).fill(0);
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[(i - 1) * cols + j]! + 1, d[i * cols + j - 1]! + 1, d[(i - 1) * cols + j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[(i - 2) * cols + j - 2]! + 1);
      d[i * cols + j] = v;
    }
  }
  return d[rows * cols - 1]!;
}
