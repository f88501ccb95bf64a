/**
 * Requests the scheduler forwards to a worker on someone's behalf and answers when the
 * worker replies: a relayed get-data (for a worker that cannot accept connections), or a
 * key's story. A worker that leaves, or does not answer in time, is answered for: its
 * keys missing, its story empty. Nothing waits forever.
 */
import type { DataReply, SchedulerToWorker } from '../protocol/messages.js';
import type { StoryEntry } from '../protocol/story.js';

export interface RequestHost {
  /** Sends to a connected worker; false if there is no such worker. */
  send(worker: string, message: SchedulerToWorker): boolean;
}

interface Relay {
  readonly worker: string;
  readonly keys: readonly string[];
  readonly reply: (message: DataReply) => void;
  readonly requestId: number;
}

interface StoryGather {
  readonly waiting: Set<string>;
  readonly clockOffset: (worker: string) => number;
  readonly entries: StoryEntry[];
  readonly done: (entries: StoryEntry[]) => void;
  readonly timer: NodeJS.Timeout;
}

/** How long a story waits for the workers' parts. */
const STORY_TIMEOUT_MS = 2000;

export class ForwardedRequests {
  readonly #host: RequestHost;
  readonly #relays = new Map<number, Relay>();
  readonly #stories = new Map<number, StoryGather>();
  readonly #restarts = new Map<number, { readonly waiting: Set<string>; readonly finish: () => void }>();
  #nextId = 1;

  constructor(host: RequestHost) {
    this.#host = host;
  }

  /** Asks `worker` for `keys` on behalf of `reply`'s asker, whose request id is `requestId`. */
  relay(worker: string, keys: readonly string[], requestId: number, reply: (message: DataReply) => void): void {
    const id = this.#nextId++;
    this.#relays.set(id, { worker, keys, reply, requestId });
    if (!this.#host.send(worker, { op: 'get-data', id, keys })) {
      this.#relays.delete(id);
      reply({ op: 'data', id: requestId, values: [], missing: [...keys] });
    }
  }

  /** The worker's answer to a relayed get-data. */
  relayed(id: number, worker: string, reply: DataReply): void {
    const relay = this.#relays.get(id);
    if (relay === undefined || relay.worker !== worker) return;
    this.#relays.delete(id);
    relay.reply({ op: 'data', id: relay.requestId, values: reply.values, missing: reply.missing });
  }

  /**
   * Gathers the workers' stories of `keys` and resolves with them, each moved onto the
   * scheduler's clock by `clockOffset(worker)`; a worker that does not answer in time is
   * left out.
   */
  stories(workers: readonly string[], keys: readonly string[], clockOffset: (worker: string) => number): Promise<StoryEntry[]> {
    if (workers.length === 0) return Promise.resolve([]);
    const id = this.#nextId++;
    return new Promise((resolve) => {
      const gather: StoryGather = {
        waiting: new Set(workers),
        clockOffset,
        entries: [],
        done: resolve,
        timer: setTimeout(() => this.#finishStory(id), STORY_TIMEOUT_MS),
      };
      gather.timer.unref();
      this.#stories.set(id, gather);
      for (const worker of workers) {
        if (!this.#host.send(worker, { op: 'story-request', id, keys })) gather.waiting.delete(worker);
      }
      if (gather.waiting.size === 0) this.#finishStory(id);
    });
  }

  /**
   * Asks every worker to restart (drop everything, fresh threads) and resolves, once each
   * answered or left or `timeoutMs` passed, with the workers that did not answer.
   */
  restart(workers: readonly string[], timeoutMs: number): Promise<string[]> {
    if (workers.length === 0) return Promise.resolve([]);
    const id = this.#nextId++;
    return new Promise((resolve) => {
      const waiting = new Set(workers);
      const finish = (): void => {
        if (!this.#restarts.delete(id)) return;
        clearTimeout(timer);
        resolve([...waiting]);
      };
      const timer = setTimeout(finish, timeoutMs);
      timer.unref();
      this.#restarts.set(id, { waiting, finish });
      for (const worker of workers) if (!this.#host.send(worker, { op: 'restart', id })) waiting.delete(worker);
      if (waiting.size === 0) finish();
    });
  }

  /** A worker's answer to restart `id`. */
  restarted(id: number, worker: string): void {
    const r = this.#restarts.get(id);
    if (r === undefined || !r.waiting.delete(worker)) return;
    if (r.waiting.size === 0) r.finish();
  }

  /** A worker's part of story `id`. */
  storyPart(id: number, worker: string, entries: readonly StoryEntry[]): void {
    const gather = this.#stories.get(id);
    if (gather === undefined || !gather.waiting.delete(worker)) return;
    // Moved onto the scheduler's clock as they come.
    const offset = gather.clockOffset(worker);
    for (const e of entries) gather.entries.push({ ...e, at: e.at + offset, where: worker });
    if (gather.waiting.size === 0) this.#finishStory(id);
  }

  /** A worker left: what was asked of it is answered for it. */
  workerLeft(worker: string): void {
    for (const [id, relay] of this.#relays) {
      if (relay.worker !== worker) continue;
      this.#relays.delete(id);
      relay.reply({ op: 'data', id: relay.requestId, values: [], missing: [...relay.keys] });
    }
    for (const [id, gather] of this.#stories) if (gather.waiting.delete(worker) && gather.waiting.size === 0) this.#finishStory(id);
    for (const r of this.#restarts.values()) if (r.waiting.delete(worker) && r.waiting.size === 0) r.finish();
  }

  /** Answers everything still waiting (the scheduler is closing). */
  close(): void {
    for (const [id, relay] of this.#relays) {
      this.#relays.delete(id);
      relay.reply({ op: 'data', id: relay.requestId, values: [], missing: [...relay.keys] });
    }
    for (const id of [...this.#stories.keys()]) this.#finishStory(id);
    for (const r of [...this.#restarts.values()]) r.finish();
  }

  #finishStory(id: number): void {
    const gather = this.#stories.get(id);
    if (gather === undefined) return;
    this.#stories.delete(id);
    clearTimeout(gather.timer);
    gather.done(gather.entries);
  }
}
