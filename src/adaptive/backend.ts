/**
 * What an adaptive cluster needs of the thing that starts and stops workers: local
 * processes, Kubernetes pods, serverless functions, or a simulation. Backends know the
 * scheduler only through this interface, and never choose which worker stops.
 */
export interface ClusterBackend {
  /** Ask for `n` workers in total, counting those running and those still starting. */
  scaleUp(n: number): void | Promise<void>;
  /**
   * Stop these workers (by name). The scheduler has already retired them: their unique
   * data moved to workers that stay, and they were told to close.
   */
  scaleDown(names: readonly string[]): void | Promise<void>;
  /** Workers asked for and not stopped: starting or running. */
  readonly requested: number;
  /** Workers whose process (pod, function) is up. */
  readonly running: number;
  /** Workers being stopped. */
  readonly closing: number;
  /** Threads each new worker brings. */
  readonly threadsPerWorker: number;
  /**
   * Told every tick which workers are connected (by name). A backend that cannot see its
   * workers' lifetimes itself (asynchronous serverless invocations) counts them from this.
   */
  observe?(names: readonly string[], now: number): void;
  /** Whether this backend started the named worker; a burst backend must say. */
  owns?(name: string): boolean;
  /**
   * Workers that failed to start since the last call (a pod in ImagePullBackOff, a job the
   * batch system refused…), each already counted no more: the loop records them in the
   * scaling history, so the log, `client.scalingHistory()` and the dashboard show them.
   */
  takeFailures?(): readonly BackendFailure[];
}

export interface BackendFailure {
  /** The worker's name (a pod's, a job's). */
  readonly worker: string;
  /** Why, in one line: the reason and the message, as the system gave them. */
  readonly reason: string;
}
