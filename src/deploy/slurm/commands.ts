/**
 * The Slurm commands the backend uses, and only those: `sbatch` (script on stdin),
 * `squeue` (every job's state in one call, machine-readable), `scancel` (by job id),
 * `sacct` (end states, when the cluster keeps accounting). Each runs with the environment
 * given, which carries SLURM_CONF when set and the token for sbatch to export.
 */
import { execFile, spawnSync } from 'node:child_process';
import { SlurmCommandError } from './errors.js';

export type Env = Readonly<Record<string, string | undefined>>;

const TIMEOUT_MS = 60_000;

/** Runs a command; resolves to its stdout, rejects with SlurmCommandError. */
export function run(command: string, args: readonly string[], env: Env, input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { env, timeout: TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error === null) {
        resolve(stdout);
        return;
      }
      const code = typeof error.code === 'number' ? error.code : null;
      const why = typeof error.code === 'string' ? `${error.code}: ${error.message}` : stderr;
      reject(new SlurmCommandError(command, args, code, why || (error.killed ? `killed after ${TIMEOUT_MS} ms` : error.message), { cause: error }));
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Synchronous, for the process's exit: best effort, never throws. */
export function runSync(command: string, args: readonly string[], env: Env): void {
  try {
    spawnSync(command, args, { env, timeout: 10_000, stdio: 'ignore' });
  } catch {
    // Nothing more can be done while the process exits.
  }
}

/**
 * Submits `script` once, or as a job array of `count` tasks (0…count-1); resolves to the
 * ids scancel and squeue know them by: '12', or '9_0', '9_1', … for an array.
 */
export async function submit(script: string, count: number, array: boolean, env: Env): Promise<string[]> {
  const args = ['--parsable', ...(array ? [`--array=0-${count - 1}`] : [])];
  const out = (await run('sbatch', args, env, script)).trim();
  // --parsable prints "id", or "id;cluster" on a federation.
  const id = out.split('\n').at(-1)?.split(';')[0] ?? '';
  if (!/^\d+$/.test(id)) throw new SlurmCommandError('sbatch', args, 0, `printed ${JSON.stringify(out)}, not a job id`);
  return array ? Array.from({ length: count }, (_, i) => `${id}_${i}`) : [id];
}

export interface QueueRow {
  /** The id scancel takes: '12', or '9_3' for an array task. */
  readonly id: string;
  /** The job's own id (an array task has one once it runs): what %j and SLURM_JOB_ID are; '' when unknown. */
  readonly jobId: string;
  readonly state: string;
  /** Why it waits or ended: Resources, Priority, NonZeroExitCode, TimeLimit, … */
  readonly reason: string;
}

/**
 * The state of these jobs (and every task of these arrays), finished ones included while
 * Slurm keeps them (MinJobAge): one `squeue` call.
 */
export async function queue(baseIds: readonly string[], env: Env): Promise<QueueRow[]> {
  if (baseIds.length === 0) return [];
  let out: string;
  try {
    out = await run('squeue', ['-h', '-r', '-t', 'all', '-j', baseIds.join(','), '-o', '%i|%A|%T|%r'], env);
  } catch (error) {
    // When none of the ids is known any more, squeue fails rather than printing nothing.
    if (error instanceof SlurmCommandError && /invalid job id/i.test(error.stderr)) return [];
    throw error;
  }
  return parseQueue(out);
}

/** Parses `squeue -o '%i|%A|%T|%r'` lines; collapsed array ranges ('9_[1-3,7]') are expanded. */
export function parseQueue(out: string): QueueRow[] {
  const rows: QueueRow[] = [];
  for (const line of out.split('\n')) {
    if (line.trim() === '') continue;
    const [id = '', jobId = '', state = '', reason = ''] = line.trim().split('|');
    // Tasks of a collapsed range never ran, so they have no id of their own.
    for (const one of expandIds(id)) rows.push({ id: one, jobId: one === id ? jobId : '', state: state.split(' ')[0]!, reason });
  }
  return rows;
}

/** '9_[1-3,7%2]' → 9_1, 9_2, 9_3, 9_7; anything else as it is. */
export function expandIds(id: string): string[] {
  const range = /^(\d+)_\[([\d,-]+)(?:%\d+)?\]$/.exec(id);
  if (range === null) return [id];
  const ids: string[] = [];
  for (const part of range[2]!.split(',')) {
    const [from, to = from] = part.split('-').map(Number);
    if (from === undefined || to === undefined || !Number.isInteger(from) || !Number.isInteger(to)) continue;
    for (let i = from; i <= to && ids.length < 100_000; i++) ids.push(`${range[1]}_${i}`);
  }
  return ids;
}

/** Cancels exactly these jobs (array tasks by their own id: '9_3'). */
export async function cancel(ids: readonly string[], env: Env): Promise<void> {
  if (ids.length === 0) return;
  try {
    await run('scancel', ids, env);
  } catch (error) {
    // A job that ended meanwhile needs no cancelling (some versions say so with an error).
    if (error instanceof SlurmCommandError && /already completing or completed|invalid job id/i.test(error.stderr)) return;
    throw error;
  }
}

export interface AccountingRow {
  readonly id: string;
  /** 'COMPLETED', 'FAILED', 'CANCELLED by 1000', … as sacct prints it. */
  readonly state: string;
  /** 'code:signal', such as '1:0'. */
  readonly exitCode: string;
  readonly reason: string;
}

/**
 * End states from accounting, or undefined when the cluster keeps none (sacct then fails
 * with "accounting storage is disabled").
 */
export async function accounting(ids: readonly string[], since: Date, env: Env): Promise<AccountingRow[] | undefined> {
  if (ids.length === 0) return [];
  let out: string;
  try {
    // Its default window starts at midnight: a job submitted yesterday needs --starttime.
    out = await run('sacct', ['-X', '-n', '-P', '--starttime', since.toISOString().slice(0, 19), '-j', ids.join(','), '-o', 'JobID,State,ExitCode,Reason'], env);
  } catch (error) {
    if (error instanceof SlurmCommandError && /accounting storage is disabled|not running a supported accounting_storage/i.test(error.stderr)) return undefined;
    throw error;
  }
  return out
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [id = '', state = '', exitCode = '', ...reason] = line.split('|');
      return { id, state, exitCode, reason: reason.join('|') };
    });
}

/** States after which a job holds nothing any more. */
const FINAL = new Set(['COMPLETED', 'CANCELLED', 'FAILED', 'TIMEOUT', 'NODE_FAIL', 'OUT_OF_MEMORY', 'BOOT_FAIL', 'DEADLINE', 'PREEMPTED', 'SPECIAL_EXIT', 'REVOKED']);

export type Phase = 'pending' | 'running' | 'ending' | 'ended';

/** Where a Slurm job state puts the job, for counting workers. */
export function phaseOf(state: string): Phase {
  if (state === 'RUNNING') return 'running';
  if (state === 'COMPLETING' || state === 'STAGE_OUT' || state === 'SIGNALING') return 'ending';
  if (FINAL.has(state)) return 'ended';
  // PENDING, CONFIGURING (nodes booting), REQUEUED, RESIZING, SUSPENDED and the holds:
  // asked for, not up.
  return 'pending';
}
