// Invoking with backpressure, the pure parts: the backoff, what counts as a throttle, the
// payload limits checked before anything is sent, and the event a function accepts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { LambdaPayloadTooLargeError } from '../../../src/deploy/lambda/errors.js';
import { parseWorkerInvocation } from '../../../src/deploy/lambda/invocation.js';
import { MAX_ASYNC_PAYLOAD_BYTES, MAX_SYNC_PAYLOAD_BYTES } from '../../../src/deploy/lambda/limits.js';
import { backoffDelay, invokeWithRetry, isThrottle, payloadLimit, resolveRetry } from '../../../src/deploy/lambda/retry.js';
import { InvalidArgumentError } from '../../../src/errors.js';

void describe('Lambda invocations', () => {
  void test('backoff: full jitter under a ceiling that doubles up to maxMs', () => {
    const retry = resolveRetry({ baseMs: 100, maxMs: 1000 });
    assert.equal(backoffDelay(0, retry, () => 0.999), 99);
    assert.equal(backoffDelay(1, retry, () => 0.999), 199);
    assert.equal(backoffDelay(3, retry, () => 0.999), 799);
    assert.equal(backoffDelay(10, retry, () => 0.999), 999);
    assert.equal(backoffDelay(10, retry, () => 0), 0);
    assert.throws(() => resolveRetry({ attempts: 0 }), InvalidArgumentError);
    assert.throws(() => resolveRetry({ baseMs: 100, maxMs: 10 }), /maxMs/);
  });

  void test('a throttle is a 429 or TooManyRequestsException', () => {
    assert.ok(isThrottle({ name: 'TooManyRequestsException' }));
    assert.ok(isThrottle({ name: 'Whatever', $metadata: { httpStatusCode: 429 } }));
    assert.ok(!isThrottle({ name: 'ResourceNotFoundException', $metadata: { httpStatusCode: 404 } }));
    assert.ok(!isThrottle(new Error('x')));
  });

  void test('a payload over the limit is refused before anything is sent', async () => {
    assert.equal(payloadLimit('Event'), MAX_ASYNC_PAYLOAD_BYTES);
    assert.equal(payloadLimit('RequestResponse'), MAX_SYNC_PAYLOAD_BYTES);
    // Nothing listens there: had a request gone out, the error would be a connection error.
    const client = new LambdaClient({ endpoint: 'http://127.0.0.1:9', region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, maxAttempts: 1 });
    try {
      await assert.rejects(invokeWithRetry(client, 'f', 'Event', { blob: 'x'.repeat(MAX_ASYNC_PAYLOAD_BYTES) }, resolveRetry()), (error: unknown) => {
        assert.ok(error instanceof LambdaPayloadTooLargeError);
        assert.equal(error.limit, MAX_ASYNC_PAYLOAD_BYTES);
        return true;
      });
    } finally {
      client.destroy();
    }
  });

  void test('the worker event is checked at the function\'s door', () => {
    const ok = parseWorkerInvocation({ op: 'worker', scheduler: 'tcp://10.0.0.1:8786', name: 'lambda-0' });
    assert.deepEqual(ok, { op: 'worker', scheduler: 'tcp://10.0.0.1:8786', name: 'lambda-0', nthreads: 1, reserveMs: 5000, connectTimeoutMs: 10_000 });
    assert.throws(() => parseWorkerInvocation(null), InvalidArgumentError);
    assert.throws(() => parseWorkerInvocation({ op: 'batch' }), /op must be 'worker'/);
    assert.throws(() => parseWorkerInvocation({ op: 'worker', scheduler: 'http://x', name: 'a' }), /scheduler/);
    assert.throws(() => parseWorkerInvocation({ op: 'worker', scheduler: 'tcp://x:1', name: 'a', nthreads: 0 }), /nthreads/);
  });
});
