/**
 * One fuzzing process: loads Jazzer.js, requires a target's bundle through Jazzer's
 * instrumenting loader (so its branches and comparisons feed libFuzzer), and hands control
 * to libFuzzer. Started by harness.ts through scripts/fuzz/child.sh, with the bundle and mode
 * in TESSERA_FUZZ_BUNDLE and TESSERA_FUZZ_MODE ('sync' or 'async') and libFuzzer's
 * arguments as its own; libFuzzer starts more of them the same way for -merge or -fork.
 *
 * A target reports a finding by throwing (or rejecting). The finding is printed and the
 * process exits from inside the fuzz callback, which libFuzzer treats as a crash: it writes
 * the input to `<artifact_prefix>crash-<sha1>` and exits with its error code (77).
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import * as jazzer from '@jazzer.js/core';

export interface FuzzTargetModule {
  /** One input. Throws or rejects on a finding; returns normally for any input handled correctly. */
  readonly fuzz: (data: Buffer) => void | Promise<void>;
  /** Runs once before the first input (starting a server, say). */
  readonly setUp?: () => Promise<void>;
  /** Undoes setUp, for runs outside libFuzzer (replay.ts). */
  readonly tearDown?: () => Promise<void>;
}

const bundle = process.env.TESSERA_FUZZ_BUNDLE;
const mode = process.env.TESSERA_FUZZ_MODE;
if (bundle === undefined || (mode !== 'sync' && mode !== 'async')) {
  console.error('child.ts: set TESSERA_FUZZ_BUNDLE to a bundle and TESSERA_FUZZ_MODE to sync or async');
  process.exit(2);
}
const argv0 = fileURLToPath(new URL('../../scripts/fuzz/child.sh', import.meta.url));

function finding(error: unknown): never {
  process.stderr.write(`\n==tessera-fuzz== finding: ${inspect(error, { depth: 6 })}\n`);
  // Inside the fuzz callback, so libFuzzer's exit hook saves the input as a crash.
  process.exit(1);
}

const options: jazzer.Options = {
  ...jazzer.defaultOptions,
  fuzzTarget: bundle,
  // Only the bundle: it holds the project's code and the msgpack library it decodes with.
  includes: [bundle],
  excludes: ['node_modules'],
  sync: mode === 'sync',
};
jazzer.registerGlobals(options);
await jazzer.initFuzzing(options);
const target = createRequire(import.meta.url)(bundle) as FuzzTargetModule;
await target.setUp?.();

// Jazzer's wrapper runs its bug detectors (prototype pollution among them) around each input.
const checked = jazzer.asFindingAwareFuzzFn((data: Buffer) => target.fuzz(data), false) as (data: Buffer) => unknown;
// V8 may handle SIGSEGV itself (WebAssembly bounds checks); libFuzzer must leave it be.
const argv = [argv0, '-handle_segv=0', ...process.argv.slice(2)];

if (mode === 'sync') {
  const guarded = (data: Buffer): void => {
    try {
      checked(data);
    } catch (error) {
      finding(error);
    }
  };
  // Jazzer's addon catches SIGINT and calls this between inputs. Exiting from here would look
  // to libFuzzer like a crash of the current input, so stop hard: the corpus is already saved.
  await globalThis.Fuzzer.startFuzzing(guarded, argv, () => process.kill(process.pid, 'SIGKILL'));
} else {
  const guarded = async (data: Buffer): Promise<void> => {
    try {
      await checked(data);
    } catch (error) {
      finding(error);
    }
  };
  await globalThis.Fuzzer.startFuzzingAsync(guarded, argv);
}
