/**
 * A scheduler process for the soak test: what `tessera scheduler` runs, with a short
 * transition log, so that its fixed-size history is full within a few computations and
 * whatever grows after that is memory the scheduler should not be keeping. Prints its
 * address as the first line and closes on SIGTERM, or when its stdin ends (the soak ended).
 */
import { Scheduler } from '../../src/index.js';

const scheduler = await Scheduler.start({ port: 0, dashboard: false, state: { transitionLogLength: 2000 } });
process.stdout.write(`${scheduler.address}\n`);
const stop = (): void => {
  void scheduler.close().then(() => process.exit(0));
};
process.once('SIGTERM', stop);
// The soak holds our stdin open: its end means the soak is gone, however it ended.
process.stdin.once('end', stop).resume();
