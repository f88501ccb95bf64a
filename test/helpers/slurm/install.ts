/**
 * Whether this machine can run a private Slurm, installing Debian's slurm-wlm and munge
 * first when they are missing and we may (root with apt-get: scripts/slurm/ensure.sh).
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ENSURE_SCRIPT = fileURLToPath(new URL('../../../scripts/slurm/ensure.sh', import.meta.url));

let ensured: Promise<string | false> | undefined;

/**
 * Why Slurm cannot run here, or false when it can. Installs it on first call when missing;
 * later calls share that answer.
 */
export function slurmUnavailable(): Promise<string | false> {
  ensured ??= check();
  return ensured;
}

/**
 * The `skip` option of a test that needs Slurm: the reason it cannot run, outside CI. Under
 * CI=true it is false even then, so that the test runs and fails on startSlurm's error.
 */
export async function slurmSkip(): Promise<string | false> {
  const missing = await slurmUnavailable();
  if (missing === false || process.env.CI === 'true') return false;
  return `${missing}: Slurm tests skipped`;
}

async function check(): Promise<string | false> {
  // slurmd runs each job as its submitter and only root may switch users; the tests
  // submit as themselves, so the whole cluster runs as root.
  if (process.getuid?.() !== 0) return 'a private Slurm cluster needs root (slurmd runs jobs as their submitter)';
  return new Promise((resolve) => {
    execFile('bash', [ENSURE_SCRIPT], { timeout: 600_000 }, (err, _stdout, stderr) => {
      if (err === null) resolve(false);
      else resolve(stderr.trim().split('\n').at(-1) ?? `${ENSURE_SCRIPT} failed`);
    });
  });
}
