/**
 * A real one-node Slurm cluster on this machine, private to one test: its own directory,
 * MUNGE key and munged, slurmctld and slurmd on free ports. Client commands reach it with
 * `env` (SLURM_CONF), exactly as a backend would call sbatch/squeue/scancel.
 *
 *   const slurm = await startSlurm({ cpus: 4 });
 *   try {
 *     const id = (await slurm.run('sbatch', ['--parsable', '--wrap', 'hostname'])).trim();
 *   } finally {
 *     await slurm.stop();
 *   }
 *
 * A detached reaper (reaper.sh) owns the teardown: stop() asks it, and it also acts by
 * itself when the test process goes away without stopping, so no job or daemon outlives it.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { appendFileSync, chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { slurmConf, slurmdbdConf } from './config.js';
import { slurmUnavailable } from './install.js';
import { mariadbArgs, mariadbDataDir } from './mariadb.js';

export interface SlurmOptions {
  /** Partition name (the only one, and the default). Default 'compute'. */
  readonly partition?: string;
  /** The node's CPUs; more than the machine has is allowed. Default 4. */
  readonly cpus?: number;
  /** The node's memory in MB; more than the machine has is allowed. Default 4096. */
  readonly memoryMB?: number;
  /** Seconds between SIGTERM and SIGKILL when a job is cancelled or times out. Default 2. */
  readonly killWait?: number;
  /** Seconds a finished job stays in `squeue -t all`. Default 300 (Slurm's). */
  readonly minJobAge?: number;
  /**
   * Keep accounting in slurmdbd (with a private MariaDB) so that `sacct` answers. Costs
   * about 3 s more per start, and slurmdbd and mariadb-server installed. Default false.
   */
  readonly accounting?: boolean;
  /** Extra slurm.conf lines, appended last. */
  readonly extraConfig?: readonly string[];
  /** Keep the directory (logs, state) after stop(). Default: TESSERA_SLURM_KEEP=1. */
  readonly keep?: boolean;
  /** How long to wait for the node to come up idle. Default 60 s. */
  readonly startTimeoutMs?: number;
}

export interface SlurmCluster {
  /** What client commands need to reach this cluster (SLURM_CONF); add it to process.env. */
  readonly env: Readonly<Record<string, string>>;
  readonly partition: string;
  readonly nodeName: string;
  readonly cpus: number;
  readonly memoryMB: number;
  readonly clusterName: string;
  readonly dir: string;
  readonly confPath: string;
  readonly logDir: string;
  /** jobcomp/filetxt: one key=value line per finished job, JobState included. */
  readonly jobCompPath: string;
  /** Runs a client command (sbatch, squeue, …) against this cluster; resolves to stdout. */
  run(command: string, args: readonly string[], options?: { readonly timeoutMs?: number }): Promise<string>;
  /** Cancels every job, stops the daemons, removes the directory. Idempotent. */
  stop(): Promise<void>;
}

const REAPER = fileURLToPath(new URL('./reaper.sh', import.meta.url));
const SBIN = '/usr/sbin';
const PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

/** Raised when the cluster does not come up; carries the tail of the daemons' logs. */
export class SlurmStartError extends Error {
  override readonly name = 'SlurmStartError';
  /** The cluster's directory (removed by then, unless kept), when it got that far. */
  dir: string | undefined;
}

/** Starts a private Slurm; resolves once `sinfo` shows its node idle. */
export async function startSlurm(options: SlurmOptions = {}): Promise<SlurmCluster> {
  const missing = await slurmUnavailable({ accounting: options.accounting === true });
  if (missing !== false) throw new SlurmStartError(`Slurm is not available: ${missing}`);
  const o = fill(options);
  // Free ports are probed, then bound by Slurm a moment later; on the rare collision, try
  // again on new ones.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(o);
    } catch (err) {
      if (!(err instanceof PortTakenError) || attempt >= 3) throw err;
    }
  }
}

type Filled = Required<Omit<SlurmOptions, 'extraConfig'>> & { readonly extraConfig: readonly string[] };

function fill(options: SlurmOptions): Filled {
  const o: Filled = {
    partition: options.partition ?? 'compute',
    cpus: options.cpus ?? 4,
    memoryMB: options.memoryMB ?? 4096,
    killWait: options.killWait ?? 2,
    minJobAge: options.minJobAge ?? 300,
    accounting: options.accounting ?? false,
    extraConfig: options.extraConfig ?? [],
    keep: options.keep ?? process.env.TESSERA_SLURM_KEEP === '1',
    startTimeoutMs: options.startTimeoutMs ?? 60_000,
  };
  if (!/^[A-Za-z0-9_-]+$/.test(o.partition)) throw new TypeError(`options.partition must be letters, digits, '_' or '-' (got ${JSON.stringify(o.partition)})`);
  for (const key of ['cpus', 'memoryMB'] as const) {
    if (!Number.isInteger(o[key]) || o[key] < 1) throw new TypeError(`options.${key} must be a positive integer`);
  }
  for (const key of ['killWait', 'minJobAge'] as const) {
    if (!Number.isInteger(o[key]) || o[key] < 0) throw new TypeError(`options.${key} must be a non-negative integer`);
  }
  return o;
}

class PortTakenError extends SlurmStartError {}

async function startOnce(o: Filled): Promise<SlurmCluster> {
  // A Unix socket's path must fit in 108 bytes: a long TMPDIR gives way to /tmp.
  const base = tmpdir().length <= 60 ? tmpdir() : '/tmp';
  const dir = mkdtempSync(join(base, 'tessera-slurm-'));
  // munged wants the directories above its socket searchable by all (--force only warns).
  chmodSync(dir, 0o711);
  const logDir = join(dir, 'log');
  for (const sub of ['state', 'spool', 'run', 'log', 'munge']) mkdirSync(join(dir, sub));
  chmodSync(join(dir, 'munge'), 0o700);
  const confPath = join(dir, 'slurm.conf');
  const mungeSocket = join(dir, 'munge.sock');
  const clusterName = `t${randomBytes(4).toString('hex')}`;
  const nodeName = (hostname().split('.')[0] ?? '').replace(/[^A-Za-z0-9-]/g, '') || 'node1';
  const [ctldPort = 0, slurmdPort = 0, dbdPort = 0, mysqlPort = 0] = await freePorts(o.accounting ? 4 : 2);
  writeFileSync(
    confPath,
    slurmConf({ clusterName, dir, mungeSocket, ctldPort, slurmdPort, nodeName, cpus: o.cpus, memoryMB: o.memoryMB, partition: o.partition, killWait: o.killWait, minJobAge: o.minJobAge, dbdPort: o.accounting ? dbdPort : undefined, extra: o.extraConfig }),
  );
  if (o.accounting) writeFileSync(join(dir, 'slurmdbd.conf'), slurmdbdConf({ dir, mungeSocket, dbdPort, mysqlPort }), { mode: 0o600 });
  writeFileSync(join(dir, 'munge', 'munge.key'), randomBytes(1024), { mode: 0o600 });

  // Daemons get a small environment of their own: SLURM_CONF marks them (and, through
  // slurmstepd, their jobs) as this cluster's for the reaper.
  const env = { SLURM_CONF: confPath };
  const daemonEnv = { PATH, SLURM_CONF: confPath, LANG: 'C.UTF-8' };
  const pidsFile = join(dir, 'pids');
  writeFileSync(pidsFile, '');

  const reaperLog = openSync(join(logDir, 'reaper.log'), 'a');
  const reaper = spawn('bash', [REAPER, String(process.pid), dir, o.keep ? 'keep' : ''], { detached: true, stdio: ['ignore', reaperLog, reaperLog], env: { PATH } });
  closeSync(reaperLog);
  reaper.unref();
  const reaperExited = once(reaper, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  // If this process exits without stop(), the reaper starts at once instead of at its next poll.
  const onExit = (): void => {
    kill(reaper.pid, 'SIGUSR1');
  };
  process.once('exit', onExit);

  const daemon = (name: string, args: readonly string[]): ChildProcess => {
    const out = openSync(join(logDir, `${name}.out`), 'a');
    const child = spawn(join(SBIN, name), args, { detached: true, stdio: ['ignore', out, out], env: daemonEnv });
    closeSync(out);
    child.unref();
    if (child.pid === undefined) throw new SlurmStartError(`could not start ${name}`);
    appendFileSync(pidsFile, `${name} ${child.pid}\n`);
    return child;
  };

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      process.removeListener('exit', onExit);
      reaper.ref();
      kill(reaper.pid, 'SIGUSR1');
      const [code, sig] = await reaperExited;
      if (code !== 0) throw new Error(`the Slurm reaper exited with ${code ?? sig}: see ${join(logDir, 'reaper.log')} (directory kept)`);
    })();
    return stopping;
  };

  const cluster: SlurmCluster = {
    env,
    partition: o.partition,
    nodeName,
    cpus: o.cpus,
    memoryMB: o.memoryMB,
    clusterName,
    dir,
    confPath,
    logDir,
    jobCompPath: join(logDir, 'jobcomp.txt'),
    run: (command, args, runOptions) => run(command, args, env, runOptions?.timeoutMs ?? 30_000),
    stop,
  };

  // Each daemon's exit before the node is up fails the start with the end of its log.
  const watch = (name: string, args: readonly string[]): Promise<never> => {
    const child = daemon(name, args);
    const exited = new Promise<never>((_, reject) => {
      child.once('exit', (code, sig) => {
        const log = tail(logDir, name);
        const message = `${name} exited (${code ?? sig}) while starting: ${log}`;
        reject(/already in use|unable to bind/i.test(log) ? new PortTakenError(message) : new SlurmStartError(message));
      });
    });
    exited.catch(() => undefined);
    return exited;
  };
  // Ends the waiting (and its last sinfo) once one of the races is decided.
  const waiting = new AbortController();
  const signal = waiting.signal;
  try {
    const munged = watch('munged', ['--foreground', '--force', `--socket=${mungeSocket}`, `--key-file=${join(dir, 'munge', 'munge.key')}`, `--pid-file=${join(dir, 'run', 'munged.pid')}`, `--seed-file=${join(dir, 'munge', 'munged.seed')}`, `--log-file=${join(logDir, 'munged.log')}`]);
    await Promise.race([munged, poll(() => existsSync(mungeSocket), 'munged to open its socket', 10_000, signal)]);
    const accounting: Promise<never>[] = [];
    if (o.accounting) {
      // slurmctld will not start without the accounting it is configured for.
      await mariadbDataDir(join(dir, 'db'));
      const mysqlSocket = join(dir, 'mysql.sock');
      const mariadbd = watch('mariadbd', mariadbArgs(join(dir, 'db'), mysqlSocket, mysqlPort, join(logDir, 'mariadbd.log'), join(dir, 'run', 'mariadbd.pid')));
      await Promise.race([munged, mariadbd, poll(() => existsSync(mysqlSocket), 'mariadbd to open its socket', 30_000, signal)]);
      const slurmdbd = watch('slurmdbd', ['-D']);
      await Promise.race([munged, mariadbd, slurmdbd, poll(() => accepts(dbdPort), 'slurmdbd to listen', 30_000, signal)]);
      accounting.push(mariadbd, slurmdbd);
    }
    // slurmd retries its registration until slurmctld answers: no need to wait in between.
    const ctld = watch('slurmctld', ['-D', '-i', '-f', confPath]);
    const slurmd = watch('slurmd', ['-D', '-N', nodeName, '-f', confPath]);
    const idle = async (): Promise<boolean> => (await run('sinfo', ['-h', '-N', '-n', nodeName, '-o', '%T'], env, 5_000, signal).catch(() => '')).trim() === 'idle';
    await Promise.race([munged, ...accounting, ctld, slurmd, poll(idle, `node ${nodeName} to be idle`, o.startTimeoutMs, signal)]);
  } catch (err) {
    const failure = err instanceof SlurmStartError ? err : new SlurmStartError(`Slurm did not start: ${err instanceof Error ? err.message : String(err)}; ${tail(logDir, 'slurmctld')} ${tail(logDir, 'slurmd')}`, { cause: err });
    failure.dir = dir;
    waiting.abort();
    await stop().catch(() => undefined);
    throw failure;
  }
  waiting.abort();
  return cluster;
}

function kill(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone: nothing to ask.
  }
}

/** Runs a command with the cluster's environment; rejects with its stderr on failure. */
export function run(command: string, args: readonly string[], env: Readonly<Record<string, string>>, timeoutMs = 30_000, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, ...(signal === undefined ? {} : { signal }) }, (err, stdout, stderr) => {
      if (err === null) resolve(stdout);
      else reject(new Error(`${command} ${args.join(' ')}: ${stderr.trim() || err.message}`, { cause: err }));
    });
  });
}

async function poll(condition: () => boolean | Promise<boolean>, what: string, timeoutMs: number, signal: AbortSignal): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!signal.aborted && !(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Whether something listens on this loopback port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      resolve(false);
    });
  });
}

/** Ports free on every interface right now (Slurm's daemons bind the wildcard address). */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, async () => {
      const server = createServer();
      server.listen(0, '0.0.0.0');
      await once(server, 'listening');
      return server;
    }),
  );
  const ports = servers.map((s) => {
    const address = s.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    return address.port;
  });
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/** The last lines a daemon wrote, for error messages. */
function tail(logDir: string, name: string): string {
  const lines: string[] = [];
  for (const file of [`${name}.out`, `${name}.log`]) {
    try {
      lines.push(...readFileSync(join(logDir, file), 'utf8').trim().split('\n').slice(-8));
    } catch {
      // Not written yet.
    }
  }
  return lines.length > 0 ? `[${name}] ${lines.join(' | ')}` : `[${name}] (no log)`;
}
