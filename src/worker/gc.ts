/**
 * A nudge to V8's garbage collector, for a worker past its pause threshold: after a large
 * result is released nothing collects an idle process's heap, so its memory stays high
 * until something runs. The collector is exposed once (as `--expose-gc` would) and run
 * only when memory is past the threshold.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let collector: (() => void) | null | undefined;

/** Runs a full collection; false when this process cannot (the collector stays hidden). */
export function collectGarbage(): boolean {
  if (collector === undefined) {
    const exposed = (globalThis as { gc?: unknown }).gc;
    if (typeof exposed === 'function') {
      collector = exposed as () => void;
    } else {
      try {
        setFlagsFromString('--expose-gc');
        // A fresh context gets the gc global the flag now exposes; this one keeps its own.
        const gc: unknown = runInNewContext('gc');
        collector = typeof gc === 'function' ? (gc as () => void) : null;
      } catch {
        collector = null;
      }
    }
  }
  if (collector === null) return false;
  collector();
  return true;
}
