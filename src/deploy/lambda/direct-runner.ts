/**
 * Direct mode's engine: runs a worker's batches as synchronous function invocations
 * instead of on threads. It stands where a worker's thread pool stands (the executor's
 * job runner), so the worker around it — its core, its fetches, its reports to the
 * scheduler — is the ordinary one; it is started with `listen: false` and the scheduler's
 * store, so what it reports is held by the store.
 *
 * At most `slots` invocations run at once; the jobs waiting when one can start go
 * together, up to `tasksPerInvocation` tasks, in one `RequestResponse` invocation (the
 * worker advertises more threads than invocations so that the scheduler gives it enough
 * work to fill them). A payload carries the jobs' nodes and the functions they name, small
 * inputs inline, large ones through the store under keys of their own (deleted once the
 * invocation has answered; a time-to-live covers a crash), bundled modules through the
 * store once per hash; one that would pass Lambda's 6 MB is split. The function writes
 * every result to the store (first write wins) and answers with the stored records that
 * fit its answer; the rest are read from the store here.
 *
 * A throttle (429) is waited out; a function that failed (a crash, the store out of reach)
 * is invoked again with backoff, up to `attempts` times. An invocation that timed out, or
 * failed past its attempts, sends each of its jobs again alone; a job that fails so alone
 * ends as a lost thread, and the worker's core reruns its tasks one by one, then reports a
 * task that still kills its function as lost — as it does for a task that kills a thread.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { FnRef } from '../../functions/fn-ref.js';
import { BUNDLE_SCHEME } from '../../protocol/messages.js';
import { type NodeToRun, nodeOf } from '../../protocol/encoded-spec.js';
import { decodeValue, encodeValue, type ResultStore } from '../../store/index.js';
import { LambdaFunctionError, LambdaThrottledError } from './errors.js';
import { type DirectBatchResult, type DirectInvocation, type DirectInvocationResult, fromBase64, moduleKey, toBase64 } from './direct-invocation.js';
import { MAX_SYNC_PAYLOAD_BYTES } from './limits.js';
import { backoffDelay, invokeWithRetry, type ResolvedRetry } from './retry.js';

/** A batch as a worker's executor hands it to threads (the shape of local/pool.ts's Job). */
export interface DirectJob {
  /** Nodes, or specs as their client encoded them, alone or in their task. */
  readonly nodes: readonly NodeToRun[];
  /** Every node's result comes back, whatever its `out` says. */
  readonly returnAll?: boolean;
  readonly fns: readonly FnRef[];
  readonly inputs: readonly (readonly [string, unknown])[];
  /** As the pool's (`Job.onStart`): an invocation's batches never follow another on a thread. */
  readonly onStart?: (following: boolean) => void;
}

interface RemoteError {
  readonly name: string;
  readonly message: string;
  readonly stack: string;
}

/** The answer a thread would give (the shape of local/pool.ts's JobReply). */
export type DirectJobReply =
  | { readonly op: 'done'; readonly id: number; readonly thread: number; readonly results: readonly unknown[]; readonly startedAt: number; readonly elapsedMs: number; readonly times: readonly number[] }
  | { readonly op: 'task-failed'; readonly id: number; readonly thread: number; readonly key: string; readonly error: RemoteError }
  | { readonly op: 'unportable'; readonly id: number; readonly thread: number; readonly key: string; readonly path: string; readonly reason: string };

export interface DirectRunnerOptions {
  readonly client: LambdaClient;
  readonly functionName: string;
  /** The result store the functions write to (the scheduler's). */
  readonly store: ResultStore;
  /** Invocations at a time. */
  readonly slots: number;
  /** Tasks sent in one invocation, at most (jobs are never cut to fit it). */
  readonly tasksPerInvocation: number;
  readonly retry: ResolvedRetry;
  /** Invocations of a job that failed in its function, the first included, before it counts as a lost thread (default 3). */
  readonly attempts?: number;
  /** Inputs whose record is larger than this go through the store (default 256 KiB). */
  readonly inlineInputBytes?: number;
  /** Payload bytes allowed (default Lambda's synchronous limit, 6 MB). */
  readonly payloadLimit?: number;
  /** How long inputs put in the store for an invocation live at most, ms. */
  readonly inputTtlMs: number;
  readonly log?: (line: string) => void;
}

/** What the runner has done so far. */
export interface DirectRunnerStats {
  /** Invocations answered (or failed), retries and parts of split jobs included. */
  readonly invocations: number;
  readonly throttles: number;
  readonly functionErrors: number;
  /** Payload bytes sent and answer bytes received. */
  readonly bytesOut: number;
  readonly bytesIn: number;
  /** Bytes of inputs written to the store and of results read from it. */
  readonly storeBytesOut: number;
  readonly storeBytesIn: number;
  /** Jobs split for the payload limit. */
  readonly splits: number;
}

// Room for the payload's JSON around what is counted.
const PAYLOAD_MARGIN = 16 * 1024;

interface Pending {
  readonly job: DirectJob;
  readonly id: number;
  /** Sent alone: it was in an invocation that timed out or failed. */
  readonly solo: boolean;
  readonly resolve: (reply: DirectJobReply) => void;
  readonly reject: (error: Error) => void;
}

/** A job's answer before it has a slot and an id. */
type Outcome =
  | { readonly op: 'done'; readonly results: unknown[]; readonly times: number[] }
  | { readonly op: 'task-failed'; readonly key: string; readonly error: RemoteError }
  | { readonly op: 'unportable'; readonly key: string; readonly path: string; readonly reason: string }
  | { readonly op: 'lost'; readonly error: Error };

/** Nodes of some jobs: a job whole, or a part of one too large to go whole. */
interface Part {
  readonly job: DirectJob;
  readonly nodes: readonly number[];
}

export class DirectRunner {
  readonly #o: Required<Omit<DirectRunnerOptions, 'log'>> & { readonly log: (line: string) => void };
  readonly #abort = new AbortController();
  readonly #free: number[] = [];
  readonly #queue: Pending[] = [];
  /** Modules put in the store: hash → the write. */
  readonly #modules = new Map<string, Promise<void>>();
  #jobs = 0;
  #stats = { invocations: 0, throttles: 0, functionErrors: 0, bytesOut: 0, bytesIn: 0, storeBytesOut: 0, storeBytesIn: 0, splits: 0 };

  constructor(options: DirectRunnerOptions) {
    this.#o = {
      attempts: 3,
      inlineInputBytes: 256 * 1024,
      payloadLimit: MAX_SYNC_PAYLOAD_BYTES,
      ...options,
      log: options.log ?? (() => undefined),
    };
    for (let i = options.slots - 1; i >= 0; i--) this.#free.push(i);
  }

  get stats(): DirectRunnerStats {
    return { ...this.#stats };
  }

  /** Runs the job in an invocation, with others waiting beside it. Rejects as a lost thread would. */
  run(job: DirectJob): Promise<DirectJobReply> {
    if (this.#abort.signal.aborted) return Promise.reject(this.#abort.signal.reason as Error);
    return new Promise((resolve, reject) => {
      this.#queue.push({ job, id: ++this.#jobs, solo: false, resolve, reject });
      this.#pump();
    });
  }

  /** Invocations under way fail and waiting jobs are dropped; nothing new starts. */
  destroy(error: Error): void {
    this.#abort.abort(error);
    for (const p of this.#queue.splice(0)) p.reject(error);
  }

  /** Starts invocations while slots are free and jobs wait. */
  #pump(): void {
    while (this.#free.length > 0 && this.#queue.length > 0 && !this.#abort.signal.aborted) {
      const slot = this.#free.pop()!;
      const group: Pending[] = [this.#queue.shift()!];
      let tasks = group[0]!.job.nodes.length;
      while (!group[0]!.solo && this.#queue.length > 0 && !this.#queue[0]!.solo && tasks + this.#queue[0]!.job.nodes.length <= this.#o.tasksPerInvocation) {
        const next = this.#queue.shift()!;
        tasks += next.job.nodes.length;
        group.push(next);
      }
      void this.#runGroup(group, slot).finally(() => {
        this.#free.push(slot);
        this.#pump();
      });
    }
  }

  async #runGroup(group: readonly Pending[], slot: number): Promise<void> {
    const started = Date.now();
    for (const p of group) p.job.onStart?.(false);
    let outcomes: Outcome[];
    try {
      outcomes = await this.#invokeParts(group.map((p) => ({ job: p.job, nodes: p.job.nodes.map((_, i) => i) })));
    } catch (error) {
      const e = error instanceof Error ? error : new Error(String(error));
      outcomes = group.map(() => ({ op: 'lost', error: e }));
    }
    const elapsedMs = Date.now() - started;
    const again: Pending[] = [];
    for (let i = 0; i < group.length; i++) {
      const p = group[i]!;
      const o = outcomes[i]!;
      if (group.length > 1 && o.op === 'lost' && !this.#abort.signal.aborted) {
        // Which job took the time (or the memory, or the process) is unknown: each goes again alone.
        again.push({ ...p, solo: true });
        continue;
      }
      switch (o.op) {
        case 'done':
          p.resolve({ op: 'done', id: p.id, thread: slot, results: o.results, times: o.times, startedAt: started, elapsedMs });
          break;
        case 'task-failed':
          p.resolve({ op: 'task-failed', id: p.id, thread: slot, key: o.key, error: o.error });
          break;
        case 'unportable':
          p.resolve({ op: 'unportable', id: p.id, thread: slot, key: o.key, path: o.path, reason: o.reason });
          break;
        case 'lost':
          p.reject(o.error);
          break;
        default: {
          const never: never = o;
          throw new Error(`unknown outcome '${(never as { op: string }).op}'`);
        }
      }
    }
    this.#queue.unshift(...again);
  }

  /**
   * One outcome per part. Parts go in one invocation when the payload fits, else in halves
   * (ready tasks do not depend on each other, so any split is sound); a single part too
   * large is split into halves of its nodes, whose answers join again.
   */
  async #invokeParts(parts: readonly Part[]): Promise<Outcome[]> {
    const payload = await this.#payload(parts);
    if (payload === null) {
      this.#stats.splits++;
      if (parts.length > 1) {
        const half = Math.ceil(parts.length / 2);
        return [...(await this.#invokeParts(parts.slice(0, half))), ...(await this.#invokeParts(parts.slice(half)))];
      }
      const [part] = parts as [Part];
      if (part.nodes.length === 1) {
        return [{ op: 'lost', error: new Error(`task ${lastKey(part.job.nodes[part.nodes[0]!]!)} alone is larger than Lambda's payload limit, even with its inputs in the store`) }];
      }
      const half = Math.ceil(part.nodes.length / 2);
      const [first] = await this.#invokeParts([{ job: part.job, nodes: part.nodes.slice(0, half) }]);
      if (first!.op !== 'done') return [first!];
      const [second] = await this.#invokeParts([{ job: part.job, nodes: part.nodes.slice(half) }]);
      if (second!.op !== 'done') return [second!];
      return [{ op: 'done', results: [...first!.results, ...second!.results], times: [...first!.times, ...second!.times] }];
    }
    const { invocation, temporary } = payload;
    try {
      let answer: DirectInvocationResult;
      try {
        answer = await this.#invoke(invocation);
      } catch (error) {
        const e = error instanceof Error ? error : new Error(String(error));
        return parts.map(() => ({ op: 'lost', error: e }));
      }
      return await Promise.all(parts.map((part, i) => this.#outcome(part, answer.batches[i])));
    } finally {
      if (temporary.length > 0) await this.#o.store.delete(temporary).catch(() => undefined);
    }
  }

  async #outcome(part: Part, answer: DirectBatchResult | undefined): Promise<Outcome> {
    if (answer === undefined) return { op: 'lost', error: new Error(`${this.#o.functionName} answered for fewer batches than it was sent`) };
    switch (answer.status) {
      case 'done':
        try {
          const results = await this.#results(part.nodes.map((i) => lastKey(part.job.nodes[i]!)), answer.values);
          return { op: 'done', results, times: [...answer.times] };
        } catch (error) {
          return { op: 'lost', error: error instanceof Error ? error : new Error(String(error)) };
        }
      case 'task-failed':
        return { op: 'task-failed', key: answer.key, error: answer.error };
      case 'unportable':
        return { op: 'unportable', key: answer.key, path: answer.path, reason: answer.reason };
      case 'unrunnable':
        return { op: 'lost', error: new Error(`the batch could not run in ${this.#o.functionName}: ${answer.message}`) };
      default: {
        const never: never = answer;
        throw new Error(`unknown direct answer '${(never as { status: string }).status}'`);
      }
    }
  }

  /** The invocation for these parts, or null when it cannot fit the payload limit. */
  async #payload(parts: readonly Part[]): Promise<{ invocation: DirectInvocation; temporary: string[] } | null> {
    const needed = new Set<string>();
    const batches: string[] = [];
    const modules: string[] = [];
    const records: { key: string; record: Uint8Array }[] = [];
    const seen = new Set<string>();
    for (const part of parts) {
      const nodes = part.nodes.map((i) => {
        const node = nodeOf(part.job.nodes[i]!);
        return node.out || part.job.returnAll !== true ? node : { ...node, out: true };
      });
      const fnIds = new Set<string>();
      const deps = new Set<string>();
      for (const node of nodes) {
        for (const step of node.steps) {
          fnIds.add(step.fn);
          for (const dep of step.deps) deps.add(dep);
        }
      }
      const fns: FnRef[] = [];
      for (const fn of part.job.fns) {
        if (!fnIds.has(fn.id)) continue;
        const hash = await this.#module(fn);
        if (hash === undefined) fns.push(fn);
        else {
          fns.push({ ...fn, url: `${BUNDLE_SCHEME}${hash}` } as FnRef);
          if (!modules.includes(hash)) modules.push(hash);
        }
      }
      batches.push(toBase64({ nodes, fns }));
      for (const [key, value] of part.job.inputs) {
        if (!deps.has(key) || seen.has(key)) continue;
        seen.add(key);
        needed.add(key);
        records.push({ key, record: encodeValue(value) });
      }
    }
    // Largest first to the store, until what stays inline fits.
    records.sort((a, b) => b.record.byteLength - a.record.byteLength);
    const limit = this.#o.payloadLimit - PAYLOAD_MARGIN;
    let size = batches.reduce((sum, b) => sum + b.length + 4, 0) + records.reduce((sum, r) => sum + base64Length(r.record.byteLength) + r.key.length + 8, 0);
    let k = 0;
    while (k < records.length && (records[k]!.record.byteLength > this.#o.inlineInputBytes || size > limit)) {
      size -= base64Length(records[k]!.record.byteLength) + 8;
      size += 2 * records[k]!.key.length + 64;
      k++;
    }
    if (size > limit) return null;
    const run = randomBytes(6).toString('hex');
    const toStore = records.slice(0, k).map((r) => ({ key: r.key, storeKey: `lambda-input:${run}:${r.key}`, record: r.record }));
    if (toStore.length > 0) {
      // Either outcome holds the input: an earlier attempt may have written it already.
      await this.#o.store.put(toStore.map((r) => [r.storeKey, r.record] as const), { ttlMs: this.#o.inputTtlMs });
      for (const r of toStore) this.#stats.storeBytesOut += r.record.byteLength;
    }
    const invocation: DirectInvocation = {
      op: 'direct',
      store: this.#o.store.address,
      batches,
      inputs: records.slice(k).map((r) => [r.key, Buffer.from(r.record.buffer, r.record.byteOffset, r.record.byteLength).toString('base64')] as const),
      stored: toStore.map((r) => [r.key, r.storeKey] as const),
      modules,
      inlineBytes: this.#o.payloadLimit - PAYLOAD_MARGIN,
    };
    return { invocation, temporary: toStore.map((r) => r.storeKey) };
  }

  /** A bundled module's hash once its code is in the store; undefined for other functions. */
  async #module(fn: FnRef): Promise<string | undefined> {
    if (fn.kind !== 'module') return undefined;
    let hash: string | undefined;
    if (fn.url.startsWith(BUNDLE_SCHEME)) hash = fn.url.slice(BUNDLE_SCHEME.length);
    else if (fn.url.startsWith('file:')) {
      // The executor saved the bundle as <hash>.mjs; a module of the user's own is not a bundle.
      const m = /^([0-9a-f]{64})\.mjs$/.exec(basename(fileURLToPath(fn.url)));
      if (m === null) return undefined;
      hash = m[1]!;
    }
    if (hash === undefined || !fn.url.startsWith('file:')) return hash;
    const url = fn.url;
    let written = this.#modules.get(hash);
    if (written === undefined) {
      written = (async () => {
        const code = await readFile(fileURLToPath(url));
        await this.#o.store.put([[moduleKey(hash), code]]);
        this.#stats.storeBytesOut += code.byteLength;
      })();
      this.#modules.set(hash, written);
      written.catch(() => this.#modules.delete(hash));
    }
    await written;
    return hash;
  }

  /** Invokes, waiting out throttles and trying a failed function again; a timeout is not tried again here. */
  async #invoke(invocation: DirectInvocation): Promise<DirectInvocationResult> {
    const body = JSON.stringify(invocation);
    for (let attempt = 0; ; attempt++) {
      const signal = this.#abort.signal;
      signal.throwIfAborted();
      this.#stats.invocations++;
      this.#stats.bytesOut += body.length;
      try {
        const { output, throttles } = await invokeWithRetry(this.#o.client, this.#o.functionName, 'RequestResponse', invocation, this.#o.retry, { signal });
        this.#stats.throttles += throttles;
        const text = Buffer.from(output.Payload ?? new Uint8Array()).toString();
        this.#stats.bytesIn += text.length;
        return JSON.parse(text) as DirectInvocationResult;
      } catch (error) {
        if (error instanceof LambdaThrottledError) {
          // Backpressure, not failure: wait and ask again, for as long as the worker lives.
          this.#stats.throttles += error.attempts;
          await sleep(this.#o.retry.maxMs, signal);
          attempt--;
          continue;
        }
        if (!(error instanceof LambdaFunctionError)) throw error;
        this.#stats.functionErrors++;
        this.#o.log(`an invocation of ${this.#o.functionName} failed (${error.errorType}): ${error.message}`);
        // A timeout would time out again: the core splits the batch and runs its tasks alone.
        if (error.errorType === 'Sandbox.Timedout' || attempt + 1 >= this.#o.attempts) throw error;
        await sleep(backoffDelay(attempt, this.#o.retry), signal);
      }
    }
  }

  /** Each task's value: from the answer, or from the store where the answer left it. */
  async #results(keys: readonly string[], inline: readonly (string | null)[]): Promise<unknown[]> {
    const results = new Array<unknown>(keys.length);
    const fetch: number[] = [];
    for (let i = 0; i < keys.length; i++) {
      const text = inline[i];
      if (typeof text === 'string') results[i] = fromBase64(text);
      else fetch.push(i);
    }
    if (fetch.length > 0) {
      const records = await this.#o.store.get(fetch.map((i) => keys[i]!));
      for (let j = 0; j < fetch.length; j++) {
        const record = records[j];
        if (record === undefined) throw new Error(`result ${keys[fetch[j]!]} is not in the store after its invocation`);
        this.#stats.storeBytesIn += record.byteLength;
        results[fetch[j]!] = decodeValue(record);
      }
    }
    return results;
  }
}

function lastKey(entry: NodeToRun): string {
  const node = nodeOf(entry);
  return node.stepKeys[node.stepKeys.length - 1]!;
}

function base64Length(bytes: number): number {
  return Math.ceil(bytes / 3) * 4;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
