/**
 * `tessera/slurm` as a scheduler preload: a bare `tessera scheduler` (on a login node, say)
 * submits its workers as Slurm jobs and follows the work.
 *
 *   tessera scheduler --host 0.0.0.0 --backend slurm --slurm-partition compute --slurm-cores 4 \
 *       --slurm-memory 8GB --slurm-walltime 01:00:00 --slurm-maximum 50
 *
 * (`--backend slurm` is short for `--preload tessera/slurm`.) The flags below are added to
 * `tessera scheduler` when this preload is named; setup() receives their values.
 */
import type { Scheduler } from '../../process/scheduler.js';
import { InvalidArgumentError } from '../../errors.js';
import { SlurmBackend } from './backend.js';
import type { SlurmJobOptions } from './options.js';

/** One flag this preload adds to `tessera scheduler` (the shape the CLI reads). */
export interface PreloadOption {
  readonly flags: string;
  readonly description: string;
  readonly defaultValue?: unknown;
  readonly parse?: (value: string, previous: unknown) => unknown;
}

const integer = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`must be a non-negative integer, got '${value}'`);
  return n;
};
const repeat = (value: string, previous: unknown): string[] => [...(Array.isArray(previous) ? (previous as string[]) : []), value];
const offOr = (value: string): string | false => (['false', 'none', 'off'].includes(value) ? false : value);

export const options: readonly PreloadOption[] = [
  { flags: '--slurm-partition <name>', description: 'partition (queue) the worker jobs go to (default: the cluster\'s default)' },
  { flags: '--slurm-account <name>', description: 'account charged for the jobs' },
  { flags: '--slurm-qos <name>', description: 'quality of service of the jobs' },
  { flags: '--slurm-cores <n>', description: 'CPUs per job, and threads per worker (default 1)', parse: integer },
  { flags: '--slurm-memory <size>', description: "memory per job, and the worker's limit, such as '8GB' (default: the partition's)" },
  { flags: '--slurm-walltime <time>', description: "time limit per job, such as '01:00:00' or '1h'; workers leave before it" },
  { flags: '--slurm-job-extra <directive>', description: 'extra #SBATCH directive, written --slurm-job-extra=--constraint=ib (repeatable)', parse: repeat },
  { flags: '--slurm-prologue <line>', description: "shell line run before the worker, such as 'module load nodejs' (repeatable)", parse: repeat },
  { flags: '--slurm-local-directory <path>', description: "where workers spill on the node, such as '$TMPDIR'" },
  { flags: '--slurm-log-directory <path>', description: "directory of the jobs' output files (default: the current one; none: discarded)", parse: offOr },
  { flags: '--slurm-job-name <name>', description: "job name, and the workers' name prefix (default tessera-worker)" },
  { flags: '--slurm-command <command>', description: "how a node runs tessera, such as 'npx tessera' (default: this Node and this CLI, by absolute path)" },
  { flags: '--slurm-worker-extra <flag>', description: 'extra flag for tessera worker, written --slurm-worker-extra=--no-metrics (repeatable)', parse: repeat },
  { flags: '--slurm-lifetime <duration>', description: 'how long each worker stays before it hands over and leaves (default: walltime less a margin; none: no limit)', parse: offOr },
  { flags: '--slurm-lifetime-stagger <duration>', description: 'workers leave up to this much earlier, at random (default: a tenth of the lifetime, at most 5m)' },
  { flags: '--slurm-no-arrays', description: 'submit one sbatch per job rather than job arrays' },
  { flags: '--slurm-conf <path>', description: 'slurm.conf for the Slurm commands (default: theirs)' },
  { flags: '--slurm-poll-interval <duration>', description: 'how often job states are read, one squeue each time (default 1s)' },
  { flags: '--slurm-contact-address <address>', description: "address workers dial, such as tcp://login1:8786 (default: the scheduler's)" },
  { flags: '--slurm-minimum <n>', description: 'never fewer workers (default 0)', parse: integer, defaultValue: 0 },
  { flags: '--slurm-maximum <n>', description: 'never more workers (jobs) (default 10)', parse: integer, defaultValue: 10 },
  { flags: '--slurm-target-duration <duration>', description: 'aim to finish the queued work in this long (default 5s)', defaultValue: '5s' },
  { flags: '--slurm-show-script', description: 'print the job script to stderr at start' },
];

/** The values setup() receives, by camel-cased flag name. */
export interface SlurmPreloadValues {
  readonly slurmPartition?: string;
  readonly slurmAccount?: string;
  readonly slurmQos?: string;
  readonly slurmCores?: number;
  readonly slurmMemory?: string;
  readonly slurmWalltime?: string;
  readonly slurmJobExtra?: readonly string[];
  readonly slurmPrologue?: readonly string[];
  readonly slurmLocalDirectory?: string;
  readonly slurmLogDirectory?: string | false;
  readonly slurmJobName?: string;
  readonly slurmCommand?: string;
  readonly slurmWorkerExtra?: readonly string[];
  readonly slurmLifetime?: string | false;
  readonly slurmLifetimeStagger?: string;
  readonly slurmNoArrays?: boolean;
  readonly slurmConf?: string;
  readonly slurmPollInterval?: string;
  readonly slurmContactAddress?: string;
  readonly slurmMinimum?: number;
  readonly slurmMaximum?: number;
  readonly slurmTargetDuration?: string;
  readonly slurmShowScript?: boolean;
}

/** The flag behind each option, for messages. */
const FLAGS: Readonly<Record<string, string>> = {
  partition: '--slurm-partition', account: '--slurm-account', qos: '--slurm-qos', cores: '--slurm-cores', memory: '--slurm-memory',
  walltime: '--slurm-walltime', jobExtra: '--slurm-job-extra', jobScriptPrologue: '--slurm-prologue', localDirectory: '--slurm-local-directory',
  logDirectory: '--slurm-log-directory', jobName: '--slurm-job-name', command: '--slurm-command', workerExtra: '--slurm-worker-extra',
  lifetime: '--slurm-lifetime', lifetimeStagger: '--slurm-lifetime-stagger', slurmConf: '--slurm-conf', pollInterval: '--slurm-poll-interval',
  contactAddress: '--slurm-contact-address',
};

const backends = new Map<Scheduler, SlurmBackend>();

/** Attaches a SlurmBackend to the scheduler and starts adapting. */
export function setup(scheduler: Scheduler, values: SlurmPreloadValues = {}, context: { readonly token?: string | undefined } = {}): void {
  const v = values;
  const say = (line: string): void => void process.stderr.write(`tessera scheduler: slurm: ${line}\n`);
  const given: Record<string, unknown> = {
    partition: v.slurmPartition,
    account: v.slurmAccount,
    qos: v.slurmQos,
    cores: v.slurmCores,
    memory: v.slurmMemory,
    walltime: v.slurmWalltime,
    jobExtra: v.slurmJobExtra,
    jobScriptPrologue: v.slurmPrologue,
    localDirectory: v.slurmLocalDirectory,
    logDirectory: v.slurmLogDirectory,
    jobName: v.slurmJobName,
    command: v.slurmCommand,
    workerExtra: v.slurmWorkerExtra,
    lifetime: v.slurmLifetime,
    lifetimeStagger: v.slurmLifetimeStagger,
    jobArrays: v.slurmNoArrays === true ? false : undefined,
    slurmConf: v.slurmConf,
    pollInterval: v.slurmPollInterval,
    contactAddress: v.slurmContactAddress,
  };
  const job = Object.fromEntries(Object.entries(given).filter(([, value]) => value !== undefined));
  let backend: SlurmBackend;
  try {
    backend = new SlurmBackend({ ...(job as SlurmJobOptions), scheduler, ...(context.token === undefined ? {} : { token: context.token }), log: say });
  } catch (error) {
    // Name the flag the user typed, not the option it became.
    if (error instanceof InvalidArgumentError) throw new InvalidArgumentError(error.message.replace(/options\.(\w+)/g, (whole, key: string) => FLAGS[key] ?? whole));
    throw error;
  }
  if (context.token === undefined) say('the scheduler has no token: anyone who reaches it can run code on its workers; pass --token or set TESSERA_TOKEN');
  if (/^tcp:\/\/(127\.|localhost|\[::1\])/.test(backend.address)) {
    say(`workers will dial ${backend.address}, which only this machine reaches: on a cluster, pass --host 0.0.0.0 (with a token) or --slurm-contact-address`);
  }
  if (v.slurmShowScript === true) process.stderr.write(backend.jobScript());
  scheduler.adapt(backend, { minimum: v.slurmMinimum ?? 0, maximum: v.slurmMaximum ?? 10, targetDuration: v.slurmTargetDuration ?? '5s' });
  backends.set(scheduler, backend);
  say(`adapting between ${v.slurmMinimum ?? 0} and ${v.slurmMaximum ?? 10} workers of ${backend.job.cores} core(s), one Slurm job each`);
}

/** Stops adapting and cancels every job the backend submitted. */
export async function teardown(scheduler: Scheduler): Promise<void> {
  scheduler.stopAdapting();
  const backend = backends.get(scheduler);
  backends.delete(scheduler);
  await backend?.close();
}
