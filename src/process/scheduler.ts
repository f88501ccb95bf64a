/**
 * The scheduler process users start — `tessera scheduler`, a LocalCluster, a preload's
 * host: the scheduler's server with its dashboard and, when asked, an adaptive loop
 * attached through the server's plugin hooks.
 *
 * ```ts
 * const scheduler = await Scheduler.start({ port: 8786, token: 'secret' });
 * console.log(scheduler.address, scheduler.dashboardLink);
 * scheduler.adapt(backend, { minimum: 0, maximum: 20 });   // in a preload's setup(scheduler)
 * await scheduler.close();
 * ```
 */
import type { ClusterBackend } from '../adaptive/backend.js';
import { Adaptive } from '../adaptive/loop.js';
import type { AdaptiveInput } from '../adaptive/policy.js';
import { attachDashboard } from '../dashboard/attach.js';
import type { Dashboard } from '../dashboard/server.js';
import { ClosedError } from '../errors.js';
import type { SchedulerPlugin } from '../scheduler/plugin.js';
import type { ResourceState } from '../lifecycle.js';
import { defaultLogger, type LogSink } from '../log.js';
import { checkOptions, optionNames } from '../options.js';
import { SCHEDULER_SERVER_OPTIONS, SchedulerServer, type SchedulerServerOptions } from '../scheduler/server.js';
import type { SchedulerSnapshot, StateCounts, TaskInfo } from '../scheduler/state.js';

export interface SchedulerOptions extends SchedulerServerOptions {
  /**
   * The dashboard (page, JSON API, /metrics). Default: on 127.0.0.1:8787, or a free port
   * when that one is taken; false turns it off. Exposed on another host only with `token`.
   */
  readonly dashboard?: false | { readonly host?: string; readonly port?: number; readonly exposed?: boolean; readonly updateIntervalMs?: number };
}

const DASHBOARD_OPTIONS = optionNames<Exclude<SchedulerOptions['dashboard'], false | undefined>>()(['host', 'port', 'exposed', 'updateIntervalMs']);

export class Scheduler implements AsyncDisposable {
  /** The scheduler's own server, for what the composed process does not forward. */
  readonly server: SchedulerServer;
  readonly #log: LogSink | undefined;
  #dashboard: Dashboard | undefined;
  #adaptive: { readonly loop: Adaptive; readonly detach: () => void } | undefined;

  private constructor(server: SchedulerServer, log: LogSink | undefined) {
    this.server = server;
    this.#log = log;
  }

  static async start(options: SchedulerOptions = {}): Promise<Scheduler> {
    checkOptions(options, [...SCHEDULER_SERVER_OPTIONS, 'dashboard'], 'Scheduler.start()');
    if (options.dashboard !== undefined && options.dashboard !== false) checkOptions(options.dashboard, DASHBOARD_OPTIONS, 'Scheduler.start(): options.dashboard');
    const { dashboard, ...serverOptions } = options;
    const server = await SchedulerServer.start(serverOptions);
    const scheduler = new Scheduler(server, options.log);
    if (dashboard !== false) {
      try {
        scheduler.#dashboard = await attachDashboard(server, {
          ...dashboard,
          ...(options.token === undefined ? {} : { token: options.token }),
          ...(options.keepAlive === undefined ? {} : { keepAlive: options.keepAlive }),
          scaling: {
            history: (since) => scheduler.#adaptive?.loop.history(since),
            lastTarget: () => scheduler.#adaptive?.loop.lastTarget(),
          },
        });
      } catch (error) {
        await server.close();
        throw error;
      }
    }
    return scheduler;
  }

  get address(): string {
    return this.server.address;
  }

  get state(): ResourceState {
    return this.server.state;
  }

  /** Resolves once the scheduler has closed. */
  get closed(): Promise<void> {
    return this.server.closed;
  }

  /** Task completions reported by workers since the start. */
  get tasksFinished(): number {
    return this.server.tasksFinished;
  }

  /** Ids of the connected workers. */
  get workers(): string[] {
    return this.server.workers;
  }

  /** Names of the connected workers, by id. */
  workerNames(): Map<string, string> {
    return this.server.workerNames();
  }

  snapshot(): SchedulerSnapshot {
    return this.server.snapshot();
  }

  taskInfo(key: string): TaskInfo | undefined {
    return this.server.taskInfo(key);
  }

  stateCounts(): StateCounts {
    return this.server.stateCounts();
  }

  get taskCount(): number {
    return this.server.taskCount;
  }

  get workerCount(): number {
    return this.server.workerCount;
  }

  waitForWorkers(n: number, signal?: AbortSignal): Promise<void> {
    return this.server.waitForWorkers(n, signal);
  }

  retireWorkers(workers: readonly string[]): Promise<string[]> {
    return this.server.retireWorkers(workers);
  }

  addPlugin(plugin: SchedulerPlugin): () => void {
    return this.server.addPlugin(plugin);
  }

  /** The dashboard's address, or undefined when it is off. */
  get dashboardLink(): string | undefined {
    return this.#dashboard?.url;
  }

  /** The adaptive loop, when one runs. */
  get adaptive(): Adaptive | undefined {
    return this.#adaptive?.loop;
  }

  /**
   * Lets the scheduler grow and shrink the cluster through `backend`: every `interval` it
   * asks for as many workers as would finish the queued work in `targetDuration`, and
   * retires idle ones (after moving the data only they hold). Replaces an earlier loop.
   */
  adapt(backend: ClusterBackend, options: AdaptiveInput = {}): Adaptive {
    if (this.server.state !== 'running') throw new ClosedError('the scheduler', this.server.state);
    this.stopAdapting();
    const server = this.server;
    const loop = new Adaptive(
      {
        snapshot: () => server.snapshot(),
        // Results a client holds need a worker to live on; so does a scatter waiting for one.
        holdsResults: () => server.stateCounts().memory > 0 || server.pendingScatters > 0,
        retireWorkers: async (names) => {
          const byId = server.workerNames();
          const left = await server.retireWorkers(names);
          return left.map((id) => byId.get(id) ?? id);
        },
      },
      backend,
      options,
      // The scheduler's log, as the 'adaptive' component (pino's default when none was given).
      this.#log ?? defaultLogger(),
    );
    const detach = server.addPlugin({
      name: 'adaptive',
      // New work: look now rather than at the next tick.
      workArrived: () => loop.nudge(),
      scalingHistory: (since) => loop.history(since),
      close: () => loop.stop(),
    });
    this.#adaptive = { loop, detach };
    loop.start();
    return loop;
  }

  /** Stops the adaptive loop; the workers stay as they are. */
  stopAdapting(): void {
    if (this.#adaptive === undefined) return;
    this.#adaptive.loop.stop();
    this.#adaptive.detach();
    this.#adaptive = undefined;
  }

  /** Stops accepting, closes the dashboard and the adaptive loop, then every connection. Idempotent. */
  close(): Promise<void> {
    return this.server.close();
  }

  /** Drops every connection at once. Idempotent. */
  destroy(error?: Error): Promise<void> {
    return this.server.destroy(error);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
