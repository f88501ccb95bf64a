/**
 * Addresses for a test cluster. Everything stays on loopback: Linux answers on all of
 * 127.0.0.0/8, so each cluster takes a /16 of it for Service cluster IPs and another for
 * pod IPs, and each pod binds its own address. Clusters started at the same time (test
 * files run in parallel) take different slots, claimed with a lock file naming the owner.
 */
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { onExit } from './processes.js';

const SLOTS = 64;
const LOCK_DIR = path.join(tmpdir(), 'tessera-kubernetes-slots');

/** A port free on 127.0.0.1 a moment ago (the OS picks it; the caller binds it soon after). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface NetworkSlot {
  /** Service cluster IPs: `127.<64+slot>.0.0/16`. */
  serviceCidr: string;
  /** The first of them, the `kubernetes` Service's cluster IP. */
  kubernetesServiceIp: string;
  /** Pod IPs: `127.<128+slot>.0.0/16`, a /24 per node. */
  podNetworkPrefix: string;
  release(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The owner of a slot's lock, if it can be read. */
function owner(lock: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(lock, 'utf8'), 10);
    return Number.isNaN(pid) ? undefined : pid;
  } catch {
    return undefined;
  }
}

/** Claims a free slot; throws when all are taken by live processes. */
export function claimNetworkSlot(): NetworkSlot {
  mkdirSync(LOCK_DIR, { recursive: true });
  // Locks of processes that died without releasing them (SIGKILL) free their slots.
  for (const entry of readdirSync(LOCK_DIR)) {
    const pid = owner(path.join(LOCK_DIR, entry));
    if (pid !== undefined && !alive(pid)) {
      try {
        unlinkSync(path.join(LOCK_DIR, entry));
      } catch {
        // another process swept it first
      }
    }
  }
  const start = Math.floor(Math.random() * SLOTS);
  for (let i = 0; i < SLOTS; i++) {
    const slot = (start + i) % SLOTS;
    const lock = path.join(LOCK_DIR, String(slot));
    let fd: number;
    try {
      fd = openSync(lock, 'wx');
    } catch {
      const pid = owner(lock);
      if (pid === undefined || alive(pid)) continue; // taken, released meanwhile, or being written
      try {
        unlinkSync(lock); // its owner died without releasing it
        fd = openSync(lock, 'wx');
      } catch {
        continue;
      }
    }
    writeSync(fd, String(process.pid));
    closeSync(fd);
    let released = false;
    const unlink = (): void => {
      try {
        unlinkSync(lock);
      } catch {
        // removed already
      }
    };
    const cancel = onExit(unlink);
    const release = (): void => {
      if (released) return;
      released = true;
      cancel();
      unlink();
    };
    return {
      serviceCidr: `127.${64 + slot}.0.0/16`,
      kubernetesServiceIp: `127.${64 + slot}.0.1`,
      podNetworkPrefix: `127.${128 + slot}`,
      release,
    };
  }
  throw new Error(`all ${SLOTS} loopback network slots in ${LOCK_DIR} are taken by live processes`);
}
