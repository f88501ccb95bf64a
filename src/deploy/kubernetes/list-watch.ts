/**
 * List, then watch from the list's resourceVersion, for as long as it runs: the way
 * client-go's reflector keeps a cache, with the failures spelled out.
 *
 * - The server ends every watch after `timeoutSeconds` (we ask for 4–6 minutes, so a
 *   connection that died silently is noticed); the watch resumes from the last version.
 * - A version the server no longer has (410 Gone, as an ERROR event or as the answer)
 *   means events were missed: list again, and let `onSync` reconcile.
 * - Any other failure (403 while a RoleBinding takes effect, 429, 5xx, a dropped
 *   connection) is retried with a backoff that doubles up to 30 s, forever, until `stop()`.
 */
import type { KubeApi, OpenWatch, WatchEvent } from './api.js';
import { KubernetesApiError } from './errors.js';
import { Backoff, isAborted, pause } from './retry.js';

export interface Versioned {
  readonly metadata?: { readonly resourceVersion?: string | undefined; readonly name?: string | undefined } | undefined;
}

export interface ListWatchOptions<T extends Versioned> {
  readonly api: KubeApi;
  /** 'pods', 'configmaps': names the requests. */
  readonly resource: string;
  /** The collection's path: /api/v1/namespaces/NS/pods. */
  readonly path: string;
  /** labelSelector and/or fieldSelector. */
  readonly selector: Readonly<Record<string, string>>;
  readonly list: () => Promise<{ readonly items: readonly T[]; readonly resourceVersion: string }>;
  /** The complete state, after each list. */
  readonly onSync: (items: readonly T[]) => void;
  readonly onEvent: (type: 'ADDED' | 'MODIFIED' | 'DELETED', object: T) => void;
  /** Told of each failure and how long until the next try. */
  readonly onTrouble?: (error: KubernetesApiError, waitMs: number) => void;
}

type WatchEnd = { readonly kind: 'ended' } | { readonly kind: 'expired' } | { readonly kind: 'failed'; readonly error: KubernetesApiError };

export class ListWatch<T extends Versioned> {
  readonly #options: ListWatchOptions<T>;
  readonly #abort = new AbortController();
  #current: OpenWatch | undefined;
  #resourceVersion = '';
  #markSynced: () => void = () => undefined;
  #running: Promise<void> | undefined;
  /** Resolves after the first complete list has been delivered. */
  readonly synced: Promise<void>;
  /** Lists made (the first, and one after each expired watch). */
  lists = 0;
  /** Watches opened. */
  watches = 0;

  constructor(options: ListWatchOptions<T>) {
    this.#options = options;
    this.synced = new Promise((resolve) => (this.#markSynced = resolve));
  }

  /** Starts; with `resumeFrom`, watches from that version first (as after a restart), listing only if it has expired. */
  start(resumeFrom?: string): void {
    this.#running ??= this.#run(resumeFrom);
  }

  /** Stops watching; resolves once the loop has ended. */
  async stop(): Promise<void> {
    this.#abort.abort();
    this.#current?.stop();
    await this.#running;
  }

  get resourceVersion(): string {
    return this.#resourceVersion;
  }

  async #run(resumeFrom: string | undefined): Promise<void> {
    const signal = this.#abort.signal;
    const backoff = new Backoff(250, 30_000);
    let needList = resumeFrom === undefined;
    if (resumeFrom !== undefined) this.#resourceVersion = resumeFrom;
    while (!signal.aborted) {
      if (needList) {
        try {
          this.lists++;
          const { items, resourceVersion } = await this.#options.list();
          if (isAborted(signal)) return;
          this.#resourceVersion = resourceVersion;
          this.#options.onSync(items);
          this.#markSynced();
          needList = false;
        } catch (error) {
          await this.#trouble(error, backoff, signal);
          continue;
        }
      }
      const opened = performance.now();
      const end = await this.#watchOnce(signal);
      if (isAborted(signal)) return;
      switch (end.kind) {
        case 'ended':
          // A watch the server ends at once, again and again, must not spin.
          if (performance.now() - opened < 1_000) await pause(backoff.next(), signal);
          else backoff.reset();
          break;
        case 'expired':
          needList = true;
          break;
        case 'failed':
          if (end.error.status === 410) needList = true;
          await this.#trouble(end.error, backoff, signal);
          break;
      }
    }
  }

  async #trouble(error: unknown, backoff: Backoff, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const wait = backoff.next();
    const apiError = error instanceof KubernetesApiError ? error : new KubernetesApiError(`list ${this.#options.resource}`, 0, String(error), { cause: error });
    this.#options.onTrouble?.(apiError, wait);
    await pause(wait, signal);
  }

  #watchOnce(signal: AbortSignal): Promise<WatchEnd> {
    return new Promise<WatchEnd>((resolve) => {
      let settled = false;
      const onAbort = (): void => finish({ kind: 'ended' });
      const finish = (end: WatchEnd): void => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        this.#current?.stop();
        this.#current = undefined;
        resolve(end);
      };
      const onEvent = (event: WatchEvent<T>): void => {
        if (event.type === 'ERROR') {
          const status = event.object as unknown as { code?: number; message?: string; reason?: string };
          if (status.code === 410) finish({ kind: 'expired' });
          else finish({ kind: 'failed', error: new KubernetesApiError(`watch ${this.#options.resource}`, status.code ?? 0, status.message ?? 'the watch failed', { reason: status.reason }) });
          return;
        }
        const version = event.object.metadata?.resourceVersion;
        if (version !== undefined && version !== '') this.#resourceVersion = version;
        if (event.type !== 'BOOKMARK') this.#options.onEvent(event.type, event.object);
      };
      const onEnd = (error?: KubernetesApiError): void => {
        if (error === undefined) finish({ kind: 'ended' });
        else if (error.status === 410) finish({ kind: 'expired' });
        else finish({ kind: 'failed', error });
      };
      // Watches end on the server's side after this long; spread so they do not all end at once.
      const timeoutSeconds = String(240 + Math.floor(Math.random() * 120));
      this.watches++;
      this.#options.api
        .watch<T>(`watch ${this.#options.resource}`, this.#options.path, { ...this.#options.selector, resourceVersion: this.#resourceVersion, timeoutSeconds }, onEvent, onEnd)
        .then(
          (open) => {
            if (settled || signal.aborted) open.stop();
            else this.#current = open;
            if (signal.aborted) finish({ kind: 'ended' });
          },
          (error: unknown) => finish({ kind: 'failed', error: error instanceof KubernetesApiError ? error : new KubernetesApiError(`watch ${this.#options.resource}`, 0, String(error)) }),
        );
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
