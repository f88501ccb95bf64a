/**
 * A scheduler preload module: makes a bare `tessera scheduler` adaptive, with workers that
 * are child processes of the scheduler (examples/child-process-backend.ts).
 *
 *   NODE_OPTIONS='--import tsx' npx tessera scheduler --preload examples/adaptive-setup.ts
 *
 * (tsx only because this file is TypeScript; a compiled .js preload needs no loader.)
 * The cluster starts with no worker, grows when clients submit work, and shrinks back when
 * the work is done. TESSERA_MAX_WORKERS caps it (default 4).
 */
import type { Scheduler } from 'tessera';
import { ChildProcessBackend } from './child-process-backend.js';

let backend: ChildProcessBackend | undefined;

/** Called once the scheduler listens; an error here stops `tessera scheduler`. */
export function setup(scheduler: Scheduler): void {
  const maximum = Number(process.env['TESSERA_MAX_WORKERS'] ?? 4);
  if (!Number.isInteger(maximum) || maximum < 1) throw new RangeError(`TESSERA_MAX_WORKERS must be a positive integer, got '${process.env['TESSERA_MAX_WORKERS'] ?? ''}'`);
  backend = new ChildProcessBackend({ address: scheduler.address });
  scheduler.adapt(backend, { minimum: 0, maximum, targetDuration: '5s' });
}

/** Called when the scheduler closes: no worker process outlives it. */
export async function teardown(scheduler: Scheduler): Promise<void> {
  scheduler.stopAdapting();
  await backend?.close();
}
