import { TesseraError } from '../errors.js';
import type { Graph } from './graph.js';

/**
 * What computes a graph. Delayed values live in the graph layer and know nothing of
 * threads or clusters; the local executors register themselves here when loaded, and a
 * Client passed in options takes precedence.
 */
export interface GraphRunner {
  run(graph: Graph, keys: readonly string[], options: object): Promise<unknown[]>;
}

let defaultRunner: GraphRunner | undefined;

export function setDefaultRunner(runner: GraphRunner): void {
  defaultRunner = runner;
}

export function getDefaultRunner(): GraphRunner {
  if (defaultRunner === undefined) throw new TesseraError('no executor is loaded; import from "tessera"', 'ERR_NO_EXECUTOR');
  return defaultRunner;
}
