#!/usr/bin/env node
/**
 * The `tessera` command:
 *
 *   tessera scheduler [--host 0.0.0.0] --port 8786 --token "$TOKEN" [--dashboard-port 8787] [--dashboard-host 127.0.0.1 | --no-dashboard]
 *       [--preload ./setup.js]
 *   tessera scheduler --store redis://cache:6379   # results of unreachable workers outlive them
 *   tessera worker tcp://HOST:8786 --token "$TOKEN" --nthreads 2 --memory-limit 2GB [--name w1] [--no-listen]
 *       [--metrics-port 9100 | --no-metrics] [--preload ./setup.js]
 *   Both also take --tls-cert FILE --tls-key FILE [--tls-ca FILE] (PEM files): the scheduler
 *   then listens on tls://, and the worker serves its data port over TLS and trusts the CA.
 *
 * Each runs until SIGINT/SIGTERM (or, for a worker, until its scheduler goes away), then
 * closes gracefully. The token may also come from TESSERA_TOKEN, which keeps it out of `ps`.
 *
 * stdout carries what scripts read: first the scheduler's address (or the worker's id),
 * then `dashboard: URL` (or `metrics: URL`). Everything else goes to stderr.
 *
 * A preload module (repeatable) is imported at start; its exported `setup(server, options,
 * context)` is called once the scheduler or worker runs, and `teardown(server)` when it
 * closes. A preload that cannot be imported or whose setup throws stops the process (exit
 * code 1) with a message naming the module. A preload is a file, or a package's module
 * named through its "exports" (`--preload tessera/slurm`); `--backend NAME` is short for
 * `--preload tessera/NAME`. A preload may export `options`, flags of its own
 * (`[{ flags: '--slurm-partition <name>', description: '…' }]`): preloads are imported
 * before the command line is parsed, so their flags parse with the rest, and `setup`
 * receives their values (by camel-cased name) and `{ token }`.
 *
 *   tessera worker ADDRESS … [--lifetime 25m --lifetime-stagger 2m]
 *       leaves at the end of its lifetime (less a random part of the stagger), handing its
 *       results over first: for workers whose process has a deadline (a batch job's walltime)
 *
 * Why one file: it is the command's whole surface (every flag, its check and its help),
 * read top to bottom as `tessera --help` is; the work itself lives in the layers below.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError as CommanderArgumentError, Option } from 'commander';
import { isLoopback } from '../comm/http.js';
import { InvariantError, TesseraError } from '../errors.js';
import { Scheduler } from '../process/scheduler.js';
import { leaveAtLifetime, parseLifetime } from '../worker/lifetime.js';
import { MemoryStore, RedisStore, type ResultStore } from '../store/index.js';
import { parseBytes } from '../worker/options.js';
import { Worker } from '../worker/worker.js';

const program = new Command('tessera')
  .description('Tessera: parallel and distributed computing for TypeScript')
  .version(packageVersion(), '-V, --version', 'print the version');

/** The version in the package.json beside dist/ (or src/). */
function packageVersion(): string {
  try {
    const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
    return (JSON.parse(text) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function fractionOrFalse(name: string): (value: string) => number | false {
  return (value) => {
    if (value === 'false' || value === 'off') return false;
    const f = Number(value);
    if (!(f > 0)) throw new CommanderArgumentError(`${name} must be a positive fraction of the memory limit, or false`);
    return f;
  };
}

function integer(name: string, min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new CommanderArgumentError(`${name} must be an integer from ${min} to ${max}`);
    return n;
  };
}

/** --token, else $TESSERA_TOKEN; an empty one counts as none. */
function tokenOf(flag: string | undefined): string | undefined {
  const token = flag ?? process.env['TESSERA_TOKEN'];
  return token === '' ? undefined : token;
}

function collect(value: string, previous: readonly string[]): string[] {
  return [...previous, value];
}

function duration(flag: string): (value: string) => number {
  return (value) => {
    try {
      return parseLifetime(value, flag);
    } catch (error) {
      throw new CommanderArgumentError(error instanceof Error ? error.message : String(error));
    }
  };
}

/** Stops the command with a message for its user rather than a stack trace. */
class CliError extends TesseraError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, 'ERR_CLI', options);
    this.name = 'CliError';
  }
}

// ---- TLS ----

interface TlsFlags {
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly tlsCa?: string;
}

function readPem(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new CliError(`${flag} ${file} cannot be read: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

/** The PEM files named by --tls-cert, --tls-key and --tls-ca, read; undefined when none is given. */
function tlsOf(opts: TlsFlags): { cert?: Buffer; key?: Buffer; ca?: Buffer } | undefined {
  if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) throw new CliError('--tls-cert and --tls-key go together: give both or neither');
  if (opts.tlsCert === undefined && opts.tlsCa === undefined) return undefined;
  return {
    ...(opts.tlsCert === undefined ? {} : { cert: readPem('--tls-cert', opts.tlsCert) }),
    ...(opts.tlsKey === undefined ? {} : { key: readPem('--tls-key', opts.tlsKey) }),
    ...(opts.tlsCa === undefined ? {} : { ca: readPem('--tls-ca', opts.tlsCa) }),
  };
}

// ---- preload modules ----

interface PreloadModule {
  readonly setup?: unknown;
  readonly teardown?: unknown;
  readonly options?: unknown;
}

interface Preload {
  /** As given on the command line, for messages. */
  readonly name: string;
  readonly module: PreloadModule;
  /** The flags it added, as commander options. */
  readonly options: readonly Option[];
}

/** What a preload's `options` export may hold besides commander Options. */
interface PreloadOptionSpec {
  readonly flags: string;
  readonly description?: string;
  readonly defaultValue?: unknown;
  readonly parse?: (value: string, previous: unknown) => unknown;
}

/** The context `setup` receives third. */
interface PreloadContext {
  /** The scheduler's token (the worker's, for a worker), so that a backend can hand it to the workers it starts. */
  readonly token: string | undefined;
}

type Role = 'scheduler' | 'worker';

function errorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // The message first (what users read), then where it came from.
  const frames = (error.stack ?? '').split('\n').filter((line) => line.trimStart().startsWith('at '));
  return [`${error.name}: ${error.message}`, ...frames.slice(0, 8)].join('\n');
}

const fromSource = import.meta.url.endsWith('.ts');
const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** This package's name and "exports", for `--preload tessera/NAME` and `--backend NAME`. */
function ownPackage(): { readonly name: string; readonly exports: unknown } {
  const json = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { name?: unknown; exports?: unknown };
  return { name: typeof json.name === 'string' ? json.name : 'tessera', exports: json.exports };
}

/** The file an "exports" entry names for `subpath` ('.', './slurm'), under the import conditions. */
function exportTarget(exports: unknown, subpath: string): string | undefined {
  const pick = (entry: unknown): string | undefined => {
    if (typeof entry === 'string') return entry;
    if (typeof entry !== 'object' || entry === null) return undefined;
    const conditions = entry as Record<string, unknown>;
    for (const condition of ['import', 'node', 'default']) {
      const target = pick(conditions[condition]);
      if (target !== undefined) return target;
    }
    return undefined;
  };
  if (typeof exports === 'string') return subpath === '.' ? exports : undefined;
  if (typeof exports !== 'object' || exports === null) return undefined;
  const map = exports as Record<string, unknown>;
  return Object.keys(map).some((k) => k.startsWith('.')) ? pick(map[subpath]) : subpath === '.' ? pick(map) : undefined;
}

/** This package's backends: the "exports" entries that are preloads (`--backend NAME`). */
const BACKENDS = ['slurm', 'kubernetes'];

/**
 * Where a preload lives: a file (relative to the current directory), or a package's
 * module — this package's through its "exports" (its source when the CLI itself runs from
 * source), another's resolved from the current directory, as the user's own import would be.
 */
function resolvePreload(name: string): string {
  const file = resolve(name);
  if (existsSync(file)) return pathToFileURL(file).href;
  const bare = /^(@[\w.-]+\/)?[\w.-]+(\/[\w.-]+)*$/.test(name) && !name.startsWith('.');
  const missing = `preload module ${name}${file === name ? '' : ` (${file})`} does not exist`;
  if (!bare) throw new CliError(missing);
  const own = ownPackage();
  if (name === own.name || name.startsWith(`${own.name}/`)) {
    const subpath = `.${name.slice(own.name.length)}`;
    const target = exportTarget(own.exports, subpath);
    if (target === undefined) throw new CliError(`${missing}, and package ${own.name} exports no '${subpath}'`);
    if (fromSource) {
      const source = join(PACKAGE_ROOT, target.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts'));
      if (existsSync(source)) return pathToFileURL(source).href;
    }
    return pathToFileURL(join(PACKAGE_ROOT, target)).href;
  }
  try {
    return pathToFileURL(createRequire(join(process.cwd(), 'preload.js')).resolve(name)).href;
  } catch (error) {
    throw new CliError(`${missing}, and no installed package provides it: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

/** A preload's `options` export as commander options, or CliError saying what is wrong. */
function preloadOptions(name: string, exported: unknown): Option[] {
  if (exported === undefined) return [];
  if (!Array.isArray(exported)) throw new CliError(`preload module ${name} exports 'options', but it is not an array of options`);
  return exported.map((entry: unknown, i) => {
    if (entry instanceof Option) return entry;
    const spec = entry as Partial<PreloadOptionSpec> | null;
    if (typeof spec !== 'object' || spec === null || typeof spec.flags !== 'string' || !spec.flags.startsWith('--')) {
      throw new CliError(`preload module ${name}: options[${i}] must be { flags: '--name <value>', description, defaultValue?, parse? }`);
    }
    const option = new Option(spec.flags, typeof spec.description === 'string' ? spec.description : '');
    if (spec.defaultValue !== undefined) option.default(spec.defaultValue);
    if (typeof spec.parse === 'function') {
      const parse = spec.parse;
      option.argParser((value: string, previous: unknown) => {
        try {
          return parse(value, previous);
        } catch (error) {
          throw new CommanderArgumentError(`${option.long ?? spec.flags} ${error instanceof Error ? error.message : String(error)}`);
        }
      });
    }
    return option;
  });
}

// Preloads imported before parsing (so that their flags parse), by name.
const imported = new Map<string, Preload>();

/** Imports a preload once; throws CliError naming it when it cannot be. */
async function importPreload(name: string, role: Role): Promise<Preload> {
  const known = imported.get(name);
  if (known !== undefined) return known;
  const url = resolvePreload(name);
  let module: PreloadModule;
  try {
    module = (await import(url)) as PreloadModule;
  } catch (error) {
    throw new CliError(`preload module ${name} could not be imported:\n${errorText(error)}`, { cause: error });
  }
  for (const hook of ['setup', 'teardown'] as const) {
    if (module[hook] !== undefined && typeof module[hook] !== 'function') {
      throw new CliError(`preload module ${name} exports '${hook}', but it is not a function`);
    }
  }
  if (module.setup === undefined && module.teardown === undefined) {
    // Allowed (a module run for its side effects), but more often a misspelt export.
    process.stderr.write(`tessera ${role}: preload module ${name} exports neither setup nor teardown; it was only imported\n`);
  }
  const preload: Preload = { name, module, options: preloadOptions(name, module.options) };
  imported.set(name, preload);
  process.stderr.write(`tessera ${role}: loaded preload module ${name}\n`);
  return preload;
}

/** Imports every preload before the server starts, so a missing file costs no start-up. */
async function importPreloads(names: readonly string[], role: Role): Promise<Preload[]> {
  const loaded: Preload[] = [];
  for (const name of names) loaded.push(await importPreload(name, role));
  return loaded;
}

/** `--backend NAME` as the preload it stands for. */
function backendPreload(name: string): string {
  if (!BACKENDS.includes(name)) throw new CliError(`--backend ${name}: unknown backend; known: ${BACKENDS.join(', ')}`);
  return `${ownPackage().name}/${name}`;
}

/** The preloads a command line names (`--backend` first), before commander has parsed it. */
function preloadsOnCommandLine(args: readonly string[], role: Role): string[] {
  const names: string[] = [];
  const backends: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') break;
    for (const [flag, into] of role === 'scheduler' ? ([['--preload', names], ['--backend', backends]] as const) : ([['--preload', names]] as const)) {
      if (arg === flag && i + 1 < args.length) into.push(args[++i]!);
      else if (arg.startsWith(`${flag}=`)) into.push(arg.slice(flag.length + 1));
    }
  }
  return [...backends.map(backendPreload), ...names];
}

/** Each preload's own flags, added to the command it runs under; CliError on a clash. */
function addPreloadOptions(command: Command, preloads: readonly Preload[]): void {
  for (const p of preloads) {
    for (const option of p.options) {
      try {
        command.addOption(option);
      } catch (error) {
        throw new CliError(`preload module ${p.name} adds ${option.flags}, which clashes with an existing flag: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
      }
    }
  }
}

/** The values of the flags this preload added, by camel-cased name. */
function valuesFor(p: Preload, opts: object): Record<string, unknown> {
  const all = opts as Record<string, unknown>;
  return Object.fromEntries(p.options.map((o) => [o.attributeName(), all[o.attributeName()]]));
}

/**
 * Calls each setup in order. When one throws, the ones already set up are torn down
 * (newest first) before the error is raised, so their resources do not outlive the failure.
 */
async function runSetups(preloads: readonly Preload[], server: Scheduler | Worker, role: Role, opts: object, context: PreloadContext): Promise<void> {
  const done: Preload[] = [];
  for (const p of preloads) {
    try {
      if (typeof p.module.setup === 'function') {
        await (p.module.setup as (server: Scheduler | Worker, options: Record<string, unknown>, context: PreloadContext) => unknown)(server, valuesFor(p, opts), context);
      }
    } catch (error) {
      await runTeardowns(done, server, role);
      throw new CliError(`preload module ${p.name} failed in setup(${role}):\n${errorText(error)}`, { cause: error });
    }
    done.push(p);
  }
}

/** Calls each teardown, newest first; every one runs. Resolves to false if any threw. */
async function runTeardowns(preloads: readonly Preload[], server: Scheduler | Worker, role: Role): Promise<boolean> {
  let ok = true;
  for (const p of [...preloads].reverse()) {
    if (typeof p.module.teardown !== 'function') continue;
    try {
      await (p.module.teardown as (server: Scheduler | Worker) => unknown)(server);
    } catch (error) {
      ok = false;
      process.stderr.write(`tessera ${role}: preload module ${p.name} failed in teardown(${role}):\n${errorText(error)}\n`);
    }
  }
  return ok;
}

/**
 * Runs `stop` once: on the first SIGINT/SIGTERM, when `closed` resolves (the server went
 * away by itself), or when the event loop runs dry; then exits with its outcome. A second
 * signal exits at once.
 */
function stopOnce(stop: () => Promise<boolean>, closed?: Promise<void>): void {
  let stopping = false;
  const run = (): void => {
    if (stopping) return;
    stopping = true;
    stop().then(
      (ok) => process.exit(ok ? 0 : 1),
      (error: unknown) => {
        process.stderr.write(`tessera: ${errorText(error)}\n`);
        process.exit(1);
      },
    );
  };
  const onSignal = (): void => {
    if (stopping) process.exit(1);
    run();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A server closed from inside (a preload calling close(), say) still gets its teardown.
  process.once('beforeExit', run);
  void closed?.then(run);
}

// ---- tessera scheduler ----

interface SchedulerFlags extends TlsFlags {
  readonly host: string;
  readonly port: number;
  readonly token?: string;
  readonly insecureNoToken?: boolean;
  readonly dashboard: boolean;
  readonly dashboardHost: string;
  readonly dashboardPort: number;
  readonly preload: readonly string[];
  readonly backend?: string;
  readonly store?: string;
}

/** The store --store names: redis://… (rediss://…) or memory. */
async function storeOf(spec: string | undefined): Promise<ResultStore | undefined> {
  if (spec === undefined) return undefined;
  if (spec === 'memory') return new MemoryStore();
  if (spec.startsWith('redis://') || spec.startsWith('rediss://')) return RedisStore.connect(spec);
  throw new CliError(`--store takes redis://HOST:PORT (rediss:// with TLS) or memory, not '${spec}'`);
}

const schedulerCommand = program
  .command('scheduler')
  .description('run a scheduler, with its dashboard')
  .option('--host <host>', 'interface to listen on', '127.0.0.1')
  .option('--port <port>', 'port to listen on (0: any free port)', integer('--port', 0, 65535), 8786)
  .option('--token <token>', 'token that workers and clients must present (default: $TESSERA_TOKEN); required with a --host other than loopback')
  .option('--insecure-no-token', 'listen on a --host other than loopback WITHOUT a token: anyone reaching the port runs code on the workers')
  .option('--dashboard-host <host>', 'interface the dashboard listens on (another than loopback requires a token)', '127.0.0.1')
  .option('--dashboard-port <port>', 'dashboard port (0, or a busy port: any free port)', integer('--dashboard-port', 0, 65535), 8787)
  .option('--no-dashboard', 'serve no dashboard, /metrics or JSON API')
  .option('--preload <module>', 'module (a file, or a package\'s such as tessera/slurm) whose setup(scheduler) runs at start and teardown(scheduler) at close (repeatable)', collect, [])
  .option('--backend <name>', `start workers through this backend: short for --preload tessera/NAME (${BACKENDS.join(', ')})`)
  .option('--tls-cert <file>', 'PEM certificate: listen on tls:// (with --tls-key)')
  .option('--tls-key <file>', 'PEM private key of --tls-cert')
  .option('--tls-ca <file>', 'PEM CA: workers and clients must present a certificate signed by it (mutual TLS)')
  .option('--store <url>', 'result store for workers that cannot be reached: redis://HOST:PORT, or memory (held by the scheduler)')
  .action(async (opts: SchedulerFlags) => {
    const token = tokenOf(opts.token);
    const tls = tlsOf(opts);
    if (tls !== undefined && (tls.cert === undefined || tls.key === undefined)) throw new CliError('--tls-ca needs --tls-cert and --tls-key');
    const insecure = opts.insecureNoToken === true;
    if (!isLoopback(opts.host) && token === undefined) {
      if (!insecure) {
        throw new CliError(
          `--host ${opts.host} makes the scheduler reachable from other machines, and whoever reaches it runs code on the workers, ` +
            'so it requires a token: pass --token (or set TESSERA_TOKEN), keep --host 127.0.0.1, ' +
            'or, on a network where every peer is trusted, pass --insecure-no-token',
        );
      }
      process.stderr.write(`tessera scheduler: WARNING: listening on ${opts.host} WITHOUT a token (--insecure-no-token): anyone who reaches the port can run code on the workers\n`);
    }
    if (opts.dashboard && !isLoopback(opts.dashboardHost) && token === undefined) {
      throw new CliError(
        `--dashboard-host ${opts.dashboardHost} makes the dashboard reachable from other machines, so it requires a token: ` +
          'pass --token (or set TESSERA_TOKEN), keep --dashboard-host 127.0.0.1 and forward the port, or use --no-dashboard',
      );
    }
    const preloads = await importPreloads([...(opts.backend === undefined ? [] : [backendPreload(opts.backend)]), ...opts.preload], 'scheduler');
    const store = await storeOf(opts.store);
    let scheduler: Scheduler;
    try {
      scheduler = await Scheduler.start({
        host: opts.host,
        port: opts.port,
        ...(token === undefined ? {} : { token }),
        ...(insecure ? { insecureNoToken: true } : {}),
        ...(tls?.cert === undefined || tls.key === undefined ? {} : { tls: { cert: tls.cert, key: tls.key, ...(tls.ca === undefined ? {} : { ca: tls.ca }) } }),
        dashboard: opts.dashboard ? { host: opts.dashboardHost, port: opts.dashboardPort } : false,
        ...(store === undefined ? {} : { store }),
      });
    } catch (error) {
      await store?.close();
      throw error;
    }
    // The address is the first line on stdout, so scripts can read it; the dashboard next.
    process.stdout.write(`${scheduler.address}\n`);
    // With a token, the link carries it (as Jupyter's does): opening it once sets a cookie
    // and takes the token out of the address bar.
    if (scheduler.dashboardLink !== undefined) process.stdout.write(`dashboard: ${linkWithToken(scheduler.dashboardLink, token)}\n`);
    try {
      await runSetups(preloads, scheduler, 'scheduler', opts, { token });
    } catch (error) {
      await scheduler.close();
      await store?.close();
      throw error;
    }
    stopOnce(async () => {
      // Teardown first, while the scheduler still runs: a preload's backend may need it to retire workers.
      const ok = await runTeardowns(preloads, scheduler, 'scheduler');
      await scheduler.close();
      await store?.close();
      return ok;
    });
  });

function linkWithToken(link: string, token: string | undefined): string {
  if (token === undefined) return link;
  const url = new URL(link);
  url.searchParams.set('token', token);
  return url.href;
}

// ---- tessera worker ----

interface WorkerFlags extends TlsFlags {
  readonly token?: string;
  readonly nthreads?: number;
  readonly memoryLimit?: string;
  readonly memoryTarget?: number | false;
  readonly memoryPause?: number | false;
  readonly spillDirectory?: string;
  readonly name?: string;
  readonly host?: string;
  readonly listen: boolean;
  readonly connectTimeout?: number;
  readonly metrics: boolean;
  readonly metricsPort?: number;
  readonly lifetime?: number;
  readonly lifetimeStagger?: number;
  readonly preload: readonly string[];
}

const workerCommand = program
  .command('worker')
  .description('run a worker for the scheduler at ADDRESS')
  .argument('<address>', 'the scheduler, tcp://host:port or tls://host:port')
  .option('--token <token>', 'the scheduler\'s token (default: $TESSERA_TOKEN)')
  .option('--nthreads <n>', 'threads that run tasks', integer('--nthreads', 1))
  .option('--memory-limit <bytes>', "memory limit, such as '2GB' or '512MiB'")
  .option('--memory-target <fraction>', 'spill results to disk past this fraction of the limit (false: never)', fractionOrFalse('--memory-target'))
  .option('--memory-pause <fraction>', 'take no new tasks past this fraction of the limit (false: never)', fractionOrFalse('--memory-pause'))
  .option('--spill-directory <path>', 'where spilled results go')
  .option('--name <name>', 'name of the worker')
  .option('--host <host>', 'interface to listen on for peers and metrics (default: the one that reaches the scheduler)')
  .option('--no-listen', 'accept no connections; data travels through the scheduler')
  .option('--connect-timeout <ms>', 'how long to keep trying to reach the scheduler (default 30000)', integer('--connect-timeout', 1))
  .option('--metrics-port <port>', 'port of GET /metrics and /health (default 0: any free port)', integer('--metrics-port', 0, 65535))
  .option('--no-metrics', 'serve no /metrics or /health')
  .option('--lifetime <duration>', "leave after this long, handing results over first, such as '25m' (a batch job's walltime less a margin)", duration('--lifetime'))
  .option('--lifetime-stagger <duration>', 'leave up to this much earlier than --lifetime, at random, so that workers started together leave apart', duration('--lifetime-stagger'))
  .option('--preload <module>', 'module (a file, or a package\'s) whose setup(worker) runs at start and teardown(worker) at close (repeatable)', collect, [])
  .option('--tls-cert <file>', 'PEM certificate: serve the data port over tls:// (with --tls-key); also the client certificate')
  .option('--tls-key <file>', 'PEM private key of --tls-cert')
  .option('--tls-ca <file>', 'PEM CA to trust when dialling a tls:// scheduler and peers')
  .action(async (address: string, opts: WorkerFlags) => {
    const token = tokenOf(opts.token);
    const tls = tlsOf(opts);
    if (opts.lifetimeStagger !== undefined && opts.lifetime === undefined) throw new CliError('--lifetime-stagger needs --lifetime');
    if (opts.lifetime !== undefined && !(opts.lifetime > 0)) throw new CliError('--lifetime must be longer than zero');
    if (opts.lifetime !== undefined && (opts.lifetimeStagger ?? 0) >= opts.lifetime) throw new CliError('--lifetime-stagger must be shorter than --lifetime');
    const preloads = await importPreloads(opts.preload, 'worker');
    const worker = await Worker.start({
      scheduler: address,
      listen: opts.listen,
      metricsPort: opts.metrics ? (opts.metricsPort ?? 0) : false,
      ...(token === undefined ? {} : { token }),
      ...(tls === undefined ? {} : { tls }),
      ...(opts.nthreads === undefined ? {} : { nthreads: opts.nthreads }),
      ...(opts.memoryLimit === undefined ? {} : { memoryLimit: parseBytes(opts.memoryLimit, 'memoryLimit') }),
      ...(opts.memoryTarget === undefined ? {} : { memoryTarget: opts.memoryTarget }),
      ...(opts.memoryPause === undefined ? {} : { memoryPause: opts.memoryPause }),
      ...(opts.spillDirectory === undefined ? {} : { spillDirectory: opts.spillDirectory }),
      ...(opts.name === undefined ? {} : { name: opts.name }),
      ...(opts.host === undefined ? {} : { host: opts.host }),
      ...(opts.connectTimeout === undefined ? {} : { connectTimeout: opts.connectTimeout }),
    });
    process.stdout.write(`${worker.id}\n`);
    if (worker.metricsLink !== null) process.stdout.write(`metrics: ${worker.metricsLink}\n`);
    if (opts.lifetime !== undefined) {
      leaveAtLifetime(worker, {
        lifetime: opts.lifetime,
        ...(opts.lifetimeStagger === undefined ? {} : { stagger: opts.lifetimeStagger }),
        log: (line) => process.stderr.write(`tessera worker ${worker.name}: ${line}\n`),
      });
    }
    try {
      await runSetups(preloads, worker, 'worker', opts, { token });
    } catch (error) {
      await worker.close();
      throw error;
    }
    stopOnce(async () => {
      const ok = await runTeardowns(preloads, worker, 'worker');
      // SIGTERM (what Kubernetes and LocalCluster's scale-down send) hands data over first.
      await worker.close({ graceful: true });
      return ok;
    }, worker.closed);
  });

/**
 * Two passes: the preloads named on the command line are imported first and their flags
 * added to their command, then the whole line is parsed.
 */
async function main(argv: readonly string[]): Promise<void> {
  const role = argv[2];
  if (role === 'scheduler' || role === 'worker') {
    const preloads = await importPreloads(preloadsOnCommandLine(argv.slice(3), role), role);
    addPreloadOptions(role === 'scheduler' ? schedulerCommand : workerCommand, preloads);
  }
  await program.parseAsync(argv);
}

main(process.argv).catch((error: unknown) => {
  // Tessera's own errors say what went wrong in their message (a scheduler that cannot be
  // reached, a refused token, a port in use): one line. Anything else is a bug: its stack.
  const expected = error instanceof TesseraError && !(error instanceof InvariantError);
  const text = expected ? error.message : errorText(error);
  process.stderr.write(`tessera: ${text}\n`);
  process.exit(1);
});
