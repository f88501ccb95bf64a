/**
 * Hooks for what watches a scheduler from outside — the dashboard, the adaptive loop,
 * metrics, a user's preload — as Dask's scheduler plugins. The scheduler calls them; it
 * never imports what implements them. A hook that throws is reported in the scheduler's
 * log and does not disturb scheduling.
 *
 * ```ts
 * const remove = scheduler.addPlugin({
 *   taskFinished: (t) => console.log(`${t.key} took ${t.stop - t.start} ms on ${t.worker.name}`),
 * });
 * ```
 *
 * Times are milliseconds on the scheduler's clock (`performance.now()` of its process);
 * task times reported by workers are moved onto it.
 */
import type { Log } from '../log.js';
import type { ScalingHistory } from '../protocol/scaling.js';
import type { TaskErrorInfo } from '../protocol/messages.js';

/** A worker as plugins see it: the scheduler's id for it and the name it gave. */
export interface WorkerInfo {
  readonly id: string;
  readonly name: string;
}

export type RemoveReason = 'lost' | 'retired' | 'closed';

/** A task that failed on a worker: where, and when it ran (start = stop when unknown). */
export interface ErredTask {
  readonly key: string;
  readonly worker: WorkerInfo;
  readonly error: TaskErrorInfo;
  readonly thread: number;
  readonly start: number;
  readonly stop: number;
}

/** A task a worker finished: where, on which of its threads, and when. */
export interface FinishedTask {
  readonly key: string;
  readonly worker: WorkerInfo;
  readonly thread: number;
  readonly start: number;
  readonly stop: number;
  readonly nbytes: number;
}

export interface SchedulerPlugin {
  /** For the log, when a hook throws. */
  readonly name?: string;
  addWorker?(worker: WorkerInfo, now: number): void;
  removeWorker?(worker: WorkerInfo, reason: RemoveReason, now: number): void;
  /** Once per finished task, in the order the worker reported them. */
  taskFinished?(task: FinishedTask): void;
  taskErred?(task: ErredTask): void;
  /** A worker fetched `key` (of `nbytes`) from a peer. */
  dataMoved?(key: string, nbytes: number, to: WorkerInfo, now: number): void;
  /** A client submitted work, or data waits for a first worker: capacity may be wanted now. */
  workArrived?(now: number): void;
  /** Every scheduler tick (the tickInterval option). */
  tick?(now: number): void;
  /**
   * Answers a client's `scalingHistory()`: the first plugin that returns a history wins;
   * undefined means "not mine".
   */
  scalingHistory?(since: number): ScalingHistory | undefined;
  /** The scheduler is closing; called once, before its connections close. */
  close?(): void | Promise<void>;
}

type HookName = Exclude<keyof SchedulerPlugin, 'name' | 'scalingHistory' | 'close'>;

/** The registered plugins; calls each hook on each, catching what they throw. */
export class PluginSet {
  readonly #plugins: SchedulerPlugin[] = [];
  readonly #log: Log;

  constructor(log: Log) {
    this.#log = log;
  }

  add(plugin: SchedulerPlugin): () => void {
    this.#plugins.push(plugin);
    return () => {
      const i = this.#plugins.indexOf(plugin);
      if (i >= 0) this.#plugins.splice(i, 1);
    };
  }

  /** Whether any plugin has this hook: lets hot paths skip building its arguments. */
  has(hook: HookName): boolean {
    for (const p of this.#plugins) if (p[hook] !== undefined) return true;
    return false;
  }

  call<H extends HookName>(hook: H, ...args: Parameters<NonNullable<SchedulerPlugin[H]>>): void {
    for (const p of this.#plugins) {
      const fn = p[hook] as ((...a: typeof args) => void) | undefined;
      if (fn === undefined) continue;
      try {
        fn.apply(p, args);
      } catch (error) {
        this.#log.error('a plugin failed', { plugin: p.name ?? '(unnamed)', hook, reason: error instanceof Error ? error.message : String(error) });
      }
    }
  }

  scalingHistory(since: number): ScalingHistory | undefined {
    for (const p of this.#plugins) {
      try {
        const h = p.scalingHistory?.(since);
        if (h !== undefined) return h;
      } catch (error) {
        this.#log.error('a plugin failed', { plugin: p.name ?? '(unnamed)', hook: 'scalingHistory', reason: error instanceof Error ? error.message : String(error) });
      }
    }
    return undefined;
  }

  /** Closes every plugin, newest first; each is attempted. */
  async close(): Promise<void> {
    for (const p of [...this.#plugins].reverse()) {
      try {
        await p.close?.();
      } catch (error) {
        this.#log.error('a plugin failed', { plugin: p.name ?? '(unnamed)', hook: 'close', reason: error instanceof Error ? error.message : String(error) });
      }
    }
  }
}
