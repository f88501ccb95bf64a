/**
 * Every TypeScript snippet in README.md and docs/*.md runs as written: each ```ts block is
 * written out as a module of its own (inside the repository, so `import … from 'tessera'`
 * resolves to the package itself) and run with tsx; it must exit 0 in time. They run in a
 * folder holding TLS material (ca.pem, cert.pem, key.pem) for the snippets that need it,
 * with TESSERA_SCHEDULER_ADDRESS and TESSERA_TOKEN naming a running cluster, as a user's
 * environment would after `tessera scheduler`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { LocalCluster } from '../../src/index.js';
import { selfSigned } from '../helpers/tls.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const work = join(root, '.tessera-snippets');
const LIMIT_MS = 120_000;

interface Snippet {
  readonly file: string;
  readonly line: number;
  readonly code: string;
}

/** The ```ts blocks of a markdown file, with the line each starts on. */
export function snippetsOf(file: string, text: string): Snippet[] {
  const out: Snippet[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== '```ts') continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && lines[end]!.trim() !== '```') end++;
    out.push({ file, line: start, code: lines.slice(start, end).join('\n') });
    i = end;
  }
  return out;
}

function allSnippets(): Snippet[] {
  const files = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  return files.flatMap((f) => snippetsOf(f, readFileSync(join(root, f), 'utf8')));
}

function run(path: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string; timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path], { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, LIMIT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output, timedOut });
    });
  });
}

void describe('documentation snippets run as written', () => {
  let cluster: LocalCluster;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    const tls = selfSigned();
    if (typeof tls === 'string') throw new Error(tls);
    const { cert, key } = tls;
    writeFileSync(join(work, 'cert.pem'), cert);
    writeFileSync(join(work, 'key.pem'), key);
    writeFileSync(join(work, 'ca.pem'), cert);
    cluster = await LocalCluster.start({ workers: 2, token: 'snippets', dashboard: false, log: false });
    env = { ...process.env, TESSERA_SCHEDULER_ADDRESS: cluster.address, TESSERA_TOKEN: 'snippets', TESSERA_LOG_LEVEL: 'warn' };
  });

  after(async () => {
    await (cluster as LocalCluster | undefined)?.close();
    rmSync(work, { recursive: true, force: true });
  });

  const snippets = allSnippets();
  void test('there are snippets to run', () => assert.ok(snippets.length > 10));
  for (const s of snippets) {
    const name = `${s.file.replace(/[/.]/g, '-')}-${s.line}`;
    // A snippet that shows a file of examples/ (first line `// examples/NAME…`) must be that
    // file, as written; the file itself runs in examples.test.ts (or imports what does).
    const shown = /^\/\/ (examples\/[\w.-]+)/.exec(s.code)?.[1];
    if (shown !== undefined) {
      void test(`${s.file}:${s.line} is ${shown}`, () => {
        const file = readFileSync(join(root, shown), 'utf8').split('\n').map((l) => l.trimEnd());
        let at = 0;
        for (const line of s.code.split('\n').slice(1).map((l) => l.trimEnd())) {
          if (line === '') continue;
          while (at < file.length && file[at] !== line) at++;
          assert.ok(at < file.length, `${s.file}:${s.line}: '${line}' is not in ${shown} (in this order)`);
          at++;
        }
      });
      continue;
    }
    void test(`${s.file}:${s.line}`, async () => {
      const path = join(work, `${name}.ts`);
      writeFileSync(path, `${s.code}\n`);
      const r = await run(path, env);
      assert.equal(r.timedOut, false, `${s.file}:${s.line} did not finish within ${LIMIT_MS / 1000} s\n${r.output}`);
      assert.equal(r.code, 0, `${s.file}:${s.line} failed:\n${r.output}`);
    });
  }
});
