import { InvalidArgumentError } from '../errors.js';
import { type Graph, assertGraph } from '../graph/graph.js';
import { compile } from '../graph/plan.js';
import { type ComputeOptions, setDefaultRunner } from '../graph/runner.js';
import { resolveLocalOptions } from './options.js';
import { runSync } from './sync.js';
import { runThreads } from './threads.js';

export type GetOptions = ComputeOptions;

/**
 * Computes keys of a graph. One key gives one result; an array of keys gives an array.
 *
 * ```ts
 * const graph = { x: task((v: number) => v + 1, 1), y: task((p: number, q: number) => p * q, ref('x'), 10) };
 * await get(graph, 'y');            // 20
 * await get(graph, ['x', 'y']);     // [2, 20]
 * ```
 */
export function get(graph: Graph, keys: string, options?: GetOptions): Promise<unknown>;
export function get(graph: Graph, keys: readonly string[], options?: GetOptions): Promise<unknown[]>;
export async function get(graph: Graph, keys: string | readonly string[], options: GetOptions = {}): Promise<unknown> {
  assertGraph(graph);
  const list = typeof keys === 'string' ? [keys] : keys;
  if (!Array.isArray(list)) throw new InvalidArgumentError('keys must be a string or an array of strings');
  const values = await runGraph(graph, list, options);
  return typeof keys === 'string' ? values[0] : values;
}

async function runGraph(graph: Graph, keys: readonly string[], options: GetOptions): Promise<unknown[]> {
  if (options.client !== undefined) return options.client.get(graph, keys);
  const resolved = resolveLocalOptions(options);
  const plan = compile(graph, keys, { fuse: resolved.fuse });
  return resolved.scheduler === 'sync' ? runSync(plan, resolved) : runThreads(plan, resolved);
}

setDefaultRunner({ run: runGraph });
