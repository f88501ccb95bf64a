/**
 * A local Lambda service: the Lambda API (version 2015-03-31, REST-JSON, as the AWS SDK v3
 * speaks it) on a free port, with Lambda's documented quotas, running every execution
 * environment as its own process through AWS's Node.js runtime interface client.
 *
 * ```ts
 * const lambda = await startLambdaService({ concurrency: 4 });
 * const client = new LambdaClient({ endpoint: lambda.endpoint, region: lambda.region, credentials });
 * // CreateFunction, waitUntilFunctionActiveV2, Invoke (RequestResponse | Event | DryRun), …
 * await lambda.close();
 * ```
 *
 * Operations: CreateFunction (Code.ZipFile), GetFunction, GetFunctionConfiguration,
 * UpdateFunctionConfiguration (Timeout, MemorySize, Environment, Handler), DeleteFunction,
 * ListFunctions, Invoke, Put/Get/DeleteFunctionConcurrency,
 * Put/Update/Get/DeleteFunctionEventInvokeConfig, GetAccountSettings. Only `$LATEST` exists:
 * no versions, aliases, layers, URLs or event source mappings.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EnvironmentState, Outcome } from './environment.js';
import { readLimited } from './environment.js';
import { conflict, functionNotFound, invalidParameter, LambdaApiError, notFound, throttled, tooLarge, validationError } from './errors.js';
import { type EventRecord, EventQueue, type QueuedEvent, type RetryPolicy } from './events.js';
import {
  ARCHITECTURES,
  ASYNC_REQUEST_LIMIT,
  CREATE_FUNCTION_REQUEST_LIMIT,
  INIT_TIMEOUT_MS,
  MAX_EVENT_AGE_MAX_S,
  MAX_EVENT_AGE_MIN_S,
  MAX_RETRY_ATTEMPTS_MAX,
  MEMORY_DEFAULT_MB,
  MEMORY_MAX_MB,
  MEMORY_MIN_MB,
  RUNTIMES,
  SYNC_REQUEST_LIMIT,
  TIMEOUT_DEFAULT_S,
  TIMEOUT_MAX_S,
  TIMEOUT_MIN_S,
} from './limits.js';
import { DEFAULT_PACKAGE_LIMITS, installPackage, type PackageLimits } from './package.js';
import { EnvironmentPool, type PoolFunction, type RunResult } from './pool.js';
import { findRuntimeClient } from './runtime-client.js';
import { type Credentials, parseAuthorization, verifySignature } from './sigv4.js';

export interface LambdaServiceOptions {
  /** Port to listen on; default 0 (a free one). */
  readonly port?: number;
  readonly host?: string;
  readonly region?: string;
  readonly accountId?: string;
  /** The account's concurrency limit (ConcurrentExecutions). Default 10; AWS's default is 1,000. */
  readonly concurrency?: number;
  /** Reserved concurrency may not leave less than this unreserved. AWS: 100. Default 0. */
  readonly minimumUnreservedConcurrency?: number;
  /** How long a warm environment is kept idle before it is destroyed. Default 60 s. */
  readonly idleTimeoutMs?: number;
  /** How long a new function stays Pending before it becomes Active. Default 100 ms. */
  readonly activationDelayMs?: number;
  /** Freeze environments (SIGSTOP) between invocations, as Lambda does. Default true. */
  readonly freeze?: boolean;
  readonly initTimeoutMs?: number;
  /** Async retry timing; shrink it for tests. Default: Lambda's (60 s and 120 s after errors, 1 s… 5 min after throttles). */
  readonly asyncRetry?: Partial<RetryPolicy>;
  /** Deliver these Event invocations twice (at-least-once delivery, made to happen). */
  readonly duplicateEvents?: DuplicatePredicate;
  /** When given, only these access keys are accepted and signatures are verified. */
  readonly credentials?: readonly Credentials[];
  /** The execution role's credentials handed to environments. */
  readonly roleCredentials?: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken: string };
  /** The runtime interface client's entry point; default: the one scripts/lambda/ensure.sh built. */
  readonly runtimeClient?: string;
  readonly packageLimits?: Partial<PackageLimits>;
  /** Where function code is unpacked; default a temporary directory removed on close. */
  readonly dataDir?: string;
  /** Every log line of every environment (its output and the platform's START/END/REPORT). */
  readonly log?: (functionName: string, line: string) => void;
}

export type DuplicatePredicate = (event: { readonly functionName: string; readonly requestId: string; readonly payload: Buffer }) => boolean;

export interface InvocationRecord {
  readonly requestId: string;
  readonly functionName: string;
  readonly invocationType: 'RequestResponse' | 'Event';
  /** For events: the attempt (1, 2, 3) and which delivery of a duplicated event (0 or 1). */
  readonly attempt: number;
  readonly copy: number;
  readonly result: 'success' | 'function-error' | 'throttled' | 'discarded';
  readonly errorType?: string | undefined;
  readonly detail?: string | undefined;
  readonly at: number;
}

export interface EnvironmentInfo {
  readonly id: string;
  readonly functionName: string;
  readonly pid: number | undefined;
  readonly state: EnvironmentState;
  readonly invocations: number;
  readonly initDurationMs: number | undefined;
}

export interface LambdaService {
  /** `http://host:port`, for the SDK's `endpoint`. */
  readonly endpoint: string;
  readonly port: number;
  readonly region: string;
  readonly accountId: string;
  /** Live execution environments. */
  environments(functionName?: string): EnvironmentInfo[];
  /** Every invocation attempt, in order. */
  readonly history: readonly InvocationRecord[];
  /** Resolves when no Event invocation is queued or running. */
  eventsDrained(): Promise<void>;
  /** The last lines a function's environments printed. */
  logs(functionName: string): readonly string[];
  setDuplicateEvents(predicate: DuplicatePredicate | undefined): void;
  /** Destroys every environment, drops queued events, stops listening, removes the code. Idempotent. */
  close(): Promise<void>;
}

interface EventInvokeConfig {
  maximumRetryAttempts: number | undefined;
  maximumEventAgeS: number | undefined;
  lastModified: number;
}

interface FunctionRecord {
  readonly name: string;
  readonly arn: string;
  readonly runtime: string;
  readonly role: string;
  handler: string;
  description: string;
  timeoutS: number;
  memoryMB: number;
  variables: Record<string, string>;
  readonly architectures: string[];
  readonly codeSize: number;
  readonly codeSha256: string;
  readonly dir: string;
  state: 'Pending' | 'Active' | 'Inactive' | 'Failed';
  lastUpdateStatus: 'InProgress' | 'Successful' | 'Failed' | undefined;
  lastModified: string;
  revisionId: string;
  reserved: number | undefined;
  eventConfig: EventInvokeConfig | undefined;
  readonly tags: Record<string, string>;
  activation: NodeJS.Timeout | undefined;
}

const RESERVED_VARIABLES = new Set([
  '_HANDLER', '_X_AMZN_TRACE_ID', 'AWS_DEFAULT_REGION', 'AWS_REGION', 'AWS_EXECUTION_ENV', 'AWS_LAMBDA_FUNCTION_NAME',
  'AWS_LAMBDA_FUNCTION_MEMORY_SIZE', 'AWS_LAMBDA_FUNCTION_VERSION', 'AWS_LAMBDA_INITIALIZATION_TYPE', 'AWS_LAMBDA_LOG_GROUP_NAME',
  'AWS_LAMBDA_LOG_STREAM_NAME', 'AWS_ACCESS_KEY', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN',
  'AWS_LAMBDA_RUNTIME_API', 'LAMBDA_TASK_ROOT', 'LAMBDA_RUNTIME_DIR',
]);
const ROLE_PATTERN = /^arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role\/?[a-zA-Z_0-9+=,.@\-/]+$/;
const NAME_PATTERN = /^[a-zA-Z0-9_-]{1,64}$/;
const LOG_LINES_KEPT = 500;

/** Lambda's timestamp format for LastModified: 2026-01-02T03:04:05.678+0000. */
const lambdaTime = (ms: number): string => new Date(ms).toISOString().replace('Z', '+0000');

function positiveInt(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw new TypeError(`options.${name} must be a non-negative integer`);
  return value;
}

export async function startLambdaService(options: LambdaServiceOptions = {}): Promise<LambdaService> {
  const runtimeClient = options.runtimeClient ?? findRuntimeClient();
  if (runtimeClient === undefined) throw new Error("AWS's runtime interface client is not built: run scripts/lambda/ensure.sh");
  const region = options.region ?? 'us-east-1';
  const accountId = options.accountId ?? '123456789012';
  if (!/^\d{12}$/.test(accountId)) throw new TypeError('options.accountId must be 12 digits');
  const accountLimit = positiveInt('concurrency', options.concurrency, 10);
  if (accountLimit < 1) throw new TypeError('options.concurrency must be at least 1');
  const minimumUnreserved = positiveInt('minimumUnreservedConcurrency', options.minimumUnreservedConcurrency, 0);
  const idleTimeoutMs = positiveInt('idleTimeoutMs', options.idleTimeoutMs, 60_000);
  const activationDelayMs = positiveInt('activationDelayMs', options.activationDelayMs, 100);
  const initTimeoutMs = positiveInt('initTimeoutMs', options.initTimeoutMs, INIT_TIMEOUT_MS);
  const retry: RetryPolicy = {
    errorDelaysMs: options.asyncRetry?.errorDelaysMs ?? [60_000, 120_000],
    throttleBaseMs: options.asyncRetry?.throttleBaseMs ?? 1_000,
    throttleMaxMs: options.asyncRetry?.throttleMaxMs ?? 300_000,
  };
  const packageLimits: PackageLimits = { ...DEFAULT_PACKAGE_LIMITS, ...options.packageLimits };
  const roleCredentials = options.roleCredentials ?? { accessKeyId: 'ASIALOCALLAMBDAROLE0', secretAccessKey: randomBytes(20).toString('base64'), sessionToken: randomBytes(32).toString('base64') };
  const ownDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'tessera-lambda-'));
  let duplicateEvents = options.duplicateEvents;

  const functions = new Map<string, FunctionRecord>();
  const history: InvocationRecord[] = [];
  const logLines = new Map<string, string[]>();
  const arnOf = (name: string): string => `arn:aws:lambda:${region}:${accountId}:function:${name}`;

  const log = (functionName: string, line: string): void => {
    let lines = logLines.get(functionName);
    if (lines === undefined) logLines.set(functionName, (lines = []));
    lines.push(line);
    if (lines.length > LOG_LINES_KEPT) lines.splice(0, lines.length - LOG_LINES_KEPT);
    options.log?.(functionName, line);
  };

  const reservedTotal = (): number => {
    let n = 0;
    for (const f of functions.values()) n += f.reserved ?? 0;
    return n;
  };

  const poolFunction = (f: FunctionRecord): PoolFunction => ({
    name: f.name,
    reserved: f.reserved,
    spec: () => ({
      functionName: f.name,
      functionArn: f.arn,
      handler: f.handler,
      runtime: f.runtime,
      memoryMB: f.memoryMB,
      timeoutS: f.timeoutS,
      taskRoot: join(f.dir, 'task'),
      region,
      variables: f.variables,
      credentials: roleCredentials,
    }),
  });

  const pool = new EnvironmentPool({
    accountLimit,
    idleTimeoutMs,
    reservedTotal,
    onCapacity: () => queue.pump(),
    environment: { runtimeClient, freeze: options.freeze ?? true, initTimeoutMs, log },
  });

  const traceId = (): string => `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${randomBytes(12).toString('hex')};Parent=${randomBytes(8).toString('hex')};Sampled=0`;

  const startInvocation = (f: FunctionRecord, requestId: string, payload: Buffer, trace: string, clientContext: string | undefined, tail: boolean): RunResult =>
    pool.run(poolFunction(f), { requestId, payload, traceId: trace, clientContext, tail });

  const queue = new EventQueue(
    {
      config: (name) => {
        const f = functions.get(name);
        if (f === undefined) return undefined;
        return { maximumRetryAttempts: f.eventConfig?.maximumRetryAttempts ?? MAX_RETRY_ATTEMPTS_MAX, maximumEventAgeS: f.eventConfig?.maximumEventAgeS ?? MAX_EVENT_AGE_MAX_S };
      },
      start: (event) => {
        const f = functions.get(event.functionName)!;
        return startInvocation(f, event.requestId, event.payload, event.traceId, undefined, false);
      },
      record: (r: EventRecord) => {
        const base = { requestId: r.event.requestId, functionName: r.event.functionName, invocationType: 'Event' as const, copy: r.event.copy, at: Date.now() };
        switch (r.kind) {
          case 'ran':
            history.push({ ...base, attempt: r.attempt, result: r.outcome.ok ? 'success' : 'function-error', errorType: r.outcome.ok ? undefined : r.outcome.errorType });
            break;
          case 'throttled':
            history.push({ ...base, attempt: r.event.attempts + 1, result: 'throttled', detail: r.reason });
            break;
          case 'discarded':
            history.push({ ...base, attempt: r.event.attempts, result: 'discarded', detail: r.why });
            break;
        }
      },
    },
    retry,
  );

  // ---- control plane -------------------------------------------------------------------

  const configuration = (f: FunctionRecord): Record<string, unknown> => ({
    FunctionName: f.name,
    FunctionArn: f.arn,
    Runtime: f.runtime,
    Role: f.role,
    Handler: f.handler,
    CodeSize: f.codeSize,
    Description: f.description,
    Timeout: f.timeoutS,
    MemorySize: f.memoryMB,
    LastModified: f.lastModified,
    CodeSha256: f.codeSha256,
    Version: '$LATEST',
    ...(Object.keys(f.variables).length > 0 ? { Environment: { Variables: f.variables } } : {}),
    TracingConfig: { Mode: 'PassThrough' },
    RevisionId: f.revisionId,
    State: f.state,
    ...(f.state === 'Pending' ? { StateReason: 'The function is being created.', StateReasonCode: 'Creating' } : {}),
    ...(f.lastUpdateStatus !== undefined ? { LastUpdateStatus: f.lastUpdateStatus } : {}),
    ...(f.lastUpdateStatus === 'InProgress' ? { LastUpdateStatusReason: 'The function is being updated.', LastUpdateStatusReasonCode: 'Updating' } : {}),
    PackageType: 'Zip',
    Architectures: f.architectures,
    EphemeralStorage: { Size: 512 },
    SnapStart: { ApplyOn: 'None', OptimizationStatus: 'Off' },
    LoggingConfig: { LogFormat: 'Text', LogGroup: `/aws/lambda/${f.name}` },
  });

  /** FunctionName as a name, a full ARN or a partial ARN, with an optional qualifier. */
  const resolveName = (raw: string, qualifier: string | null): { name: string; qualifier: string | null } => {
    let name = raw;
    let q = qualifier;
    const full = /^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):(\d{12}):function:([a-zA-Z0-9_-]+)(?::([^:]+))?$/.exec(raw);
    const partial = /^(\d{12}):function:([a-zA-Z0-9_-]+)(?::([^:]+))?$/.exec(raw);
    if (full !== null) {
      name = full[3]!;
      q = full[4] ?? q;
      if (full[1] !== region || full[2] !== accountId) throw functionNotFound(raw);
    } else if (partial !== null) {
      name = partial[2]!;
      q = partial[3] ?? q;
      if (partial[1] !== accountId) throw functionNotFound(raw);
    } else if (!NAME_PATTERN.test(raw)) {
      throw validationError([`Value '${raw}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?`]);
    }
    return { name, qualifier: q };
  };

  const lookup = (raw: string, qualifier: string | null = null): FunctionRecord => {
    const { name, qualifier: q } = resolveName(raw, qualifier);
    const f = functions.get(name);
    if (f === undefined) throw functionNotFound(arnOf(name));
    if (q !== null && q !== '$LATEST') throw functionNotFound(`${arnOf(name)}:${q}`);
    return f;
  };

  const checkVariables = (variables: unknown): Record<string, string> => {
    if (variables === undefined || variables === null) return {};
    if (typeof variables !== 'object') throw invalidParameter('Environment.Variables must be a map of strings');
    const out: Record<string, string> = {};
    const reserved: string[] = [];
    for (const [k, v] of Object.entries(variables as Record<string, unknown>)) {
      if (!/^[a-zA-Z]([a-zA-Z0-9_])+$/.test(k)) throw validationError([`Value at 'environment.variables' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]`]);
      if (RESERVED_VARIABLES.has(k)) reserved.push(k);
      out[k] = String(v);
    }
    if (reserved.length > 0) {
      throw invalidParameter(
        `Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: ${reserved.join(',')}`,
      );
    }
    const size = Buffer.byteLength(JSON.stringify(out));
    if (size > 4096) {
      throw invalidParameter(`Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: ${JSON.stringify(out)}`);
    }
    return out;
  };

  const checkRanges = (input: { Timeout?: unknown; MemorySize?: unknown }, problems: string[]): void => {
    const { Timeout, MemorySize } = input;
    if (Timeout !== undefined && (typeof Timeout !== 'number' || !Number.isInteger(Timeout) || Timeout < TIMEOUT_MIN_S)) {
      problems.push(`Value '${show(Timeout)}' at 'timeout' failed to satisfy constraint: Member must have value greater than or equal to ${TIMEOUT_MIN_S}`);
    } else if (typeof Timeout === 'number' && Timeout > TIMEOUT_MAX_S) {
      problems.push(`Value '${Timeout}' at 'timeout' failed to satisfy constraint: Member must have value less than or equal to ${TIMEOUT_MAX_S}`);
    }
    if (MemorySize !== undefined && (typeof MemorySize !== 'number' || !Number.isInteger(MemorySize) || MemorySize < MEMORY_MIN_MB)) {
      problems.push(`Value '${show(MemorySize)}' at 'memorySize' failed to satisfy constraint: Member must have value greater than or equal to ${MEMORY_MIN_MB}`);
    } else if (typeof MemorySize === 'number' && MemorySize > MEMORY_MAX_MB) {
      problems.push(`Value '${MemorySize}' at 'memorySize' failed to satisfy constraint: Member must have value less than or equal to ${MEMORY_MAX_MB}`);
    }
  };

  const createFunction = async (body: Buffer, length: number, overflow: boolean): Promise<[number, unknown]> => {
    if (overflow) throw tooLarge(`Request must be smaller than ${CREATE_FUNCTION_REQUEST_LIMIT} bytes for the CreateFunction operation`);
    const input = parseJson(body) as Record<string, unknown>;
    const problems: string[] = [];
    const name = input.FunctionName;
    if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
      problems.push(`Value '${show(name)}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9-_]+ and length 1 to 64`);
    }
    const role = input.Role;
    if (typeof role !== 'string' || !ROLE_PATTERN.test(role)) {
      problems.push(`Value '${show(role)}' at 'role' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+`);
    }
    const handler = input.Handler;
    if (handler !== undefined && (typeof handler !== 'string' || !/^[^\s]{1,128}$/.test(handler))) {
      problems.push(`Value '${show(handler)}' at 'handler' failed to satisfy constraint: Member must satisfy regular expression pattern: [^\\s]+`);
    }
    checkRanges(input, problems);
    if (problems.length > 0) throw validationError(problems);
    const fname = name as string;
    if (functions.has(fname)) throw conflict(`Function already exist: ${fname}`);
    const runtime = input.Runtime;
    if (input.PackageType !== undefined && input.PackageType !== 'Zip') throw invalidParameter('Only PackageType Zip is supported by this service');
    if (typeof runtime !== 'string' || !(RUNTIMES as readonly string[]).includes(runtime)) {
      throw invalidParameter(`The runtime parameter of ${show(runtime)} is not supported by this service; supported runtimes: ${RUNTIMES.join(', ')}`);
    }
    if (typeof handler !== 'string') throw invalidParameter('Handler is required for a function whose PackageType is Zip');
    const architectures = (input.Architectures as unknown[] | undefined) ?? ['x86_64'];
    if (!Array.isArray(architectures) || architectures.length !== 1 || !(ARCHITECTURES as readonly unknown[]).includes(architectures[0])) {
      throw invalidParameter(`Architectures must hold exactly one of ${ARCHITECTURES.join(', ')}`);
    }
    const variables = checkVariables((input.Environment as { Variables?: unknown } | undefined)?.Variables);
    const code = input.Code as { ZipFile?: unknown; S3Bucket?: unknown; ImageUri?: unknown } | undefined;
    if (code === undefined || typeof code.ZipFile !== 'string') {
      throw invalidParameter('Code.ZipFile is required: this service takes deployment packages uploaded directly (no S3, no images)');
    }
    const zip = Buffer.from(code.ZipFile, 'base64');
    // The package's own quota is checked before the request's, so an oversized package is named as such.
    if (zip.length > packageLimits.zipped) throw tooLarge(`Zipped size must be smaller than ${packageLimits.zipped} bytes`);
    if (length > CREATE_FUNCTION_REQUEST_LIMIT) throw tooLarge(`Request must be smaller than ${CREATE_FUNCTION_REQUEST_LIMIT} bytes for the CreateFunction operation`);
    const dir = join(dataDir, `${fname}-${randomBytes(4).toString('hex')}`);
    let info;
    try {
      info = await installPackage(zip, join(dir, 'task'), packageLimits);
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    if (functions.has(fname)) {
      rmSync(dir, { recursive: true, force: true });
      throw conflict(`Function already exist: ${fname}`);
    }
    writeFileSync(join(dir, 'code.zip'), zip);
    const description = typeof input.Description === 'string' ? input.Description : '';
    const now = Date.now();
    const f: FunctionRecord = {
      name: fname,
      arn: arnOf(fname),
      runtime,
      role: role as string,
      handler,
      description,
      timeoutS: (input.Timeout as number | undefined) ?? TIMEOUT_DEFAULT_S,
      memoryMB: (input.MemorySize as number | undefined) ?? MEMORY_DEFAULT_MB,
      variables,
      architectures: architectures as string[],
      codeSize: info.codeSize,
      codeSha256: info.codeSha256,
      dir,
      state: 'Pending',
      lastUpdateStatus: undefined,
      lastModified: lambdaTime(now),
      revisionId: randomUUID(),
      reserved: undefined,
      eventConfig: undefined,
      tags: (input.Tags as Record<string, string> | undefined) ?? {},
      activation: undefined,
    };
    functions.set(fname, f);
    f.activation = setTimeout(() => {
      f.activation = undefined;
      f.state = 'Active';
      f.lastUpdateStatus = 'Successful';
      f.revisionId = randomUUID();
    }, activationDelayMs);
    return [201, configuration(f)];
  };

  const updateConfiguration = (f: FunctionRecord, body: Buffer): [number, unknown] => {
    const input = parseJson(body) as Record<string, unknown>;
    const problems: string[] = [];
    checkRanges(input, problems);
    if (input.Handler !== undefined && (typeof input.Handler !== 'string' || !/^[^\s]{1,128}$/.test(input.Handler))) {
      problems.push(`Value '${show(input.Handler)}' at 'handler' failed to satisfy constraint: Member must satisfy regular expression pattern: [^\\s]+`);
    }
    if (problems.length > 0) throw validationError(problems);
    if (f.state !== 'Active' || f.lastUpdateStatus === 'InProgress') {
      throw conflict(`The operation cannot be performed at this time. An update is in progress for resource: ${f.arn}`);
    }
    if (input.RevisionId !== undefined && input.RevisionId !== f.revisionId) {
      throw new LambdaApiError(412, 'PreconditionFailedException', 'The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id');
    }
    if (typeof input.Timeout === 'number') f.timeoutS = input.Timeout;
    if (typeof input.MemorySize === 'number') f.memoryMB = input.MemorySize;
    if (typeof input.Handler === 'string') f.handler = input.Handler;
    if (typeof input.Description === 'string') f.description = input.Description;
    if (input.Environment !== undefined) f.variables = checkVariables((input.Environment as { Variables?: unknown }).Variables);
    f.lastModified = lambdaTime(Date.now());
    f.revisionId = randomUUID();
    f.lastUpdateStatus = 'InProgress';
    // New configuration, new environments: the warm ones ran the old one.
    pool.dropFunction(f.name, 'configuration updated');
    f.activation = setTimeout(() => {
      f.activation = undefined;
      f.lastUpdateStatus = 'Successful';
    }, activationDelayMs);
    return [200, configuration(f)];
  };

  const deleteFunction = (f: FunctionRecord): [number, unknown] => {
    functions.delete(f.name);
    if (f.activation !== undefined) clearTimeout(f.activation);
    pool.dropFunction(f.name, 'function deleted');
    rmSync(f.dir, { recursive: true, force: true });
    queue.pump();
    return [204, undefined];
  };

  const listFunctions = (url: URL): [number, unknown] => {
    const maxItems = Number(url.searchParams.get('MaxItems') ?? '50');
    if (!Number.isInteger(maxItems) || maxItems < 1 || maxItems > 10_000) {
      throw validationError([`Value '${show(maxItems)}' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 10000`]);
    }
    const names = [...functions.keys()].sort();
    const marker = url.searchParams.get('Marker');
    let start = 0;
    if (marker !== null && marker !== '') {
      const from = Buffer.from(marker, 'base64url').toString();
      start = names.findIndex((n) => n > from);
      if (start === -1) start = names.length;
    }
    const page = names.slice(start, start + maxItems);
    const more = start + maxItems < names.length;
    return [200, { Functions: page.map((n) => configuration(functions.get(n)!)), ...(more ? { NextMarker: Buffer.from(page.at(-1)!).toString('base64url') } : {}) }];
  };

  const putConcurrency = (f: FunctionRecord, body: Buffer): [number, unknown] => {
    const input = parseJson(body) as { ReservedConcurrentExecutions?: unknown };
    const n = input.ReservedConcurrentExecutions;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) {
      throw validationError([`Value '${show(n)}' at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must have value greater than or equal to 0`]);
    }
    const others = reservedTotal() - (f.reserved ?? 0);
    if (accountLimit - others - n < minimumUnreserved) {
      throw invalidParameter(`Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [${minimumUnreserved}].`);
    }
    f.reserved = n;
    queue.pump();
    return [200, { ReservedConcurrentExecutions: n }];
  };

  const eventConfigBody = (f: FunctionRecord): Record<string, unknown> => {
    const c = f.eventConfig!;
    return {
      LastModified: c.lastModified / 1000,
      FunctionArn: `${f.arn}:$LATEST`,
      ...(c.maximumRetryAttempts !== undefined ? { MaximumRetryAttempts: c.maximumRetryAttempts } : {}),
      ...(c.maximumEventAgeS !== undefined ? { MaximumEventAgeInSeconds: c.maximumEventAgeS } : {}),
      DestinationConfig: { OnSuccess: {}, OnFailure: {} },
    };
  };

  const putEventConfig = (f: FunctionRecord, body: Buffer, merge: boolean): [number, unknown] => {
    const input = parseJson(body) as { MaximumRetryAttempts?: unknown; MaximumEventAgeInSeconds?: unknown; DestinationConfig?: unknown };
    const problems: string[] = [];
    const r = input.MaximumRetryAttempts;
    if (r !== undefined && (typeof r !== 'number' || !Number.isInteger(r) || r < 0 || r > MAX_RETRY_ATTEMPTS_MAX)) {
      problems.push(`Value '${show(r)}' at 'maximumRetryAttempts' failed to satisfy constraint: Member must have value between 0 and ${MAX_RETRY_ATTEMPTS_MAX}`);
    }
    const a = input.MaximumEventAgeInSeconds;
    if (a !== undefined && (typeof a !== 'number' || !Number.isInteger(a) || a < MAX_EVENT_AGE_MIN_S || a > MAX_EVENT_AGE_MAX_S)) {
      problems.push(`Value '${show(a)}' at 'maximumEventAgeInSeconds' failed to satisfy constraint: Member must have value between ${MAX_EVENT_AGE_MIN_S} and ${MAX_EVENT_AGE_MAX_S}`);
    }
    if (problems.length > 0) throw validationError(problems);
    const destinations = input.DestinationConfig as { OnSuccess?: { Destination?: unknown }; OnFailure?: { Destination?: unknown } } | undefined;
    if (destinations?.OnSuccess?.Destination !== undefined || destinations?.OnFailure?.Destination !== undefined) {
      throw invalidParameter('Destinations are not supported by this service');
    }
    if (merge && f.eventConfig === undefined) throw notFound(`The function ${f.arn} doesn't have an EventInvokeConfig`);
    const previous = merge ? f.eventConfig : undefined;
    f.eventConfig = {
      maximumRetryAttempts: (r as number | undefined) ?? previous?.maximumRetryAttempts,
      maximumEventAgeS: (a as number | undefined) ?? previous?.maximumEventAgeS,
      lastModified: Date.now(),
    };
    return [200, eventConfigBody(f)];
  };

  const accountSettings = (): [number, unknown] => {
    let total = 0;
    for (const f of functions.values()) total += f.codeSize;
    return [
      200,
      {
        AccountLimit: {
          TotalCodeSize: 80_530_636_800,
          CodeSizeUnzipped: packageLimits.unzipped,
          CodeSizeZipped: packageLimits.zipped,
          ConcurrentExecutions: accountLimit,
          UnreservedConcurrentExecutions: accountLimit - reservedTotal(),
        },
        AccountUsage: { TotalCodeSize: total, FunctionCount: functions.size },
      },
    ];
  };

  // ---- data plane ----------------------------------------------------------------------

  const invoke = async (req: IncomingMessage, res: ServerResponse, f: FunctionRecord, requestId: string, body: Buffer, length: number, overflow: boolean): Promise<void> => {
    const typeHeader = req.headers['x-amz-invocation-type'];
    const type = typeof typeHeader === 'string' && typeHeader !== '' ? typeHeader : 'RequestResponse';
    if (type !== 'RequestResponse' && type !== 'Event' && type !== 'DryRun') {
      throw validationError([`Value '${type}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]`]);
    }
    if (overflow) throw tooLarge(`Request must be smaller than ${SYNC_REQUEST_LIMIT} bytes for the InvokeFunction operation`);
    if (type === 'Event' && length > ASYNC_REQUEST_LIMIT) throw tooLarge(`${length} byte payload is too large for the Event invocation type (limit ${ASYNC_REQUEST_LIMIT} bytes)`);
    const payload = length === 0 ? Buffer.from('{}') : body;
    try {
      JSON.parse(payload.toString());
    } catch {
      throw new LambdaApiError(400, 'InvalidRequestContentException', 'Could not parse request body into json: Could not parse payload into json');
    }
    if (f.state !== 'Active') {
      throw conflict(`The operation cannot be performed at this time. The function is currently in the following state: ${f.state}`);
    }
    if (type === 'DryRun') { send(res, 204, requestId, undefined); return; }
    const trace = traceId();
    if (type === 'Event') {
      const event = (copy: number): QueuedEvent => ({ requestId, functionName: f.name, payload, traceId: trace, enqueuedAt: Date.now(), copy, attempts: 0, throttles: 0, notBefore: 0 });
      queue.push(event(0));
      if (duplicateEvents?.({ functionName: f.name, requestId, payload }) === true) queue.push(event(1));
      send(res, 202, requestId, undefined); return;
    }
    let clientContext: string | undefined;
    const cc = req.headers['x-amz-client-context'];
    if (typeof cc === 'string' && cc !== '') clientContext = Buffer.from(cc, 'base64').toString();
    const tail = req.headers['x-amz-log-type'] === 'Tail';
    const started = startInvocation(f, requestId, payload, trace, clientContext, tail);
    const base = { requestId, functionName: f.name, invocationType: 'RequestResponse' as const, attempt: 1, copy: 0 };
    if ('throttled' in started) {
      history.push({ ...base, result: 'throttled', detail: started.throttled, at: Date.now() });
      throw throttled(started.throttled);
    }
    let outcome: Outcome;
    try {
      outcome = await started.outcome;
    } catch (err) {
      throw new LambdaApiError(500, 'ServiceException', `The environment could not start: ${String(err)}`);
    }
    history.push({ ...base, result: outcome.ok ? 'success' : 'function-error', errorType: outcome.ok ? undefined : outcome.errorType, at: Date.now() });
    const headers: Record<string, string> = { 'X-Amz-Executed-Version': '$LATEST', 'Content-Type': 'application/json' };
    if (!outcome.ok) headers['X-Amz-Function-Error'] = 'Unhandled';
    if (tail && outcome.log !== undefined) headers['X-Amz-Log-Result'] = Buffer.from(outcome.log).toString('base64');
    send(res, 200, requestId, outcome.body, headers);
  };

  // ---- HTTP ----------------------------------------------------------------------------

  const bodyLimit = (method: string, path: string): number => {
    if (method === 'POST' && /\/invocations$/.test(path)) return SYNC_REQUEST_LIMIT;
    // A CreateFunction request is read whole up to well past its quota, so the package's own size can be named.
    if (method === 'POST' && path === '/2015-03-31/functions') return Math.ceil((packageLimits.zipped * 4) / 3) * 2 + 1_000_000;
    return 1_000_000;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    const path = url.pathname.replace(/\/+$/, '');
    const auth = parseAuthorization(req);
    const { body, overflow, length } = await readLimited(req, bodyLimit(method, path));
    if (options.credentials !== undefined) {
      if (overflow) throw tooLarge('Request too large to verify');
      verifySignature(req, body, auth, options.credentials);
    }
    const segments = path.split('/').slice(1).map(decodeURIComponent);
    const [version, collection, rawName, sub, more] = segments;
    const qualifier = url.searchParams.get('Qualifier');
    const reply = (r: [number, unknown]): void => send(res, r[0], requestId, r[1] === undefined ? undefined : Buffer.from(JSON.stringify(r[1])));

    if (version === '2016-08-19' && collection === 'account-settings' && rawName === undefined && method === 'GET') { reply(accountSettings()); return; }
    if (collection !== 'functions' || more !== undefined) throw new LambdaApiError(404, 'UnknownOperationException', `Unknown operation ${method} ${path}`);
    if (version === '2015-03-31' && rawName === undefined) {
      if (method === 'POST') { reply(await createFunction(body, length, overflow)); return; }
      if (method === 'GET') { reply(listFunctions(url)); return; }
    }
    if (rawName === undefined) throw new LambdaApiError(404, 'UnknownOperationException', `Unknown operation ${method} ${path}`);
    const op = `${method} ${version ?? ''} ${sub ?? ''}`;
    switch (op) {
      case 'POST 2015-03-31 invocations':
        return invoke(req, res, lookup(rawName, qualifier), requestId, body, length, overflow);
      case 'GET 2015-03-31 ': {
        const f = lookup(rawName, qualifier);
        reply([
          200,
          {
            Configuration: configuration(f),
            Code: { RepositoryType: 'S3', Location: `${endpoint}/_local/code/${encodeURIComponent(f.name)}` },
            ...(f.reserved !== undefined ? { Concurrency: { ReservedConcurrentExecutions: f.reserved } } : {}),
            ...(Object.keys(f.tags).length > 0 ? { Tags: f.tags } : {}),
          },
        ]); return;
      }
      case 'GET 2015-03-31 configuration':
        { reply([200, configuration(lookup(rawName, qualifier))]); return; }
      case 'PUT 2015-03-31 configuration':
        { reply(updateConfiguration(lookup(rawName), body)); return; }
      case 'DELETE 2015-03-31 ':
        { reply(deleteFunction(lookup(rawName, qualifier))); return; }
      case 'PUT 2017-10-31 concurrency':
        { reply(putConcurrency(lookup(rawName), body)); return; }
      case 'DELETE 2017-10-31 concurrency': {
        const f = lookup(rawName);
        f.reserved = undefined;
        queue.pump();
        reply([204, undefined]); return;
      }
      case 'GET 2019-09-30 concurrency': {
        const f = lookup(rawName);
        reply([200, f.reserved === undefined ? {} : { ReservedConcurrentExecutions: f.reserved }]); return;
      }
      case 'PUT 2019-09-25 event-invoke-config':
        { reply(putEventConfig(lookup(rawName, qualifier), body, false)); return; }
      case 'POST 2019-09-25 event-invoke-config':
        { reply(putEventConfig(lookup(rawName, qualifier), body, true)); return; }
      case 'GET 2019-09-25 event-invoke-config': {
        const f = lookup(rawName, qualifier);
        if (f.eventConfig === undefined) throw notFound(`The function ${f.arn} doesn't have an EventInvokeConfig`);
        reply([200, eventConfigBody(f)]); return;
      }
      case 'DELETE 2019-09-25 event-invoke-config': {
        const f = lookup(rawName, qualifier);
        if (f.eventConfig === undefined) throw notFound(`The function ${f.arn} doesn't have an EventInvokeConfig`);
        f.eventConfig = undefined;
        reply([204, undefined]); return;
      }
      default:
        throw new LambdaApiError(404, 'UnknownOperationException', `Unknown operation ${method} ${path}`);
    }
  };

  const server: Server = createServer((req, res) => {
    const requestId = randomUUID();
    // The code's "presigned" location is served without a signature, like a presigned S3 URL.
    const codeMatch = /^\/_local\/code\/([^/?]+)$/.exec(req.url ?? '');
    if (req.method === 'GET' && codeMatch !== null) {
      req.resume();
      const f = functions.get(decodeURIComponent(codeMatch[1]!));
      if (f === undefined) { send(res, 404, requestId, undefined); return; }
      send(res, 200, requestId, readFileSync(join(f.dir, 'code.zip')), { 'Content-Type': 'application/zip' }); return;
    }
    handle(req, res, requestId).catch((err: unknown) => {
      const apiError = err instanceof LambdaApiError ? err : new LambdaApiError(500, 'ServiceException', `Internal error: ${String(err)}`);
      if (!res.headersSent) {
        res.setHeader('x-amzn-ErrorType', apiError.type);
        for (const [k, v] of Object.entries(apiError.headers)) res.setHeader(k, v);
        send(res, apiError.status, requestId, Buffer.from(apiError.body()));
      } else {
        res.destroy();
      }
      // A request whose body was not read (an auth failure) must not leave the client writing.
      req.resume();
    });
  });
  // Longer than any pause in a test or benchmark: a client that reuses a connection just as the
  // server drops it sees ECONNRESET, and tests run the SDK with retries off.
  server.keepAliveTimeout = 120_000;
  server.requestTimeout = 0;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port, address } = server.address() as AddressInfo;
  const endpoint = `http://${address.includes(':') ? `[${address}]` : address}:${port}`;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      queue.close();
      for (const f of functions.values()) if (f.activation !== undefined) clearTimeout(f.activation);
      server.close();
      server.closeAllConnections();
      await pool.close();
      if (ownDataDir) rmSync(dataDir, { recursive: true, force: true });
    })());

  return {
    endpoint,
    port,
    region,
    accountId,
    environments: (functionName) =>
      pool.environments(functionName).map((env) => ({
        id: env.id,
        functionName: env.spec.functionName,
        pid: env.pid,
        state: env.state,
        invocations: env.invocations,
        initDurationMs: env.initDurationMs,
      })),
    history,
    eventsDrained: () => queue.drained(),
    logs: (functionName) => logLines.get(functionName) ?? [],
    setDuplicateEvents: (predicate) => {
      duplicateEvents = predicate;
    },
    close,
  };
}

/** A request value as the API quotes it back in a validation message. */
function show(value: unknown): string {
  if (value === undefined) return 'null';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function parseJson(body: Buffer): unknown {
  try {
    const value = JSON.parse(body.length === 0 ? '{}' : body.toString()) as unknown;
    if (typeof value !== 'object' || value === null) throw new Error('not an object');
    return value;
  } catch {
    throw new LambdaApiError(400, 'SerializationException', 'Could not parse the request body as a JSON object');
  }
}

function send(res: ServerResponse, status: number, requestId: string, body: Buffer | undefined, headers: Record<string, string> = {}): void {
  res.statusCode = status;
  res.setHeader('x-amzn-RequestId', requestId);
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  if (body !== undefined && status !== 204) {
    if (!res.hasHeader('Content-Type')) res.setHeader('Content-Type', 'application/json');
    res.setHeader('Content-Length', body.length);
    res.end(body);
  } else {
    res.setHeader('Content-Length', 0);
    res.end();
  }
}
