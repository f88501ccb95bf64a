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
