import type { BuiltinName } from './builtins.js';

/**
 * How a function travels. A reference is plain data (it survives structured clone and
 * msgpack), and its `id` is content-addressed, so a thread or worker loads each function
 * once and every later task names it by id.
 */
export type FnRef = SourceFnRef | ModuleFnRef | BuiltinFnRef;

/**
 * A self-contained function shipped as source: `expr` evaluates to the function. With a
 * `scope`, it is evaluated where those names are bound to those values (copies taken when
 * the graph was built), so a function may use values from its surroundings explicitly.
 */
export interface SourceFnRef {
  readonly kind: 'source';
  readonly id: string;
  readonly name: string;
  readonly expr: string;
  readonly scope?: { readonly names: readonly string[]; readonly values: readonly unknown[] };
}

/**
 * A function exported by a module. Locally, threads import `url`; a cluster client later
 * bundles the module and ships it by content hash, with the same reference in user code.
 */
export interface ModuleFnRef {
  readonly kind: 'module';
  readonly id: string;
  readonly name: string;
  readonly url: string;
  readonly exportName: string;
}

/** One of Tessera's built-in operations, present everywhere. */
export interface BuiltinFnRef {
  readonly kind: 'builtin';
  readonly id: string;
  readonly name: BuiltinName;
}
