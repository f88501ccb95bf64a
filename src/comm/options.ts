import { InvalidArgumentError } from '../errors.js';

interface NumberRule {
  readonly min: number;
  readonly max?: number;
  readonly integer?: boolean;
}

/** `value` if given and valid, else `fallback`; an invalid value throws, naming the option. */
export function numberOption(name: string, value: unknown, fallback: number, rule: NumberRule): number {
  if (value === undefined) return fallback;
  const max = rule.max ?? Number.MAX_SAFE_INTEGER;
  if (
    typeof value !== 'number' ||
    Number.isNaN(value) ||
    value < rule.min ||
    value > max ||
    (rule.integer === true && !Number.isInteger(value))
  ) {
    const kind = rule.integer === true ? 'an integer' : 'a number';
    // Whatever the caller passed, described as String() would; '[object Object]' is fine here.
    const given: unknown = value;
    throw new InvalidArgumentError(`options.${name} must be ${kind} from ${rule.min} to ${max}, not ${String(given)}`);
  }
  return value;
}

export function stringOption(name: string, value: unknown, required: boolean): string | undefined {
  if (value === undefined && !required) return undefined;
  if (typeof value !== 'string' || (required && value === '')) {
    throw new InvalidArgumentError(`options.${name} must be a ${required ? 'non-empty ' : ''}string`);
  }
  return value;
}

/**
 * A byte count from the environment, or undefined when the variable is not set: how a
 * whole cluster (every process it starts inherits the environment) is given one limit.
 */
export function envBytes(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 1024) throw new InvalidArgumentError(`${name} must be a whole number of bytes, at least 1024, not '${raw}'`);
  return value;
}
