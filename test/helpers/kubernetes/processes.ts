/**
 * Child processes and temporary directories that must not outlive the test process. Each
 * child leads its own process group (so a stop reaches whatever it forked) and, through
 * setpriv, gets SIGKILL from the kernel if the test process dies without cleaning up
 * (a crash, SIGKILL, the test runner's timeout). An exit hook kills what is still running
 * and removes the directories, for the exits that do run JavaScript.
 */
import { type ChildProcess, spawn, type SpawnOptions } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';

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

/** Removes `dir` at exit unless `forget` was called for it first. */
export function removeAtExit(dir: string): void {
  hook();
  directories.add(dir);
}

export function forgetDirectory(dir: string): void {
  directories.delete(dir);
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
