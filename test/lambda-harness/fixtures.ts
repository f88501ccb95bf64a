/**
 * What the Lambda service tests share: a client on the service, a test function's package,
 * and the suite around Tessera on Lambda (the service, Redis, clusters and backends started
 * and stopped for a describe block).
 */
import { CreateFunctionCommand, type CreateFunctionCommandInput, LambdaClient, waitUntilFunctionActiveV2 } from '@aws-sdk/client-lambda';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { after, before } from 'node:test';
import { Client, LocalCluster, RedisStore } from '../../src/index.js';
import { type LambdaBackend, lambdaBackend, type LambdaBackendOptions } from '../../src/deploy/lambda/backend.js';
import { type LambdaService, type LambdaServiceOptions, runtimeClientMissing, startLambdaService, zipFiles } from '../helpers/lambda/index.js';
import { type RedisServer, redisMissing, startRedis } from '../helpers/redis.js';

/** Under CI a missing runtime interface client fails these tests instead of skipping them. */
export const skip = process.env.CI === 'true' ? false : runtimeClientMissing;
/** The same, for tests that need redis-server too. */
export const skipWithRedis = process.env.CI === 'true' ? false : runtimeClientMissing || redisMissing;

export const ROLE = 'arn:aws:iam::123456789012:role/tessera-test';
export const CREDENTIALS = { accessKeyId: 'AKIDTESSERATEST', secretAccessKey: 'tessera-test-secret' };

/** One attempt per call: the SDK's own retries would hide the throttles and errors under test. */
export function clientFor(service: LambdaService, credentials = CREDENTIALS): LambdaClient {
  return new LambdaClient({ endpoint: service.endpoint, region: service.region, credentials, maxAttempts: 1 });
}

/** An ESM handler that does what the event's `op` says. */
export const HANDLER_MJS = `
import { appendFileSync, existsSync, readFileSync } from 'node:fs';

const attemptsSoFar = (file, id) =>
  existsSync(file) ? readFileSync(file, 'utf8').split('\\n').filter((line) => line.includes(id)).length : 0;

export const handler = async (event, context) => {
  switch (event.op) {
    case 'echo':
      return {
        event,
        requestId: context.awsRequestId,
        functionName: context.functionName,
        memoryLimitInMB: context.memoryLimitInMB,
        remaining: context.getRemainingTimeInMillis(),
        arn: context.invokedFunctionArn,
        pid: process.pid,
        cwd: process.cwd(),
        env: {
          LAMBDA_TASK_ROOT: process.env.LAMBDA_TASK_ROOT,
          _HANDLER: process.env._HANDLER,
          AWS_LAMBDA_FUNCTION_NAME: process.env.AWS_LAMBDA_FUNCTION_NAME,
          AWS_LAMBDA_FUNCTION_MEMORY_SIZE: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
          AWS_LAMBDA_FUNCTION_VERSION: process.env.AWS_LAMBDA_FUNCTION_VERSION,
          AWS_REGION: process.env.AWS_REGION,
          GREETING: process.env.GREETING,
        },
      };
    case 'throw':
      throw new TypeError(event.message);
    case 'sleep':
      await new Promise((resolve) => setTimeout(resolve, event.ms));
      return { pid: process.pid };
    case 'big':
      return 'x'.repeat(event.bytes);
    case 'grow': {
      const kept = [];
      for (let i = 0; i < event.mb; i++) kept.push(Buffer.alloc(1024 * 1024, 1));
      await new Promise((resolve) => setTimeout(resolve, 2000));
      return kept.length;
    }
    case 'record': {
      const n = attemptsSoFar(event.file, context.awsRequestId);
      appendFileSync(event.file, JSON.stringify({ requestId: context.awsRequestId, attempt: n + 1, pid: process.pid }) + '\\n');
      if (n < (event.failTimes ?? 0)) throw new Error('failing attempt ' + (n + 1));
      return 'recorded';
    }
    case 'exit':
      process.exit(event.code ?? 1);
  }
  throw new Error('unknown op ' + event.op);
};
`;

/** A CommonJS handler, as `app.js` with Handler `app.handler`. */
export const HANDLER_CJS = `
exports.handler = async (event, context) => ({ cjs: true, sum: event.a + event.b, requestId: context.awsRequestId });
`;

let counter = 0;
export const uniqueName = (prefix: string): string => `${prefix}-${process.pid}-${++counter}`;

/** Creates a function from the ESM handler and waits until it is Active. */
export async function createTestFunction(client: LambdaClient, name: string, extra: Partial<CreateFunctionCommandInput> = {}): Promise<void> {
  await client.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: 'nodejs20.x',
      Handler: 'index.handler',
      Role: ROLE,
      Timeout: 10,
      MemorySize: 256,
      Code: { ZipFile: await zipFiles({ 'index.mjs': HANDLER_MJS }) },
      ...extra,
    }),
  );
  await waitUntilFunctionActiveV2({ client, maxWaitTime: 60, minDelay: 1 }, { FunctionName: name });
}

export const json = (value: unknown): Uint8Array => Buffer.from(JSON.stringify(value));

export const parse = (payload: Uint8Array | undefined): unknown => JSON.parse(Buffer.from(payload ?? new Uint8Array()).toString()) as unknown;

/** Inodes of the sockets a process holds open. */
export function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m !== null) inodes.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  return inodes;
}

/** Inodes of every listening TCP socket in the process's network namespace. */
export function listeningInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  for (const table of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      // st 0A is TCP_LISTEN; the inode is the tenth column.
      if (cols[3] === '0A' && cols[9] !== undefined) inodes.add(cols[9]);
    }
  }
  return inodes;
}

/** Something the suite closes after its tests, newest first. */
interface Closable {
  close(): Promise<unknown>;
}

export interface LambdaSuite {
  readonly service: LambdaService;
  /** Only when the suite was asked for Redis. */
  readonly redis: RedisServer;
  /** Closes `resource` after the suite's tests (newest first); returns it. */
  track<T extends Closable>(resource: T): T;
  /** A Redis store on the suite's Redis, its keys under `prefix`. */
  store(prefix: string): Promise<RedisStore>;
  /** A local cluster (quiet, no dashboard) and a client on it. */
  cluster(workers: number, options?: { readonly store?: RedisStore; readonly log?: false | ((line: string) => void) }): Promise<{ cluster: LocalCluster; client: Client }>;
  /** A worker-mode backend on the suite's service for `cluster`, with the tests' settings. */
  burst(cluster: LocalCluster, options?: Partial<LambdaBackendOptions>): LambdaBackend;
}

/**
 * Registers, in the enclosing describe block, the start of a local Lambda service (and of
 * Redis, with `redis: true`) before its tests, and the close of everything tracked after.
 */
export function lambdaSuite(options: { readonly redis?: boolean; readonly service?: LambdaServiceOptions } = {}): LambdaSuite {
  let service: LambdaService | undefined;
  let redis: RedisServer | undefined;
  const tracked: Closable[] = [];

  before(async () => {
    [service, redis] = await Promise.all([
      startLambdaService({
        concurrency: 8,
        idleTimeoutMs: 20_000,
        asyncRetry: { errorDelaysMs: [200, 400], throttleBaseMs: 50, throttleMaxMs: 200 },
        ...options.service,
      }),
      options.redis === true ? startRedis() : undefined,
    ]);
  });

  after(async () => {
    for (const r of tracked.reverse()) await r.close().catch(() => undefined);
    await service?.close();
    await redis?.stop();
  });

  const suite: LambdaSuite = {
    get service(): LambdaService {
      if (service === undefined) throw new Error('the Lambda service starts before the tests');
      return service;
    },
    get redis(): RedisServer {
      if (redis === undefined) throw new Error('this suite was not asked for Redis');
      return redis;
    },
    track<T extends Closable>(resource: T): T {
      tracked.push(resource);
      return resource;
    },
    async store(prefix) {
      return suite.track(await RedisStore.connect(suite.redis.url, { prefix, commandTimeoutMs: 5000 }));
    },
    async cluster(workers, o = {}) {
      const cluster = suite.track(await LocalCluster.start({ workers, dashboard: false, log: o.log ?? false, ...(o.store === undefined ? {} : { store: o.store }) }));
      const client = suite.track(await Client.connect(cluster.address));
      return { cluster, client };
    },
    burst(cluster, o = {}) {
      return suite.track(
        lambdaBackend({
          scheduler: cluster.address,
          role: ROLE,
          endpoint: suite.service.endpoint,
          region: suite.service.region,
          credentials: CREDENTIALS,
          memoryMB: 512,
          timeout: 120,
          startTimeout: 30_000,
          log: false,
          ...o,
        }),
      );
    },
  };
  return suite;
}
