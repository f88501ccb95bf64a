/**
 * Child processes and temporary directories that must not outlive the test process. Each
 * child leads its own process group (so a stop reaches whatever it forked) and, through
 * setpriv, gets SIGKILL from the kernel if the test process dies without cleaning up
 * (a crash, SIGKILL, the test runner's timeout). An exit hook kills what is still running
 * and removes the directories, for the exits that do run JavaScript.
 */
import { type ChildProcess, spawn, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((file) => existsSync(file));

const groups = new Set<number>();
const directories = new Set<string>();
const exitTasks = new Set<() => void>();
let hooked = false;

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

function cleanUpNow(): void {
  for (const task of exitTasks) {
    try {
      task();
    } catch {
      // the others still run
    }
  }
  exitTasks.clear();
  for (const pid of groups) killGroup(pid, 'SIGKILL');
  groups.clear();
  for (const dir of directories) rmSync(dir, { recursive: true, force: true });
  directories.clear();
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', cleanUpNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      cleanUpNow();
      process.kill(process.pid, signal); // die of the same signal, as without this hook
    });
  }
}

/**
 * Runs `task` (synchronous) when the process exits or dies of SIGINT, SIGTERM or SIGHUP,
 * unless the returned function was called first.
 */
export function onExit(task: () => void): () => void {
  hook();
  exitTasks.add(task);
  return () => exitTasks.delete(task);
}

const OWNER_FILE = '.owner-pid';

function ownerAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A new directory `<tmp>/<prefix>XXXXXX`, removed at exit. It names its owner, so that the
 * next call with the same prefix removes it if the owner died without cleaning up (SIGKILL).
 */
export function temporaryDirectory(prefix: string): string {
  for (const entry of readdirSync(tmpdir())) {
    if (!entry.startsWith(prefix)) continue;
    const stale = path.join(tmpdir(), entry);
    try {
      const owner = Number.parseInt(readFileSync(path.join(stale, OWNER_FILE), 'utf8'), 10);
      if (!Number.isNaN(owner) && !ownerAlive(owner)) rmSync(stale, { recursive: true, force: true });
    } catch {
      // no owner recorded: kept on purpose, or not ours
    }
  }
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  writeFileSync(path.join(dir, OWNER_FILE), String(process.pid));
  hook();
  directories.add(dir);
  return dir;
}

/** Keeps `dir` after exit (for its logs): neither this process nor a later sweep removes it. */
export function keepDirectory(dir: string): void {
  directories.delete(dir);
  try {
    unlinkSync(path.join(dir, OWNER_FILE));
  } catch {
    // gone already
  }
}

/** Removes `dir` now. */
export function removeDirectory(dir: string): void {
  directories.delete(dir);
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Starts `file` as the leader of a new process group that dies with this process. The pid
 * is the program's own: setpriv execs it.
 */
export function spawnGroup(file: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  hook();
  const [command, argv] = SETPRIV === undefined ? [file, args] : [SETPRIV, ['--pdeathsig', 'SIGKILL', '--', file, ...args]];
  const child = spawn(command, argv, { ...options, detached: true });
  const pid = child.pid;
  if (pid !== undefined) {
    groups.add(pid);
    child.once('exit', () => groups.delete(pid));
  }
  return child;
}

/** Whether the child has exited (or never started). */
export function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null || child.pid === undefined;
}

/** Resolves when the child has exited; at once if it already has. */
export function whenExited(child: ChildProcess): Promise<void> {
  if (exited(child)) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Sends `signal` to the child's process group, then SIGKILL to the group if the child has
 * not exited after `graceMs`. Resolves when it has exited.
 */
export async function stopGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5_000): Promise<void> {
  const pid = child.pid;
  if (pid === undefined) return;
  if (exited(child)) {
    killGroup(pid, 'SIGKILL'); // what it forked may outlive it
    groups.delete(pid);
    return;
  }
  killGroup(pid, signal);
  let timer: NodeJS.Timeout | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      killGroup(pid, 'SIGKILL');
      resolve();
    }, graceMs);
  });
  await Promise.race([whenExited(child), killed]);
  clearTimeout(timer);
  await whenExited(child);
  killGroup(pid, 'SIGKILL');
  groups.delete(pid);
}
