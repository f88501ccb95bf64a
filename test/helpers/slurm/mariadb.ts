/**
 * The database behind slurmdbd when a test cluster keeps accounting: a private mariadbd on
 * loopback, its data directory copied from a template that mariadb-install-db builds once
 * per MariaDB version (7 s) under ~/.cache/tessera/slurm/.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export const MARIADBD = '/usr/sbin/mariadbd';

/** A fresh data directory at `target`, copied from the cached template. */
export async function mariadbDataDir(target: string): Promise<void> {
  const { stdout } = await exec(MARIADBD, ['--version']);
  const version = /Ver\s+(\S+)/.exec(stdout)?.[1] ?? 'unknown';
  const cache = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'tessera', 'slurm');
  const template = join(cache, `mariadb-${version.replace(/[^\w.-]/g, '_')}`);
  if (!existsSync(template)) {
    // Built aside and renamed into place, so that a concurrent start never sees half of it.
    mkdirSync(cache, { recursive: true });
    const building = `${template}.${process.pid}.tmp`;
    rmSync(building, { recursive: true, force: true });
    await exec('mariadb-install-db', ['--no-defaults', `--datadir=${building}`, '--user=root', '--auth-root-authentication-method=normal', '--skip-test-db', '--skip-name-resolve'], { timeout: 120_000 });
    try {
      renameSync(building, template);
    } catch (err) {
      // Another process got there first; theirs is as good.
      rmSync(building, { recursive: true, force: true });
      if (!existsSync(template)) throw err;
    }
  }
  cpSync(template, target, { recursive: true });
}

/**
 * mariadbd's arguments: no option files of the machine's, loopback only, small buffers, no
 * grant tables (the server is private to one test and reachable from this host only), no
 * durability.
 */
export function mariadbArgs(dataDir: string, socket: string, port: number, logFile: string, pidFile: string): string[] {
  return [
    '--no-defaults',
    `--datadir=${dataDir}`,
    `--socket=${socket}`,
    `--port=${port}`,
    '--bind-address=127.0.0.1',
    '--user=root',
    '--skip-grant-tables',
    '--innodb-buffer-pool-size=16M',
    // Durability is worth nothing to a database that lives as long as a test; slurmdbd and
    // slurmctld create some forty tables at start, and every fsync spared shortens that.
    '--innodb-flush-log-at-trx-commit=0',
    '--innodb-doublewrite=0',
    '--innodb-file-per-table=0',
    '--innodb-flush-method=nosync',
    `--log-error=${logFile}`,
    `--pid-file=${pidFile}`,
  ];
}
