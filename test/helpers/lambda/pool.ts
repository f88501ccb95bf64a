/**
 * Execution environments and concurrency: which environment runs an invocation, and whether
 * it may run at all.
 *
 * Concurrency is counted as Lambda counts it, in invocations in flight. A function with
 * reserved concurrency may run that many and no more; the others share what the account
 * limit leaves unreserved. Over either, the invocation is throttled (the caller answers 429).
 * A warm idle environment of the function is reused (the most recently used first);
 * otherwise a new one starts, and if the machine already holds as many environments as the
 * account limit, the longest-idle one of any function is destroyed to make room. Environments
 * idle for `idleTimeoutMs` are destroyed.
 */
import type { ThrottleReason } from './errors.js';
import { type EnvironmentOptions, type EnvironmentSpec, ExecutionEnvironment, type Invocation, type Outcome } from './environment.js';

export interface PoolFunction {
  readonly name: string;
  /** Reserved concurrency, or undefined for the unreserved pool. */
  readonly reserved: number | undefined;
  spec(): EnvironmentSpec;
}

export interface PoolOptions {
  readonly accountLimit: number;
  readonly idleTimeoutMs: number;
  readonly environment: EnvironmentOptions;
  /** Sum of reserved concurrency over all functions. */
  readonly reservedTotal: () => number;
  /** Called whenever an invocation finishes (capacity may have freed up). */
  readonly onCapacity: () => void;
}

export type RunResult = { readonly throttled: ThrottleReason } | { readonly outcome: Promise<Outcome>; readonly coldStart: boolean };

export class EnvironmentPool {
  private readonly byFunction = new Map<string, Set<ExecutionEnvironment>>();
  private readonly inFlight = new Map<string, number>();
  private readonly reservedFunctions = new Set<string>();
  private readonly idleTimers = new Map<ExecutionEnvironment, NodeJS.Timeout>();
  private closed = false;

  constructor(private readonly opts: PoolOptions) {}

  /** All live environments (for tests: pids, states). */
  environments(functionName?: string): ExecutionEnvironment[] {
    if (functionName !== undefined) return [...(this.byFunction.get(functionName) ?? [])];
    return [...this.byFunction.values()].flatMap((set) => [...set]);
  }

  /** Invocations in flight, for one function or in all. */
  concurrency(functionName?: string): number {
    if (functionName !== undefined) return this.inFlight.get(functionName) ?? 0;
    let n = 0;
    for (const v of this.inFlight.values()) n += v;
    return n;
  }

  private unreservedInFlight(): number {
    let n = 0;
    for (const [name, v] of this.inFlight) if (!this.reservedFunctions.has(name)) n += v;
    return n;
  }

  /** Runs the invocation on a warm or new environment, or says why it is throttled. Decides synchronously. */
  run(fn: PoolFunction, invocation: Invocation): RunResult {
    if (this.closed) throw new Error('the Lambda service is closed');
    if (fn.reserved === undefined) this.reservedFunctions.delete(fn.name);
    else this.reservedFunctions.add(fn.name);
    const used = this.concurrency(fn.name);
    if (fn.reserved !== undefined) {
      if (used >= fn.reserved) return { throttled: 'ReservedFunctionConcurrentInvocationLimitExceeded' };
    } else if (this.unreservedInFlight() >= this.opts.accountLimit - this.opts.reservedTotal()) {
      return { throttled: 'ConcurrentInvocationLimitExceeded' };
    }
    this.inFlight.set(fn.name, used + 1);
    const warm = this.warmEnvironment(fn.name);
    const outcome = (async (): Promise<Outcome> => {
      try {
        const env = warm ?? (await this.launch(fn));
        return await env.invoke(invocation);
      } finally {
        this.inFlight.set(fn.name, (this.inFlight.get(fn.name) ?? 1) - 1);
        this.opts.onCapacity();
      }
    })();
    return { outcome, coldStart: warm === undefined };
  }

  private warmEnvironment(name: string): ExecutionEnvironment | undefined {
    let best: ExecutionEnvironment | undefined;
    for (const env of this.byFunction.get(name) ?? []) {
      if (env.state === 'idle' && (best === undefined || env.idleSince > best.idleSince)) best = env;
    }
    if (best !== undefined) {
      clearTimeout(this.idleTimers.get(best));
      this.idleTimers.delete(best);
      // Taken synchronously so that a second invocation decided in the same tick starts its own.
      best.state = 'busy';
    }
    return best;
  }

  private async launch(fn: PoolFunction): Promise<ExecutionEnvironment> {
    if (this.environments().length >= this.opts.accountLimit) this.evictLongestIdle();
    const env = await ExecutionEnvironment.launch(fn.spec(), this.opts.environment);
    let set = this.byFunction.get(fn.name);
    if (set === undefined) {
      set = new Set();
      this.byFunction.set(fn.name, set);
    }
    set.add(env);
    env.onDead = (dead) => {
      clearTimeout(this.idleTimers.get(dead));
      this.idleTimers.delete(dead);
      const s = this.byFunction.get(fn.name);
      s?.delete(dead);
      if (s?.size === 0) this.byFunction.delete(fn.name);
    };
    env.onIdle = (idle) => {
      clearTimeout(this.idleTimers.get(idle));
      const timer = setTimeout(() => {
        if (idle.state === 'idle') idle.destroy('idle');
      }, this.opts.idleTimeoutMs);
      timer.unref();
      this.idleTimers.set(idle, timer);
    };
    return env;
  }

  private evictLongestIdle(): void {
    let victim: ExecutionEnvironment | undefined;
    for (const env of this.environments()) {
      if (env.state === 'idle' && (victim === undefined || env.idleSince < victim.idleSince)) victim = env;
    }
    victim?.destroy('evicted');
  }

  /** Destroys a function's environments (it was deleted or reconfigured). */
  dropFunction(name: string, reason: string): void {
    for (const env of this.environments(name)) env.destroy(reason);
    this.reservedFunctions.delete(name);
  }

  /** Destroys every environment and waits for their processes to end. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    const all = this.environments();
    for (const env of all) env.destroy('service closed');
    await Promise.all(all.map((env) => env.exited()));
  }
}
