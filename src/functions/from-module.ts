import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FunctionNotPortableError, InvalidArgumentError } from '../errors.js';
import { hash, refs } from './registry.js';

/** Whether `url` is the script this process was started with (not a module it imports). */
function isEntryScript(url: string): boolean {
  const entry = process.argv[1];
  if (entry === undefined || !url.startsWith('file:')) return false;
  try {
    return realpathSync(fileURLToPath(url)) === realpathSync(resolve(entry));
  } catch {
    return false;
  }
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
  if (isEntryScript(url)) {
    // Threads and workers import the module to find the function: importing the script
    // being run would run the whole program again in every one of them.
    const names = Object.keys(fns).join(', ');
    throw new InvalidArgumentError(
      `fromModule(): ${url} is the script being run, and every thread or worker that imports it would run the whole program again. ` +
        `Move ${names} into a module of its own, export ${Object.keys(fns).length === 1 ? 'it' : 'them'} and call fromModule(import.meta.url, { ${names} }) there; ` +
        `or, for a function that only needs values from this script, ship them with it: scoped(fn, { … }) or delayed(fn, { scope: { … } })`,
    );
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
