import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { build, type BuildFailure, type Message, type Metafile } from 'esbuild';
import { TesseraError } from '../errors.js';
import type { FnRef, ModuleFnRef } from './fn-ref.js';

/**
 * A user module as one self-contained ESM file: npm dependencies inlined, Node built-ins
 * left as imports. `hash` (sha256 hex of `code`) is its content address, so a worker
 * fetches each distinct bundle once and two clients with the same source share it.
 */
export interface ModuleBundle {
  readonly hash: string;
  readonly code: Uint8Array;
  readonly bytes: number;
}

/** A module could not be bundled, or a bundle was refused (wrong hash, unknown hash). */
export class BundleError extends TesseraError {
  /** The module URL, or `bundle <hash>` for errors about a bundle already built. */
  readonly module: string;

  constructor(module: string, message: string, options?: ErrorOptions) {
    super(message, 'ERR_BUNDLE', options);
    this.name = 'BundleError';
    this.module = module;
  }
}

/**
 * Prepended to every bundle. ESM has no `require`, yet CommonJS packages inlined by esbuild
 * still call `require('fs')` for built-ins (esbuild's runtime looks up a free `require`), and
 * read `__filename`/`__dirname`. esbuild always renames a user's own top-level `require`, so
 * declaring it here cannot collide; the file and directory names get private names and
 * `define` points free uses at them, so a user's `const __dirname = …` stays legal.
 */
const BANNER = [
  "import { createRequire as __tesseraCreateRequire } from 'node:module';",
  "import { fileURLToPath as __tesseraFileURLToPath } from 'node:url';",
  "import { dirname as __tesseraDirname } from 'node:path';",
  'const require = __tesseraCreateRequire(import.meta.url);',
  'const __tessera_filename = __tesseraFileURLToPath(import.meta.url);',
  'const __tessera_dirname = __tesseraDirname(__tessera_filename);',
].join('\n');

interface Built {
  readonly bundle: ModuleBundle;
  /** Stamps (mtime and size) of the module's own source files, to notice edits. */
  readonly stamps: ReadonlyMap<string, string>;
}

// One build per URL while its sources are unchanged: a client submitting many graphs that
// use the same module bundles it once.
const memo = new Map<string, Promise<Built>>();

/**
 * Bundles the module at a file: URL (JavaScript or TypeScript) with esbuild. The result is
 * memoised per URL and rebuilt when the module or any of its non-`node_modules` imports
 * changes on disk. Throws BundleError naming the module and esbuild's first message.
 */
export async function bundleModule(url: string): Promise<ModuleBundle> {
  const known = memo.get(url);
  if (known !== undefined) {
    // A failed build is not remembered (the catch below forgets it), so an edit can fix it.
    const built = await known;
    if (await unchanged(built.stamps)) return built.bundle;
    if (memo.get(url) === known) memo.delete(url);
    return bundleModule(url);
  }
  const pending = buildBundle(url);
  memo.set(url, pending);
  try {
    return (await pending).bundle;
  } catch (error) {
    if (memo.get(url) === pending) memo.delete(url);
    throw error;
  }
}

/** The distinct module references among `fnRefs`, in first-seen order: what to bundle. */
export function moduleRefsOf(fnRefs: readonly FnRef[]): ModuleFnRef[] {
  const seen = new Map<string, ModuleFnRef>();
  for (const ref of fnRefs) {
    if (ref.kind === 'module' && !seen.has(ref.id)) seen.set(ref.id, ref);
  }
  return [...seen.values()];
}

/** sha256 hex of some bytes: the content address of a bundle. */
export function bundleHash(code: Uint8Array): string {
  return createHash('sha256').update(code).digest('hex');
}

async function buildBundle(url: string): Promise<Built> {
  if (!url.startsWith('file:')) {
    throw new BundleError(url, `cannot bundle module ${url}: only file: URLs can be bundled`);
  }
  const file = fileURLToPath(url);
  // Stamped before the build: an edit made while esbuild runs then shows up as a change.
  let entryStamp: string;
  try {
    entryStamp = stampOf(await stat(file));
  } catch (error) {
    throw new BundleError(url, `cannot bundle module ${url}: file not found (${file})`, { cause: error });
  }
  // Paths in the output (esbuild's `// src/ops.ts` comments) are relative to the working
  // directory; the project root keeps the hash independent of the client's process.cwd().
  const root = projectRoot(file);
  let code: Uint8Array;
  let metafile: Metafile;
  try {
    const result = await build({
      entryPoints: [file],
      absWorkingDir: root,
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      write: false,
      treeShaking: true,
      minify: false,
      // No source map: an inline one nearly doubles the upload (378 KB -> 698 KB for the
      // test fixture, even without sources content), and its paths point at the client's
      // disk, which a worker cannot read anyway.
      sourcemap: false,
      keepNames: true,
      logLevel: 'silent',
      metafile: true,
      banner: { js: BANNER },
      define: { __filename: '__tessera_filename', __dirname: '__tessera_dirname' },
    });
    const output = result.outputFiles[0];
    if (output === undefined) throw new Error('esbuild produced no output');
    code = output.contents;
    metafile = result.metafile;
  } catch (error) {
    throw new BundleError(url, `cannot bundle module ${url}: ${describe(error)}`, { cause: error });
  }
  const stamps = new Map<string, string>([[file, entryStamp]]);
  for (const input of Object.keys(metafile.inputs)) {
    const path = isAbsolute(input) ? input : resolve(root, input);
    // Installed packages change only with an install; stat-ing hundreds of them on every
    // call would cost more than it saves.
    if (path === file || path.split(sep).includes('node_modules') || !existsSync(path)) continue;
    stamps.set(path, stampOf(await stat(path)));
  }
  const bundle: ModuleBundle = { hash: bundleHash(code), code, bytes: code.byteLength };
  return { bundle, stamps };
}

async function unchanged(stamps: ReadonlyMap<string, string>): Promise<boolean> {
  for (const [path, stamp] of stamps) {
    try {
      if (stampOf(await stat(path)) !== stamp) return false;
    } catch {
      return false;
    }
  }
  return true;
}

// Size as well as mtime: two writes within the file system's timestamp granularity would
// otherwise look like one.
function stampOf(stats: { mtimeMs: number; size: number }): string {
  return `${stats.mtimeMs}:${stats.size}`;
}

/** The nearest directory above `file` with a package.json, else the file's directory. */
function projectRoot(file: string): string {
  let dir = dirname(file);
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return dirname(file);
    dir = parent;
  }
}

function describe(error: unknown): string {
  const messages = (error as Partial<BuildFailure> | null)?.errors;
  const first: Message | undefined = Array.isArray(messages) ? messages[0] : undefined;
  if (first === undefined) return error instanceof Error ? error.message : String(error);
  const at = first.location;
  return at === null ? first.text : `${first.text} (${at.file}:${at.line}:${at.column + 1})`;
}
