/**
 * The invocations a Lambda backend has made, as far as it can know them. An asynchronous
 * invocation says nothing when it starts or ends: the backend learns that its worker
 * arrived, and later left, from the scheduler's list of connected workers (the adaptive
 * loop's `observe`). An invocation whose worker never arrives within `startTimeout` is
 * written off (throttled for good, failed at init, lost) so that the loop asks again.
 * Pure: times come in as arguments.
 */

export type InvocationState = 'invoking' | 'pending' | 'running' | 'closing';

interface Invocation {
  state: InvocationState;
  since: number;
  /** The names its executions registered under (`${name}.${suffix}`; two for a duplicate delivery). */
  readonly seen: Set<string>;
}

export interface TrackerCounts {
  readonly invoked: number;
  readonly arrived: number;
  readonly finished: number;
  readonly lost: number;
  readonly failed: number;
}

export class InvocationTracker {
  readonly prefix: string;
  readonly #startTimeout: number;
  readonly #invocations = new Map<string, Invocation>();
  #next = 0;
  #invoked = 0;
  #arrived = 0;
  #finished = 0;
  #lost = 0;
  #failed = 0;

  constructor(prefix: string, startTimeout: number) {
    this.prefix = prefix;
    this.#startTimeout = startTimeout;
  }

  /** Whether a worker's name is one of this backend's (`${prefix}-N.suffix`). */
  owns(workerName: string): boolean {
    return workerName.startsWith(`${this.prefix}-`);
  }

  /** Invocations asked for and not known to have ended. */
  get requested(): number {
    let n = 0;
    for (const i of this.#invocations.values()) if (i.state !== 'closing') n++;
    return n;
  }

  get running(): number {
    let n = 0;
    for (const i of this.#invocations.values()) if (i.state === 'running') n++;
    return n;
  }

  get closing(): number {
    let n = 0;
    for (const i of this.#invocations.values()) if (i.state === 'closing') n++;
    return n;
  }

  get counts(): TrackerCounts {
    return { invoked: this.#invoked, arrived: this.#arrived, finished: this.#finished, lost: this.#lost, failed: this.#failed };
  }

  /** Names for `n` new invocations, counted as requested from now on. */
  add(n: number, now: number): string[] {
    const names: string[] = [];
    for (let k = 0; k < n; k++) {
      const name = `${this.prefix}-${this.#next++}`;
      this.#invocations.set(name, { state: 'invoking', since: now, seen: new Set() });
      names.push(name);
    }
    return names;
  }

  /** The invoke call was accepted: the invocation is on its way. */
  accepted(name: string, now: number): void {
    const i = this.#invocations.get(name);
    if (i === undefined || i.state !== 'invoking') return;
    i.state = 'pending';
    i.since = now;
    this.#invoked++;
  }

  /** The invoke call failed (or a synchronous invocation ended): it no longer counts. */
  ended(name: string, failed: boolean): void {
    const i = this.#invocations.get(name);
    if (i === undefined) return;
    this.#invocations.delete(name);
    if (failed) this.#failed++;
    else this.#finished++;
  }

  /** The scheduler's connected workers now: arrivals and departures follow from them. */
  observe(workerNames: readonly string[], now: number): void {
    const present = new Map<string, string[]>();
    for (const full of workerNames) {
      const dot = full.lastIndexOf('.');
      const base = dot < 0 ? full : full.slice(0, dot);
      if (!this.#invocations.has(base)) continue;
      const list = present.get(base) ?? [];
      list.push(full);
      present.set(base, list);
    }
    for (const [name, i] of this.#invocations) {
      const names = present.get(name);
      if (names !== undefined) {
        for (const n of names) i.seen.add(n);
        if (i.state === 'pending' || i.state === 'invoking') {
          i.state = 'running';
          i.since = now;
          this.#arrived++;
        }
        continue;
      }
      if (i.seen.size > 0) {
        // Its worker came and went: the invocation is over (retired, deadline, or killed).
        this.#invocations.delete(name);
        this.#finished++;
      } else if (i.state === 'pending' && now - i.since >= this.#startTimeout) {
        this.#invocations.delete(name);
        this.#lost++;
      }
    }
  }

  /** These workers were retired and told to close: no longer requested, gone once they leave. */
  closingWorkers(workerNames: readonly string[], now: number): void {
    for (const full of workerNames) {
      const dot = full.lastIndexOf('.');
      const i = this.#invocations.get(dot < 0 ? full : full.slice(0, dot));
      if (i === undefined) continue;
      i.state = 'closing';
      i.since = now;
    }
  }

  /** Forgets everything (the backend closed). */
  clear(): void {
    this.#invocations.clear();
  }
}
