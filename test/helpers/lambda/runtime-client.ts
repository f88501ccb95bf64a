/**
 * Where AWS's Node.js runtime interface client lives on this machine. Every execution
 * environment runs it, as Lambda's Node runtimes do: it loads the handler, long-polls the
 * Runtime API for events and posts results and errors back, through the native client that
 * AWS builds on aws-lambda-cpp. It is built once by scripts/lambda/ensure.sh into the cache
 * (its native part takes minutes to compile) rather than into the project's node_modules.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const RIC_VERSION = process.env.TESSERA_LAMBDA_RIC_VERSION ?? '3.3.0';

/** The directory scripts/lambda/ensure.sh builds into. */
export function ricDir(): string {
  const cache = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache');
  return join(cache, 'tessera', 'lambda', `ric-${RIC_VERSION}`);
}

/** The client's entry point (`aws-lambda-ric HANDLER`), or undefined when it has not been built. */
export function findRuntimeClient(): string | undefined {
  const override = process.env.TESSERA_LAMBDA_RIC;
  if (override !== undefined && override !== '') return existsSync(override) ? override : undefined;
  const dir = ricDir();
  const entry = join(dir, 'node_modules', 'aws-lambda-ric', 'bin', 'index.mjs');
  return existsSync(join(dir, '.complete')) && existsSync(entry) ? entry : undefined;
}

/** Why tests of the local Lambda service cannot run, or false when they can. */
export const runtimeClientMissing: string | false =
  findRuntimeClient() === undefined ? `AWS's runtime interface client is not built (run scripts/lambda/ensure.sh): Lambda service tests skipped` : false;
