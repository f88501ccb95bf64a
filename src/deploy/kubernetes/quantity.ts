/**
 * Kubernetes resource quantities ('2Gi', '1500M', '500m', '1e9') as numbers. Not the
 * worker's own size syntax: in a quantity `m` is milli and `M` mega, and `Gi` is 2^30.
 */
import { InvalidArgumentError } from '../../errors.js';

const SUFFIXES: Readonly<Record<string, number>> = {
  '': 1,
  m: 1e-3,
  k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/** The value of a quantity; throws InvalidArgumentError naming `what` when it is not one. */
export function parseQuantity(value: string | number, what: string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new InvalidArgumentError(`${what} must be a non-negative number, got ${value}`);
    return value;
  }
  const match = /^\s*([+]?(?:\d+(?:\.\d*)?|\.\d+))(?:([eE][+-]?\d+)|([a-zA-Z]*))\s*$/.exec(value);
  const multiplier = match === null ? undefined : match[2] !== undefined ? 1 : SUFFIXES[match[3] ?? ''];
  if (match === null || multiplier === undefined) {
    throw new InvalidArgumentError(`${what} must be a Kubernetes quantity such as '2Gi', '1500M' or '500m', got ${JSON.stringify(value)}`);
  }
  return Number(`${match[1]!}${match[2] ?? ''}`) * multiplier;
}

/** Bytes, whole: a memory quantity, or a number of bytes. */
export function memoryBytes(value: string | number, what: string): number {
  const bytes = Math.floor(parseQuantity(value, what));
  if (bytes <= 0) throw new InvalidArgumentError(`${what} must be a positive amount of memory, got ${JSON.stringify(value)}`);
  return bytes;
}
