/**
 * `npm run fuzz -- …`: longer fuzzing runs that grow the committed corpus.
 *
 *     npm run fuzz -- <target|all> [--time SECONDS] [-- libFuzzer flags…]
 *         Fuzz (default 600 s per target) from test/fuzz/corpus/<target>/, then merge what
 *         was found into that directory, keeping only inputs that add coverage.
 *     npm run fuzz -- replay <target> FILE…
 *         Run the target once on each file (a crash file, say) and print what happens.
 *     npm run fuzz -- seed
 *         Rewrite the seed-* inputs of every target's corpus with the current encoder.
 *     npm run fuzz -- coverage [target…]
 *         Run the corpus once without Jazzer and print V8's line and branch coverage of
 *         src/comm: how much of the code the corpus reaches.
 *
 * Targets: framing, codec, handshake. Crashes go to artifacts/fuzz/<target>/; see
 * test/fuzz/README.md for keeping one as a regression or known-bug input.
 */
import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { corpusDir, FUZZ_DIR, ROOT, runFuzzer, type RunResult, type Target, target, TARGETS } from './harness.js';
import { seeds } from './seeds.js';

const SEED_PREFIX = 'seed-';
const artifactsDir = (t: Target): string => join(ROOT, 'artifacts/fuzz', t.name);

function summary(t: Target, result: RunResult): string {
  const s = result.stats;
  return (
    `${t.name}: exit ${result.code ?? result.signal}, ${s.execs ?? '?'} inputs at ${s.execsPerSecond ?? '?'}/s, ` +
    `cov ${s.cov ?? '?'} ft ${s.ft ?? '?'}, corpus ${s.corpus ?? '?'}, ${s.newUnits ?? 0} new, peak RSS ${s.peakRssMb ?? '?'} MB`
  );
}

async function writeSeeds(): Promise<void> {
  for (const [name, inputs] of seeds()) {
    const dir = corpusDir(target(name));
    await mkdir(dir, { recursive: true });
    for (const file of await readdir(dir)) if (file.startsWith(SEED_PREFIX)) await rm(join(dir, file));
    for (const [seed, bytes] of inputs) await writeFile(join(dir, `${SEED_PREFIX}${seed}`), bytes);
    console.log(`${name}: ${inputs.size} seeds in ${dir}`);
  }
}

async function fuzz(t: Target, seconds: number, flags: readonly string[]): Promise<boolean> {
  const corpus = corpusDir(t);
  const scratch = await mkdtemp(join(tmpdir(), `tessera-fuzz-${t.name}-`));
  try {
    const found = join(scratch, 'found');
    await mkdir(found);
    console.log(`${t.name}: fuzzing for ${seconds} s from ${corpus} (Ctrl-C stops early and still merges)`);
    // The first Ctrl-C stops libFuzzer (it saves what it finds as it goes), then the merge runs.
    const stop = new AbortController();
    const onInterrupt = (): void => {
      if (stop.signal.aborted) process.exit(130);
      stop.abort();
    };
    process.on('SIGINT', onInterrupt);
    const run = await runFuzzer({
      target: t,
      inputs: [found, corpus],
      artifacts: artifactsDir(t),
      flags: [`-max_total_time=${seconds}`, ...flags],
      onOutput: (text) => process.stderr.write(text),
      signal: stop.signal,
      ownProcessGroup: true,
    }).finally(() => process.off('SIGINT', onInterrupt));
    console.log(summary(t, run));
    for (const file of run.artifacts) console.log(`${t.name}: FINDING saved as ${file}`);

    // Keep the seeds, and of everything else only what adds coverage to them.
    const merged = join(scratch, 'merged');
    await mkdir(merged);
    for (const file of await readdir(corpus)) if (file.startsWith(SEED_PREFIX)) await copyFile(join(corpus, file), join(merged, file));
    const merge = await runFuzzer({ target: t, inputs: [merged, corpus, found], artifacts: artifactsDir(t), flags: ['-merge=1', ...flags] });
    if (merge.code !== 0) {
      console.log(`${t.name}: merge failed (exit ${merge.code ?? merge.signal}); the corpus is unchanged. Its output:\n${merge.output}`);
      return false;
    }
    const before = (await readdir(corpus)).filter((f) => !f.startsWith(SEED_PREFIX));
    for (const file of before) await rm(join(corpus, file));
    const kept = (await readdir(merged)).filter((f) => !f.startsWith(SEED_PREFIX));
    for (const file of kept) await copyFile(join(merged, file), join(corpus, file));
    console.log(`${t.name}: corpus ${before.length} → ${kept.length} inputs beside the seeds`);
    return run.code === 0;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

function coverage(names: readonly string[]): boolean {
  const run = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--enable-source-maps', '--test', '--experimental-test-coverage', join(FUZZ_DIR, 'replay.ts')],
    { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...(names.length > 0 ? { TESSERA_FUZZ_TARGETS: names.join(',') } : {}) } },
  );
  const lines = `${run.stdout}${run.stderr}`.split('\n');
  const table = lines.filter((l) => /^# (file |src\/comm\/)/.test(l) || /^(not )?ok \d/.test(l)).map((l) => l.replace(/^# /, ''));
  console.log(table.join('\n'));
  if (run.status !== 0) console.log(lines.slice(-40).join('\n'));
  return run.status === 0;
}

async function replay(t: Target, files: readonly string[]): Promise<boolean> {
  const run = await runFuzzer({
    target: t,
    inputs: files.map((f) => resolve(f)),
    artifacts: join(tmpdir(), 'tessera-fuzz-replay'),
    onOutput: (text) => process.stderr.write(text),
  });
  return run.code === 0;
}

const dashDash = process.argv.indexOf('--', 2);
const own = dashDash < 0 ? process.argv.slice(2) : process.argv.slice(2, dashDash);
const libFuzzerFlags = dashDash < 0 ? [] : process.argv.slice(dashDash + 1);
const { values, positionals } = parseArgs({ args: own, allowPositionals: true, options: { time: { type: 'string', default: '600' } } });
const [command, ...rest] = positionals;
const seconds = Number(values.time);
if (command === undefined || !Number.isInteger(seconds) || seconds <= 0) {
  console.error('usage: npm run fuzz -- <framing|codec|handshake|all> [--time SECONDS] [-- libFuzzer flags]');
  console.error('       npm run fuzz -- replay <target> FILE…');
  console.error('       npm run fuzz -- seed');
  console.error('       npm run fuzz -- coverage [target…]');
  process.exit(2);
}

let ok = true;
if (command === 'seed') {
  await writeSeeds();
} else if (command === 'coverage') {
  ok = coverage(rest);
} else if (command === 'replay') {
  const [name, ...files] = rest;
  if (name === undefined || files.length === 0) throw new Error('replay needs a target and at least one file');
  ok = await replay(target(name), files);
} else {
  const names = command === 'all' ? Object.keys(TARGETS) : [command];
  for (const name of names) ok = (await fuzz(target(name), seconds, libFuzzerFlags)) && ok;
}
process.exitCode = ok ? 0 : 1;
