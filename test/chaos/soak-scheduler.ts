/**
 * A scheduler process for the soak test: what `tessera scheduler` runs, with a short
 * transition log, so that its fixed-size history is full within a few computations and
 * whatever grows after that is memory the scheduler should not be keeping. Prints its
 * address as the first line and closes on SIGTERM.
 */
import { Scheduler } from '../../src/index.js';

const scheduler = await Scheduler.start({ port: 0, dashboard: false, state: { transitionLogLength: 2000 } });
process.stdout.write(`${scheduler.address}\n`);
process.once('SIGTERM', () => {
  void scheduler.close().then(() => process.exit(0));
});
