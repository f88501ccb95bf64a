#!/usr/bin/env node
/**
 * The `tessera` command:
 *
 *   tessera scheduler --port 8786 --token "$TOKEN" [--dashboard-port 8787] [--dashboard-host 127.0.0.1 | --no-dashboard]
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
 * A preload module (repeatable) is imported at start; its exported `setup(server)` is
 * called once the scheduler or worker runs, and `teardown(server)` when it closes. A
 * preload that cannot be imported or whose setup throws stops the process (exit code 1)
 * with a message naming the module.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError as CommanderArgumentError } from 'commander';
import { isLoopback } from '../comm/http.js';
import { InvariantError, TesseraError } from '../errors.js';
import { Scheduler } from '../process/scheduler.js';
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
}

interface Preload {
  /** As given on the command line, for messages. */
  readonly name: string;
  readonly module: PreloadModule;
}

type Role = 'scheduler' | 'worker';

function errorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // The message first (what users read), then where it came from.
  const frames = (error.stack ?? '').split('\n').filter((line) => line.trimStart().startsWith('at '));
  return [`${error.name}: ${error.message}`, ...frames.slice(0, 8)].join('\n');
}

/** Imports every preload before the server starts, so a missing file costs no start-up. */
async function importPreloads(paths: readonly string[], role: Role): Promise<Preload[]> {
  const loaded: Preload[] = [];
  for (const name of paths) {
    const file = resolve(name);
    if (!existsSync(file)) throw new CliError(`preload module ${name}${file === name ? '' : ` (${file})`} does not exist`);
    let module: PreloadModule;
    try {
      module = (await import(pathToFileURL(file).href)) as PreloadModule;
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
    loaded.push({ name, module });
    process.stderr.write(`tessera ${role}: loaded preload module ${name}\n`);
  }
  return loaded;
}

/**
 * Calls each setup in order. When one throws, the ones already set up are torn down
 * (newest first) before the error is raised, so their resources do not outlive the failure.
 */
async function runSetups(preloads: readonly Preload[], server: Scheduler | Worker, role: Role): Promise<void> {
  const done: Preload[] = [];
  for (const p of preloads) {
    try {
      if (typeof p.module.setup === 'function') await (p.module.setup as (server: Scheduler | Worker) => unknown)(server);
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
  readonly dashboard: boolean;
  readonly dashboardHost: string;
  readonly dashboardPort: number;
  readonly preload: readonly string[];
  readonly store?: string;
}

/** The store --store names: redis://… (rediss://…) or memory. */
async function storeOf(spec: string | undefined): Promise<ResultStore | undefined> {
  if (spec === undefined) return undefined;
  if (spec === 'memory') return new MemoryStore();
  if (spec.startsWith('redis://') || spec.startsWith('rediss://')) return RedisStore.connect(spec);
  throw new CliError(`--store takes redis://HOST:PORT (rediss:// with TLS) or memory, not '${spec}'`);
}

program
  .command('scheduler')
  .description('run a scheduler, with its dashboard')
  .option('--host <host>', 'interface to listen on', '127.0.0.1')
  .option('--port <port>', 'port to listen on (0: any free port)', integer('--port', 0, 65535), 8786)
  .option('--token <token>', 'token that workers and clients must present (default: $TESSERA_TOKEN)')
  .option('--dashboard-host <host>', 'interface the dashboard listens on (another than loopback requires a token)', '127.0.0.1')
  .option('--dashboard-port <port>', 'dashboard port (0, or a busy port: any free port)', integer('--dashboard-port', 0, 65535), 8787)
  .option('--no-dashboard', 'serve no dashboard, /metrics or JSON API')
  .option('--preload <module>', 'module whose setup(scheduler) runs at start and teardown(scheduler) at close (repeatable)', collect, [])
  .option('--tls-cert <file>', 'PEM certificate: listen on tls:// (with --tls-key)')
  .option('--tls-key <file>', 'PEM private key of --tls-cert')
  .option('--tls-ca <file>', 'PEM CA: workers and clients must present a certificate signed by it (mutual TLS)')
  .option('--store <url>', 'result store for workers that cannot be reached: redis://HOST:PORT, or memory (held by the scheduler)')
  .action(async (opts: SchedulerFlags) => {
    const token = tokenOf(opts.token);
    const tls = tlsOf(opts);
    if (tls !== undefined && (tls.cert === undefined || tls.key === undefined)) throw new CliError('--tls-ca needs --tls-cert and --tls-key');
    if (opts.dashboard && !isLoopback(opts.dashboardHost) && token === undefined) {
      throw new CliError(
        `--dashboard-host ${opts.dashboardHost} makes the dashboard reachable from other machines, so it requires a token: ` +
          'pass --token (or set TESSERA_TOKEN), keep --dashboard-host 127.0.0.1 and forward the port, or use --no-dashboard',
      );
    }
    const preloads = await importPreloads(opts.preload, 'scheduler');
    const store = await storeOf(opts.store);
    let scheduler: Scheduler;
    try {
      scheduler = await Scheduler.start({
        host: opts.host,
        port: opts.port,
        ...(token === undefined ? {} : { token }),
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
      await runSetups(preloads, scheduler, 'scheduler');
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
  readonly preload: readonly string[];
}

program
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
  .option('--preload <module>', 'module whose setup(worker) runs at start and teardown(worker) at close (repeatable)', collect, [])
  .option('--tls-cert <file>', 'PEM certificate: serve the data port over tls:// (with --tls-key); also the client certificate')
  .option('--tls-key <file>', 'PEM private key of --tls-cert')
  .option('--tls-ca <file>', 'PEM CA to trust when dialling a tls:// scheduler and peers')
  .action(async (address: string, opts: WorkerFlags) => {
    const token = tokenOf(opts.token);
    const tls = tlsOf(opts);
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
    try {
      await runSetups(preloads, worker, 'worker');
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

program.parseAsync(process.argv).catch((error: unknown) => {
  // Tessera's own errors say what went wrong in their message (a scheduler that cannot be
  // reached, a refused token, a port in use): one line. Anything else is a bug: its stack.
  const expected = error instanceof TesseraError && !(error instanceof InvariantError);
  const text = expected ? error.message : errorText(error);
  process.stderr.write(`tessera: ${text}\n`);
  process.exit(1);
});
