// examples/stats.ts: a module function — it uses an npm package, so it travels by
// reference (a bundle of this module) rather than as source.
import { parse } from 'acorn';
import { fromModule } from 'tessera';

/** Top-level statements in a piece of JavaScript. */
export function statements(source: string): number {
  return parse(source, { ecmaVersion: 'latest', sourceType: 'module' }).body.length;
}

fromModule(import.meta.url, { statements });   // the names are the export names
