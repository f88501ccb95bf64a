import { FunctionNotPortableError, InvalidArgumentError } from '../errors.js';
import { hash, refs } from './registry.js';

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
