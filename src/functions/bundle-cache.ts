import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BundleError, bundleHash } from './bundle.js';

const HASH = /^[0-9a-f]{64}$/;

/**
 * A worker's store of module bundles, by content hash. Code is checked against its hash
 * before it is written and before it is imported, so a worker runs exactly the code the
 * client bundled; each bundle is imported once per process.
 */
export class BundleCache {
  readonly dir: string;
  readonly #isDefaultDir: boolean;
  #ready: Promise<void> | undefined;
  // Hashes whose file this process wrote or verified: no need to read them back.
  readonly #verified = new Set<string>();
  readonly #modules = new Map<string, Promise<Record<string, unknown>>>();

  /** `dir` defaults to a private per-user directory under the OS temp directory. */
  constructor(dir?: string) {
    this.#isDefaultDir = dir === undefined;
    this.dir = dir ?? join(tmpdir(), `tessera-bundles-${userId()}`);
  }

  /** Whether the bundle is here (a previous worker on this machine may have written it). */
  has(hash: string): boolean {
    return HASH.test(hash) && (this.#verified.has(hash) || existsSync(this.#path(hash)));
  }

  /** Stores a bundle; refuses code whose sha256 is not `hash`. Returns its file URL. */
  async put(hash: string, code: Uint8Array): Promise<string> {
    checkHash(hash);
    const actual = bundleHash(code);
    if (actual !== hash) {
      throw new BundleError(
        `bundle ${hash}`,
        `refusing bundle ${hash}: its code hashes to ${actual}; it was corrupted or tampered with on the way`,
      );
    }
    const path = this.#path(hash);
    if (!this.#verified.has(hash)) {
      await this.#ensureDir();
      // Write then rename: a concurrent reader (another thread, another worker sharing the
      // directory) sees either no file or the whole file, never half of one.
      const temp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
      try {
        await writeFile(temp, code, { mode: 0o600 });
        await rename(temp, path);
      } catch (error) {
        await rm(temp, { force: true });
        throw error;
      }
      this.#verified.add(hash);
    }
    return pathToFileURL(path).href;
  }

  /** The bundle's module namespace; imported once, however many tasks ask. */
  import(hash: string): Promise<Record<string, unknown>> {
    let loading = this.#modules.get(hash);
    if (loading === undefined) {
      loading = this.#load(hash);
      this.#modules.set(hash, loading);
      // Forget a failure so that a later put() can repair a missing or corrupt file.
      loading.catch(() => {
        if (this.#modules.get(hash) === loading) this.#modules.delete(hash);
      });
    }
    return loading;
  }

  async #load(hash: string): Promise<Record<string, unknown>> {
    checkHash(hash);
    const path = this.#path(hash);
    if (!this.#verified.has(hash)) {
      // Written by another process: check it before running it.
      let code: Uint8Array;
      try {
        code = await readFile(path);
      } catch (error) {
        throw new BundleError(`bundle ${hash}`, `bundle ${hash} is not in ${this.dir}; put() it first`, { cause: error });
      }
      if (bundleHash(code) !== hash) {
        throw new BundleError(`bundle ${hash}`, `bundle file ${path} does not match its hash; put() it again`);
      }
      this.#verified.add(hash);
    }
    return (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  }

  #path(hash: string): string {
    return join(this.dir, `${hash}.mjs`);
  }

  #ensureDir(): Promise<void> {
    this.#ready ??= this.#makeDir().catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    return this.#ready;
  }

  async #makeDir(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    // The default directory is in a shared temp directory and holds code this process will
    // run: if another user made it first, they could plant bundles. Refuse that.
    if (this.#isDefaultDir && typeof process.getuid === 'function') {
      const stats = await lstat(this.dir);
      if (!stats.isDirectory() || stats.uid !== process.getuid() || (stats.mode & 0o022) !== 0) {
        throw new BundleError(
          'bundle cache',
          `bundle cache directory ${this.dir} is not a directory owned by this user and closed to others; remove it or pass another directory`,
        );
      }
    }
  }
}

function checkHash(hash: string): void {
  // The hash becomes a file name: anything but hex digits could point outside the directory.
  if (!HASH.test(hash)) throw new BundleError(`bundle ${hash}`, `'${hash}' is not a sha256 hex bundle hash`);
}

function userId(): string {
  return typeof process.getuid === 'function' ? String(process.getuid()) : userInfo().username;
}
