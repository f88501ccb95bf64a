/** The errors the scheduler itself reports for a task, as they travel. */
import { MissingKeyError } from '../errors.js';
import type { TaskErrorInfo } from '../protocol/messages.js';
import type { TaskState } from './records.js';

export function missingKeyError(key: string, missing: string): TaskErrorInfo {
  const e = new MissingKeyError(key, missing);
  return { kind: 'missing-key', name: e.name, message: e.message, stack: `${e.name}: ${e.message}`, key, missing };
}

export function workerLostError(ts: TaskState): TaskErrorInfo {
  const message =
    `task '${ts.key}' was running on ${ts.suspicious} workers that died while running it; ` +
    `it is probably what killed them (raise allowedFailures to keep trying)`;
  return { kind: 'worker-lost', name: 'WorkerLostError', message, stack: `WorkerLostError: ${message}`, key: ts.key };
}

export function scatteredLostError(ts: TaskState): TaskErrorInfo {
  const message = `the scattered data of '${ts.key}' was lost with the workers that held it and cannot be recomputed`;
  return { kind: 'data-lost', name: 'WorkerLostError', message, stack: `WorkerLostError: ${message}`, key: ts.key };
}
