/**
 * The short form of the fuzzing in test/fuzz/ (libFuzzer through Jazzer.js): each target
 * replays its committed corpus and regression inputs, then fuzzes on for a few seconds
 * (TESSERA_FUZZ_SECONDS, default 3). Any finding fails the test; its input is kept under
 * artifacts/fuzz/<target>/. Inputs under test/fuzz/known/<target>/ show bugs not yet fixed:
 * each is replayed as a todo, with the target told to report the bug it otherwise tolerates.
 * The long form, which also grows the corpus, is `npm run fuzz -- <target> --time 600`.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { corpusDir, ensureAddon, knownBugsDir, regressionsDir, ROOT, runFuzzer, type RunResult, type Target, TARGETS } from './harness.js';

const SECONDS = Number(process.env.TESSERA_FUZZ_SECONDS ?? 3);
/**
 * Starting Node, Jazzer and the instrumented bundle takes seconds on a busy machine; a hang
 * takes forever. Within npm test's 120 s per test, so that the fuzzer is killed, not left.
 */
const KILL_AFTER_MS = Math.min(SECONDS * 1000 + 80_000, 110_000);

const unavailable = await ensureAddon().then(
  () => false as const,
  (error: unknown) => `the fuzzer cannot be built here: ${error instanceof Error ? error.message : String(error)}`,
);

const scratch = await mkdtemp(join(tmpdir(), 'tessera-fuzz-test-'));
after(() => rm(scratch, { recursive: true, force: true }));

/** What a failure message needs: the finding as printed, and where its input was kept. */
async function explain(t: Target, result: RunResult): Promise<string> {
  const kept: string[] = [];
  if (result.artifacts.length > 0) {
    const dir = join(ROOT, 'artifacts/fuzz', t.name);
    await mkdir(dir, { recursive: true });
    for (const file of result.artifacts) {
      await copyFile(file, join(dir, basename(file)));
      kept.push(join(dir, basename(file)));
    }
  }
  const tail = result.output.split('\n').slice(-60).join('\n');
  return `${t.name}: libFuzzer exited with ${result.code ?? result.signal}; input kept as ${kept.join(', ') || '(none)'}\n${tail}`;
}

function report(context: TestContext, t: Target, result: RunResult): void {
  const s = result.stats;
  context.diagnostic(
    `${t.name}: ${s.execs ?? '?'} inputs at ${s.execsPerSecond ?? '?'}/s, cov ${s.cov ?? '?'} ft ${s.ft ?? '?'}, ` +
      `corpus ${s.corpus ?? '?'}, ${s.newUnits ?? 0} new, peak RSS ${s.peakRssMb ?? '?'} MB`,
  );
}

describe('fuzzing the wire decoder and the handshake', { skip: process.env.CI === 'true' ? false : unavailable }, () => {
  if (unavailable !== false && process.env.CI === 'true') {
    it('has a fuzzer', () => assert.fail(unavailable));
    return;
  }

  for (const t of Object.values(TARGETS)) {
    it(`${t.name}: replays the corpus and regressions, then fuzzes ${SECONDS} s, finding nothing`, async (context) => {
      const found = await mkdtemp(join(scratch, `${t.name}-found-`));
      const dirs = [corpusDir(t), regressionsDir(t)].filter((dir) => existsSync(dir));
      let replayed = 0;
      for (const dir of dirs) replayed += (await readdir(dir)).length;
      const result = await runFuzzer({
        target: t,
        inputs: [found, ...dirs],
        artifacts: join(scratch, `${t.name}-artifacts`),
        flags: [`-max_total_time=${SECONDS}`],
        killAfterMs: KILL_AFTER_MS,
        signal: context.signal,
      });
      report(context, t, result);
      if (result.code !== 0) assert.fail(await explain(t, result));
      // On a busy machine replaying the corpus may take all the time: no new input is made then.
      assert.ok((result.stats.execs ?? 0) >= replayed, `${t.name} ran ${result.stats.execs ?? 0} inputs: the corpus alone has ${replayed}`);
    });

    const known = existsSync(knownBugsDir(t)) ? readdirSync(knownBugsDir(t)).sort() : [];
    for (const file of known) {
      const todo = `a known bug: move it to test/fuzz/regressions/${t.name}/ once fixed`;
      it(`${t.name}: known/${t.name}/${file} passes`, { todo }, async (context) => {
        const result = await runFuzzer({
          target: t,
          inputs: [join(knownBugsDir(t), file)],
          artifacts: join(scratch, `${t.name}-known`),
          env: { TESSERA_FUZZ_KNOWN_BUGS: 'fail' },
          killAfterMs: KILL_AFTER_MS,
          signal: context.signal,
        });
        assert.equal(result.code, 0, result.output.split('\n').slice(-40).join('\n'));
      });
    }
  }
});
