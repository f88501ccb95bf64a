/**
 * The Tessera image, as the node agent runs it: deploy/Dockerfile's ENTRYPOINT (`tessera`)
 * and WORKDIR (the package, where `dist/deploy/kubernetes/preload.js` is), with this
 * checkout's sources in place of the built files.
 *
 *   const agent = await startNodeAgent(cluster, { images: tesseraImages() });
 *
 * The working directory is a temporary folder laid out like the image's: its `dist/` files
 * re-export the sources, which the tsx loader on the entrypoint compiles. So a manifest's
 * `--preload=dist/deploy/kubernetes/preload.js` means here what it means in the image.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ImageRunSpec } from './node-agent.js';
import { temporaryDirectory } from './processes.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** The image the manifests in deploy/kubernetes name. */
export const TESSERA_IMAGE = 'tessera:0.1.0';

let root: string | undefined;

/** The image's working directory, made once per test process. */
function imageRoot(): string {
  if (root !== undefined) return root;
  root = temporaryDirectory('tessera-image-');
  const shim = (file: string, source: string): void => {
    const target = path.join(root!, file);
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, `export * from ${JSON.stringify(pathToFileURL(path.join(REPO, source)).href)};\n`);
  };
  shim('dist/deploy/kubernetes/preload.js', 'src/deploy/kubernetes/preload.ts');
  shim('dist/index.js', 'src/index.ts');
  writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: 'tessera', type: 'module' }));
  return root;
}

/** How the node agent runs TESSERA_IMAGE (and any extra images given). */
export function tesseraImages(extra: Readonly<Record<string, ImageRunSpec>> = {}): Record<string, ImageRunSpec> {
  return {
    [TESSERA_IMAGE]: {
      entrypoint: [process.execPath, '--import', import.meta.resolve('tsx'), path.join(REPO, 'src/cli/main.ts')],
      workingDir: imageRoot(),
      env: { NODE_ENV: 'production' },
    },
    ...extra,
  };
}
