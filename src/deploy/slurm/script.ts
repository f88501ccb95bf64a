/**
 * The batch script each worker job runs: `#SBATCH` directives from the settings, the
 * prologue, then `exec tessera worker` with the scheduler's address and a name derived
 * from the job's id, so that the backend maps worker names to jobs and back without asking.
 *
 * The script never holds the token: sbatch exports the submitting process's environment
 * to the job, TESSERA_TOKEN included, and `tessera worker` reads it from there.
 */
import { HUGE_PAGES_TUNABLE } from '../../process/worker-env.js';
import type { ResolvedSlurmJob } from './options.js';
import { formatWalltime, shellQuote } from './options.js';

/** The environment variable the token travels in. */
export const TOKEN_VARIABLE = 'TESSERA_TOKEN';

export interface ScriptInputs {
  /** The address workers dial: `tcp://host:port`. */
  readonly address: string;
  /** Whether the scheduler has a token (it then travels in TESSERA_TOKEN). */
  readonly token: boolean;
}

/** The worker's name for a job id: `<jobName>-<id>`. */
export function workerName(job: ResolvedSlurmJob, jobId: string): string {
  return `${job.jobName}-${jobId}`;
}

/** The job id in a worker's name, or undefined when the name is not one of these jobs'. */
export function jobIdOf(job: ResolvedSlurmJob, name: string): string | undefined {
  const prefix = `${job.jobName}-`;
  if (!name.startsWith(prefix)) return undefined;
  const id = name.slice(prefix.length);
  return /^\d+$/.test(id) ? id : undefined;
}

/** Where a job's output goes, given its (own, unique) job id; undefined when discarded. */
export function logFile(job: ResolvedSlurmJob, jobId: string): string | undefined {
  return job.logDirectory === undefined ? undefined : `${job.logDirectory}/${job.jobName}-${jobId}.out`;
}

/**
 * A user's `--export=…` directive with the token's variable added (by name only), so that
 * the token reaches the job whatever else is exported. ALL already includes it.
 */
export function exportWithToken(value: string): string {
  const names = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.includes('ALL') || names.includes(TOKEN_VARIABLE)) return value;
  return [...names, TOKEN_VARIABLE].join(',');
}

function duration(ms: number): string {
  const whole = Math.round(ms);
  return whole % 1000 === 0 ? `${whole / 1000}s` : `${whole}ms`;
}

/** The script, exactly as submitted. */
export function renderJobScript(job: ResolvedSlurmJob, inputs: ScriptInputs): string {
  const directives = [`--job-name=${job.jobName}`];
  if (job.partition !== undefined) directives.push(`--partition=${job.partition}`);
  if (job.account !== undefined) directives.push(`--account=${job.account}`);
  if (job.qos !== undefined) directives.push(`--qos=${job.qos}`);
  directives.push('--nodes=1', '--ntasks=1', `--cpus-per-task=${job.cores}`);
  if (job.memory !== undefined) directives.push(`--mem=${Math.ceil(job.memory / 2 ** 20)}M`);
  if (job.walltime !== undefined) directives.push(`--time=${formatWalltime(job.walltime)}`);
  // %j is the job's own id, array tasks included: the same id as in the worker's name.
  directives.push(`--output=${job.logDirectory === undefined ? '/dev/null' : `${job.logDirectory}/${job.jobName}-%j.out`}`);
  for (const extra of job.jobExtra) {
    const exported = /^--export=(.*)$/.exec(extra);
    directives.push(exported !== null && inputs.token ? `--export=${exportWithToken(exported[1]!)}` : extra);
  }

  const lines = ['#!/usr/bin/env bash', ...directives.map((d) => `#SBATCH ${d}`), ''];
  if (inputs.token) {
    lines.push(`# The scheduler's token arrives in ${TOKEN_VARIABLE}, exported by sbatch from the`, '# submitting process: it is never written here.');
  }
  if (job.jobScriptPrologue.length > 0) lines.push(...job.jobScriptPrologue);
  lines.push(
    '# Large allocations in transparent huge pages, unless GLIBC_TUNABLES already says.',
    `[[ ":\${GLIBC_TUNABLES-}" == *:glibc.malloc.hugetlb=* ]] || export GLIBC_TUNABLES="\${GLIBC_TUNABLES:+$GLIBC_TUNABLES:}${HUGE_PAGES_TUNABLE}"`,
  );

  const flags = [`--name "${job.jobName}-\${SLURM_JOB_ID}"`, `--nthreads ${job.cores}`];
  if (job.memory !== undefined) {
    flags.push(`--memory-limit ${job.memory}`);
  } else {
    // No memory asked for: the worker keeps within what Slurm allocated (MiB), if anything.
    lines.push(
      'memory_limit=()',
      'allocated_mib=${SLURM_MEM_PER_NODE:-$(( ${SLURM_MEM_PER_CPU:-0} * ${SLURM_CPUS_PER_TASK:-1} ))}',
      'if [ "$allocated_mib" -gt 0 ]; then memory_limit=(--memory-limit "${allocated_mib}MiB"); fi',
    );
    flags.push('"${memory_limit[@]}"');
  }
  if (job.lifetime !== undefined) flags.push(`--lifetime ${duration(job.lifetime)}`, `--lifetime-stagger ${duration(job.lifetimeStagger)}`);
  if (job.localDirectory !== undefined) flags.push(`--spill-directory "${job.localDirectory}"`);
  if (job.workerExtra.length > 0) flags.push(job.workerExtra.map(shellQuote).join(' '));

  lines.push(`exec ${job.command} worker ${shellQuote(inputs.address)} \\`);
  flags.forEach((flag, i) => lines.push(`  ${flag}${i === flags.length - 1 ? '' : ' \\'}`));
  return lines.join('\n') + '\n';
}
