/** The live processes of one test cluster, found the way its reaper finds them. */
import { readdirSync, readFileSync } from 'node:fs';

export interface ClusterProcess {
  readonly pid: number;
  readonly comm: string;
}

/**
 * Every process, zombies aside, whose environment holds this cluster's SLURM_CONF: its
 * daemons (started with it), slurmstepd (inherits it from slurmd) and the jobs' processes
 * (slurmstepd sets it for them).
 */
export function clusterProcesses(confPath: string): ClusterProcess[] {
  const marker = `SLURM_CONF=${confPath}`;
  const found: ClusterProcess[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      if (!readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(marker)) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      found.push({ pid, comm: readFileSync(`/proc/${pid}/comm`, 'latin1').trim() });
    } catch {
      // Gone while we looked.
    }
  }
  return found;
}
