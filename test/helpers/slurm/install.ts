/**
 * Whether this machine can run a private Slurm, installing Debian's slurm-wlm and munge
 * first when they are missing and we may (root with apt-get: scripts/slurm/ensure.sh);
 * with `accounting`, slurmdbd and MariaDB as well, for sacct.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ENSURE_SCRIPT = fileURLToPath(new URL('../../../scripts/slurm/ensure.sh', import.meta.url));

export interface SlurmNeeds {
  /** slurmdbd and a MariaDB server too, so that sacct answers. */
  readonly accounting?: boolean;
}

const ensured = new Map<boolean, Promise<string | false>>();

/**
 * Why Slurm cannot run here, or false when it can. Installs it on first call when missing;
 * later calls share that answer.
 */
export function slurmUnavailable(needs: SlurmNeeds = {}): Promise<string | false> {
  const accounting = needs.accounting === true;
  let answer = ensured.get(accounting);
  if (answer === undefined) {
    answer = check(accounting);
    ensured.set(accounting, answer);
  }
  return answer;
}

/**
 * The `skip` option of a test that needs Slurm: the reason it cannot run, outside CI. Under
 * CI=true it is false even then, so that the test runs and fails on startSlurm's error.
 */
export async function slurmSkip(needs: SlurmNeeds = {}): Promise<string | false> {
  const missing = await slurmUnavailable(needs);
  if (missing === false || process.env.CI === 'true') return false;
  return `${missing}: Slurm tests skipped`;
}

async function check(accounting: boolean): Promise<string | false> {
  // slurmd runs each job as its submitter, switching to that user: only root can.
  if (process.getuid?.() !== 0) return 'a private Slurm cluster needs root (slurmd runs jobs as their submitter)';
  return new Promise((resolve) => {
    execFile('bash', [ENSURE_SCRIPT, ...(accounting ? ['--accounting'] : [])], { timeout: 900_000 }, (err, _stdout, stderr) => {
      if (err === null) resolve(false);
      else resolve(stderr.trim().split('\n').at(-1) ?? `${ENSURE_SCRIPT} failed`);
    });
  });
}
