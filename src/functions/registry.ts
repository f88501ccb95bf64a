import { createHash } from 'node:crypto';
import { type BuiltinName, builtins } from './builtins.js';
import type { FnRef } from './fn-ref.js';

/**
 * Function object → its travelling reference. Each function is checked and hashed once,
 * however many tasks use it. Kept apart from the source checker so that registering module
 * functions (and bundles of user modules) do not pull in the parser.
 */
export const refs = new WeakMap<Function, FnRef>();

for (const [name, fn] of Object.entries(builtins)) {
  refs.set(fn, { kind: 'builtin', id: `builtin:${name}`, name: name as BuiltinName });
}

export function hash(text: string): string {
  return createHash('sha1').update(text).digest('base64url').slice(0, 16);
}
