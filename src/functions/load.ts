import { FunctionNotPortableError } from '../errors.js';
import { builtins } from './builtins.js';
import type { FnRef } from './fn-ref.js';

/**
 * Evaluates a function's expression where `names` are bound to `values` and nothing else
 * of the caller's is visible (indirect eval, at global scope).
 */
export function evalScoped(expr: string, names: readonly string[], values: readonly unknown[]): unknown {
  const factory = (0, eval)(`(function (${names.join(', ')}) { return ${expr}; })`) as (...v: unknown[]) => unknown;
  return factory(...values);
}

/**
 * The receiving side: turns a reference back into a callable, once per id. Source is
 * evaluated at global scope (indirect eval), so it sees globals and nothing else, exactly
 * what the check at graph-building time allowed.
 */
export class FunctionCache {
  readonly #fns = new Map<string, Function>();
  readonly #typescriptLoader: string | undefined;
  #typescriptReady: Promise<void> | undefined;

  /** `typescriptLoader`: tsx's register API, used once the first .ts module is loaded. */
  constructor(typescriptLoader?: string) {
    this.#typescriptLoader = typescriptLoader;
  }

  has(id: string): boolean {
    return this.#fns.has(id);
  }

  get(id: string): Function {
    const fn = this.#fns.get(id);
    if (fn === undefined) throw new FunctionNotPortableError(id, 'it was never sent to this thread or worker');
    return fn;
  }

  async load(ref: FnRef): Promise<Function> {
    const known = this.#fns.get(ref.id);
    if (known !== undefined) return known;
    let fn: unknown;
    switch (ref.kind) {
      case 'builtin':
        fn = builtins[ref.name];
        break;
      case 'source':
        fn = ref.scope === undefined ? (0, eval)(ref.expr) : evalScoped(ref.expr, ref.scope.names, ref.scope.values);
        break;
      case 'module': {
        if (/\.[mc]?tsx?$/.test(ref.url)) await this.#loadTypeScript();
        const module = (await import(ref.url)) as Record<string, unknown>;
        fn = module[ref.exportName];
        break;
      }
    }
    if (typeof fn !== 'function') {
      throw new FunctionNotPortableError(ref.name, `loading ${ref.kind} reference ${ref.id} gave no function`);
    }
    this.#fns.set(ref.id, fn);
    return fn;
  }

  #loadTypeScript(): Promise<void> {
    const loader = this.#typescriptLoader;
    if (loader === undefined) return Promise.resolve();
    this.#typescriptReady ??= import(loader).then((api: { register: () => unknown }) => {
      api.register();
    });
    return this.#typescriptReady;
  }
}
