/**
 * One Lambda function per package: looked up by its content-addressed name, created when
 * missing, and waited on until Active. Creating a function that another process created
 * meanwhile is not an error: both then wait for the same function.
 */
import { createHash } from 'node:crypto';
import { CreateFunctionCommand, GetFunctionCommand, type LambdaClient, type Runtime, waitUntilFunctionActiveV2 } from '@aws-sdk/client-lambda';
import { TesseraError } from '../../errors.js';
import type { Log } from '../../log.js';
import { buildWorkerPackage, type WorkerPackage } from './package.js';

export interface FunctionConfig {
  /** The execution role's ARN. */
  readonly role: string;
  readonly memoryMB: number;
  /** Seconds. */
  readonly timeout: number;
  /** Default 'nodejs20.x'. */
  readonly runtime: string;
  readonly architecture: 'x86_64' | 'arm64';
  /** Seconds to wait for the function to become Active. */
  readonly activeTimeout: number;
}

export interface EnsuredFunction {
  readonly name: string;
  /** Whether this call created it (false: it was there already). */
  readonly created: boolean;
  readonly ms: number;
}

/**
 * The function's name: the prefix and a hash of the package and the settings it is created
 * with, so that a function is never reused with another timeout, memory size or role.
 */
export function functionNameFor(pkg: WorkerPackage, config: FunctionConfig): string {
  const settings = [pkg.hash, config.role, config.memoryMB, config.timeout, config.runtime, config.architecture];
  return `${pkg.prefix}-${createHash('sha256').update(JSON.stringify(settings)).digest('hex').slice(0, 16)}`;
}

export async function ensureFunction(client: LambdaClient, pkg: WorkerPackage, config: FunctionConfig): Promise<EnsuredFunction> {
  const started = performance.now();
  const name = functionNameFor(pkg, config);
  let created = false;
  const existing = await getFunction(client, name);
  if (existing === undefined) {
    try {
      await client.send(
        new CreateFunctionCommand({
          FunctionName: name,
          Runtime: config.runtime as Runtime,
          Handler: pkg.handler,
          Role: config.role,
          MemorySize: config.memoryMB,
          Timeout: config.timeout,
          Architectures: [config.architecture],
          Code: { ZipFile: pkg.zip },
          Description: `Tessera worker, package ${pkg.hash}`,
        }),
      );
      created = true;
    } catch (error) {
      if ((error as { name?: unknown }).name !== 'ResourceConflictException') throw error;
    }
  } else if (existing === 'Failed') {
    throw new TesseraError(`the Lambda function ${name} exists but is in state Failed; delete it and try again`, 'ERR_LAMBDA_FUNCTION_FAILED');
  }
  const waited = await waitUntilFunctionActiveV2({ client, maxWaitTime: config.activeTimeout, minDelay: 1, maxDelay: 5 }, { FunctionName: name });
  if ((waited.state as string) !== 'SUCCESS') {
    throw new TesseraError(`the Lambda function ${name} did not become Active within ${config.activeTimeout} s (${waited.state})`, 'ERR_LAMBDA_FUNCTION_FAILED');
  }
  return { name, created, ms: performance.now() - started };
}

async function getFunction(client: LambdaClient, name: string): Promise<string | undefined> {
  try {
    const out = await client.send(new GetFunctionCommand({ FunctionName: name }));
    return out.Configuration?.State ?? 'Active';
  } catch (error) {
    if ((error as { name?: unknown }).name === 'ResourceNotFoundException') return undefined;
    throw error;
  }
}

/** What a backend says about its function, in either mode. */
export interface FunctionSettings {
  readonly role: string;
  readonly memoryMB: number;
  readonly timeout: number;
  readonly modules?: readonly string[] | undefined;
  readonly functionPrefix?: string | undefined;
  readonly runtime?: string | undefined;
  readonly architecture?: 'x86_64' | 'arm64' | undefined;
}

/**
 * The package built (the modules' functions bundled with the handler) and its function
 * created if it is not there yet, Active: what both modes do before their first invocation.
 */
export async function prepareFunction(client: LambdaClient, settings: FunctionSettings, log: Log): Promise<{ pkg: WorkerPackage; fn: EnsuredFunction }> {
  const pkg = await buildWorkerPackage({
    ...(settings.modules === undefined ? {} : { modules: settings.modules }),
    ...(settings.functionPrefix === undefined ? {} : { prefix: settings.functionPrefix }),
  });
  const fn = await ensureFunction(client, pkg, {
    role: settings.role,
    memoryMB: settings.memoryMB,
    timeout: settings.timeout,
    runtime: settings.runtime ?? 'nodejs20.x',
    architecture: settings.architecture ?? 'x86_64',
    activeTimeout: 300,
  });
  log.info(`${fn.created ? 'created' : 'using'} function ${fn.name}`, { zippedBytes: pkg.zippedBytes, ms: Math.round(fn.ms) });
  return { pkg, fn };
}
