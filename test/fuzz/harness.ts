/**
 * Runs libFuzzer (through Jazzer.js) on the targets in test/fuzz/targets/: builds the native
 * addon once per machine (scripts/fuzz/build-addon.sh), bundles a target with esbuild so that
 * Jazzer's loader instruments the project's code and the msgpack library together, and runs
 * it in a child process, returning what libFuzzer reported. Used by fuzz.test.ts (a short
 * run in `npm test`) and cli.ts (`npm run fuzz`).
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const FUZZ_DIR = join(ROOT, 'test/fuzz');
const CACHE = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'tessera/fuzz');

export interface Target {
  readonly name: string;
  /** async targets return a promise per input; libFuzzer then runs on a thread of its own. */
  readonly mode: 'sync' | 'async';
  /** Largest input libFuzzer makes up. */
  readonly maxLen: number;
  /** Seconds one input may take before libFuzzer calls it a hang. */
  readonly timeout: number;
}

export const TARGETS: Readonly<Record<string, Target>> = {
  framing: { name: 'framing', mode: 'sync', maxLen: 8192, timeout: 10 },
  codec: { name: 'codec', mode: 'sync', maxLen: 8192, timeout: 10 },
  handshake: { name: 'handshake', mode: 'async', maxLen: 4096, timeout: 20 },
};

export function target(name: string): Target {
  const found = Object.hasOwn(TARGETS, name) ? TARGETS[name] : undefined;
  if (found === undefined) throw new Error(`no fuzz target '${name}' (there are ${Object.keys(TARGETS).join(', ')})`);
  return found;
}

export const corpusDir = (t: Target): string => join(FUZZ_DIR, 'corpus', t.name);
/** Inputs that once failed; replayed with the corpus. */
export const regressionsDir = (t: Target): string => join(FUZZ_DIR, 'regressions', t.name);
/** Inputs that show a bug not yet fixed; see fuzz.test.ts. */
export const knownBugsDir = (t: Target): string => join(FUZZ_DIR, 'known', t.name);
/** libFuzzer's -dict file for a target, used when present. */
export const dictionary = (t: Target): string => join(FUZZ_DIR, 'dict', `${t.name}.dict`);

let addon: Promise<void> | undefined;

/**
 * Builds (first time only) and installs the native fuzzer. Rejects with the build's own
 * words when it cannot be had on this machine.
 */
export function ensureAddon(): Promise<void> {
  addon ??= promisify(execFile)('bash', [join(ROOT, 'scripts/fuzz/build-addon.sh')], { cwd: ROOT, maxBuffer: 16 << 20 }).then(
    () => undefined,
    (error: unknown) => {
      const stderr = (error as { stderr?: string }).stderr?.trim();
      throw new Error(stderr !== undefined && stderr !== '' ? stderr : String(error), { cause: error });
    },
  );
  return addon;
}

const bundles = new Map<string, Promise<string>>();

/**
 * The target and what it imports, as one CommonJS file that Jazzer's require hook
 * instruments. Made once per process: esbuild's service may be gone later (a Ctrl-C
 * reaches it too).
 */
export function bundleTarget(t: Target): Promise<string> {
  let bundle = bundles.get(t.name);
  if (bundle === undefined) {
    bundle = makeBundle(t);
    bundles.set(t.name, bundle);
  }
  return bundle;
}

async function makeBundle(t: Target): Promise<string> {
  const result = await build({
    entryPoints: [join(FUZZ_DIR, 'targets', `${t.name}.ts`)],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    // Stack traces of findings point into src/.
    sourcemap: 'inline',
    write: false,
    logLevel: 'silent',
    // The native string extractor msgpackr loads when present, as in production.
    external: ['msgpackr-extract'],
  });
  const code = result.outputFiles[0]!.contents;
  const file = join(CACHE, 'bundles', `${t.name}-${createHash('sha256').update(code).digest('hex').slice(0, 16)}.cjs`);
  if (!existsSync(file)) {
    await mkdir(join(CACHE, 'bundles'), { recursive: true });
    await writeFile(file, code);
  }
  return file;
}

export interface RunOptions {
  readonly target: Target;
  /** libFuzzer's positional arguments: corpus directories (new inputs go to the first), or input files to run once each. */
  readonly inputs: readonly string[];
  /** Where crash-, timeout- and oom- files go. */
  readonly artifacts: string;
  /** More libFuzzer flags (-max_total_time=…, -runs=…, -merge=1, …). */
  readonly flags?: readonly string[];
  /** Receives libFuzzer's output as it comes. */
  readonly onOutput?: (text: string) => void;
  /** More environment for the fuzzing process (TESSERA_FUZZ_KNOWN_BUGS, say). */
  readonly env?: Readonly<Record<string, string>>;
  /** Kills the fuzzer when it has not finished by then. */
  readonly killAfterMs?: number;
  /**
   * Kills the fuzzer when aborted (a test that timed out, an interrupted run). Nothing is
   * lost but its final stats: libFuzzer writes each new input to the corpus as it finds it.
   * (SIGTERM would not do: JavaScript listeners for it wait on an event loop that libFuzzer
   * blocks in sync mode.)
   */
  readonly signal?: AbortSignal;
  /**
   * Start the fuzzer in a process group of its own, so that a Ctrl-C meant for this process
   * does not reach it (it is stopped through `signal` instead).
   */
  readonly ownProcessGroup?: boolean;
}

export interface FuzzStats {
  /** Inputs run (stat::number_of_executed_units). */
  readonly execs?: number;
  readonly execsPerSecond?: number;
  readonly newUnits?: number;
  readonly peakRssMb?: number;
  /** Coverage counters hit, and features, as of libFuzzer's last status line. */
  readonly cov?: number;
  readonly ft?: number;
  readonly corpus?: string;
}

export interface RunResult {
  /** 0 when libFuzzer finished without a finding. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly output: string;
  readonly stats: FuzzStats;
  /** Artifacts libFuzzer wrote in this run (crash-…, timeout-…, oom-…). */
  readonly artifacts: string[];
}

export async function runFuzzer(options: RunOptions): Promise<RunResult> {
  const { target: t } = options;
  await ensureAddon();
  const bundle = await bundleTarget(t);
  await mkdir(options.artifacts, { recursive: true });
  const before = new Set(await readdir(options.artifacts));
  const dict = dictionary(t);
  const args = [
    `-max_len=${t.maxLen}`,
    `-timeout=${t.timeout}`,
    `-artifact_prefix=${options.artifacts.endsWith('/') ? options.artifacts : `${options.artifacts}/`}`,
    '-print_final_stats=1',
    ...(existsSync(dict) ? [`-dict=${dict}`] : []),
    ...(options.flags ?? []),
    ...options.inputs,
  ];
  // libFuzzer writes with plain fprintf to stderr, which Node makes non-blocking when it is a
  // pipe: once the pipe is full, the rest of a line is dropped. A file never is full.
  const log = join(await mkdtemp(join(tmpdir(), 'tessera-fuzz-')), 'output.log');
  const fd = openSync(log, 'w');
  let child;
  try {
    child = spawn(join(ROOT, 'scripts/fuzz/child.sh'), args, {
      cwd: ROOT,
      env: { ...process.env, ...options.env, TESSERA_FUZZ_BUNDLE: bundle, TESSERA_FUZZ_MODE: t.mode },
      stdio: ['ignore', fd, fd],
      detached: options.ownProcessGroup === true,
    });
  } finally {
    closeSync(fd);
  }
  let output = '';
  let offset = 0;
  const decoder = new StringDecoder('utf8');
  let reading = Promise.resolve();
  // One read at a time, each taking up where the last stopped.
  const poll = (): Promise<void> =>
    (reading = reading.then(async () => {
      const bytes = (await readFile(log)).subarray(offset);
      offset += bytes.length;
      const text = decoder.write(bytes);
      output += text;
      if (text !== '') options.onOutput?.(text);
    }));
  const poller = setInterval(() => void poll(), 250);
  const state = { killed: false };
  const killer =
    options.killAfterMs === undefined
      ? undefined
      : setTimeout(() => {
          state.killed = true;
          child.kill('SIGKILL');
        }, options.killAfterMs);
  const abort = (): void => {
    child.kill('SIGKILL');
  };
  options.signal?.addEventListener('abort', abort, { once: true });
  if (options.signal?.aborted === true) abort();
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c: number | null, s: NodeJS.Signals | null) => resolve([c, s]));
  }).finally(() => {
    clearTimeout(killer);
    clearInterval(poller);
    options.signal?.removeEventListener('abort', abort);
  });
  await poll();
  if (state.killed) {
    output += `\n==tessera-fuzz== killed after ${options.killAfterMs} ms\n`;
  }
  await rm(dirname(log), { recursive: true, force: true });
  const artifacts = (await readdir(options.artifacts)).filter((f) => !before.has(f)).map((f) => join(options.artifacts, f));
  return { code, signal, output, stats: parseStats(output), artifacts };
}

export function parseStats(output: string): FuzzStats {
  const stat = (name: string): number | undefined => {
    const match = new RegExp(`^stat::${name}:\\s*(\\d+)`, 'm').exec(output);
    return match === null ? undefined : Number(match[1]);
  };
  const status = [...output.matchAll(/^#\d+\s+\S+\s+cov: (\d+) ft: (\d+) corp: (\S+)/gm)].at(-1);
  return {
    ...optional('execs', stat('number_of_executed_units')),
    ...optional('execsPerSecond', stat('average_exec_per_sec')),
    ...optional('newUnits', stat('new_units_added')),
    ...optional('peakRssMb', stat('peak_rss_mb')),
    ...optional('cov', status === undefined ? undefined : Number(status[1])),
    ...optional('ft', status === undefined ? undefined : Number(status[2])),
    ...optional('corpus', status?.[3]),
  };
}

function optional<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, V>);
}
