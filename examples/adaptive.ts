/**
 * `npm start`: a cluster that follows the work.
 *
 * An adaptive LocalCluster starts with no worker at all. 200 tasks of simple maths that
 * sleep a lot arrive at once; the scheduler asks for as many worker processes as would
 * finish them in about 5 s (up to a maximum), and when the work is done it retires them
 * all but the one holding the results.
 *
 *   npm start -- [--maximum 8] [--tasks 200] [--sleep 1]     (or TESSERA_MAX_WORKERS=8)
 */
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { Client, LocalCluster } from 'tessera';

const { values } = parseArgs({
  options: { maximum: { type: 'string' }, tasks: { type: 'string', default: '200' }, sleep: { type: 'string', default: '1' } },
});
const maximum = Number(values.maximum ?? process.env['TESSERA_MAX_WORKERS'] ?? Math.max(4, 2 * availableParallelism()));
const tasks = Number(values.tasks);
const sleepSeconds = Number(values.sleep);
if (!Number.isInteger(maximum) || maximum < 1) throw new RangeError('--maximum (or TESSERA_MAX_WORKERS) must be a positive integer');
if (!Number.isInteger(tasks) || tasks < 1) throw new RangeError('--tasks must be a positive integer');
if (!(sleepSeconds >= 0)) throw new RangeError('--sleep must be a number of seconds');

/**
 * Simple maths that sleeps a lot. Self-contained, so it travels to the workers as source.
 * The sleep holds its thread, as real computation would (an `await`ed timer would let one
 * thread overlap many tasks, and a cluster of one worker would do).
 */
const slowMaths = ({ i, ms }: { i: number; ms: number }): number => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  return ((i * i) % 97) + 1;
};

// The live view: one line redrawn on a terminal, a plain line every few seconds otherwise;
// the scheduler's scaling decisions print above it.
const tty = process.stdout.isTTY;
const status = (): string => `  ${done}/${tasks} done · workers: ${cluster.running} running, ${cluster.requested} requested · ${seconds(performance.now())}`;
const say = (line: string): void => void process.stdout.write(tty ? `\r\x1b[2K${line}\n` : `${line}\n`);
// The adaptive loop's decisions print above the live line; the rest of the log stays quiet.
const cluster = await LocalCluster.start({ workers: 0, log: (line) => line.startsWith('adaptive:') && say(`  ${line}`) });
const adaptive = cluster.adapt({ minimum: 0, maximum, targetDuration: '5s' });
const client = await Client.connect(cluster.address);
// Ctrl-C: close the cluster rather than leave its workers to find out on their own.
process.once('SIGINT', () => void Promise.allSettled([client.close(), cluster.close()]).then(() => process.exit(130)));

console.log(`Dashboard: ${cluster.dashboardLink ?? '(off)'}`);
console.log(`${tasks} tasks of ${sleepSeconds} s each, on a cluster of 0 to ${maximum} workers aiming to finish in ${adaptive.options.targetDuration / 1000} s`);

// What the report needs, sampled as it happens.
const start = performance.now();
const seconds = (t: number): string => `${((t - start) / 1000).toFixed(1)} s`;
let done = 0;
let firstWorker: number | undefined;
let firstResult: number | undefined;
let peak = 0;
let workerMs = 0;
let lastSample = start;
const sampler = setInterval(() => {
  const now = performance.now();
  workerMs += (now - lastSample) * cluster.running;
  lastSample = now;
  if (cluster.running > 0) firstWorker ??= now;
  peak = Math.max(peak, cluster.running);
}, 50);

const view = setInterval(() => process.stdout.write(tty ? `\r\x1b[2K${status()}` : `${status()}\n`), tty ? 200 : 3000);

const futures = client.map(
  slowMaths,
  Array.from({ length: tasks }, (_, i) => ({ i, ms: sleepSeconds * 1000 })),
);
let sum = 0;
for await (const future of client.asCompleted(futures)) {
  firstResult ??= performance.now();
  sum += await future.result();
  done++;
}
const finished = performance.now();
const workerSeconds = workerMs / 1000;
// The live line stops here: the report follows, and nothing prints over it.
clearInterval(view);

say('');
say(`  first worker    ${firstWorker === undefined ? '-' : seconds(firstWorker)} after submission`);
say(`  first result    ${firstResult === undefined ? '-' : seconds(firstResult)}`);
say(`  all results     ${seconds(finished)}   (the sum of the ${tasks} results is ${sum})`);
say(`  peak workers    ${peak} of ${maximum}`);
say(`  worker-seconds  ${workerSeconds.toFixed(0)}   (${maximum} workers for the whole time would have used ${((maximum * (finished - start)) / 1000).toFixed(0)})`);

// Idle workers leave after a few quiet ticks; the one holding the results stays while the
// client holds them. The last line waits for the cluster to reach that floor.
while (cluster.running > 1 || cluster.requested > 1 || cluster.closing > 0) await new Promise((resolve) => setTimeout(resolve, 100));
clearInterval(sampler);
const kept = cluster.running;
console.log(`  cluster back to ${kept} worker${kept === 1 ? '' : 's'} holding the results after ${((performance.now() - finished) / 1000).toFixed(1)} s`);
// One more dashboard update, so an open page shows the cluster at its floor before it goes.
await new Promise((resolve) => setTimeout(resolve, 1500));

await client.close();
await cluster.close();
