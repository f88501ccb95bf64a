// The Lambda deployment package: built from the worker's sources and a graph's modules,
// content-addressed, readable by a real unzip, and refused with the heaviest inputs named
// when over Lambda's limits.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { LambdaPackageTooLargeError } from '../../../src/deploy/lambda/errors.js';
import { functionNameFor } from '../../../src/deploy/lambda/functions.js';
import { buildWorkerPackage, checkPackageSize } from '../../../src/deploy/lambda/package.js';
import { MAX_UNZIPPED_BYTES, MAX_ZIPPED_BYTES } from '../../../src/deploy/lambda/limits.js';
import { TesseraError } from '../../../src/errors.js';

const OPS = new URL('../../fixtures/ops.ts', import.meta.url).href;
const dirs: string[] = [];

void describe('Lambda worker package', () => {
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  void test('holds the handler, the pool thread and the graph\'s bundles; the same code gives the same name', async () => {
    const a = await buildWorkerPackage({ modules: [OPS] });
    const b = await buildWorkerPackage({ modules: [OPS] });
    assert.equal(a.hash, b.hash);
    assert.ok(a.zip.equals(b.zip), 'byte-identical zips');
    const config = { role: 'arn:aws:iam::123456789012:role/r', memoryMB: 1769, timeout: 900, runtime: 'nodejs20.x', architecture: 'x86_64', activeTimeout: 60 } as const;
    assert.match(functionNameFor(a, config), /^tessera-worker-[0-9a-f]{16}$/);
    assert.equal(functionNameFor(a, config), functionNameFor(b, config));
    assert.notEqual(functionNameFor(a, config), functionNameFor(a, { ...config, timeout: 60 }), 'other settings, another function');
    assert.equal(a.handler, 'handler.handler');
    assert.equal(a.modules.length, 1);
    const bare = await buildWorkerPackage();
    assert.notEqual(functionNameFor(bare, config), functionNameFor(a, config), 'other code, another function');
    assert.ok(a.zippedBytes < MAX_ZIPPED_BYTES && a.unzippedBytes < MAX_UNZIPPED_BYTES);

    // A real unzip reads it, and the handler module loads.
    const dir = mkdtempSync(join(tmpdir(), 'tessera-lambda-pkg-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'package.zip'), a.zip);
    const listing = execFileSync('python3', ['-c', 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); z.testzip(); z.extractall(sys.argv[2]); print("\\n".join(z.namelist()))', join(dir, 'package.zip'), join(dir, 'code')], { encoding: 'utf8' });
    assert.deepEqual(listing.trim().split('\n').sort(), ['bundles/' + a.modules[0]! + '.mjs', 'handler.js', 'package.json', 'thread.js'].sort());
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'code', 'package.json'), 'utf8')) as unknown, { type: 'module' });
    const handler = (await import(join(dir, 'code', 'handler.js'))) as { handler: unknown };
    assert.equal(typeof handler.handler, 'function');
  });

  void test('over the limits: a clear error naming the biggest inputs', async () => {
    await assert.rejects(buildWorkerPackage({ modules: [OPS], limits: { zipped: 10_000, unzipped: MAX_UNZIPPED_BYTES } }), (error: unknown) => {
      assert.ok(error instanceof LambdaPackageTooLargeError);
      assert.ok(error instanceof TesseraError);
      assert.equal(error.code, 'ERR_LAMBDA_PACKAGE_TOO_LARGE');
      assert.ok(error.zippedBytes > 10_000);
      // The graph's bundled module weighs most and is named first.
      assert.match(error.biggest[0]!.name, /ops\.ts \(bundled\)/);
      assert.ok(error.message.includes('ops.ts'));
      return true;
    });
  });

  void test('checkPackageSize: each limit, and the five heaviest inputs by size', () => {
    const inputs = Array.from({ length: 8 }, (_, i) => ({ name: `file-${i}.js`, bytes: (i + 1) * 1_000_000 }));
    assert.doesNotThrow(() => checkPackageSize(MAX_ZIPPED_BYTES, MAX_UNZIPPED_BYTES, inputs));
    assert.throws(() => checkPackageSize(MAX_ZIPPED_BYTES + 1, 1, inputs), (error: unknown) => {
      assert.ok(error instanceof LambdaPackageTooLargeError);
      assert.match(error.message, /zipped \(the limit is 50\.0 MB\)/);
      assert.deepEqual(error.biggest.map((b) => b.name), ['file-7.js', 'file-6.js', 'file-5.js', 'file-4.js', 'file-3.js']);
      return true;
    });
    assert.throws(() => checkPackageSize(1, MAX_UNZIPPED_BYTES + 1, inputs), /unzipped \(the limit is 250\.0 MB\)/);
  });

  void test('a bad prefix is refused at the door', async () => {
    await assert.rejects(buildWorkerPackage({ prefix: 'has space' }), /options\.prefix/);
  });
});
