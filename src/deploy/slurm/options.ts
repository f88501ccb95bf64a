/**
 * The settings of a Slurm worker job, checked once at the door: each wrong value throws
 * InvalidArgumentError naming its option, an unknown option names the closest known one
 * (dask-jobqueue's names included, since that is where many users come from), and the
 * result is a fully filled `ResolvedSlurmJob` the script renderer and the backend share.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError } from '../../errors.js';
import { checkOptions, closest as closestName, optionNames } from '../../options.js';

export interface SlurmJobOptions {
  /** Partition (queue) the jobs go to (`--partition`). Default: the cluster's default partition. */
  readonly partition?: string;
  /** Account charged for the jobs (`--account`). */
  readonly account?: string;
  /** Quality of service (`--qos`). */
  readonly qos?: string;
  /** CPUs per job (`--cpus-per-task`), and the worker's threads. Default 1. */
  readonly cores?: number;
  /**
   * Memory per job (`--mem`), and the worker's memory limit: bytes, or '8GB', '512MiB'.
   * Default: none asked for; the partition's default applies and the worker's limit
   * follows what Slurm allocated.
   */
  readonly memory?: number | string;
  /**
   * Time limit of each job (`--time`): Slurm's forms ('30', '00:30:00', '1-12:00:00'), a
   * duration ('30m', '2h', '1h30m'), or milliseconds. Default: the partition's limit.
   */
  readonly walltime?: string | number;
  /** Extra `#SBATCH` directives, such as '--qos=short' or '--constraint=ib'. */
  readonly jobExtra?: readonly string[];
  /** Shell lines run before the worker starts, such as 'module load nodejs/20'. */
  readonly jobScriptPrologue?: readonly string[];
  /**
   * Where workers spill results, on the node: may name the job's environment variables
   * ('$TMPDIR', '/scratch/$USER'). Default: the worker's own temporary directory.
   */
  readonly localDirectory?: string;
  /**
   * Directory of the jobs' output files (`<jobName>-<job id>.out`), on a file system the
   * nodes write to. Default: the current directory; false: discarded.
   */
  readonly logDirectory?: string | false;
  /** Job name, and the prefix of the workers' names (`<jobName>-<job id>`). Default 'tessera-worker'. */
  readonly jobName?: string;
  /**
   * How the node runs `tessera`: a shell command line ('tessera', 'npx tessera') or its
   * words. Default: this Node binary and this package's CLI, by absolute path (a file
   * system shared with the nodes, as on most clusters).
   */
  readonly command?: string | readonly string[];
  /** Extra flags for `tessera worker`, such as ['--memory-target', '0.7']. */
  readonly workerExtra?: readonly string[];
  /**
   * How long each worker stays before it retires (handing its results over) and its job
   * ends: a duration or milliseconds. Default: `walltime` less a margin (a tenth, at
   * least a minute or half the walltime, at most five minutes); none without a walltime.
   * false: none.
   */
  readonly lifetime?: string | number | false;
  /**
   * Workers leave at a random moment up to this much before `lifetime`, so that jobs
   * started together do not all leave together. Default: a tenth of the lifetime, at most
   * five minutes.
   */
  readonly lifetimeStagger?: string | number;
  /** Several jobs asked for at once go in one job array. Default true. */
  readonly jobArrays?: boolean;
  /** slurm.conf the Slurm commands use (SLURM_CONF). Default: theirs. */
  readonly slurmConf?: string;
  /** How often job states are read (one `squeue` call each time). Default '1s'. */
  readonly pollInterval?: string | number;
}

export interface ResolvedSlurmJob {
  readonly partition: string | undefined;
  readonly account: string | undefined;
  readonly qos: string | undefined;
  readonly cores: number;
  /** Bytes, or undefined: the worker's limit then follows the allocation. */
  readonly memory: number | undefined;
  /** Seconds, or undefined for the partition's limit. */
  readonly walltime: number | undefined;
  /** Directives, each starting with '-' (no '#SBATCH'). */
  readonly jobExtra: readonly string[];
  readonly jobScriptPrologue: readonly string[];
  readonly localDirectory: string | undefined;
  /** Absolute, or undefined to discard the output. */
  readonly logDirectory: string | undefined;
  readonly jobName: string;
  /** The command as it goes into the script (already a shell fragment). */
  readonly command: string;
  readonly workerExtra: readonly string[];
  /** Milliseconds, or undefined for none. */
  readonly lifetime: number | undefined;
  readonly lifetimeStagger: number;
  readonly jobArrays: boolean;
  readonly slurmConf: string | undefined;
  readonly pollInterval: number;
}

/** The options SlurmJobOptions accepts, as literal names (for the lists that extend it). */
export const JOB_OPTION_KEYS = [
  'partition', 'account', 'qos', 'cores', 'memory', 'walltime', 'jobExtra', 'jobScriptPrologue', 'localDirectory',
  'logDirectory', 'jobName', 'command', 'workerExtra', 'lifetime', 'lifetimeStagger', 'jobArrays', 'slurmConf', 'pollInterval',
] as const;

/** The options SlurmJobOptions accepts, for unknown-name checks (complete, or this does not compile). */
export const JOB_OPTION_NAMES = optionNames<SlurmJobOptions>()(JOB_OPTION_KEYS);

/** dask-jobqueue's names for the same settings, so that their users are pointed the right way. */
const DASK_NAMES: Readonly<Record<string, string>> = {
  queue: 'partition',
  project: 'account',
  job_extra: 'jobExtra',
  job_extra_directives: 'jobExtra',
  job_script_prologue: 'jobScriptPrologue',
  env_extra: 'jobScriptPrologue',
  local_directory: 'localDirectory',
  log_directory: 'logDirectory',
  job_name: 'jobName',
  name: 'jobName',
  worker_extra_args: 'workerExtra',
  extra: 'workerExtra',
  python: 'command',
  job_cpu: 'cores',
  job_mem: 'memory',
  scheduler_options: 'host',
  interface: 'host',
};

/**
 * Throws InvalidArgumentError for an unknown option, naming the closest known one — or
 * the one dask-jobqueue's name stands for (`queue` → `partition`).
 */
export function rejectUnknown(options: object, known: readonly string[], where: string): void {
  for (const key of Object.keys(options)) {
    const dask = DASK_NAMES[key];
    if (!known.includes(key) && dask !== undefined && known.includes(dask)) {
      throw new InvalidArgumentError(`${where}: unknown option '${key}' (did you mean '${dask}'? '${key}' is dask-jobqueue's name for it)`);
    }
  }
  checkOptions(options, known, where);
}

/** The known name a mistyped one most likely meant (dask-jobqueue's names included), or undefined. */
export function closest(name: string, known: readonly string[]): string | undefined {
  const dask = DASK_NAMES[name];
  return dask !== undefined && known.includes(dask) ? dask : closestName(name, known);
}

const UNITS: Readonly<Record<string, number>> = {
  '': 1, b: 1,
  kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12,
  k: 1e3, m: 1e6, g: 1e9, t: 1e12,
  kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
};

/** '8GB', '512MiB', 1e9 → bytes (the units `tessera worker --memory-limit` reads). */
export function parseBytes(value: unknown, name: string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value <= 0) throw new InvalidArgumentError(`${name} must be a positive number of bytes, got ${value}`);
    return Math.floor(value);
  }
  const match = typeof value === 'string' ? /^\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value) : null;
  const unit = match === null ? undefined : UNITS[match[2]!.toLowerCase()];
  const amount = match === null ? NaN : Number(match[1]);
  if (unit === undefined || !(amount > 0)) throw new InvalidArgumentError(`${name} must be bytes or a size such as '8GB' or '512MiB', got ${JSON.stringify(value)}`);
  return Math.floor(amount * unit);
}

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** '90s', '25m', '1h30m', '2d' or milliseconds → milliseconds. */
export function parseDuration(value: unknown, name: string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new InvalidArgumentError(`${name} must be a non-negative number of milliseconds, got ${value}`);
    return value;
  }
  if (typeof value !== 'string' || !/^\s*(\d+(\.\d+)?\s*(ms|s|m|h|d)\s*)+$/.test(value)) {
    throw new InvalidArgumentError(`${name} must be a duration such as '90s', '25m' or '1h30m', got ${JSON.stringify(value)}`);
  }
  let ms = 0;
  for (const part of value.matchAll(/(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)/g)) ms += Number(part[1]) * DURATION_UNITS[part[2]!]!;
  return ms;
}

/**
 * A walltime in seconds, from Slurm's forms — minutes, minutes:seconds,
 * hours:minutes:seconds, days-hours, days-hours:minutes, days-hours:minutes:seconds — or a
 * duration ('30m', '2h') or milliseconds.
 */
export function parseWalltime(value: unknown, name: string): number {
  let seconds: number;
  const slurm = typeof value === 'string' ? /^\s*(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?\s*$/.exec(value) : null;
  if (slurm !== null) {
    const [, days, a, b, c] = slurm;
    const n = (s: string | undefined): number => (s === undefined ? 0 : Number(s));
    if (days !== undefined) {
      // days-hours[:minutes[:seconds]]
      seconds = n(days) * 86_400 + n(a) * 3600 + n(b) * 60 + n(c);
    } else if (c !== undefined) {
      seconds = n(a) * 3600 + n(b) * 60 + n(c);
    } else {
      // minutes[:seconds]
      seconds = n(a) * 60 + n(b);
    }
  } else {
    try {
      seconds = Math.ceil(parseDuration(value, name) / 1000);
    } catch {
      throw new InvalidArgumentError(`${name} must be a Slurm time ('00:30:00', '30', '1-12:00:00'), a duration ('30m', '2h') or milliseconds, got ${JSON.stringify(value)}`);
    }
  }
  if (!(seconds > 0)) throw new InvalidArgumentError(`${name} must be longer than zero, got ${JSON.stringify(value)}`);
  return seconds;
}

/** Seconds as Slurm's `[D-]HH:MM:SS`. */
export function formatWalltime(seconds: number): string {
  const days = Math.floor(seconds / 86_400);
  const rest = seconds % 86_400;
  const hms = [Math.floor(rest / 3600), Math.floor((rest % 3600) / 60), rest % 60].map((n) => String(n).padStart(2, '0')).join(':');
  return days > 0 ? `${days}-${hms}` : hms;
}

/**
 * The default lifetime for a walltime (both in seconds): the walltime less a margin for
 * handing results over — a tenth of it, at least a minute (or half of a walltime under two
 * minutes), at most five minutes. An hour gives 55 minutes, as dask-jobqueue's docs advise.
 */
export function defaultLifetime(walltime: number): number {
  const margin = Math.min(300, Math.max(walltime / 10, Math.min(60, walltime / 2)));
  return walltime - margin;
}

/** A word safe in a shell command line, quoted when it needs to be. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** The CLI this package runs workers with: the built one, or the source through tsx. */
export function defaultCommand(): readonly string[] {
  const fromSource = import.meta.url.endsWith('.ts');
  const entry = fileURLToPath(new URL(fromSource ? '../../cli/main.ts' : '../../cli/main.js', import.meta.url));
  return [process.execPath, ...(fromSource ? ['--import', import.meta.resolve('tsx')] : []), entry];
}

const SLURM_WORD = /^[^\s'"\\`$;|&<>()]+$/;

function optionalWord(options: SlurmJobOptions, key: 'partition' | 'account' | 'qos' | 'slurmConf', where: string): string | undefined {
  const value = options[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !SLURM_WORD.test(value)) throw new InvalidArgumentError(`${where}.${key} must be a non-empty string without spaces, quotes or shell characters, got ${JSON.stringify(value)}`);
  return value;
}

function stringList(value: unknown, name: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw new InvalidArgumentError(`${name} must be an array of strings`);
  return value;
}

/** Directives that the backend sets itself, and what to use instead. */
const RESERVED_DIRECTIVES: readonly (readonly [RegExp, string])[] = [
  [/^(-a|--array)(=|\s|$)/, 'jobs are put in arrays by the backend (jobArrays: false turns that off)'],
  [/^(-J|--job-name)(=|\s|$)/, "use the jobName option: the workers' names are derived from it"],
  [/^(-o|--output|-e|--error)(=|\s|$)/, 'use the logDirectory option: job failures are reported with the end of that file'],
  [/^(-c|--cpus-per-task)(=|\s|$)/, 'use the cores option: the worker runs as many threads'],
  [/^--mem(=|\s|$)/, 'use the memory option: the worker keeps within it'],
  [/^(-t|--time)(=|\s|$)/, "use the walltime option: the workers' lifetime follows it"],
  [/^--parsable(=|\s|$)/, 'the backend passes it on the command line'],
];

/** Checks and fills the job settings; `where` names the options object in messages. */
export function resolveJobOptions(options: SlurmJobOptions, where = 'options'): ResolvedSlurmJob {
  const partition = optionalWord(options, 'partition', where);
  const account = optionalWord(options, 'account', where);
  const qos = optionalWord(options, 'qos', where);
  const slurmConf = optionalWord(options, 'slurmConf', where);

  const cores = options.cores ?? 1;
  if (!Number.isInteger(cores) || cores < 1) throw new InvalidArgumentError(`${where}.cores must be a positive integer, got ${String(cores)}`);
  const memory = options.memory === undefined ? undefined : parseBytes(options.memory, `${where}.memory`);
  if (memory !== undefined && memory < 2 ** 20) throw new InvalidArgumentError(`${where}.memory must be at least 1MiB (Slurm counts in MiB), got ${JSON.stringify(options.memory)}`);
  const walltime = options.walltime === undefined ? undefined : parseWalltime(options.walltime, `${where}.walltime`);

  const jobExtra = stringList(options.jobExtra, `${where}.jobExtra`).map((raw, i) => {
    const directive = raw.replace(/^\s*#SBATCH\s+/, '').trim();
    if (!directive.startsWith('-') || /[\n\r]/.test(directive)) {
      throw new InvalidArgumentError(`${where}.jobExtra[${i}] must be one sbatch option such as '--constraint=ib', got ${JSON.stringify(raw)}`);
    }
    for (const [pattern, instead] of RESERVED_DIRECTIVES) {
      if (pattern.test(directive)) throw new InvalidArgumentError(`${where}.jobExtra[${i}] ${JSON.stringify(raw)} is set by the backend: ${instead}`);
    }
    // '--qos=short' here is as good as the qos option (dask-jobqueue users write it so); both at once is a contradiction.
    for (const [pattern, name, value] of [[/^(-p|--partition)(=|\s|$)/, 'partition', partition], [/^(-A|--account)(=|\s|$)/, 'account', account], [/^(-q|--qos)(=|\s|$)/, 'qos', qos]] as const) {
      if (pattern.test(directive) && value !== undefined) throw new InvalidArgumentError(`${where}.jobExtra[${i}] ${JSON.stringify(raw)} contradicts the ${name} option (${value}): give one of them`);
    }
    return directive;
  });
  const jobScriptPrologue = stringList(options.jobScriptPrologue, `${where}.jobScriptPrologue`).flatMap((line) => line.split('\n'));

  let localDirectory: string | undefined;
  if (options.localDirectory !== undefined) {
    localDirectory = options.localDirectory;
    // It goes into the script in double quotes, so that $TMPDIR and the like expand on the node.
    if (typeof localDirectory !== 'string' || localDirectory === '' || /["\\`\n]|\$\(/.test(localDirectory)) {
      throw new InvalidArgumentError(`${where}.localDirectory must be a path (environment variables such as $TMPDIR allowed; no quotes, backslashes or command substitution), got ${JSON.stringify(localDirectory)}`);
    }
  }

  let logDirectory: string | undefined;
  if (options.logDirectory === undefined) logDirectory = process.cwd();
  else if (options.logDirectory === false) logDirectory = undefined;
  else if (typeof options.logDirectory === 'string' && options.logDirectory !== '' && !/[\s%"'\\]/.test(options.logDirectory)) logDirectory = resolve(options.logDirectory);
  else throw new InvalidArgumentError(`${where}.logDirectory must be a path without spaces, quotes or '%', or false, got ${JSON.stringify(options.logDirectory)}`);

  const jobName = options.jobName ?? 'tessera-worker';
  if (typeof jobName !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(jobName)) {
    throw new InvalidArgumentError(`${where}.jobName must be letters, digits, '_', '.' or '-' (at most 63, starting with a letter or digit), got ${JSON.stringify(jobName)}`);
  }

  let command: string;
  if (options.command === undefined) command = defaultCommand().map(shellQuote).join(' ');
  else if (typeof options.command === 'string' && options.command.trim() !== '' && !/[\n\r]/.test(options.command)) command = options.command.trim();
  else if (Array.isArray(options.command) && options.command.length > 0 && options.command.every((w) => typeof w === 'string' && w !== '')) command = options.command.map(shellQuote).join(' ');
  else throw new InvalidArgumentError(`${where}.command must be a command line such as 'npx tessera', or its words, got ${JSON.stringify(options.command)}`);

  const workerExtra = stringList(options.workerExtra, `${where}.workerExtra`);
  for (const flag of workerExtra) {
    if (/^--(name|nthreads|memory-limit|lifetime|lifetime-stagger|spill-directory|token)(=|$)/.test(flag)) {
      throw new InvalidArgumentError(`${where}.workerExtra: ${flag} is set by the backend (from jobName, cores, memory, lifetime, localDirectory; the token travels in the environment)`);
    }
  }

  let lifetime: number | undefined;
  if (options.lifetime === false) lifetime = undefined;
  else if (options.lifetime !== undefined) lifetime = parseDuration(options.lifetime, `${where}.lifetime`);
  else if (walltime !== undefined) lifetime = defaultLifetime(walltime) * 1000;
  if (lifetime !== undefined && !(lifetime > 0)) throw new InvalidArgumentError(`${where}.lifetime must be longer than zero`);
  if (lifetime !== undefined && walltime !== undefined && lifetime >= walltime * 1000) {
    throw new InvalidArgumentError(`${where}.lifetime (${lifetime / 1000} s) must be shorter than the walltime (${walltime} s), leaving time to hand results over`);
  }
  const lifetimeStagger = options.lifetimeStagger === undefined ? Math.min((lifetime ?? 0) / 10, 300_000) : parseDuration(options.lifetimeStagger, `${where}.lifetimeStagger`);
  if (lifetime !== undefined && lifetimeStagger >= lifetime) throw new InvalidArgumentError(`${where}.lifetimeStagger must be shorter than the lifetime`);

  const jobArrays = options.jobArrays ?? true;
  if (typeof jobArrays !== 'boolean') throw new InvalidArgumentError(`${where}.jobArrays must be true or false`);
  const pollInterval = parseDuration(options.pollInterval ?? '1s', `${where}.pollInterval`);
  if (pollInterval < 100) throw new InvalidArgumentError(`${where}.pollInterval must be at least 100 ms (each poll is one squeue call)`);

  return {
    partition, account, qos, cores, memory, walltime, jobExtra, jobScriptPrologue, localDirectory, logDirectory, jobName,
    command, workerExtra, lifetime, lifetimeStagger, jobArrays, slurmConf, pollInterval,
  };
}
