/** Polling helpers for tests that wait on processes and clusters (no timing thresholds: long timeouts). */
import assert from 'node:assert/strict';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `condition` every `everyMs` until it holds; fails naming `what` after `timeoutMs`
 * (a function is asked only then, to say what was seen meanwhile).
 */
export async function until(condition: () => boolean | Promise<boolean>, what: string | (() => string), timeoutMs = 60_000, everyMs = 20): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) assert.fail(`timed out waiting until ${typeof what === 'string' ? what : what()}`);
    await sleep(everyMs);
  }
}

/** Whether a process with this pid exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
