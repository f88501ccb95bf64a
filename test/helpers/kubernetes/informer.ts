/**
 * A list-then-watch cache of one kind of object that keeps going: client-node's ListWatch
 * relists by itself after 410 Gone, but stops on any other error (a dropped connection, an
 * API server restart); this restarts it after a short pause until `stop()`.
 */
import { type KubeConfig, type KubernetesListObject, type KubernetesObject, ListWatch, Watch } from '@kubernetes/client-node';

export interface Informer<T extends KubernetesObject> {
  /** Resolves once the first list has been delivered. */
  readonly synced: Promise<void>;
  get(name: string, namespace?: string): T | undefined;
  list(namespace?: string): readonly T[];
  stop(): void;
}

export interface InformerHandlers<T> {
  /** An object appeared or changed. */
  upsert?: (object: T) => void;
  deleted?: (object: T) => void;
}

const RESTART_MS = 500;

export function startInformer<T extends KubernetesObject>(
  config: KubeConfig,
  path: string,
  list: () => Promise<KubernetesListObject<T>>,
  handlers: InformerHandlers<T>,
  fieldSelector?: string,
): Informer<T> {
  let stopped = false;
  let markSynced: () => void = () => undefined;
  const synced = new Promise<void>((resolve) => (markSynced = resolve));
  const listWatch = new ListWatch<T>(
    path,
    new Watch(config),
    async () => {
      const result = await list();
      // Delivered before the watch starts: the callbacks for these items run right after.
      queueMicrotask(markSynced);
      return result;
    },
    false,
    undefined,
    fieldSelector,
  );
  if (handlers.upsert) {
    listWatch.on('add', handlers.upsert);
    listWatch.on('update', handlers.upsert);
  }
  if (handlers.deleted) listWatch.on('delete', handlers.deleted);
  const restart = (): void => {
    if (stopped) return;
    setTimeout(() => {
      if (!stopped) listWatch.start().catch(restart);
    }, RESTART_MS).unref();
  };
  listWatch.on('error', restart);
  listWatch.start().catch(restart);
  return {
    synced,
    get: (name, namespace) => listWatch.get(name, namespace),
    list: (namespace) => listWatch.list(namespace),
    stop() {
      stopped = true;
      void listWatch.stop();
    },
  };
}
