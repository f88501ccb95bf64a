/**
 * Runs every input of the committed corpus through the targets once, without Jazzer, so that
 * V8's coverage of src/comm can be measured (`npm run fuzz -- coverage`). A node:test file,
 * but not named *.test.ts: npm test fuzzes instead (fuzz.test.ts).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { it } from 'node:test';
import type { FuzzTargetModule } from './child.js';
import { corpusDir, target, TARGETS } from './harness.js';

const names = (process.env.TESSERA_FUZZ_TARGETS ?? Object.keys(TARGETS).join(',')).split(',');

for (const name of names) {
  const t = target(name);
  it(`${name}: every corpus input passes`, async () => {
    const module = (await import(`./targets/${name}.js`)) as FuzzTargetModule;
    await module.setUp?.();
    try {
      for (const file of (await readdir(corpusDir(t))).sort()) await module.fuzz(await readFile(join(corpusDir(t), file)));
    } finally {
      await module.tearDown?.();
    }
  });
}
