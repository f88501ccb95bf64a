/**
 * `npm start`: a graph computed on every local core, timed against one core.
 *
 * Counts the primes below 4,000,000 in 64 chunks (a CPU-bound map), then sums the counts
 * in a tree of additions (a reduction), first with the in-process `sync` scheduler and
 * then on all cores with the default `threads` scheduler.
 */
import { availableParallelism } from 'node:os';
import { type Delayed, delayed } from 'tessera';

const countPrimes = delayed((from: number, to: number): number => {
  let count = 0;
  for (let n = Math.max(from, 2); n < to; n++) {
    let prime = true;
    for (let d = 2; d * d <= n; d++) {
      if (n % d === 0) {
        prime = false;
        break;
      }
    }
    if (prime) count++;
  }
  return count;
}, { name: 'count-primes' });

const add = delayed((a: number, b: number) => a + b, { name: 'add' });

const limit = 4_000_000;
const chunks = 64;
const size = limit / chunks;
let level: Delayed<number>[] = Array.from({ length: chunks }, (_, i) => countPrimes(i * size, (i + 1) * size));
while (level.length > 1) {
  const next: Delayed<number>[] = [];
  for (let i = 0; i + 1 < level.length; i += 2) next.push(add(level[i]!, level[i + 1]!));
  if (level.length % 2 === 1) next.push(level[level.length - 1]!);
  level = next;
}
const total = level[0]!;
console.log(`Graph: ${total.graph().size} tasks (${chunks} chunks of ${size.toLocaleString()} numbers, then a tree of additions)`);

for (const scheduler of ['sync', 'threads'] as const) {
  const start = performance.now();
  const primes = await total.compute({
    scheduler,
    onProgress: ({ done, total: all }) => {
      if (process.stdout.isTTY) process.stdout.write(`\r\x1b[2K  ${scheduler.padEnd(7)} ${done}/${all} tasks`);
    },
  });
  const seconds = (performance.now() - start) / 1000;
  const where = scheduler === 'sync' ? 'one core, in-process' : `${availableParallelism()} worker threads`;
  console.log(`${process.stdout.isTTY ? '\r\x1b[2K' : ''}  ${scheduler.padEnd(7)} ${primes.toLocaleString()} primes below ${limit.toLocaleString()} in ${seconds.toFixed(2)} s (${where})`);
}
