// The local Lambda service, driven only through the official AWS SDK: the API's shapes and
// errors, its quotas, and execution environments that are real processes.
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  CreateFunctionCommand,
  DeleteFunctionCommand,
  GetAccountSettingsCommand,
  GetFunctionCommand,
  InvokeCommand,
  type LambdaClient,
  LambdaServiceException,
  ListFunctionsCommand,
  PutFunctionConcurrencyCommand,
  PutFunctionEventInvokeConfigCommand,
  ResourceNotFoundException,
  TooManyRequestsException,
  UpdateFunctionConfigurationCommand,
  waitUntilFunctionActiveV2,
  waitUntilFunctionUpdatedV2,
} from '@aws-sdk/client-lambda';
import { type LambdaService, startLambdaService, zipFiles } from '../helpers/lambda/index.js';
import { isAlive, sleep, until } from '../helpers/wait.js';
import { clientFor, createTestFunction, HANDLER_CJS, json, listeningInodes, parse, ROLE, skip, socketInodes, uniqueName } from './fixtures.js';

/** The error an SDK call rejected with, for asserting its name, status and fields. */
async function failure(promise: Promise<unknown>): Promise<LambdaServiceException> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof LambdaServiceException, `expected a service exception, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the call to fail');
}

void describe('local Lambda service through @aws-sdk/client-lambda', { skip }, () => {
  let service: LambdaService;
  let client: LambdaClient;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-lambda-test-'));
    service = await startLambdaService({
      concurrency: 3,
      idleTimeoutMs: 30_000,
      asyncRetry: { errorDelaysMs: [100, 200], throttleBaseMs: 50, throttleMaxMs: 200 },
    });
    client = clientFor(service);
  });

  after(async () => {
    (client as LambdaClient | undefined)?.destroy();
    await (service as LambdaService | undefined)?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  void test('create from a zip, wait until Active, invoke synchronously; the environment is reused warm', async () => {
    const name = uniqueName('echo');
    const created = await client.send(
      new CreateFunctionCommand({
        FunctionName: name,
        Runtime: 'nodejs20.x',
        Handler: 'index.handler',
        Role: ROLE,
        MemorySize: 512,
        Timeout: 30,
        Environment: { Variables: { GREETING: 'hello' } },
        Code: { ZipFile: await zipFiles({ 'index.mjs': (await import('./fixtures.js')).HANDLER_MJS }) },
      }),
    );
    assert.equal(created.State, 'Pending');
    assert.equal(created.FunctionArn, `arn:aws:lambda:${service.region}:${service.accountId}:function:${name}`);
    await waitUntilFunctionActiveV2({ client, maxWaitTime: 60, minDelay: 1 }, { FunctionName: name });
    const got = await client.send(new GetFunctionCommand({ FunctionName: name }));
    assert.equal(got.Configuration!.State, 'Active');
    assert.equal(got.Configuration!.LastUpdateStatus, 'Successful');
    assert.equal(got.Configuration!.MemorySize, 512);
    assert.equal(got.Configuration!.CodeSha256, created.CodeSha256);

    const first = await client.send(new InvokeCommand({ FunctionName: name, Payload: json({ op: 'echo', n: 1 }) }));
    assert.equal(first.StatusCode, 200);
    assert.equal(first.FunctionError, undefined);
    assert.equal(first.ExecutedVersion, '$LATEST');
    const out = parse(first.Payload) as { event: unknown; requestId: string; functionName: string; memoryLimitInMB: string; remaining: number; arn: string; pid: number; cwd: string; env: Record<string, string> };
    assert.deepStrictEqual(out.event, { op: 'echo', n: 1 });
    assert.equal(out.functionName, name);
    assert.equal(out.memoryLimitInMB, '512');
    assert.equal(out.arn, created.FunctionArn);
    assert.ok(out.remaining > 25_000 && out.remaining <= 30_000, `remaining ${out.remaining}`);
    assert.equal(out.cwd, out.env.LAMBDA_TASK_ROOT);
    assert.equal(out.env._HANDLER, 'index.handler');
    assert.equal(out.env.AWS_LAMBDA_FUNCTION_NAME, name);
    assert.equal(out.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE, '512');
    assert.equal(out.env.AWS_LAMBDA_FUNCTION_VERSION, '$LATEST');
    assert.equal(out.env.AWS_REGION, service.region);
    assert.equal(out.env.GREETING, 'hello');
    assert.notEqual(out.pid, process.pid);

    const second = parse((await client.send(new InvokeCommand({ FunctionName: name, Payload: json({ op: 'echo' }) }))).Payload) as { pid: number; requestId: string };
    assert.equal(second.pid, out.pid, 'the warm environment is reused');
    assert.notEqual(second.requestId, out.requestId);

    const qualified = await client.send(new InvokeCommand({ FunctionName: created.FunctionArn, Qualifier: '$LATEST', Payload: json({ op: 'echo' }) }));
    assert.equal(qualified.StatusCode, 200);
    const listed = await client.send(new ListFunctionsCommand({}));
    assert.ok(listed.Functions?.some((f) => f.FunctionName === name));
  });

  void test('a CommonJS handler (.js) runs too', async () => {
    const name = uniqueName('cjs');
    await createTestFunction(client, name, { Handler: 'app.handler', Code: { ZipFile: await zipFiles({ 'app.js': HANDLER_CJS }) } });
    const out = await client.send(new InvokeCommand({ FunctionName: name, Payload: json({ a: 2, b: 3 }) }));
    assert.deepStrictEqual((parse(out.Payload) as { cjs: boolean; sum: number }).sum, 5);
  });

  void test('a handler that throws: X-Amz-Function-Error, FunctionError and the error document', async () => {
    const name = uniqueName('throws');
    await createTestFunction(client, name);
    const out = await client.send(new InvokeCommand({ FunctionName: name, Payload: json({ op: 'throw', message: 'no such thing' }) }));
    assert.equal(out.StatusCode, 200);
    assert.equal(out.FunctionError, 'Unhandled');
    const doc = parse(out.Payload) as { errorType: string; errorMessage: string; trace: string[] };
    assert.equal(doc.errorType, 'TypeError');
    assert.equal(doc.errorMessage, 'no such thing');
    assert.ok(Array.isArray(doc.trace) && doc.trace[0]?.startsWith('TypeError: no such thing'));
    // The environment survives a handled error and serves the next invocation.
    const next = await client.send(new InvokeCommand({ FunctionName: name, Payload: json({ op: 'echo' }) }));
    assert.equal(next.FunctionError, undefined);
  });

  void test('Tail returns the end of the log in X-Amz-Log-Result', async () => {
    const name = uniqueName('tail');
    await createTestFunction(client, name);
    const out = await client.send(new InvokeCommand({ FunctionName: name, LogType: 'Tail', Payload: json({ op: 'echo' }) }));
    const logText = Buffer.from(out.LogResult ?? '', 'base64').toString();
    assert.match(logText, /^START RequestId: \S+ Version: \$LATEST/m);
    assert.match(logText, /^REPORT RequestId: \S+\tDuration: /m);
  });

  void test('a 7 MB synchronous payload is refused with 413', async () => {
    const name = uniqueName('big-sync');
    await createTestFunction(client, name);
    const payload = json({ op: 'echo', pad: 'x'.repeat(7 * 1024 * 1024) });
    const err = await failure(client.send(new InvokeCommand({ FunctionName: name, Payload: payload })));
    assert.equal(err.name, 'RequestEntityTooLargeException');
    assert.equal(err.$metadata.httpStatusCode, 413);
    assert.match(err.message, /Request must be smaller than 6291456 bytes for the InvokeFunction operation/);
  });

  void test('a 2 MB Event payload is refused with 413; 1 MB and less is accepted', async () => {
    const name = uniqueName('big-async');
    await createTestFunction(client, name);
    const payload = json({ op: 'echo', pad: 'x'.repeat(2 * 1024 * 1024) });
    const err = await failure(client.send(new InvokeCommand({ FunctionName: name, InvocationType: 'Event', Payload: payload })));
    assert.equal(err.name, 'RequestEntityTooLargeException');
    assert.equal(err.$metadata.httpStatusCode, 413);
    assert.match(err.message, /payload is too large for the Event invocation type \(limit 1048576 bytes\)/);
    const ok = await client.send(new InvokeCommand({ FunctionName: name, InvocationType: 'Event', Payload: json({ op: 'echo', pad: 'x'.repeat(900_000) }) }));
    assert.equal(ok.StatusCode, 202);
  });

  void test('a response over 6 MB becomes a function error', async () => {
    const name = uniqueName('big-response');
    await createTestFunction(client, name);
    const out = await client.send(new InvokeCommand({ FunctionName: name, Payload: json({ op: 'big', bytes: 7 * 1024 * 1024 }) }));
    assert.equal(out.FunctionError, 'Unhandled');
    const doc = parse(out.Payload) as { errorType: string; errorMessage: string };
    assert.equal(doc.errorType, 'Function.ResponseSizeTooLarge');
    assert.match(doc.errorMessage, /Response payload size exceeded maximum allowed payload size \(6291556 bytes\)/);
  });

  void test('packages over 50 MB zipped or 250 MB unzipped are refused', async () => {
    const random = randomFillSync(Buffer.alloc(60 * 1024 * 1024));
    const big = await zipFiles({ 'index.mjs': 'export const handler = async () => 1;', 'blob.bin': { data: random, store: true } });
    assert.ok(big.length > 60 * 1024 * 1024);
    const base = { Runtime: 'nodejs20.x' as const, Handler: 'index.handler', Role: ROLE };
    const zipped = await failure(client.send(new CreateFunctionCommand({ ...base, FunctionName: uniqueName('zipped'), Code: { ZipFile: big } })));
    assert.equal(zipped.name, 'RequestEntityTooLargeException');
    assert.equal(zipped.$metadata.httpStatusCode, 413);
    assert.match(zipped.message, /Zipped size must be smaller than 52428800 bytes/);

    // Zeros deflate a thousandfold: a small zip that unpacks past the quota.
    const bomb = await zipFiles({ 'index.mjs': 'export const handler = async () => 1;', 'zeros.bin': { data: Buffer.alloc(263 * 1024 * 1024), level: 1 } });
    assert.ok(bomb.length < 5 * 1024 * 1024);
    const unzipped = await failure(client.send(new CreateFunctionCommand({ ...base, FunctionName: uniqueName('unzipped'), Code: { ZipFile: bomb } })));
    assert.equal(unzipped.name, 'InvalidParameterValueException');
    assert.equal(unzipped.$metadata.httpStatusCode, 400);
    assert.match(unzipped.message, /Unzipped size must be smaller than 262144000 bytes/);

    const notZip = await failure(client.send(new CreateFunctionCommand({ ...base, FunctionName: uniqueName('notzip'), Code: { ZipFile: Buffer.from('not a zip') } })));
    assert.equal(notZip.name, 'InvalidParameterValueException');
  });

  void test('timeout, memory and names are checked at the door', async () => {
    const code = { ZipFile: await zipFiles({ 'index.mjs': 'export const handler = async () => 1;' }) };
    const base = { Runtime: 'nodejs20.x' as const, Handler: 'index.handler', Role: ROLE, Code: code };
    for (const bad of [{ Timeout: 0 }, { Timeout: 901 }, { MemorySize: 64 }, { MemorySize: 10_241 }]) {
      const err = await failure(client.send(new CreateFunctionCommand({ ...base, FunctionName: uniqueName('bad'), ...bad })));
      assert.equal(err.name, 'ValidationException', JSON.stringify(bad));
      assert.equal(err.$metadata.httpStatusCode, 400);
    }
    const reserved = await failure(client.send(new CreateFunctionCommand({ ...base, FunctionName: uniqueName('bad'), Environment: { Variables: { AWS_REGION: 'x' } } })));
    assert.equal(reserved.name, 'InvalidParameterValueException');
    const name = uniqueName('dup');
    await client.send(new CreateFunctionCommand({ ...base, FunctionName: name }));
    const dup = await failure(client.send(new CreateFunctionCommand({ ...base, FunctionName: name })));
    assert.equal(dup.name, 'ResourceConflictException');
    assert.equal(dup.$metadata.httpStatusCode, 409);
  });

  void test('an invocation that overruns its timeout is killed with its environment and reported', async () => {
    const name = uniqueName('timeout');
    await createTestFunction(client, name, { Timeout: 1 });
    const warm = parse((await client.send(new InvokeCommand({ FunctionName: name, Payload: json({ op: 'sleep', ms: 10 }) }))).Payload) as { pid: number };
    const started = performance.now();
    const out = await client.send(new InvokeCommand({ FunctionName: name, Payload: json({ op: 'sleep', ms: 10_000 }) }));
    const took = performance.now() - started;
    assert.equal(out.FunctionError, 'Unhandled');
    const doc = parse(out.Payload) as { errorType: string; errorMessage: string };
    assert.equal(doc.errorType, 'Sandbox.Timedout');
    assert.match(doc.errorMessage, /^RequestId: \S+ Error: Task timed out after 1\.00 seconds$/);
    // Well before the handler's own 10 s: the overrun was cut at the function's timeout.
    assert.ok(took < 9_000, `answered after ${took} ms`);
    await until(() => !isAlive(warm.pid), 'the timed-out environment is gone');
    const again = parse((await client.send(new InvokeCommand({ FunctionName: name, Payload: json({ op: 'sleep', ms: 10 }) }))).Payload) as { pid: number };
    assert.notEqual(again.pid, warm.pid, 'a fresh environment serves the next invocation');
  });

  void test('a handler that cannot be loaded fails the invocation with the init error, and the environment is destroyed', async () => {
    const name = uniqueName('noinit');
    await createTestFunction(client, name, { Handler: 'missing.handler' });
    const out = await client.send(new InvokeCommand({ FunctionName: name, Payload: json({ op: 'echo' }) }));
    assert.equal(out.FunctionError, 'Unhandled');
    const doc = parse(out.Payload) as { errorType: string; errorMessage: string };
    assert.equal(doc.errorType, 'Runtime.ImportModuleError');
    assert.match(doc.errorMessage, /missing/);
    await until(() => service.environments(name).length === 0, 'the failed environment is gone');
  });

  void test('UpdateFunctionConfiguration: new settings, fresh environments', async () => {
    const name = uniqueName('update');
    await createTestFunction(client, name);
    const before = parse((await client.send(new InvokeCommand({ FunctionName: name, Payload: json({ op: 'echo' }) }))).Payload) as { pid: number; memoryLimitInMB: string };
    assert.equal(before.memoryLimitInMB, '256');
    const updated = await client.send(new UpdateFunctionConfigurationCommand({ FunctionName: name, MemorySize: 1024, Environment: { Variables: { GREETING: 'updated' } } }));
    assert.equal(updated.LastUpdateStatus, 'InProgress');
    await waitUntilFunctionUpdatedV2({ client, maxWaitTime: 30, minDelay: 1 }, { FunctionName: name });
    const after = parse((await client.send(new InvokeCommand({ FunctionName: name, Payload: json({ op: 'echo' }) }))).Payload) as { pid: number; memoryLimitInMB: string; env: Record<string, string> };
    assert.equal(after.memoryLimitInMB, '1024');
    assert.equal(after.env.GREETING, 'updated');
    assert.notEqual(after.pid, before.pid);
    await until(() => !isAlive(before.pid), 'the environment with the old configuration ended');
  });

  void test('an invocation that outgrows MemorySize is killed as Runtime.OutOfMemory', async () => {
    const name = uniqueName('oom');
    await createTestFunction(client, name, { MemorySize: 128 });
    const out = await client.send(new InvokeCommand({ FunctionName: name, Payload: json({ op: 'grow', mb: 300 }) }));
    assert.equal(out.FunctionError, 'Unhandled');
    const doc = parse(out.Payload) as { errorType: string; errorMessage: string };
    assert.equal(doc.errorType, 'Runtime.OutOfMemory');
    assert.match(doc.errorMessage, /Runtime exited with error: signal: killed/);
    const fine = await client.send(new InvokeCommand({ FunctionName: name, Payload: json({ op: 'grow', mb: 10 }) }));
    assert.equal(fine.FunctionError, undefined);
  });

  void test('a runtime that exits mid-invocation is reported as Runtime.ExitError', async () => {
    const name = uniqueName('exit');
    await createTestFunction(client, name);
    const out = await client.send(new InvokeCommand({ FunctionName: name, Payload: json({ op: 'exit', code: 3 }) }));
    assert.equal(out.FunctionError, 'Unhandled');
    const doc = parse(out.Payload) as { errorType: string; errorMessage: string };
    assert.equal(doc.errorType, 'Runtime.ExitError');
    assert.match(doc.errorMessage, /Runtime exited with error: exit status 3/);
  });

  void test('synchronous invocations beyond the concurrency limit get 429 TooManyRequestsException', async () => {
    const name = uniqueName('throttle');
    await createTestFunction(client, name);
    const running = Array.from({ length: 3 }, () => client.send(new InvokeCommand({ FunctionName: name, Payload: json({ op: 'sleep', ms: 2_000 }) })));
    await until(() => service.environments(name).filter((e) => e.state !== 'idle').length === 3, 'three invocations in flight');
    const err = await failure(client.send(new InvokeCommand({ FunctionName: name, Payload: json({ op: 'echo' }) })));
    assert.ok(err instanceof TooManyRequestsException);
    assert.equal(err.$metadata.httpStatusCode, 429);
    assert.equal(err.Reason, 'ConcurrentInvocationLimitExceeded');
    const done = await Promise.all(running);
    assert.ok(done.every((r) => r.StatusCode === 200 && r.FunctionError === undefined));
    assert.equal(new Set(done.map((r) => (parse(r.Payload) as { pid: number }).pid)).size, 3, 'one environment per concurrent invocation');

    // Reserved concurrency caps one function below the account's limit.
    await client.send(new PutFunctionConcurrencyCommand({ FunctionName: name, ReservedConcurrentExecutions: 1 }));
    const one = client.send(new InvokeCommand({ FunctionName: name, Payload: json({ op: 'sleep', ms: 1_000 }) }));
    await until(() => service.environments(name).some((e) => e.state !== 'idle'), 'one invocation in flight');
    const reserved = await failure(client.send(new InvokeCommand({ FunctionName: name, Payload: json({ op: 'echo' }) })));
    assert.ok(reserved instanceof TooManyRequestsException);
    assert.equal(reserved.Reason, 'ReservedFunctionConcurrentInvocationLimitExceeded');
    await one;
    const settings = await client.send(new GetAccountSettingsCommand({}));
    assert.equal(settings.AccountLimit!.ConcurrentExecutions, 3);
    assert.equal(settings.AccountLimit!.UnreservedConcurrentExecutions, 2);
    await client.send(new DeleteFunctionCommand({ FunctionName: name }));
  });

  void test('an Event invocation runs later: 202 at once, the handler writes its file', async () => {
    const name = uniqueName('event');
    await createTestFunction(client, name);
    const file = join(dir, `${name}.jsonl`);
    const out = await client.send(new InvokeCommand({ FunctionName: name, InvocationType: 'Event', Payload: json({ op: 'record', file }) }));
    assert.equal(out.StatusCode, 202);
    const requestId = out.$metadata.requestId;
    assert.ok(requestId !== undefined);
    await until(() => readLines(file).length === 1, 'the event ran');
    assert.equal(readLines(file)[0]?.requestId, requestId, 'the handler saw the request id the API answered with');
  });

  void test('an Event whose handler fails is retried, twice by default', async () => {
    const name = uniqueName('retry');
    await createTestFunction(client, name);
    const file = join(dir, `${name}.jsonl`);
    const out = await client.send(new InvokeCommand({ FunctionName: name, InvocationType: 'Event', Payload: json({ op: 'record', file, failTimes: 2 }) }));
    const requestId = out.$metadata.requestId!;
    await until(() => readLines(file).length === 3, 'three attempts');
    await service.eventsDrained();
    assert.deepStrictEqual(readLines(file).map((l) => l.attempt), [1, 2, 3]);
    const mine = service.history.filter((r) => r.requestId === requestId && r.result !== 'throttled');
    assert.deepStrictEqual(mine.map((r) => r.result), ['function-error', 'function-error', 'success']);

    // MaximumRetryAttempts is 0 to 2; with 0 a failure is final.
    const outOfRange = await failure(client.send(new PutFunctionEventInvokeConfigCommand({ FunctionName: name, MaximumRetryAttempts: 3 })));
    assert.equal(outOfRange.name, 'ValidationException');
    await client.send(new PutFunctionEventInvokeConfigCommand({ FunctionName: name, MaximumRetryAttempts: 0 }));
    const once = await client.send(new InvokeCommand({ FunctionName: name, InvocationType: 'Event', Payload: json({ op: 'record', file, failTimes: 5 }) }));
    await until(() => service.history.some((r) => r.requestId === once.$metadata.requestId && r.result === 'discarded'), 'the event was discarded');
    assert.equal(readLines(file).filter((l) => l.requestId === once.$metadata.requestId).length, 1);
  });

  void test('Events throttled by the concurrency limit wait their turn and all run', async () => {
    const name = uniqueName('queue');
    await createTestFunction(client, name);
    const file = join(dir, `${name}.jsonl`);
    const ids = await Promise.all(
      Array.from({ length: 8 }, async () => (await client.send(new InvokeCommand({ FunctionName: name, InvocationType: 'Event', Payload: json({ op: 'record', file }) }))).$metadata.requestId),
    );
    await until(() => readLines(file).length === 8, 'all eight ran');
    await service.eventsDrained();
    assert.deepStrictEqual(new Set(readLines(file).map((l) => l.requestId)), new Set(ids));
    assert.ok(service.environments(name).length <= 3);
  });

  void test('duplicate delivery, when asked for, runs an Event twice with the same request id', async () => {
    const name = uniqueName('twice');
    await createTestFunction(client, name);
    const file = join(dir, `${name}.jsonl`);
    service.setDuplicateEvents((e) => e.functionName === name);
    try {
      const out = await client.send(new InvokeCommand({ FunctionName: name, InvocationType: 'Event', Payload: json({ op: 'record', file }) }));
      await until(() => readLines(file).length === 2, 'two deliveries');
      await service.eventsDrained();
      await sleep(200);
      const lines = readLines(file);
      assert.equal(lines.length, 2);
      assert.ok(lines.every((l) => l.requestId === out.$metadata.requestId));
    } finally {
      service.setDuplicateEvents(undefined);
    }
  });

  void test("the function's process listens on no port; it only dials out to the Runtime API", async () => {
    const name = uniqueName('nolisten');
    await createTestFunction(client, name);
    const out = parse((await client.send(new InvokeCommand({ FunctionName: name, Payload: json({ op: 'echo' }) }))).Payload) as { pid: number };
    const envs = service.environments(name);
    assert.equal(envs.length, 1);
    assert.equal(envs[0]!.pid, out.pid);
    const sockets = socketInodes(out.pid);
    assert.ok(sockets.size > 0, 'it holds its connection to the Runtime API');
    const listening = listeningInodes(out.pid);
    assert.ok(listening.size > 0, 'the namespace has listeners (the service itself), so the check can fail');
    assert.deepStrictEqual([...sockets].filter((inode) => listening.has(inode)), []);
  });

  void test('DeleteFunction, then Invoke → ResourceNotFoundException, and its environments are gone', async () => {
    const name = uniqueName('deleted');
    await createTestFunction(client, name);
    const { pid } = parse((await client.send(new InvokeCommand({ FunctionName: name, Payload: json({ op: 'echo' }) }))).Payload) as { pid: number };
    await client.send(new DeleteFunctionCommand({ FunctionName: name }));
    const err = await failure(client.send(new InvokeCommand({ FunctionName: name, Payload: json({ op: 'echo' }) })));
    assert.ok(err instanceof ResourceNotFoundException);
    assert.equal(err.$metadata.httpStatusCode, 404);
    assert.match(err.message, new RegExp(`Function not found: arn:aws:lambda:${service.region}:${service.accountId}:function:${name}`));
    await until(() => !isAlive(pid), 'its environment ended');
    assert.ok((await failure(client.send(new GetFunctionCommand({ FunctionName: name })))) instanceof ResourceNotFoundException);
  });
});

void describe('local Lambda service: idle environments', { skip }, () => {
  void test('an environment idle past idleTimeoutMs is destroyed; the next invocation starts cold', async () => {
    const service = await startLambdaService({ idleTimeoutMs: 300 });
    const client = clientFor(service);
    try {
      const name = uniqueName('idle');
      await createTestFunction(client, name);
      const first = parse((await client.send(new InvokeCommand({ FunctionName: name, Payload: json({ op: 'echo' }) }))).Payload) as { pid: number };
      await until(() => !isAlive(first.pid), 'the idle environment ended');
      assert.equal(service.environments(name).length, 0);
      const second = parse((await client.send(new InvokeCommand({ FunctionName: name, Payload: json({ op: 'echo' }) }))).Payload) as { pid: number };
      assert.notEqual(second.pid, first.pid);
    } finally {
      client.destroy();
      await service.close();
    }
  });

  void test('close() ends every environment and frees the port', async () => {
    const service = await startLambdaService();
    const client = clientFor(service);
    const name = uniqueName('close');
    await createTestFunction(client, name);
    const running = client.send(new InvokeCommand({ FunctionName: name, Payload: json({ op: 'sleep', ms: 5_000 }) })).catch(() => undefined);
    await until(() => service.environments(name).some((e) => e.state === 'busy'), 'an invocation in flight');
    const pids = service.environments().map((e) => e.pid!);
    await service.close();
    await running;
    client.destroy();
    assert.ok(pids.every((pid) => !isAlive(pid)));
    await assert.rejects(fetch(`${service.endpoint}/2015-03-31/functions`));
  });
});

void describe('local Lambda service: authentication', { skip }, () => {
  let service: LambdaService;

  before(async () => {
    service = await startLambdaService({ credentials: [{ accessKeyId: 'AKIDGOOD', secretAccessKey: 'good-secret' }] });
  });
  after(async () => {
    await (service as LambdaService | undefined)?.close();
  });

  void test('a request without a SigV4 Authorization header is refused', async () => {
    const res = await fetch(`${service.endpoint}/2015-03-31/functions/`);
    assert.equal(res.status, 403);
    assert.equal(res.headers.get('x-amzn-errortype'), 'MissingAuthenticationTokenException');
  });

  void test('configured credentials: signatures are verified', async () => {
    const good = clientFor(service, { accessKeyId: 'AKIDGOOD', secretAccessKey: 'good-secret' });
    const wrongSecret = clientFor(service, { accessKeyId: 'AKIDGOOD', secretAccessKey: 'bad-secret' });
    const unknownKey = clientFor(service, { accessKeyId: 'AKIDOTHER', secretAccessKey: 'good-secret' });
    try {
      const name = uniqueName('signed');
      await createTestFunction(good, name);
      const out = await good.send(new InvokeCommand({ FunctionName: name, Qualifier: '$LATEST', Payload: json({ op: 'echo' }) }));
      assert.equal(out.StatusCode, 200);
      assert.equal((await failure(wrongSecret.send(new GetFunctionCommand({ FunctionName: name })))).name, 'InvalidSignatureException');
      assert.equal((await failure(unknownKey.send(new GetFunctionCommand({ FunctionName: name })))).name, 'UnrecognizedClientException');
    } finally {
      good.destroy();
      wrongSecret.destroy();
      unknownKey.destroy();
    }
  });
});

interface RecordLine {
  requestId: string;
  attempt: number;
  pid: number;
}

function readLines(file: string): RecordLine[] {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as RecordLine);
  } catch {
    return [];
  }
}
