/**
 * A complete cluster backend in one file: each worker is a `tessera worker` child process
 * on this machine. The adaptive loop in the scheduler decides how many workers there
 * should be and which ones leave; this class only starts and stops processes and counts
 * them. A backend for Kubernetes pods or cloud VMs has the same shape, with API calls
 * where this one calls `spawn` and `kill`.
 *
 * ```ts
 * const backend = new ChildProcessBackend({ address: scheduler.address });
 * scheduler.adapt(backend, { minimum: 0, maximum: 8 });
 * // …
 * scheduler.stopAdapting();
 * await backend.close();
 * ```
 *
 * See docs/adaptive.md ("Writing a backend") and examples/adaptive-setup.ts, which
 * attaches it from `tessera scheduler --preload`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ClusterBackend } from 'tessera';

export interface ChildProcessBackendOptions {
  /** The scheduler workers join, `tcp://host:port`. */
  readonly address: string;
  /** Threads per worker (default 1). */
  readonly threadsPerWorker?: number;
  /**
   * How to run the `tessera` command, as argv. Default: this repository's CLI from source
   * through tsx. In a project that installed tessera: `['npx', 'tessera']`, or faster,
   * `[process.execPath, 'node_modules/tessera/dist/cli/main.js']`.
   */
  readonly command?: readonly string[];
  /** Extra arguments for every worker, such as `['--memory-limit', '2GB']`. */
  readonly workerArgs?: readonly string[];
  /** Prefix of worker names (default 'child'); names are `PREFIX-0`, `PREFIX-1`, … */
  readonly namePrefix?: string;
  /** Milliseconds a stopped worker has to exit before it is killed (default 10,000). */
  readonly stopTimeout?: number;
}

type ChildState = 'starting' | 'running' | 'closing';

interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  readonly exited: Promise<void>;
  state: ChildState;
}

const TESSERA_FROM_SOURCE: readonly string[] = [
  process.execPath,
  // Resolved here, so workers find tsx whatever their working directory.
  '--import',
  import.meta.resolve('tsx'),
  fileURLToPath(new URL('../src/cli/main.ts', import.meta.url)),
];

export class ChildProcessBackend implements ClusterBackend {
  readonly threadsPerWorker: number;
  readonly #address: string;
  readonly #command: readonly string[];
  readonly #workerArgs: readonly string[];
  readonly #prefix: string;
  readonly #stopTimeout: number;
  /** Every child not yet exited, by worker name. */
  readonly #children = new Map<string, Child>();
  #next = 0;
  #closed = false;

  constructor(options: ChildProcessBackendOptions) {
    const threads = options.threadsPerWorker ?? 1;
    if (!Number.isInteger(threads) || threads < 1) throw new RangeError('options.threadsPerWorker must be a positive integer');
    if (options.command !== undefined && options.command.length === 0) throw new RangeError('options.command must name a program');
    this.threadsPerWorker = threads;
    this.#address = options.address;
    this.#command = options.command ?? TESSERA_FROM_SOURCE;
    this.#workerArgs = options.workerArgs ?? [];
    this.#prefix = options.namePrefix ?? 'child';
    this.#stopTimeout = options.stopTimeout ?? 10_000;
  }

  // What the adaptive loop reads on every tick. A child that crashed has left the map, so
  // `requested` drops and the loop asks for a replacement.

  get requested(): number {
    return this.#count('starting') + this.#count('running');
  }

  get running(): number {
    return this.#count('running');
  }

  get closing(): number {
    return this.#count('closing');
  }

  /** Worker processes not yet exited. */
  get processes(): readonly { readonly name: string; readonly pid: number; readonly state: ChildState }[] {
    return [...this.#children.values()].map((c) => ({ name: c.name, pid: c.process.pid ?? -1, state: c.state }));
  }

  /** Starts processes until `n` workers are starting or running. Never stops any. */
  scaleUp(n: number): void {
    if (this.#closed) throw new Error('the backend is closed');
    while (this.requested < n) this.#start(`${this.#prefix}-${this.#next++}`);
  }

  /**
   * The scheduler has already retired these workers (moved their data, told them to
   * close), so they are exiting by themselves; SIGTERM only hurries one that lingers, and
   * SIGKILL one that hangs.
   */
  async scaleDown(names: readonly string[]): Promise<void> {
    await Promise.all(names.map((name) => this.#stop(name, this.#stopTimeout)));
  }

  /**
   * Stops every child now and waits for them to exit. Idempotent. SIGTERM makes a worker
   * hand its data to the others first, if there are any left.
   */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#children.keys()].map((name) => this.#stop(name, 0)));
  }

  #start(name: string): void {
    const [program, ...prefix] = this.#command as [string, ...string[]];
    const args = [...prefix, 'worker', this.#address, '--name', name, '--nthreads', String(this.threadsPerWorker), ...this.#workerArgs];
    // The environment (with TESSERA_TOKEN, if the scheduler uses one) passes on as it is.
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    const entry: Child = {
      name,
      process: child,
      state: 'starting',
      exited: new Promise<void>((resolve) => {
        const gone = (): void => {
          this.#children.delete(name);
          resolve();
        };
        child.once('exit', gone);
        // Spawning failed (no such program): there will be no 'exit'.
        child.once('error', (error) => {
          process.stderr.write(`worker ${name} could not start: ${error.message}\n`);
          gone();
        });
      }),
    };
    this.#children.set(name, entry);
    // `tessera worker` prints its id once it has registered with the scheduler.
    const lines = createInterface({ input: child.stdout });
    lines.once('line', () => {
      if (entry.state === 'starting') entry.state = 'running';
      lines.close();
      child.stdout.resume();
    });
  }

  async #stop(name: string, grace: number): Promise<void> {
    const child = this.#children.get(name);
    if (child === undefined) return;
    child.state = 'closing';
    if (await exitsWithin(child, grace)) return;
    child.process.kill('SIGTERM');
    if (await exitsWithin(child, this.#stopTimeout)) return;
    child.process.kill('SIGKILL');
    await child.exited;
  }

  #count(state: ChildState): number {
    let n = 0;
    for (const c of this.#children.values()) if (c.state === state) n++;
    return n;
  }
}

function exitsWithin(child: Child, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(resolve, ms, false)));
  return Promise.race([child.exited.then(() => true), timeout]).finally(() => clearTimeout(timer));
}
