/**
 * Functions that travel with values from their surroundings, named explicitly: the
 * values are checked and copied when the graph is built, and travel with the function.
 *
 * ```ts
 * const scale = 3;
 * const times = scoped((x: number) => x * scale, { scale });
 * await delayed(times)(2).compute();        // 6
 * // the same: delayed((x: number) => x * scale, { scope: { scale } })
 * ```
 */
import { createHash } from 'node:crypto';
import { serialize } from 'node:v8';
import { CapturedVariableError, InvalidArgumentError } from '../errors.js';
import { portabilityProblem } from '../serialize/check-value.js';
import { analyzeSource } from './check-source.js';
import { evalScoped } from './load.js';
import { refs } from './registry.js';

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;
const RESERVED = new Set(['arguments', 'eval', 'this', 'await', 'yield', 'let', 'static', 'implements', 'interface', 'package', 'private', 'protected', 'public']);

/**
 * `fn` with the values of `scope` bound to the names it uses from its surroundings. Every
 * name `fn` takes from outside must be in `scope` (else CapturedVariableError), every name
 * in `scope` must be one it uses, and every value must survive being copied to another
 * thread or machine (else InvalidArgumentError naming it). Returns a function that behaves
 * as the copy that travels: later changes to the original values do not reach it.
 */
export function scoped<F extends Function>(fn: F, scope: Readonly<Record<string, unknown>>): F {
  if (typeof fn !== 'function') throw new InvalidArgumentError(`scoped() needs a function, got ${typeof fn}`);
  const given: unknown = scope; // untyped callers may pass anything
  if (typeof given !== 'object' || given === null || Array.isArray(given) || Object.getPrototypeOf(given) !== Object.prototype) {
    throw new InvalidArgumentError('scope must be a plain object of names and values: { scale } or { scale: 3 }');
  }
  const fnName = fn.name === '' ? '(anonymous)' : fn.name;
  const names = Object.keys(scope);
  for (const n of names) {
    if (!IDENTIFIER.test(n) || RESERVED.has(n)) throw new InvalidArgumentError(`scope name '${n}' is not a variable name ${fnName} could use`);
  }
  const { expr, captured } = analyzeSource(fn);
  const missing = captured.filter((n) => !names.includes(n));
  if (missing.length > 0) throw new CapturedVariableError(fnName, missing);
  const unused = names.filter((n) => !captured.includes(n));
  if (unused.length > 0) {
    throw new InvalidArgumentError(`scope gives ${unused.map((n) => `'${n}'`).join(', ')}, which ${fnName} does not use (it uses ${captured.length === 0 ? 'nothing from its surroundings' : captured.map((n) => `'${n}'`).join(', ')})`);
  }
  const values = names.map((n) => {
    const problem = portabilityProblem(scope[n]);
    if (problem !== null) throw new InvalidArgumentError(`scope.${n}${problem.path} cannot travel with ${fnName}: it ${problem.reason}`);
    return structuredClone(scope[n]);
  });
  const digest = createHash('sha1').update(expr).update('\0').update(names.join(',')).update('\0').update(serialize(values)).digest('base64url').slice(0, 16);
  const local = evalScoped(expr, names, values) as F;
  refs.set(local, { kind: 'source', id: `src:${digest}`, name: fn.name === '' ? 'anonymous' : fn.name, expr, scope: { names, values } });
  return local;
}
