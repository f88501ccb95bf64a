import { InvalidArgumentError } from '../errors.js';

/** A positive number of milliseconds (or bytes), named in the error when it is not. */
export function checkPositive(value: unknown, name: string, where: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new InvalidArgumentError(`${where}: options.${name} must be a positive number, got ${typeof value === 'number' ? value : typeof value}`);
  }
  return value;
}
