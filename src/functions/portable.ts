import { InvalidArgumentError } from '../errors.js';
import { portableExpression } from './check-source.js';
import type { FnRef } from './fn-ref.js';
import { hash, refs } from './registry.js';

/**
 * The travelling form of a function: built-in, registered module export, or checked
 * source. Throws CapturedVariableError or FunctionNotPortableError at graph-building time.
 */
export function fnRef(fn: Function): FnRef {
  if (typeof fn !== 'function') {
    throw new InvalidArgumentError(`a task needs a function, got ${typeof fn}`);
  }
  let ref = refs.get(fn);
  if (ref === undefined) {
    const expr = portableExpression(fn);
    const name = fn.name === '' ? 'anonymous' : fn.name;
    ref = { kind: 'source', id: `src:${hash(expr)}`, name, expr };
    refs.set(fn, ref);
  }
  return ref;
}
