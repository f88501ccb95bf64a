/** Module functions travel to remote workers as esbuild bundles, addressed by sha256. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { TesseraError } from '../../src/errors.js';
import { BundleCache } from '../../src/functions/bundle-cache.js';
import { BundleError, bundleHash, bundleModule, moduleRefsOf } from '../../src/functions/bundle.js';
import type { FnRef } from '../../src/functions/fn-ref.js';
import { fnRef } from '../../src/functions/portable.js';
import { summarise } from '../fixtures/bundle-npm/ops.js';

const run = promisify(execFile);
const FIXTURE = new URL('../fixtures/bundle-npm/ops.ts', import.meta.url).href;

const temps: string[] = [];
async function freshDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tessera-bundle-test-'));
  temps.push(dir);
  return dir;
}
after(async () => {
  await Promise.all(temps.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** Fails the test if a node_modules directory could help resolve imports from `dir`. */
function assertNoNodeModulesAbove(dir: string): void {
  for (let d = dir; ; d = dirname(d)) {
    assert.equal(existsSync(join(d, 'node_modules')), false, `${d} has a node_modules`);
    if (dirname(d) === d) break;
  }
}

async function expectBundleError(url: string, pattern: RegExp): Promise<void> {
  await assert.rejects(bundleModule(url), (error: unknown) => {
    assert.ok(error instanceof BundleError, `expected BundleError, got ${String(error)}`);
    assert.ok(error instanceof TesseraError);
    assert.equal(error.code, 'ERR_BUNDLE');
    assert.equal(error.module, url);
    assert.ok(error.message.includes(url), error.message);
    assert.match(error.message, pattern);
    return true;
  });
}

void describe('bundleModule', () => {
  void test('a TypeScript module using npm packages runs from its bundle with no node_modules', async (t) => {
    const ref = fnRef(summarise);
    assert.ok(ref.kind === 'module');
    assert.equal(ref.url, FIXTURE);

    const started = performance.now();
    const bundle = await bundleModule(ref.url);
    const ms = performance.now() - started;
    t.diagnostic(`fixture bundle: ${bundle.bytes} bytes, ${ms.toFixed(0)} ms`);
    assert.equal(bundle.bytes, bundle.code.byteLength);
    assert.equal(bundle.hash, bundleHash(bundle.code));
    assert.match(bundle.hash, /^[0-9a-f]{64}$/);
    assert.ok(bundle.bytes < 5 * 1024 * 1024, `bundle is ${bundle.bytes} bytes`);
    // Memoised: a second call does not rebuild.
    assert.equal(await bundleModule(ref.url), bundle);

    const dir = await freshDir();
    assertNoNodeModulesAbove(dir);
    const cache = new BundleCache(dir);
    assert.equal(cache.has(bundle.hash), false);
    const fileUrl = await cache.put(bundle.hash, bundle.code);
    assert.equal(cache.has(bundle.hash), true);
    assert.equal(fileUrl, pathToFileURL(join(dir, `${bundle.hash}.mjs`)).href);

    // Plain node (no tsx, no inherited loader options) in the empty directory.
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    const script = `const m = await import(${JSON.stringify(fileUrl)}); console.log(JSON.stringify(m[${JSON.stringify(ref.exportName)}]('let a = 1; a++; export {};')));`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: dir, env });
    assert.deepEqual(JSON.parse(stdout), { statements: 3, roundTrip: { statements: 3 } });
  });

  void test('the hash is stable for the same source and changes with the source', async () => {
    const dir = await freshDir();
    const file = join(dir, 'mod.ts');
    const url = pathToFileURL(file).href;
    const source = 'export function inc(x: number): number { return x + 1; }\n';
    await writeFile(file, source);
    const first = await bundleModule(url);

    // Same bytes, new mtime: the memo is invalidated, the rebuild gives the same hash.
    await writeFile(file, source);
    const later = new Date(Date.now() + 5_000);
    await utimes(file, later, later);
    const second = await bundleModule(url);
    assert.notEqual(second, first, 'an edit (new mtime) must rebuild');
    assert.equal(second.hash, first.hash);

    await writeFile(file, 'export function inc(x: number): number { return x + 2; }\n');
    const third = await bundleModule(url);
    assert.notEqual(third.hash, first.hash);
    const cache = new BundleCache(join(dir, 'cache'));
    await cache.put(third.hash, third.code);
    const inc = (await cache.import(third.hash)).inc as (x: number) => number;
    assert.equal(inc(1), 3);
  });

  void test('an edited import (not only the entry) invalidates the memo', async () => {
    const dir = await freshDir();
    await writeFile(join(dir, 'dep.ts'), 'export const k = 1;\n');
    await writeFile(join(dir, 'main.ts'), "import { k } from './dep.ts';\nexport function get(): number { return k; }\n");
    const url = pathToFileURL(join(dir, 'main.ts')).href;
    const first = await bundleModule(url);
    await writeFile(join(dir, 'dep.ts'), 'export const k = 22;\n');
    const second = await bundleModule(url);
    assert.notEqual(second.hash, first.hash);
  });

  void test('user code may declare its own require and __dirname', async () => {
    const dir = await freshDir();
    const file = join(dir, 'own.mjs');
    await writeFile(
      file,
      [
        "import { createRequire } from 'node:module';",
        "import { fileURLToPath } from 'node:url';",
        "import { dirname } from 'node:path';",
        'const require = createRequire(import.meta.url);',
        'const __filename = fileURLToPath(import.meta.url);',
        'const __dirname = dirname(__filename);',
        "export function where() { return [typeof require('node:os').cpus, __dirname]; }",
      ].join('\n'),
    );
    const bundle = await bundleModule(pathToFileURL(file).href);
    const cacheDir = join(dir, 'cache');
    const cache = new BundleCache(cacheDir);
    await cache.put(bundle.hash, bundle.code);
    const module = await cache.import(bundle.hash);
    const where = module.where as () => [string, string];
    assert.deepEqual(where(), ['function', cacheDir]);
  });

  void test('a missing file, a syntax error and an unresolved import give BundleError naming the module', async () => {
    const dir = await freshDir();
    await expectBundleError(pathToFileURL(join(dir, 'nope.ts')).href, /file not found/);

    const broken = join(dir, 'broken.ts');
    await writeFile(broken, 'export function f( { return 1; }\n');
    await expectBundleError(pathToFileURL(broken).href, /broken\.ts:1:/);

    const unresolved = join(dir, 'unresolved.ts');
    await writeFile(unresolved, "import { x } from 'no-such-package-tessera';\nexport const y = x;\n");
    await expectBundleError(pathToFileURL(unresolved).href, /Could not resolve "no-such-package-tessera"/);

    await expectBundleError('https://example.com/mod.js', /only file: URLs/);

    // Fixing the file fixes the bundle: failures are not memoised.
    await writeFile(broken, 'export function f() { return 1; }\n');
    assert.ok((await bundleModule(pathToFileURL(broken).href)).bytes > 0);
  });
});

void describe('BundleCache', () => {
  const code = new TextEncoder().encode('export const answer = 42;\n');
  const hash = bundleHash(code);

  void test('refuses code whose hash does not match, and names that are not hashes', async () => {
    const dir = await freshDir();
    const cache = new BundleCache(dir);
    const wrong = bundleHash(new TextEncoder().encode('something else'));
    await assert.rejects(cache.put(wrong, code), (error: unknown) => {
      assert.ok(error instanceof BundleError);
      assert.match(error.message, new RegExp(`refusing bundle ${wrong}: its code hashes to ${hash}`));
      return true;
    });
    assert.equal(cache.has(wrong), false);
    assert.equal(existsSync(join(dir, `${wrong}.mjs`)), false);
    await assert.rejects(cache.put('../../etc/passwd', code), BundleError);
    await assert.rejects(cache.import(hash), /not in .*put\(\) it first/);
  });

  void test('imports once, and checks files written by another process before importing', async () => {
    const dir = await freshDir();
    const writer = new BundleCache(dir);
    await writer.put(hash, code);
    const first = await writer.import(hash);
    assert.equal(first.answer, 42);
    assert.equal(await writer.import(hash), first);

    // A second cache (another worker) finds the file and verifies it before use.
    const reader = new BundleCache(dir);
    assert.equal(reader.has(hash), true);
    assert.equal((await reader.import(hash)).answer, 42);

    const other = new TextEncoder().encode('export const answer = 43;\n');
    const otherHash = bundleHash(other);
    await writeFile(join(dir, `${otherHash}.mjs`), 'export const answer = "tampered";\n');
    await assert.rejects(new BundleCache(dir).import(otherHash), /does not match its hash/);
    assert.deepEqual(await readFile(join(dir, `${hash}.mjs`)), Buffer.from(code));
  });

  void test('the default directory is private to the user', async () => {
    const cache = new BundleCache();
    assert.ok(cache.dir.startsWith(tmpdir()));
    await cache.put(hash, code);
    assert.equal(cache.has(hash), true);
  });
});

void describe('moduleRefsOf', () => {
  void test('keeps distinct module references, in order', () => {
    const mod = fnRef(summarise);
    const refs: FnRef[] = [
      { kind: 'builtin', id: 'builtin:add', name: 'add' },
      mod,
      { kind: 'source', id: 'src:x', name: 'f', expr: '(x) => x' },
      mod,
      { kind: 'module', id: 'mod:other', name: 'g', url: 'file:///other.js', exportName: 'g' },
    ];
    assert.deepEqual(
      moduleRefsOf(refs).map((r) => r.id),
      [mod.id, 'mod:other'],
    );
  });
});
