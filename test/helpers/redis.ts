/**
 * A real Redis for tests: Debian's redis-server on a free port, in a temporary directory.
 *
 * ```ts
 * const redis = await startRedis();
 * // … connect to redis.url …
 * await redis.restart();   // same port, data gone (unless { persistence: true })
 * await redis.stop();      // process ended, directory removed
 * ```
 *
 * Nothing is installed here: `scripts/redis/ensure.sh` installs the package (as root, with apt).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export interface StartRedisOptions {
  /** Keep data across restart() and kill(): an append-only file fsynced on every write. Default false. */
  readonly persistence?: boolean;
  /** The redis-server binary; default: the first on PATH, then /usr/bin/redis-server. */
  readonly binary?: string;
  /** How long to wait for "Ready to accept connections". Default 15 s. */
  readonly startTimeoutMs?: number;
}

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** The working directory (the append-only file lives here when persistence is on). */
  readonly dir: string;
  /** The current process's pid; changes on restart(). Undefined after kill() or stop(). */
  readonly pid: number | undefined;
  /** Stops the process (SIGTERM) and starts it again on the same port. */
  restart(): Promise<void>;
  /** Kills the process (SIGKILL) and leaves it down: clients see the store vanish. start() brings it back. */
  kill(): Promise<void>;
  /** Starts the process again after kill(), on the same port. */
  start(): Promise<void>;
  /** Ends the process and removes the directory. Idempotent. */
  stop(): Promise<void>;
}

/** The redis-server binary, or undefined when none is installed. */
export function findRedisServer(): string | undefined {
  const candidates = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, 'redis-server')), '/usr/bin/redis-server'];
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Why Redis tests cannot run, or false when redis-server is there. */
export const redisMissing: string | false = findRedisServer() === undefined ? 'redis-server is missing (run scripts/redis/ensure.sh as root): Redis tests skipped' : false;

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address === null || typeof address === 'string') reject(new Error('no port'));
        else resolve(address.port);
      });
    });
  });
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** A test process that dies without stop() must not leave a redis-server behind. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

function waitForExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisServer> {
  const binary = opts.binary ?? findRedisServer();
  if (binary === undefined) throw new Error('redis-server is not installed (scripts/redis/ensure.sh installs it)');
  const persistence = opts.persistence ?? false;
  const startTimeoutMs = opts.startTimeoutMs ?? 15_000;
  const dir = mkdtempSync(join(tmpdir(), 'tessera-redis-'));
  installExitHook();

  let child: ChildProcess | undefined;
  let port = 0;
  let stopped = false;

  const args = (p: number): string[] => [
    '--port', String(p),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--daemonize', 'no',
    '--logfile', '',
    '--save', '',
    '--appendonly', persistence ? 'yes' : 'no',
    ...(persistence ? ['--appendfsync', 'always'] : []),
  ];

  const launch = (p: number): Promise<ChildProcess> =>
    new Promise((resolve, reject) => {
      const proc = spawn(binary, args(p), { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      live.add(proc);
      let output = '';
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`redis-server did not become ready in ${startTimeoutMs} ms:\n${output}`));
      }, startTimeoutMs);
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer);
          proc.stdout.off('data', onData);
          proc.stdout.resume();
          resolve(proc);
        }
      };
      proc.stdout.on('data', onData);
      proc.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      proc.once('exit', (code, signal) => {
        live.delete(proc);
        clearTimeout(timer);
        reject(new Error(`redis-server exited (${code ?? signal ?? '?'}) before it was ready:\n${output}`));
      });
      proc.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });

  // A probed port can be taken by someone else before redis binds it: try a few.
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      child = await launch(port);
      break;
    } catch (err) {
      if (attempt >= 4) {
        rmSync(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }

  const end = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    child = undefined;
    if (proc === undefined) return;
    proc.kill(signal);
    await waitForExit(proc);
    live.delete(proc);
  };

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    get pid() {
      return child?.pid;
    },
    async restart() {
      if (stopped) throw new Error('Redis was stopped');
      await end('SIGTERM');
      child = await launch(port);
    },
    async kill() {
      await end('SIGKILL');
    },
    async start() {
      if (stopped) throw new Error('Redis was stopped');
      if (child !== undefined) return;
      child = await launch(port);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await end('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
