/**
 * A local Lambda service for tests and benchmarks: Lambda's HTTP API and quotas, execution
 * environments as processes running AWS's Node.js runtime interface client.
 *
 * ```ts
 * import { LambdaClient, CreateFunctionCommand, InvokeCommand, waitUntilFunctionActiveV2 } from '@aws-sdk/client-lambda';
 * import { startLambdaService, zipFiles } from '../helpers/lambda/index.js';
 *
 * const lambda = await startLambdaService({ concurrency: 4 });
 * const client = new LambdaClient({ endpoint: lambda.endpoint, region: lambda.region, credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
 * await client.send(new CreateFunctionCommand({ FunctionName: 'f', Runtime: 'nodejs20.x', Handler: 'index.handler', Role, Code: { ZipFile: await zipFiles({ 'index.mjs': src }) } }));
 * await waitUntilFunctionActiveV2({ client, maxWaitTime: 30 }, { FunctionName: 'f' });
 * const out = await client.send(new InvokeCommand({ FunctionName: 'f', Payload: Buffer.from('{}') }));
 * await lambda.close();
 * ```
 */
export { type DuplicatePredicate, type EnvironmentInfo, type InvocationRecord, type LambdaService, type LambdaServiceOptions, startLambdaService } from './service.js';
export { findRuntimeClient, runtimeClientMissing, RIC_VERSION } from './runtime-client.js';
export { zipFiles, type ZipEntry } from './zip.js';
export * as limits from './limits.js';
