/**
 * A scheduler process for the soak test: what `tessera scheduler` runs, with a short
 * transition log, so that its fixed-size history is full within a few computations and
 * whatever grows after that is memory the scheduler should not be keeping. Prints its
 * address as the first line and closes on SIGTERM, or when its stdin ends (the soak ended).
 *
 * Each `memory` line on stdin is answered with one JSON line on stdout: the process's
 * memory after a full garbage collection (`{"rss":…,"heapUsed":…,"external":…,"arrayBuffers":…}`,
 * bytes). Resident memory alone says little: V8 grows its heap lazily and returns it
 * lazily, more so when the machine is busy; what is live after a collection is what the
 * scheduler keeps.
 */
import { Scheduler } from '../../src/index.js';
import { collectGarbage } from '../../src/worker/gc.js';
import { createInterface } from 'node:readline';

const scheduler = await Scheduler.start({ port: 0, dashboard: false, state: { transitionLogLength: 2000 } });
process.stdout.write(`${scheduler.address}\n`);
const stop = (): void => {
  void scheduler.close().then(() => process.exit(0));
};
process.once('SIGTERM', stop);
// The soak holds our stdin open: its end means the soak is gone, however it ended.
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line.trim() !== 'memory') return;
  const collected = collectGarbage();
  const { rss, heapUsed, external, arrayBuffers } = process.memoryUsage();
  process.stdout.write(`${JSON.stringify({ collected, rss, heapUsed, external, arrayBuffers })}\n`);
});
lines.once('close', stop);
