#!/usr/bin/env node
// Builds the dashboard page: bundles src/dashboard/page/main.ts (and uPlot) with esbuild
// into one module, and copies the HTML and CSS beside it. The result goes to
// src/dashboard/static/ (served when running from source) and, when dist/ exists, to
// dist/dashboard/static/ (served by the built package). Run by `npm run build`.
import { build } from 'esbuild';
import { cpSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import process from 'node:process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const page = join(root, 'src/dashboard/page');
const out = join(root, 'src/dashboard/static');
const require = createRequire(import.meta.url);
const uplotCss = join(dirname(require.resolve('uplot/package.json')), 'dist/uPlot.min.css');

// Build beside the old page and swap it in, so a dashboard serving the folder meanwhile
// (another test, say) never finds it empty.
const staging = `${out}.build-${process.pid}`;
rmSync(staging, { recursive: true, force: true });
mkdirSync(staging, { recursive: true });
await build({
  entryPoints: [join(page, 'main.ts')],
  outfile: join(staging, 'app.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  minify: true,
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
});
cpSync(join(page, 'index.html'), join(staging, 'index.html'));
cpSync(join(page, 'style.css'), join(staging, 'style.css'));
cpSync(uplotCss, join(staging, 'uplot.css'));
const old = `${out}.old-${process.pid}`;
if (existsSync(out)) renameSync(out, old);
renameSync(staging, out);
rmSync(old, { recursive: true, force: true });

const distDashboard = join(root, 'dist/dashboard');
if (existsSync(distDashboard)) {
  rmSync(join(distDashboard, 'static'), { recursive: true, force: true });
  cpSync(out, join(distDashboard, 'static'), { recursive: true });
}
