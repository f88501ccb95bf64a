/**
 * A Lambda function's code, built per graph: the Tessera worker (handler and pool thread,
 * bundled with esbuild and every npm dependency inlined) and the graph's own module
 * bundles, zipped. The package's content hash names the function, so every graph with the
 * same code (and settings) shares one function and new code gets a new one. Lambda's size limits are
 * checked here, before any upload, with the heaviest inputs named.
 */
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { build, type Metafile } from 'esbuild';
import { BundleError, bundleModule } from '../../functions/bundle.js';
import { InvalidArgumentError } from '../../errors.js';
import { LambdaPackageTooLargeError } from './errors.js';
import { MAX_FUNCTION_NAME, MAX_UNZIPPED_BYTES, MAX_ZIPPED_BYTES } from './limits.js';
import { zip, type ZipInput } from './zip.js';

export interface PackageOptions {
  /** Modules (paths or file: URLs) whose functions the graphs run; bundled into the package. */
  readonly modules?: readonly string[];
  /** Function name prefix (default 'tessera-worker'); the hash follows it. */
  readonly prefix?: string;
  /** Limits to check against (default: Lambda's 50 MB zipped, 250 MB unzipped). */
  readonly limits?: { readonly zipped: number; readonly unzipped: number };
}

export interface WorkerPackage {
  /** The zip, for CreateFunction's Code.ZipFile. */
  readonly zip: Buffer;
  /** sha256 of the package's files (names and contents), hex. */
  readonly hash: string;
  /** The function name's prefix; the name adds a hash of the package and the function's settings. */
  readonly prefix: string;
  /** 'handler.handler': the module and export Lambda calls. */
  readonly handler: string;
  readonly zippedBytes: number;
  readonly unzippedBytes: number;
  /** What weighs in the package, largest first: source files of the worker, whole module bundles. */
  readonly inputs: readonly PackageInput[];
  /** The graph's module bundles inside, by content hash (`bundles/<hash>.mjs`). */
  readonly modules: readonly string[];
}

export interface PackageInput {
  readonly name: string;
  readonly bytes: number;
}

const fromSource = import.meta.url.endsWith('.ts');
const ext = fromSource ? '.ts' : '.js';

/** Builds the worker's deployment package; throws LambdaPackageTooLargeError past the limits. */
export async function buildWorkerPackage(options: PackageOptions = {}): Promise<WorkerPackage> {
  const prefix = options.prefix ?? 'tessera-worker';
  if (!/^[A-Za-z0-9_-]+$/.test(prefix) || prefix.length > MAX_FUNCTION_NAME - 17) {
    throw new InvalidArgumentError(`options.prefix must be letters, digits, '-' or '_', at most ${MAX_FUNCTION_NAME - 17} characters`);
  }
  const runtime = await bundleRuntime();
  const files: ZipInput[] = [
    { name: 'package.json', data: Buffer.from('{"type":"module"}\n') },
    { name: 'handler.js', data: runtime.handler },
    { name: 'thread.js', data: runtime.thread },
  ];
  const inputs = new Map(runtime.inputs);
  const modules: string[] = [];
  for (const module of options.modules ?? []) {
    const url = module.startsWith('file:') ? module : new URL(module, `file://${process.cwd()}/`).href;
    const bundle = await bundleModule(url);
    files.push({ name: `bundles/${bundle.hash}.mjs`, data: bundle.code });
    inputs.set(`${fileURLToPath(url)} (bundled)`, bundle.bytes);
    modules.push(bundle.hash);
  }
  const digest = createHash('sha256');
  for (const file of files) digest.update(`${file.name}\0${file.data.byteLength}\0`).update(file.data);
  const hash = digest.digest('hex');
  const archive = zip(files);
  const unzippedBytes = files.reduce((sum, f) => sum + f.data.byteLength, 0);
  const ranked = [...inputs].map(([name, bytes]) => ({ name, bytes })).sort((a, b) => b.bytes - a.bytes);
  checkPackageSize(archive.byteLength, unzippedBytes, ranked, options.limits);
  return {
    zip: archive,
    hash,
    prefix,
    handler: 'handler.handler',
    zippedBytes: archive.byteLength,
    unzippedBytes,
    inputs: ranked,
    modules,
  };
}

/**
 * Throws LambdaPackageTooLargeError when a package is over Lambda's limits (or those
 * given), naming the five inputs that weigh most. Pure.
 */
export function checkPackageSize(
  zippedBytes: number,
  unzippedBytes: number,
  inputs: readonly PackageInput[],
  limits: { readonly zipped: number; readonly unzipped: number } = { zipped: MAX_ZIPPED_BYTES, unzipped: MAX_UNZIPPED_BYTES },
): void {
  const over: string[] = [];
  if (zippedBytes > limits.zipped) over.push(`${mb(zippedBytes)} zipped (the limit is ${mb(limits.zipped)})`);
  if (unzippedBytes > limits.unzipped) over.push(`${mb(unzippedBytes)} unzipped (the limit is ${mb(limits.unzipped)})`);
  if (over.length === 0) return;
  const biggest = [...inputs].sort((a, b) => b.bytes - a.bytes).slice(0, 5);
  const list = biggest.map((i) => `${i.name} (${mb(i.bytes)})`).join(', ');
  throw new LambdaPackageTooLargeError(
    `the Lambda package is too large: ${over.join(' and ')}; the biggest inputs are ${list}. ` +
      'Leave large data out of the bundled modules (load it in a task, or scatter it) or split the module.',
    zippedBytes,
    unzippedBytes,
    biggest,
  );
}

function mb(bytes: number): string {
  return `${(bytes / 1_048_576).toFixed(1)} MB`;
}

interface Runtime {
  readonly handler: Uint8Array;
  readonly thread: Uint8Array;
  readonly inputs: ReadonlyMap<string, number>;
}

let runtime: Promise<Runtime> | undefined;

/** The worker's handler and pool thread as two ESM files, once per process. */
function bundleRuntime(): Promise<Runtime> {
  runtime ??= buildRuntime();
  runtime.catch(() => {
    runtime = undefined;
  });
  return runtime;
}

async function buildRuntime(): Promise<Runtime> {
  // The handler is an entry point that starts a worker, so it lives with the other entry points.
  const handler = fileURLToPath(new URL(`../../cli/lambda-handler${ext}`, import.meta.url));
  const thread = fileURLToPath(new URL(`../../local/thread${ext}`, import.meta.url));
  let result: { outputFiles: { path: string; contents: Uint8Array }[]; metafile: Metafile };
  try {
    result = await build({
      entryPoints: [
        { in: handler, out: 'handler' },
        { in: thread, out: 'thread' },
      ],
      outdir: '/lambda-package',
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      write: false,
      treeShaking: true,
      minify: true,
      keepNames: true,
      sourcemap: false,
      logLevel: 'silent',
      metafile: true,
      // msgpackr's optional native extractor is not in the package; msgpackr falls back to JS.
      external: ['msgpackr-extract', 'tsx', 'tsx/*'],
      banner: { js: "import { createRequire as __tesseraCreateRequire } from 'node:module';const require = __tesseraCreateRequire(import.meta.url);" },
    });
  } catch (error) {
    throw new BundleError(handler, `cannot bundle the Lambda worker: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  const out = (name: string): Uint8Array => {
    const file = result.outputFiles.find((f) => f.path.endsWith(`/${name}.js`));
    if (file === undefined) throw new BundleError(handler, `esbuild produced no ${name}.js`);
    return file.contents;
  };
  const inputs = new Map<string, number>();
  for (const output of Object.values(result.metafile.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) inputs.set(input, (inputs.get(input) ?? 0) + bytesInOutput);
  }
  return { handler: out('handler'), thread: out('thread'), inputs };
}
