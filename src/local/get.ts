import { InvalidArgumentError } from '../errors.js';
import { checkOptions, optionNames } from '../options.js';
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

const COMPUTE_OPTIONS = optionNames<ComputeOptions>()(['scheduler', 'workers', 'fuse', 'signal', 'onProgress', 'client']);

async function runGraph(graph: Graph, keys: readonly string[], options: GetOptions): Promise<unknown[]> {
  checkOptions(options, COMPUTE_OPTIONS, 'compute()/get()');
  if (options.client !== undefined) {
    // Local settings with a client would be ignored: say so instead.
    const local = (['scheduler', 'workers', 'fuse', 'onProgress', 'signal'] as const).filter((k) => options[k] !== undefined);
    if (local.length > 0) throw new InvalidArgumentError(`compute()/get(): options.${local.join(', options.')} ${local.length === 1 ? 'applies' : 'apply'} to local runs and not with options.client`);
    return options.client.get(graph, keys);
  }
  const resolved = resolveLocalOptions(options);
  const plan = compile(graph, keys, { fuse: resolved.fuse });
  return resolved.scheduler === 'sync' ? runSync(plan, resolved) : runThreads(plan, resolved);
}

setDefaultRunner({ run: runGraph });
