import { type Graph, ref, task } from 'tessera';

export const inc = (x: number): number => x + 1;
export const add = (a: number, b: number): number => a + b;

const packageMakers = { task: task as GraphMakers['task'], ref };

/** How tasks and refs are made: the package's by default, or another build's (the sources'). */
export interface GraphMakers {
  readonly task: (fn: (...args: never[]) => unknown, ...args: unknown[]) => unknown;
  readonly ref: (key: string) => unknown;
}

/**
 * tree-N (BENCHMARKS.md): N leaves inc(i), then a binary tree of add up to one root; an
 * odd one out at a level gets inc. Returns the graph, its root key and its task count.
 */
export function treeGraph(n: number, { task, ref }: GraphMakers = packageMakers): { graph: Graph; root: string; tasks: number } {
  const graph: Record<string, unknown> = {};
  let level: string[] = [];
  for (let i = 0; i < n; i++) {
    const key = `inc-${i}`;
    graph[key] = task(inc, i);
    level.push(key);
  }
  let depth = 0;
  while (level.length > 1) {
    const next: string[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) {
      const key = `add-${depth}-${i / 2}`;
      graph[key] = task(add, ref(level[i]!), ref(level[i + 1]!));
      next.push(key);
    }
    if (level.length % 2 === 1) {
      const key = `inc-${depth}-odd`;
      graph[key] = task(inc, ref(level[level.length - 1]!));
      next.push(key);
    }
    level = next;
    depth++;
  }
  return { graph, root: level[0]!, tasks: Object.keys(graph).length };
}

/** The value tree-N must compute, evaluated directly. */
export function treeExpected(n: number): number {
  let level = Array.from({ length: n }, (_, i) => i + 1);
  while (level.length > 1) {
    const next: number[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(level[i]! + level[i + 1]!);
    if (level.length % 2 === 1) next.push(level[level.length - 1]! + 1);
    level = next;
  }
  return level[0]!;
}
