/**
 * The Python environment of the current anchors: today's Dask and Ray from PyPI, pinned,
 * installed once into a cached virtual environment
 * (~/.cache/tessera/bench-venv/<hash of the pins and the interpreter>) and reused by every
 * benchmark after. See /work/shared/BENCHMARKS.md.
 *
 *   npm run bench -- venv        creates it if missing and prints what it holds
 *
 * The interpreter is `python3.11` from PATH, or TESSERA_BENCH_PYTHON. Creation takes a few
 * minutes (Ray's wheel is large); it is timed and the time kept with the environment.
 * Never throws: a failure comes back as { available: false, reason }.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** What the environment installs: the anchors, and numpy for the transfer payload. */
export const PINS = ['dask[distributed]==2026.8.*', 'ray==2.60.*', 'numpy==2.4.*'] as const;

/** The distributions whose installed versions are reported. */
const REPORTED = ['dask', 'distributed', 'ray', 'numpy'] as const;

const INSTALL_TIMEOUT_MS = 30 * 60_000;
const LOCK_STALE_MS = 40 * 60_000;

export interface Venv {
  readonly available: true;
  /** The environment's interpreter. */
  readonly python: string;
  readonly dir: string;
  /** Installed versions, e.g. { dask: '2026.8.0', ray: '2.60.0', … }. */
  readonly versions: Readonly<Record<string, string>>;
  /** The interpreter the environment was made from, and its version. */
  readonly base: { readonly python: string; readonly version: string };
  /** How long creating it took (venv + pip install), when it was created. */
  readonly createdSeconds: number;
  readonly createdAt: string;
  /** True when this call created it, false when it was there already. */
  readonly createdNow: boolean;
}

export type VenvResult = Venv | { readonly available: false; readonly reason: string };

interface Manifest {
  pins: string[];
  base: { python: string; version: string };
  versions: Record<string, string>;
  createdSeconds: number;
  createdAt: string;
}

function run(file: string, args: string[], timeoutMs: number): Promise<{ ok: boolean; stdout: string; stderr: string; error?: string }> {
  return new Promise((resolve) => {
    const env: NodeJS.ProcessEnv = { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1', PYTHONUNBUFFERED: '1' };
    delete env['PYTHONPATH'];
    delete env['PYTHONHOME'];
    delete env['VIRTUAL_ENV'];
    execFile(file, args, { env, timeout: timeoutMs, maxBuffer: 64 * 2 ** 20, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      resolve({ ok: error === null, stdout, stderr, ...(error === null ? {} : { error: error.message }) });
    });
  });
}

const tail = (s: string): string => (s.length > 2000 ? `…${s.slice(-2000)}` : s).trim();

/** The interpreter to build from and its full version, or why there is none. */
async function baseInterpreter(): Promise<{ python: string; version: string } | { reason: string }> {
  const python = process.env['TESSERA_BENCH_PYTHON'] ?? 'python3.11';
  const r = await run(python, ['-c', 'import sys; print(sys.executable); print(sys.version.split()[0])'], 60_000);
  if (!r.ok) return { reason: `no ${python} to create the anchors' environment from (set TESSERA_BENCH_PYTHON): ${r.error ?? ''} ${tail(r.stderr)}` };
  const [executable, version] = r.stdout.trim().split('\n');
  return { python: executable ?? python, version: version ?? '?' };
}

/** ~/.cache/tessera/bench-venv/<hash>: one directory per set of pins and interpreter version. */
export function venvDir(version: string): string {
  const hash = createHash('sha256').update(JSON.stringify({ pins: PINS, python: version.split('.').slice(0, 2).join('.') })).digest('hex').slice(0, 16);
  return path.join(homedir(), '.cache', 'tessera', 'bench-venv', hash);
}

async function readManifest(dir: string): Promise<Manifest | undefined> {
  try {
    return JSON.parse(await readFile(path.join(dir, 'tessera-anchors.json'), 'utf8')) as Manifest;
  } catch {
    return undefined;
  }
}

/** Holds a lock directory next to the environment while creating it; waits for another creator. */
async function withLock<T>(dir: string, body: () => Promise<T>): Promise<T> {
  const lock = `${dir}.lock`;
  await mkdir(path.dirname(dir), { recursive: true });
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch {
      // Another benchmark is creating it; a lock older than any install is left over.
      try {
        const { mtimeMs } = await stat(lock);
        if (Date.now() - mtimeMs > LOCK_STALE_MS) await rm(lock, { recursive: true, force: true });
      } catch {
        // Gone meanwhile.
      }
      await sleep(2000);
    }
  }
  try {
    return await body();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

let cached: Promise<VenvResult> | undefined;

/** The anchors' environment, created on first use. Cached for the process. */
export function ensureVenv(log: (line: Record<string, unknown>) => void = () => undefined): Promise<VenvResult> {
  cached ??= create(log);
  return cached;
}

async function create(log: (line: Record<string, unknown>) => void): Promise<VenvResult> {
  const base = await baseInterpreter();
  if ('reason' in base) return { available: false, reason: base.reason };
  const dir = venvDir(base.version);
  const python = path.join(dir, 'bin', 'python');
  const done = (m: Manifest, createdNow: boolean): Venv => ({
    available: true,
    python,
    dir,
    versions: m.versions,
    base: m.base,
    createdSeconds: m.createdSeconds,
    createdAt: m.createdAt,
    createdNow,
  });
  const ready = await readManifest(dir);
  if (ready !== undefined && existsSync(python)) return done(ready, false);

  return withLock(dir, async () => {
    const again = await readManifest(dir);
    if (again !== undefined && existsSync(python)) return done(again, false);
    log({ venv: dir, status: 'creating', pins: PINS, base });
    const start = performance.now();
    await rm(dir, { recursive: true, force: true });
    const made = await run(base.python, ['-m', 'venv', dir], 5 * 60_000);
    if (!made.ok) return { available: false, reason: `${base.python} -m venv failed: ${made.error ?? ''} ${tail(made.stderr)}` };
    const pip = await run(python, ['-m', 'pip', 'install', '--quiet', '--no-input', ...PINS], INSTALL_TIMEOUT_MS);
    if (!pip.ok) {
      await rm(dir, { recursive: true, force: true });
      return { available: false, reason: `pip install ${PINS.join(' ')} failed: ${pip.error ?? ''} ${tail(pip.stderr)}` };
    }
    const query = `import json, importlib.metadata as m; print(json.dumps({d: m.version(d) for d in ${JSON.stringify(REPORTED)}}))`;
    const versions = await run(python, ['-c', query], 60_000);
    if (!versions.ok) return { available: false, reason: `cannot read the installed versions: ${tail(versions.stderr)}` };
    const manifest: Manifest = {
      pins: [...PINS],
      base,
      versions: JSON.parse(versions.stdout.trim()) as Record<string, string>,
      createdSeconds: (performance.now() - start) / 1000,
      createdAt: new Date().toISOString(),
    };
    await writeFile(path.join(dir, 'tessera-anchors.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    log({ venv: dir, status: 'created', versions: manifest.versions, createdSeconds: manifest.createdSeconds });
    return done(manifest, true);
  });
}

// `npm run bench -- venv`: create (or find) the environment and say what it holds.
if (process.env['TESSERA_BENCH'] === 'venv') {
  const venv = await ensureVenv((line) => {
    console.log(JSON.stringify({ bench: 'venv', ...line }));
  });
  console.log(JSON.stringify({ bench: 'venv', ...venv }));
  if (!venv.available) process.exitCode = 1;
}
