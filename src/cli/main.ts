#!/usr/bin/env node
/**
 * The `tessera` command:
 *
 *   tessera scheduler --port 8786 --token "$TOKEN"
 *   tessera worker tcp://HOST:8786 --token "$TOKEN" --nthreads 2 --memory-limit 2GB [--name w1] [--no-listen]
 *
 * Each runs until SIGINT/SIGTERM (or, for a worker, until its scheduler goes away), then
 * closes gracefully. The token may also come from TESSERA_TOKEN, which keeps it out of `ps`.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError as CommanderArgumentError } from 'commander';
import { Scheduler } from '../scheduler/server.js';
import { parseBytes } from '../worker/options.js';
import { Worker } from '../worker/worker.js';

const program = new Command('tessera').description('Tessera: parallel and distributed computing for TypeScript');

function fractionOrFalse(name: string): (value: string) => number | false {
  return (value) => {
    if (value === 'false' || value === 'off') return false;
    const f = Number(value);
    if (!(f > 0)) throw new CommanderArgumentError(`${name} must be a positive fraction of the memory limit, or false`);
    return f;
  };
}

function integer(name: string, min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new CommanderArgumentError(`${name} must be an integer >= ${min}`);
    return n;
  };
}

/** Closes `resource` on the first SIGINT/SIGTERM; a second one exits at once. */
function closeOnSignals(close: () => Promise<void>): void {
  let closing = false;
  const onSignal = (): void => {
    if (closing) process.exit(1);
    closing = true;
    close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

interface WorkerFlags {
  readonly token?: string;
  readonly nthreads?: number;
  readonly memoryLimit?: string;
  readonly memoryTarget?: number | false;
  readonly memoryPause?: number | false;
  readonly spillDirectory?: string;
  readonly name?: string;
  readonly host?: string;
  readonly listen: boolean;
}

program
  .command('scheduler')
  .description('run a scheduler')
  .option('--host <host>', 'interface to listen on', '127.0.0.1')
  .option('--port <port>', 'port to listen on (0: any free port)', integer('--port', 0), 8786)
  .option('--token <token>', 'token that workers and clients must present (default: $TESSERA_TOKEN)')
  .option('--preload <module>', 'module to import once the scheduler runs; its exported setup(scheduler) is called')
  .action(async (opts: { host: string; port: number; token?: string; preload?: string }) => {
    const token = opts.token ?? process.env['TESSERA_TOKEN'];
    const scheduler = await Scheduler.start({ host: opts.host, port: opts.port, ...(token === undefined ? {} : { token }) });
    // The address is the first line on stdout, so scripts can read it.
    process.stdout.write(`${scheduler.address}\n`);
    if (opts.preload !== undefined) {
      try {
        const module = (await import(pathToFileURL(resolve(opts.preload)).href)) as { setup?: unknown };
        if (typeof module.setup === 'function') await (module.setup as (scheduler: Scheduler) => unknown)(scheduler);
      } catch (error) {
        await scheduler.close();
        throw error;
      }
    }
    closeOnSignals(() => scheduler.close());
  });

program
  .command('worker')
  .description('run a worker for the scheduler at ADDRESS')
  .argument('<address>', 'the scheduler, tcp://host:port')
  .option('--token <token>', 'the scheduler\'s token (default: $TESSERA_TOKEN)')
  .option('--nthreads <n>', 'threads that run tasks', integer('--nthreads', 1))
  .option('--memory-limit <bytes>', "memory limit, such as '2GB' or '512MiB'")
  .option('--memory-target <fraction>', 'spill results to disk past this fraction of the limit (false: never)', fractionOrFalse('--memory-target'))
  .option('--memory-pause <fraction>', 'take no new tasks past this fraction of the limit (false: never)', fractionOrFalse('--memory-pause'))
  .option('--spill-directory <path>', 'where spilled results go')
  .option('--name <name>', 'name of the worker')
  .option('--host <host>', 'interface to listen on for peers (default: the one that reaches the scheduler)')
  .option('--no-listen', 'accept no connections; data travels through the scheduler')
  .action(async (address: string, opts: WorkerFlags) => {
    const token = opts.token ?? process.env['TESSERA_TOKEN'];
    const worker = await Worker.start({
      scheduler: address,
      listen: opts.listen,
      ...(token === undefined ? {} : { token }),
      ...(opts.nthreads === undefined ? {} : { nthreads: opts.nthreads }),
      ...(opts.memoryLimit === undefined ? {} : { memoryLimit: parseBytes(opts.memoryLimit, 'memoryLimit') }),
      ...(opts.memoryTarget === undefined ? {} : { memoryTarget: opts.memoryTarget }),
      ...(opts.memoryPause === undefined ? {} : { memoryPause: opts.memoryPause }),
      ...(opts.spillDirectory === undefined ? {} : { spillDirectory: opts.spillDirectory }),
      ...(opts.name === undefined ? {} : { name: opts.name }),
      ...(opts.host === undefined ? {} : { host: opts.host }),
    });
    process.stdout.write(`${worker.id}\n`);
    // SIGTERM (what Kubernetes and LocalCluster's scale-down send) hands data over first.
    closeOnSignals(() => worker.close({ graceful: true }));
    await worker.closed;
    process.exit(0);
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  process.stderr.write(`tessera: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
