import { createHash } from 'node:crypto';
import { FunctionNotPortableError, InvalidArgumentError } from '../errors.js';
import { builtins, type BuiltinName } from './builtins.js';
import { portableExpression } from './check-source.js';
import type { FnRef } from './fn-ref.js';

// Each function object is checked and hashed once, however many tasks use it.
const refs = new WeakMap<Function, FnRef>();

for (const [name, fn] of Object.entries(builtins)) {
  refs.set(fn, { kind: 'builtin', id: `builtin:${name}`, name: name as BuiltinName });
}

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

/**
 * Registers functions exported by a module so that they travel by reference instead of as
 * source; they may then use imports, npm packages and module state.
 *
 * ```ts
 * // ops.ts
 * import { parse } from 'csv-parse/sync';
 * export function rows(text: string) { return parse(text).length; }
 * fromModule(import.meta.url, { rows });
 * ```
 *
 * Returns the same object, so `export const { rows } = fromModule(import.meta.url, { rows })`
 * also works. The names must be the module's export names.
 */
export function fromModule<T extends Record<string, Function>>(moduleUrl: string | URL, fns: T): T {
  const url = String(moduleUrl);
  if (!/^(file|data|https?):/.test(url)) {
    throw new InvalidArgumentError(`fromModule() needs the module's URL (import.meta.url), got '${url}'`);
  }
  for (const [exportName, fn] of Object.entries(fns)) {
    if (typeof fn !== 'function') {
      throw new InvalidArgumentError(`fromModule(): '${exportName}' is not a function`);
    }
    const name = fn.name === '' ? exportName : fn.name;
    const existing = refs.get(fn);
    if (existing?.kind === 'builtin') {
      throw new FunctionNotPortableError(name, 'it is a built-in operation and travels by name already');
    }
    refs.set(fn, { kind: 'module', id: `mod:${hash(`${url}#${exportName}`)}`, name, url, exportName });
  }
  return fns;
}

function hash(text: string): string {
  return createHash('sha1').update(text).digest('base64url').slice(0, 16);
}
