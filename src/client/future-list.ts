/**
 * The futures of one submission (`client.map`, `persist` of several values, `scatter` of
 * an array): an Array of Futures, as before, that also shows itself — in a notebook, a
 * card counting them by status, with the errors grouped, kept current until all are done;
 * elsewhere the same as text.
 */
import { DISPLAY, type FutureSetSummary, futureSetBundle } from '../notebook/cards.js';
import { INSPECT, jupyterKernel, type MimeBundle, showLive } from '../notebook/kernel.js';
import { TaskError } from '../errors.js';
import { keyPrefix } from '../protocol/key-prefix.js';
import { Future, type FutureStatus } from './future.js';

// The order statuses are listed in: done, still to come, then the ways of not finishing.
const STATUS_ORDER: readonly FutureStatus[] = ['finished', 'pending', 'error', 'lost', 'cancelled'];
const STATUS_WORDS: Readonly<Record<FutureStatus, string>> = { finished: 'finished', pending: 'pending', error: 'erred', lost: 'lost', cancelled: 'cancelled' };

export class FutureList<T = unknown> extends Array<Future<T>> {
  // What map, filter, slice… make of it is a plain Array: only the client makes these.
  static override get [Symbol.species](): ArrayConstructor {
    return Array;
  }

  /** @internal A FutureList holding `futures`, in order. */
  static fromFutures<T>(futures: readonly Future<T>[]): FutureList<T> {
    const list = new FutureList<T>();
    for (const f of futures) list.push(f);
    return list;
  }

  /** How many are in each status, the errors (alike ones together) and what the keys start with. */
  summary(): FutureSetSummary {
    const counts = new Map<FutureStatus, number>();
    const errors = new Map<string, { error: string; count: number; firstKey: string }>();
    const prefixes = new Map<string, number>();
    for (const f of this) {
      const prefix = keyPrefix(f.key);
      prefixes.set(prefix, (prefixes.get(prefix) ?? 0) + 1);
      const status = f.status;
      counts.set(status, (counts.get(status) ?? 0) + 1);
      if (status !== 'error' && status !== 'lost') continue;
      const error = Future.ownerOf(f).errorOf(f.key);
      const text = error === null ? status : describeError(error, f.key);
      const group = errors.get(text);
      if (group === undefined) errors.set(text, { error: text, count: 1, firstKey: f.key });
      else group.count++;
    }
    return {
      total: this.length,
      byStatus: STATUS_ORDER.filter((s) => (counts.get(s) ?? 0) > 0).map((s) => ({ status: STATUS_WORDS[s], count: counts.get(s)! })),
      errors: [...errors.values()].sort((a, b) => b.count - a.count),
      prefixes: [...prefixes].map(([prefix, count]) => ({ prefix, count })).sort((a, b) => b.count - a.count),
    };
  }

  /**
   * In a notebook: the card, as its own display updated in place about once a second
   * while some are pending, and once more when the last is done (the cell's result is then
   * an empty bundle). With none pending, or outside a kernel, the card as it is.
   */
  async [DISPLAY](): Promise<MimeBundle> {
    const kernel = jupyterKernel();
    const pending = this.filter((f) => f.status === 'pending');
    if (kernel === undefined || pending.length === 0) return futureSetBundle(this.summary());
    await showLive(
      kernel,
      'futures',
      () => futureSetBundle(this.summary()),
      () => this.some((f) => f.status === 'pending'),
      { ended: Future.ownerOf(pending[0]!).wait(pending) },
    );
    return {};
  }

  [INSPECT](): string {
    return futureSetBundle(this.summary())['text/plain']!;
  }
}

/** An error as the card lists it: alike errors of different tasks read the same. */
function describeError(error: Error, key: string): string {
  const text = error instanceof TaskError ? `${error.remoteName}: ${error.remoteMessage}` : `${error.name}: ${error.message.replaceAll(key, '…')}`;
  const line = text.split('\n', 1)[0]!;
  return line.length > 200 ? `${line.slice(0, 199)}…` : line;
}
