import { parse } from 'acorn';
import { analyze } from 'eslint-scope';
import { CapturedVariableError, FunctionNotPortableError } from '../errors.js';
import { PORTABLE_GLOBALS } from './globals.js';

/**
 * Turns a function's source into an expression that evaluates to an equal function in a
 * fresh realm, after checking with a real parser and scope analyser that it uses nothing
 * from its surroundings. Throws CapturedVariableError naming the captured variables.
 */
export function portableExpression(fn: Function): string {
  const { expr, captured } = analyzeSource(fn);
  if (captured.length > 0) throw new CapturedVariableError(fn.name === '' ? '(anonymous)' : fn.name, captured);
  return expr;
}

/**
 * A function's source as an expression, and the variables it takes from its surroundings
 * (those that are not standard globals). Throws FunctionNotPortableError for functions
 * that cannot travel at all.
 */
export function analyzeSource(fn: Function): { readonly expr: string; readonly captured: readonly string[] } {
  const name = fn.name === '' ? '(anonymous)' : fn.name;
  const source = Function.prototype.toString.call(fn);
  if (/\{\s*\[native code\]\s*\}\s*$/.test(source)) {
    throw new FunctionNotPortableError(name, 'it is a native or bound function; wrap it: (x) => Math.sqrt(x)');
  }
  if (/^class\b/.test(source)) {
    throw new FunctionNotPortableError(name, 'it is a class; pass a function that creates the instance instead');
  }
  // A function expression or arrow parses on its own; a method (`m(x) { … }`, what object
  // and class methods print) parses only inside an object literal.
  const candidates = [`(${source})`, `Object.values({${source}})[0]`];
  for (const expr of candidates) {
    let ast;
    try {
      ast = parse(expr, { ecmaVersion: 'latest', sourceType: 'script', ranges: true });
    } catch {
      continue;
    }
    const captured = freeVariables(ast);
    // esbuild's keepNames (tsx) wraps named inner functions in `__name(fn, "name")`; give
    // the travelling copy its own definition of that helper.
    const helper = captured.indexOf('__name');
    if (helper >= 0) captured.splice(helper, 1);
    return {
      expr: helper < 0 ? expr : `((__name) => ${expr})((f, n) => Object.defineProperty(f, 'name', { value: n, configurable: true }))`,
      captured,
    };
  }
  throw new FunctionNotPortableError(name, 'its source could not be parsed');
}

function freeVariables(ast: ReturnType<typeof parse>): string[] {
  // eslint-scope walks an ESTree program; acorn produces one.
  const manager = analyze(ast as never, { ecmaVersion: 2022, sourceType: 'script' });
  const found = new Set<string>();
  const globalScope = manager.globalScope;
  if (globalScope === null) return [];
  for (const reference of globalScope.through) {
    const id = reference.identifier.name;
    if (!PORTABLE_GLOBALS.has(id)) found.add(id);
  }
  return [...found];
}
