import type { TaskSpec } from '../../src/protocol/task-spec.js';

/** A task spec for the core alone: it reads nothing of it but the node's step keys. */
export function spec(key: string): TaskSpec {
  return { node: { steps: [], stepKeys: [key], out: true } };
}
