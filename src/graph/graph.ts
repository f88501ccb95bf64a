import { InvalidArgumentError } from '../errors.js';
import { builtins } from '../functions/builtins.js';
import { Task, containsRefs } from './task.js';

/** A graph: keys to tasks or literal values, as a plain object or a Map. */
export type Graph = Readonly<Record<string, unknown>> | ReadonlyMap<string, unknown>;

/** Returned by graphEntry for a key the graph does not have. */
export const ABSENT: unique symbol = Symbol('absent');

/** Looks a key up in either form of graph; literals nesting refs become identity tasks. */
export function graphEntry(graph: Graph, key: string): unknown {
  if (graph instanceof Map) return graph.has(key) ? normalize(graph.get(key)) : ABSENT;
  return Object.hasOwn(graph, key) ? normalize((graph as Record<string, unknown>)[key]) : ABSENT;
}

function normalize(value: unknown): unknown {
  if (value instanceof Task) return value;
  if (typeof value === 'object' && value !== null && containsRefs(value)) return new Task(builtins.identity, [value]);
  return value;
}

export function graphSize(graph: Graph): number {
  return graph instanceof Map ? graph.size : Object.keys(graph).length;
}

export function assertGraph(graph: unknown): asserts graph is Graph {
  if (typeof graph !== 'object' || graph === null || Array.isArray(graph)) {
    throw new InvalidArgumentError('a graph must be a plain object or a Map from keys to tasks or values');
  }
}
