/**
 * Invoking with backpressure: a 429 (TooManyRequestsException: the account's concurrency
 * or the scaling rate is used up) is waited out with exponential backoff and full jitter,
 * a bounded number of times; payloads over Lambda's limits are refused before they are
 * sent; a function error becomes a LambdaFunctionError naming Lambda's error type.
 */
import { InvokeCommand, type InvokeCommandOutput, type LambdaClient } from '@aws-sdk/client-lambda';
import { InvalidArgumentError } from '../../errors.js';
import { LambdaFunctionError, LambdaPayloadTooLargeError, LambdaThrottledError } from './errors.js';
import { MAX_ASYNC_PAYLOAD_BYTES, MAX_SYNC_PAYLOAD_BYTES } from './limits.js';

export interface RetryOptions {
  /** Attempts in all, the first included (default 8). */
  readonly attempts?: number;
  /** First delay's ceiling, ms (default 100). */
  readonly baseMs?: number;
  /** Largest delay, ms (default 10,000). */
  readonly maxMs?: number;
}

export interface ResolvedRetry {
  readonly attempts: number;
  readonly baseMs: number;
  readonly maxMs: number;
}

export function resolveRetry(options: RetryOptions = {}, where = 'retry'): ResolvedRetry {
  const attempts = options.attempts ?? 8;
  const baseMs = options.baseMs ?? 100;
  const maxMs = options.maxMs ?? 10_000;
  if (!Number.isInteger(attempts) || attempts < 1) throw new InvalidArgumentError(`${where}.attempts must be a positive integer`);
  if (!(baseMs > 0)) throw new InvalidArgumentError(`${where}.baseMs must be a positive number of milliseconds`);
  if (!(maxMs >= baseMs)) throw new InvalidArgumentError(`${where}.maxMs must be at least baseMs`);
  return { attempts, baseMs, maxMs };
}

/** The delay before attempt `attempt + 1` (attempt counts from 0): full jitter under a doubling ceiling. Pure. */
export function backoffDelay(attempt: number, retry: ResolvedRetry, random: () => number = Math.random): number {
  const ceiling = Math.min(retry.maxMs, retry.baseMs * 2 ** attempt);
  return Math.floor(random() * ceiling);
}

/** Whether Lambda refused the call for lack of capacity (and it should be retried later). */
export function isThrottle(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { name?: unknown; $metadata?: { httpStatusCode?: unknown } };
  return e.name === 'TooManyRequestsException' || e.$metadata?.httpStatusCode === 429;
}

export type InvocationType = 'Event' | 'RequestResponse';

/** Payload bytes allowed for an invocation type. */
export function payloadLimit(type: InvocationType): number {
  return type === 'Event' ? MAX_ASYNC_PAYLOAD_BYTES : MAX_SYNC_PAYLOAD_BYTES;
}

export interface InvokeResult {
  readonly output: InvokeCommandOutput;
  /** 429s waited out before it went through. */
  readonly throttles: number;
}

/**
 * Invokes `functionName` with a JSON payload, retrying throttles. Throws
 * LambdaPayloadTooLargeError (nothing sent), LambdaThrottledError (every attempt throttled),
 * LambdaFunctionError (the function failed), or the SDK's error for anything else.
 */
export async function invokeWithRetry(
  client: LambdaClient,
  functionName: string,
  type: InvocationType,
  payload: unknown,
  retry: ResolvedRetry,
  options: { readonly signal?: AbortSignal; readonly random?: () => number; readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void> } = {},
): Promise<InvokeResult> {
  const body = Buffer.from(JSON.stringify(payload));
  const limit = payloadLimit(type);
  if (body.byteLength > limit) {
    throw new LambdaPayloadTooLargeError(
      `the ${type} invocation's payload is ${body.byteLength} bytes, over Lambda's ${limit}-byte limit: pass store keys, not values`,
      body.byteLength,
      limit,
    );
  }
  const sleep = options.sleep ?? delay;
  let throttles = 0;
  for (let attempt = 0; ; attempt++) {
    options.signal?.throwIfAborted();
    let output: InvokeCommandOutput;
    try {
      output = await client.send(new InvokeCommand({ FunctionName: functionName, InvocationType: type, Payload: body }), options.signal === undefined ? {} : { abortSignal: options.signal });
    } catch (error) {
      if (!isThrottle(error)) throw error;
      throttles++;
      if (attempt + 1 >= retry.attempts) {
        throw new LambdaThrottledError(`Lambda throttled ${functionName} on all ${retry.attempts} attempts (TooManyRequestsException): raise the concurrency limit or lower the backend's concurrency`, retry.attempts, { cause: error });
      }
      await sleep(backoffDelay(attempt, retry, options.random), options.signal);
      continue;
    }
    if (output.FunctionError !== undefined) {
      const { errorType, errorMessage } = parseFunctionError(output.Payload);
      throw new LambdaFunctionError(`${functionName} failed (${errorType}): ${errorMessage}`, errorType);
    }
    return { output, throttles };
  }
}

function parseFunctionError(payload: Uint8Array | undefined): { errorType: string; errorMessage: string } {
  try {
    const parsed = JSON.parse(Buffer.from(payload ?? new Uint8Array()).toString()) as { errorType?: unknown; errorMessage?: unknown };
    return { errorType: typeof parsed.errorType === 'string' ? parsed.errorType : 'Unhandled', errorMessage: typeof parsed.errorMessage === 'string' ? parsed.errorMessage : '' };
  } catch {
    return { errorType: 'Unhandled', errorMessage: Buffer.from(payload ?? new Uint8Array()).toString().slice(0, 500) };
  }
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    }, { once: true });
  });
}
