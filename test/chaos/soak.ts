/**
 * The soak: one long-lived `tessera scheduler` process and its `tessera worker` processes
 * take computation after computation, each with a function never seen before (fresh
 * source) and keys under fresh prefixes (`soakITERbB-leaf-K`), as a service would over
 * days. The resident memory of every process is sampled along the way: a long-lived
 * cluster's memory must level off, bounded by what it holds now plus fixed-size histories.
 *
 * Processes run from the sources under tsx (tests) or from the built package (the
 * benchmark); the client comes in through `SoakApi`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

export interface SoakApi {
  readonly task: (fn: (...args: never[]) => unknown, ...args: unknown[]) => unknown;
  readonly ref: (key: string) => unknown;
  connect(address: string): Promise<{ get(graph: Record<string, unknown>, keys: readonly string[]): Promise<unknown[]>; close(): Promise<void> }>;
}

export interface SoakOptions {
  /** Computations to run. */
  readonly computations: number;
  /** How the `tessera` command starts: node arguments before `scheduler`/`worker`. */
  readonly command: readonly string[];
  /**
   * Node arguments that start the scheduler and make it print its address as the first
   * line. Default: `command` with `scheduler --port 0 --no-dashboard`.
   */
  readonly schedulerCommand?: readonly string[];
  /**
   * The scheduler answers a `memory` line on its stdin with a JSON line of its memory after
   * a full collection (as soak-scheduler.ts does): samples then hold `schedulerLiveMB`.
   */
  readonly schedulerProbe?: boolean;
  /** Worker processes. Default 2. */
  readonly workers?: number;
  /** Branches × leaves per branch in each computation. Default 4 × 4 (21 tasks). */
  readonly branches?: number;
  readonly leaves?: number;
  /**
   * Fresh function source and fresh key prefixes in every computation (default true);
   * false is the control: one function, and the same prefixes (`soakbB-leaf-KxITER`) each time.
   */
  readonly fresh?: boolean;
  /** Computations at which to sample memory (besides the first and the last). */
  readonly sampleAt?: readonly number[];
  readonly log?: (line: string) => void;
}

export interface RssSample {
  /** Computations done when sampled. */
  readonly computations: number;
  readonly schedulerMB: number;
  /**
   * What the scheduler keeps: its JavaScript heap and the memory outside it that its
   * objects hold (Buffers), after a full collection (`schedulerProbe` only).
   */
  readonly schedulerLiveMB?: number;
  readonly workersMB: readonly number[];
}

export interface SoakReport {
  readonly samples: readonly RssSample[];
  readonly tasks: number;
  readonly seconds: number;
  /** Pids of processes the soak started that were still running after it stopped them. */
  readonly leftRunning: readonly number[];
}

function rssMB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  return Math.round((Number(kb) / 1024) * 10) / 10;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A function of (x, k) the cluster has never seen: its source differs in each computation. */
function freshFunction(i: number): (x: number, k: number) => number {
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- fresh source is the point: each computation ships a function nobody shipped before
  return new Function('x', 'k', `return (x * ${(i % 9973) + 3} + k + ${i}) % 1000003;`) as (x: number, k: number) => number;
}

const sum = (...xs: number[]): number => xs.reduce((a, b) => a + b, 0);

/** Runs the soak; stops every process it started, even when a computation fails. */
export async function soak(api: SoakApi, options: SoakOptions): Promise<SoakReport> {
  const workers = options.workers ?? 2;
  const branches = options.branches ?? 4;
  const leaves = options.leaves ?? 4;
  const n = options.computations;
  const fresh = options.fresh ?? true;
  const same = freshFunction(0);
  const sampleAt = new Set([...(options.sampleAt ?? [Math.floor(n / 2)]), n]);
  const children: ChildProcess[] = [];
  const start = (args: readonly string[], stdout: 'pipe' | 'ignore'): ChildProcess => {
    // stdin is a pipe that closes when this process ends, however it ends: a process that
    // watches it (soak-scheduler.ts) leaves then too.
    const child = spawn(process.execPath, args, { stdio: ['pipe', stdout, 'inherit'], env: { ...process.env, TESSERA_LOG_LEVEL: 'warn' } });
    children.push(child);
    return child;
  };
  // An ordinary exit of this process (a failed assertion, say) takes the children along.
  const killAll = (): void => {
    for (const c of children) c.kill('SIGKILL');
  };
  process.once('exit', killAll);
  const stop = async (): Promise<number[]> => {
    // Workers first (they leave the scheduler cleanly), then the scheduler; SIGKILL for
    // any that lingers.
    const end = async (group: readonly ChildProcess[]): Promise<void> => {
      const exited = group.map((c) => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise<void>((resolve) => c.once('exit', () => resolve()))));
      for (const c of group) c.kill('SIGTERM');
      const calm = await Promise.race([Promise.all(exited).then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 10_000).unref())]);
      if (!calm) for (const c of group) c.kill('SIGKILL');
      await Promise.all(exited);
    };
    await end(children.slice(1));
    await end(children.slice(0, 1));
    return children.map((c) => c.pid ?? -1).filter((pid) => pid > 0 && alive(pid));
  };

  const began = performance.now();
  const samples: RssSample[] = [];
  let tasks = 0;
  let leftRunning: number[];
  try {
    const scheduler = start(options.schedulerCommand ?? [...options.command, 'scheduler', '--port', '0', '--no-dashboard'], 'pipe');
    const lines = createInterface({ input: scheduler.stdout! });
    const address = await new Promise<string>((resolve, reject) => {
      lines.once('line', resolve);
      scheduler.once('exit', (code) => reject(new Error(`the scheduler exited (${String(code)}) before it printed its address`)));
    });
    // Later lines answer the memory probe, in order.
    const answers: ((line: string) => void)[] = [];
    lines.on('line', (line) => answers.shift()?.(line));
    scheduler.once('exit', () => {
      for (const answer of answers.splice(0)) answer('(exited)');
    });
    const probe = (): Promise<number> =>
      new Promise<number>((resolve, reject) => {
        answers.push((line) => {
          try {
            const { heapUsed, external } = JSON.parse(line) as { heapUsed: number; external: number };
            if (typeof heapUsed !== 'number' || typeof external !== 'number') throw new TypeError('no heapUsed and external');
            resolve(Math.round(((heapUsed + external) / 1024 / 1024) * 10) / 10);
          } catch (error) {
            reject(new Error(`the scheduler answered the memory probe with '${line}'`, { cause: error }));
          }
        });
        scheduler.stdin!.write('memory\n');
      });
    const workerProcs = Array.from({ length: workers }, (_, w) => start([...options.command, 'worker', address, '--nthreads', '1', '--name', `soak-${w}`, '--no-metrics'], 'ignore'));
    const client = await api.connect(address);
    try {
      const sample = async (done: number): Promise<void> => {
        // Resident memory first: the probe's collection would lower it.
        const schedulerMB = rssMB(scheduler.pid!);
        const workersMB = workerProcs.map((w) => rssMB(w.pid!));
        const heap = options.schedulerProbe === true ? { schedulerLiveMB: await probe() } : {};
        const s: RssSample = { computations: done, schedulerMB, ...heap, workersMB };
        samples.push(s);
        options.log?.(JSON.stringify(s));
      };
      for (let i = 0; i < n; i++) {
        const fn = fresh ? freshFunction(i) : same;
        // Fresh: the prefixes (the first word and the words of letters after it) are new in
        // each computation; 18 of them, as in the control.
        const name = (kind: string, b: number, k?: number): string =>
          kind === 'leaf' ? (fresh ? `soak${i}b${b}-leaf-${k}` : `soakb${b}-leaf-${k}x${i}`) : fresh ? `soak${i}-${kind}-${b}` : `soak-${kind}-${b}x${i}`;
        const graph: Record<string, unknown> = {};
        const sums: string[] = [];
        let expected = 0;
        for (let b = 0; b < branches; b++) {
          const parts: unknown[] = [];
          for (let k = 0; k < leaves; k++) {
            const key = name('leaf', b, k);
            graph[key] = api.task(fn, b * leaves + k, k);
            parts.push(api.ref(key));
            expected += fn(b * leaves + k, k);
          }
          const key = name('sum', b);
          graph[key] = api.task(sum, ...parts);
          sums.push(key);
        }
        const total = fresh ? `soak-${i}-total` : `soak-total-${i}`;
        graph[total] = api.task(sum, ...sums.map((k) => api.ref(k)));
        tasks += Object.keys(graph).length;
        const [got] = await client.get(graph, [total]);
        if (got !== expected) throw new Error(`soak computation ${i}: got ${String(got)}, expected ${expected}`);
        // The first sample once the processes have warmed up (one computation in).
        if (i === 0) await sample(1);
        if (sampleAt.has(i + 1)) await sample(i + 1);
      }
    } finally {
      await client.close();
    }
  } finally {
    // A computation that threw still ends every process.
    leftRunning = await stop();
    process.off('exit', killAll);
  }
  return { samples, tasks, seconds: (performance.now() - began) / 1000, leftRunning };
}
