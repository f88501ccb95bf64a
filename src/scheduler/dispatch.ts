/**
 * The scheduler's commands as wire messages: each goes into its peer's outbox, merged with
 * the message before it where that pays (consecutive computes, frees and keys-in-memory
 * become one message), and every outbox is sent at the end of the turn.
 */
import type { Connection } from '../comm/index.js';
import { ProtocolError } from '../errors.js';
import type { Log } from '../log.js';
import { type ClientToScheduler, isStoreHolder, type SchedulerToClient, type SchedulerToWorker, type WireComputeTask, type WorkerToScheduler } from '../protocol/messages.js';
import type { TaskSpec, WireSpec } from '../protocol/task-spec.js';
import type { FnIds, SchedulerCommand } from './events.js';
import type { FunctionShipping, Shipped } from './functions.js';
import type { RemoveReason, WorkerInfo } from './plugin.js';

export type WorkerConn = Connection<WorkerToScheduler | SchedulerToWorker>;
export type ClientConn = Connection<ClientToScheduler | SchedulerToClient>;

export interface WorkerEntry extends WorkerInfo, Shipped {
  readonly conn: WorkerConn;
  /** Messages waiting for the end of this turn; consecutive computes and frees merge. */
  outbox: SchedulerToWorker[];
  leaving: RemoveReason;
  /** Add to the worker's task times to put them on this process's clock. */
  readonly clockOffset: number;
  /** It asked to leave; if its data cannot move, it leaves anyway. */
  selfRetiring: boolean;
  /** The stimulus of the last task put in the outbox's last compute message. */
  computeStimulus?: string;
  /** The function ids given with the last encoded spec put in a compute message (its functions shipped). */
  computeFns?: FnIds | undefined;
}

export interface ClientEntry {
  readonly id: string;
  readonly conn: ClientConn;
  outbox: SchedulerToClient[];
}

export interface DispatchContext {
  readonly workers: ReadonlyMap<string, WorkerEntry>;
  readonly clients: ReadonlyMap<string, ClientEntry>;
  readonly functions: FunctionShipping;
  /** The stimulus of the event whose commands these are. */
  stimulus: string;
  /** A retirement was given up (the worker stays, unless it asked to leave). */
  retireAborted(worker: string, reason: string): void;
  /** Keys to delete from the result store `store` (a holder id). */
  freeFromStore(store: string, keys: readonly string[]): void;
}

export function dispatch(c: SchedulerCommand, ctx: DispatchContext): void {
  switch (c.op) {
    case 'compute-task': {
      const w = ctx.workers.get(c.worker);
      if (w === undefined) return;
      let spec: WireSpec;
      let fns: FnIds | undefined;
      if (c.fns !== null && typeof c.spec === 'string') {
        // Held encoded: it goes as it came, with the ids of its functions — shipped first
        // where the worker lacks them, unless they are the very list the task before had.
        if (c.fns !== w.computeFns) ctx.functions.prepareFns(w, c.fns, (message) => w.outbox.push(message));
        spec = c.spec;
        fns = c.fns;
      } else {
        spec = c.spec as TaskSpec;
        ctx.functions.prepare(w, spec, (message) => w.outbox.push(message));
      }
      // As the state made them, holders relative to this worker: they travel as they are.
      const dependencies = c.dependencies;
      const last = w.outbox[w.outbox.length - 1];
      // Merged while the tickets run on: the message says only its first.
      if (last?.op === 'compute' && last.ticket !== undefined && last.ticket + last.tasks.length === c.ticket) {
        // The stimulus and the functions only where they change: the worker carries them forward.
        const stimulus = w.computeStimulus === ctx.stimulus ? null : ctx.stimulus;
        let task: WireComputeTask;
        if (fns !== undefined && fns !== w.computeFns) {
          task = [c.key, spec, dependencies, stimulus, fns];
          w.computeFns = fns;
        } else task = stimulus === null ? [c.key, spec, dependencies] : [c.key, spec, dependencies, stimulus];
        (last.tasks as WireComputeTask[]).push(task);
      } else {
        w.outbox.push({ op: 'compute', ticket: c.ticket, tasks: [fns === undefined ? [c.key, spec, dependencies, ctx.stimulus] : [c.key, spec, dependencies, ctx.stimulus, fns]] });
        w.computeFns = fns;
      }
      w.computeStimulus = ctx.stimulus;
      return;
    }
    case 'free-keys': {
      if (isStoreHolder(c.worker)) {
        ctx.freeFromStore(c.worker, c.keys);
        return;
      }
      const w = ctx.workers.get(c.worker);
      if (w === undefined) return;
      const last = w.outbox[w.outbox.length - 1];
      if (last?.op === 'free-keys') (last.keys as string[]).push(...c.keys);
      else w.outbox.push({ op: 'free-keys', keys: [...c.keys], stimulus: ctx.stimulus });
      return;
    }
    case 'steal-request': {
      const w = ctx.workers.get(c.worker);
      if (w !== undefined) w.outbox.push({ op: 'steal-request', key: c.key, stimulus: ctx.stimulus });
      return;
    }
    case 'replicate': {
      const w = ctx.workers.get(c.worker);
      if (w !== undefined) w.outbox.push({ op: 'replicate', keys: c.keys.map((k) => [k.key, k.whoHas] as const), stimulus: ctx.stimulus });
      return;
    }
    case 'close-worker': {
      const w = ctx.workers.get(c.worker);
      if (w === undefined) return;
      w.leaving = c.reason;
      w.outbox.push({ op: 'close-worker' });
      return;
    }
    case 'retire-aborted': {
      ctx.retireAborted(c.worker, c.reason);
      const w = ctx.workers.get(c.worker);
      // A worker leaving of its own accord goes anyway; its data is recomputed if needed.
      if (w?.selfRetiring === true) w.outbox.push({ op: 'close-worker' });
      return;
    }
    case 'key-in-memory': {
      // Where it is travels with it: gathering it then needs no who-has round trip. A key
      // whose holder is unknown ('' on the wire) is asked for as before.
      const holder = c.holder ?? '';
      for (const id of c.clients) {
        const client = ctx.clients.get(id);
        if (client === undefined) continue;
        const last = client.outbox[client.outbox.length - 1];
        if (last?.op === 'keys-in-memory' && last.workers !== undefined) {
          (last.keys as string[]).push(c.key);
          (last.workers as string[]).push(holder);
        } else client.outbox.push({ op: 'keys-in-memory', keys: [c.key], workers: [holder] });
      }
      return;
    }
    case 'key-erred':
      toClients(ctx, c.clients, { op: 'key-erred', key: c.key, error: c.error });
      return;
    case 'key-lost':
      toClients(ctx, c.clients, { op: 'key-lost', key: c.key, error: c.error });
      return;
    case 'key-cancelled':
      toClients(ctx, c.clients, { op: 'keys-cancelled', keys: [c.key] });
      return;
    default: {
      const never: never = c;
      throw new ProtocolError(`unknown scheduler command '${(never as { op: string }).op}'`);
    }
  }
}

function toClients(ctx: DispatchContext, ids: readonly string[], message: SchedulerToClient): void {
  for (const id of ids) ctx.clients.get(id)?.outbox.push(message);
}

/** Sends every outbox, in order, and empties it. */
export function flushOutboxes(workers: Iterable<WorkerEntry>, clients: Iterable<ClientEntry>, log: Log): void {
  for (const w of workers) {
    if (w.outbox.length === 0) continue;
    const outbox = w.outbox;
    w.outbox = [];
    for (const message of outbox) sendQuietly(w.conn, message, log);
  }
  for (const c of clients) {
    if (c.outbox.length === 0) continue;
    const outbox = c.outbox;
    c.outbox = [];
    for (const message of outbox) sendQuietly(c.conn, message, log);
  }
}

/**
 * Whether the message is plain data (Connection.sendPlain): the messages sent per task,
 * made here of keys, worker ids, numbers and encoded specs. A compute with a spec held as
 * an object (it may carry binary values) is not.
 */
function isPlain(message: SchedulerToWorker | SchedulerToClient): boolean {
  switch (message.op) {
    case 'free-keys':
    case 'keys-in-memory':
      return true;
    case 'compute': {
      const tasks = message.tasks;
      for (let i = 0; i < tasks.length; i++) if (typeof (tasks[i] as WireComputeTask)[1] !== 'string') return false;
      return true;
    }
    default:
      return false;
  }
}

/** A peer that vanished mid-turn is noticed by its close handler; sending to it is moot. */
function sendQuietly<M extends { op: string }>(conn: Connection<M>, message: M & (SchedulerToWorker | SchedulerToClient), log: Log): void {
  if (conn.state !== 'open') return;
  try {
    if (isPlain(message)) conn.sendPlain(message);
    else conn.send(message);
  } catch (error) {
    log.warn('could not send a message', { op: message.op, peer: conn.remoteAddress, reason: error instanceof Error ? error.message : String(error) });
  }
}
