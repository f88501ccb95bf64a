/**
 * The layering of src/ (DESIGN.md, "Layout"): each folder may import only the folders
 * listed for it here, so data and dependencies flow one way — graph → local executor, or
 * client → scheduler → workers — and what watches the scheduler (the dashboard, the
 * adaptive loop) attaches from above. Adding a folder, or an arrow, means adding it here,
 * on purpose.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const BASE = ['errors.ts', 'lifecycle.ts', 'options.ts', 'log.ts'];

/** Folder (or root file) → what it may import besides itself. */
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  'errors.ts': [],
  'lifecycle.ts': ['errors.ts'],
  'options.ts': ['errors.ts'],
  'log.ts': ['errors.ts'],
  serialize: BASE,
  functions: [...BASE, 'serialize'],
  graph: [...BASE, 'functions', 'serialize'],
  comm: BASE,
  // Rich display in Jupyter kernels: cards and in-place displays that client and cluster
  // classes render themselves with. It knows nothing of the classes it draws.
  notebook: BASE,
  protocol: [...BASE, 'comm', 'functions', 'graph'],
  local: [...BASE, 'functions', 'graph', 'serialize', 'protocol'],
  store: [...BASE, 'comm', 'serialize', 'protocol'],
  scheduler: [...BASE, 'comm', 'functions', 'protocol', 'store'],
  worker: [...BASE, 'comm', 'functions', 'serialize', 'protocol', 'local', 'store'],
  client: [...BASE, 'comm', 'functions', 'graph', 'serialize', 'protocol', 'store', 'notebook'],
  adaptive: [...BASE, 'protocol'],
  dashboard: [...BASE, 'comm', 'protocol', 'scheduler'],
  // What composes a scheduler process: the server, its dashboard and adaptive loop.
  process: [...BASE, 'comm', 'protocol', 'scheduler', 'dashboard', 'adaptive', 'store'],
  // Backends know the adaptive interface and the store; their cluster classes compose a process.
  deploy: [...BASE, 'comm', 'functions', 'protocol', 'adaptive', 'store', 'process', 'client', 'notebook'],
  cli: [...BASE, 'comm', 'functions', 'protocol', 'scheduler', 'worker', 'process', 'adaptive', 'store', 'deploy', 'dashboard'],
  'index.ts': ['*'],
};

/** Files allowed one arrow more, and why. */
const EXCEPTIONS: Readonly<Record<string, { readonly may: readonly string[]; readonly why: string }>> = {
  'deploy/simulated/cluster.ts': {
    may: ['scheduler'],
    why: 'the simulation drives the pure scheduler core itself, in virtual time, with no server around it',
  },
};

export interface Violation {
  readonly file: string;
  readonly imports: string;
  readonly from: string;
  readonly to: string;
}

const IMPORT = /(?:^|[^\w$.])(?:import|export)\s*(?:type\s+)?(?:[\w*{}\s,$]+\s+from\s+)?['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;

/** The layer of a path relative to src/: its first folder, or the file itself at the root. */
function layerOf(path: string): string {
  const i = path.indexOf('/');
  return i < 0 ? path : path.slice(0, i);
}

/** Every relative import of every file that crosses into a layer not allowed for it. */
export function checkLayers(files: ReadonlyMap<string, string>): Violation[] {
  const violations: Violation[] = [];
  for (const [file, source] of files) {
    const from = layerOf(file);
    // The browser page is built on its own and imports only types from below.
    if (file.startsWith('dashboard/page/')) continue;
    const allowed = ALLOWED[from];
    for (const match of source.matchAll(IMPORT)) {
      const spec = (match[1] ?? match[2])!;
      const target = relative('.', join(dirname(file), spec)).replaceAll('\\', '/').replace(/\.js$/, '.ts');
      const to = layerOf(target);
      if (to === from) continue;
      if (allowed === undefined) {
        violations.push({ file, imports: spec, from, to });
        continue;
      }
      if (allowed.includes('*') || allowed.includes(to) || allowed.includes(target)) continue;
      if (EXCEPTIONS[file]?.may.includes(to) === true) continue;
      violations.push({ file, imports: spec, from, to });
    }
  }
  return violations;
}

function sourceFiles(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) out.set(relative(root, path).replaceAll('\\', '/'), readFileSync(path, 'utf8'));
    }
  };
  walk(root);
  return out;
}

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../src');

describe('layers', () => {
  test('src/ imports only downwards', () => {
    const files = sourceFiles(SRC);
    const violations = checkLayers(files);
    assert.deepEqual(
      violations.map((v) => `${v.file} imports ${v.imports} (${v.from} → ${v.to})`),
      [],
    );
    // Every folder under src/ has a row: a new folder must say what it may import.
    const layers = new Set([...files.keys()].map(layerOf));
    for (const layer of layers) assert.ok(ALLOWED[layer] !== undefined, `src/${layer} has no row in the layer table`);
  });

  test('the check fails when the scheduler imports the dashboard', () => {
    const files = new Map([
      ['scheduler/server.ts', "import { startDashboard } from '../dashboard/server.js';\nimport type { X } from '../protocol/messages.js';"],
      ['worker/worker.ts', "export { a } from '../client/client.js';\nconst m = await import('../deploy/local/cluster.js');"],
      ['adaptive/loop.ts', "import type { SchedulerSnapshot } from '../scheduler/state.js';"],
    ]);
    assert.deepEqual(
      checkLayers(files).map((v) => `${v.from} → ${v.to}`),
      ['scheduler → dashboard', 'worker → client', 'worker → deploy', 'adaptive → scheduler'],
    );
  });

  test('every exception names a reason', () => {
    for (const [file, e] of Object.entries(EXCEPTIONS)) assert.ok(e.why.length > 20, file);
  });
});
