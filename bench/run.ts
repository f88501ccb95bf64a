/**
 * `npm run bench -- NAME [options]`: runs one benchmark, which prints JSON lines.
 * NAME is one of the keys below; `all` runs the whole set and writes one summary.
 */
const suites: Record<string, string> = {
  local: './local.js',
  lambda: './lambda.js',
  distributed: './distributed.js',
  adaptive: './adaptive.js',
  simulate: './simulate.js',
  'adaptive-sim': './adaptive-sim.js',
  'scheduler-memory': './scheduler-memory.js',
  'scheduler-heap': './scheduler-heap.js',
  million: './million.js',
  profile: './profile.js',
  'scheduler-path': './scheduler-path.js',
  comm: './comm.js',
  heavy: './heavy.js',
  slurm: './slurm.js',
  kubernetes: './kubernetes.js',
  venv: './venv.js',
  chaos: './chaos.js',
  soak: './soak.js',
  all: './all.js',
};

const name = process.argv[2];
const path = name === undefined ? undefined : suites[name];
if (path === undefined) {
  console.error(`usage: npm run bench -- <${Object.keys(suites).join('|')}> [options]`);
  process.exit(2);
}
process.argv.splice(2, 1);
// A suite that others import (adaptive-sim, by adaptive) runs its own main only when chosen.
process.env['TESSERA_BENCH'] = name;
await import(path);
