import { CycleError, InvalidArgumentError, MissingKeyError } from '../errors.js';
import { ABSENT, type Graph, graphEntry } from './graph.js';
import { Task } from './task.js';

/**
 * A graph compiled for execution: culled to what the outputs need, validated (missing
 * keys, cycles), linear chains fused, and numbered in an order that keeps memory low.
 * Every node comes after its dependencies; executors treat a lower index as a higher
 * priority.
 */
export interface Plan {
  readonly size: number;
  /** Node key (for a fused chain: its last key, the one the outside refers to). */
  readonly keys: readonly string[];
  /** The task a node runs (for a fused chain, its last); null for a literal value. */
  readonly tasks: readonly (Task | null)[];
  /** Fused nodes: the whole chain and its keys, in order, the node's own task last. */
  readonly fused: ReadonlyMap<number, FusedChain>;
  readonly literals: readonly unknown[];
  /**
   * Dependencies of node i: depIdx[depStart[i] .. depStart[i + 1]), in the order of its
   * first step's `dependencies`, so a ref's position finds its node directly.
   */
  readonly depStart: Int32Array;
  readonly depIdx: Int32Array;
  readonly dependentStart: Int32Array;
  readonly dependentIdx: Int32Array;
  /** Node index of each requested key, in request order. */
  readonly outputs: Int32Array;
  readonly isOutput: Uint8Array;
}

export interface FusedChain {
  readonly steps: readonly Task[];
  readonly keys: readonly string[];
}

export interface PlanOptions {
  /** Fuse linear chains into single nodes (default true). */
  readonly fuse?: boolean;
}

const WHITE = 0;
const GREY = 1;
const BLACK = 2;

export function compile(graph: Graph, outputs: readonly string[], options: PlanOptions = {}): Plan {
  for (const key of outputs) {
    if (typeof key !== 'string') throw new InvalidArgumentError(`keys must be strings, got ${typeof key}`);
  }
  // Depth-first from the outputs, children in argument order; the post-order is a
  // topological order that finishes one subtree before starting the next, so
  // intermediates are released early (dask.order's aim, cheaply). Each edge is looked up
  // by key once, here; everything after works on indices.
  const index = new Map<string, number>();
  const keys: string[] = [];
  const values: unknown[] = [];
  // Per-node numbers live in typed arrays: graphs of millions of tasks are the point.
  let color: Uint8Array = new Uint8Array(1024);
  let edgeStart: Int32Array = new Int32Array(1024);
  let edges: Int32Array = new Int32Array(1024);
  let edgeCount = 0;
  let postOrder: Int32Array = new Int32Array(1024);
  let n = 0;

  const discover = (key: string, parent: string): number => {
    let i = index.get(key);
    if (i !== undefined) return i;
    const value = graphEntry(graph, key);
    if (value === ABSENT) throw new MissingKeyError(parent, key);
    i = keys.length;
    index.set(key, i);
    keys.push(key);
    values.push(value);
    if (i === color.length) {
      color = grow(color, i * 2);
      edgeStart = grow(edgeStart, i * 2);
    }
    return i;
  };

  const stackNode: number[] = [];
  const stackPos: number[] = [];
  for (const out of outputs) {
    const root = discover(out, '');
    if (color[root] !== WHITE) continue;
    color[root] = GREY;
    stackNode.push(root);
    stackPos.push(0);
    while (stackNode.length > 0) {
      const top = stackNode.length - 1;
      const node = stackNode[top]!;
      const value = values[node];
      const deps = value instanceof Task ? value.dependencies : EMPTY;
      const pos = stackPos[top]!;
      if (pos === 0 && deps.length > 0) {
        if (edgeCount + deps.length > edges.length) edges = grow(edges, Math.max(edges.length * 2, edgeCount + deps.length));
        edgeStart[node] = edgeCount;
        edgeCount += deps.length;
      }
      if (pos < deps.length) {
        stackPos[top] = pos + 1;
        const child = discover(deps[pos]!, keys[node]!);
        edges[edgeStart[node]! + pos] = child;
        const c = color[child];
        if (c === WHITE) {
          color[child] = GREY;
          stackNode.push(child);
          stackPos.push(0);
        } else if (c === GREY) {
          throw new CycleError(stackNode.slice(stackNode.indexOf(child)).map((k) => keys[k]!));
        }
      } else {
        color[node] = BLACK;
        if (n === postOrder.length) postOrder = grow(postOrder, n * 2);
        postOrder[n++] = node;
        stackNode.pop();
        stackPos.pop();
      }
    }
  }

  const depsOf = (i: number): number => {
    const v = values[i];
    return v instanceof Task ? v.dependencies.length : 0;
  };
  const requested = new Uint8Array(n);
  for (const out of outputs) requested[index.get(out)!] = 1;
  const dependentCount = new Int32Array(n);
  for (let e = 0; e < edgeCount; e++) dependentCount[edges[e]!]!++;

  // Fusion: a task whose single dependent has it as its single dependency joins that
  // dependent's chain, unless someone asked for it by name. Chains are made only when a
  // fusion happens; `head[i]` is the first node of i's chain.
  const fuse = options.fuse ?? true;
  const absorbed = new Uint8Array(n);
  const head = new Int32Array(n).fill(-1);
  const next = new Int32Array(n).fill(-1);
  if (fuse) {
    for (let k = 0; k < n; k++) {
      const i = postOrder[k]!;
      if (depsOf(i) !== 1) continue;
      const d = edges[edgeStart[i]!]!;
      if (dependentCount[d] === 1 && requested[d] === 0 && values[d] instanceof Task) {
        absorbed[d] = 1;
        head[i] = head[d] === -1 ? d : head[d]!;
        next[d] = i;
      }
    }
  }

  // Renumber the surviving nodes in post-order.
  const newIndex = new Int32Array(n).fill(-1);
  let size = 0;
  let edgeTotal = 0;
  for (let k = 0; k < n; k++) {
    const i = postOrder[k]!;
    if (absorbed[i] === 1) continue;
    newIndex[i] = size++;
    edgeTotal += depsOf(head[i] === -1 ? i : head[i]!);
  }
  const planKeys = new Array<string>(size);
  const tasks = new Array<Task | null>(size);
  const fused = new Map<number, FusedChain>();
  const literals = new Array<unknown>(size);
  const depStart = new Int32Array(size + 1);
  const depIdx = new Int32Array(edgeTotal);
  let e = 0;
  for (let k = 0; k < n; k++) {
    const i = postOrder[k]!;
    const j = newIndex[i]!;
    if (j < 0) continue;
    planKeys[j] = keys[i]!;
    depStart[j] = e;
    const value = values[i];
    if (!(value instanceof Task)) {
      tasks[j] = null;
      literals[j] = value;
      continue;
    }
    tasks[j] = value;
    const first = head[i] === -1 ? i : head[i]!;
    if (first !== i) {
      const chain: Task[] = [];
      const chainKeys: string[] = [];
      for (let k = first; k !== -1; k = k === i ? -1 : next[k]!) {
        chain.push(values[k] as Task);
        chainKeys.push(keys[k]!);
      }
      fused.set(j, { steps: chain, keys: chainKeys });
    }
    // Only a chain's first step has outside dependencies.
    const count = depsOf(first);
    for (let p = 0; p < count; p++) depIdx[e++] = newIndex[edges[edgeStart[first]! + p]!]!;
  }
  depStart[size] = e;

  const dependentStart = new Int32Array(size + 1);
  for (let p = 0; p < e; p++) dependentStart[depIdx[p]! + 1]!++;
  for (let j = 0; j < size; j++) dependentStart[j + 1]! += dependentStart[j]!;
  const fill = dependentStart.slice(0, size);
  const dependentIdx = new Int32Array(e);
  for (let j = 0; j < size; j++) {
    for (let p = depStart[j]!; p < depStart[j + 1]!; p++) dependentIdx[fill[depIdx[p]!]!++] = j;
  }

  const outIdx = Int32Array.from(outputs, (k) => newIndex[index.get(k)!]!);
  const isOutput = new Uint8Array(size);
  for (const j of outIdx) isOutput[j] = 1;

  return { size, keys: planKeys, tasks, fused, literals, depStart, depIdx, dependentStart, dependentIdx, outputs: outIdx, isOutput };
}

const EMPTY: readonly string[] = [];

function grow<T extends Uint8Array | Int32Array>(array: T, length: number): T {
  const grown = (array instanceof Uint8Array ? new Uint8Array(length) : new Int32Array(length)) as T;
  grown.set(array);
  return grown;
}
