/** Reading and feeding a test cluster's queue with the client commands, as a backend would. */
import type { SlurmCluster } from './cluster.js';

export interface QueueRow {
  /** As squeue prints it: '12', or '9_3' for an array task ('9_[0-3]' while pending, unless expanded). */
  readonly id: string;
  /** The array's job id ('9'), or the job id itself when not in an array. */
  readonly arrayJobId: string;
  /** The task index, or 'N/A'. */
  readonly arrayTaskId: string;
  /** PENDING, RUNNING, COMPLETING, COMPLETED, FAILED, CANCELLED, TIMEOUT, … */
  readonly state: string;
  /** Why it waits or ended: None, Resources, Priority, NonZeroExitCode, TimeLimit, … */
  readonly reason: string;
  /** The node list ('' while pending). */
  readonly nodes: string;
  readonly name: string;
}

/**
 * One `squeue` call, one row per job (array tasks expanded). `all` adds finished jobs (kept
 * for MinJobAge seconds) with their end state. The name comes last so that a '|' in it
 * cannot shift the other fields.
 */
export async function squeue(cluster: SlurmCluster, options: { readonly all?: boolean } = {}): Promise<QueueRow[]> {
  const args = ['-h', '-r', '-o', '%i|%F|%K|%T|%r|%N|%j'];
  if (options.all === true) args.push('-t', 'all');
  const out = await cluster.run('squeue', args);
  return out
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const [id = '', arrayJobId = '', arrayTaskId = '', state = '', reason = '', nodes = '', ...name] = line.split('|');
      return { id, arrayJobId, arrayTaskId, state, reason, nodes, name: name.join('|') };
    });
}

/** The row of one job (or array task) by the id squeue prints, if it is still known. */
export async function job(cluster: SlurmCluster, id: string): Promise<QueueRow | undefined> {
  return (await squeue(cluster, { all: true })).find((row) => row.id === id);
}

/** `sbatch --parsable ARGS`: the new job's id. */
export async function sbatch(cluster: SlurmCluster, args: readonly string[]): Promise<string> {
  const out = (await cluster.run('sbatch', ['--parsable', ...args])).trim();
  // --parsable prints "id" or, on a federation, "id;cluster".
  const id = out.split(';')[0] ?? '';
  if (!/^\d+$/.test(id)) throw new Error(`sbatch printed ${JSON.stringify(out)}, not a job id`);
  return id;
}
