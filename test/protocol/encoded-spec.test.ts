/**
 * Specs encoded once by the client: what the worker decodes is what the client's spec
 * was, and a spec whose arguments travel out of band stays an object.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { OUT_OF_BAND_THRESHOLD } from '../../src/comm/codec.js';
import { ProtocolError } from '../../src/errors.js';
import { decodeSpec, encodeSpec, specOf } from '../../src/protocol/encoded-spec.js';
import type { TaskSpec } from '../../src/protocol/task-spec.js';

function spec(args: readonly unknown[]): TaskSpec {
  return { node: { steps: [{ fn: 'src:abc', deps: ['x-1'], args, argRefs: [0], deepRefs: null }], stepKeys: ['y-1'], out: true } };
}

describe('encoded specs', () => {
  test('round trip: the decoded spec equals the encoded one, Maps, small binaries and errors included', () => {
    const original = spec([null, new Map([['a', 1]]), new Float64Array([1.5, 2]), new RangeError('r'), { deep: [1, 'two'] }]);
    const encoded = encodeSpec(original);
    assert.equal(typeof encoded, 'string');
    const decoded = decodeSpec(encoded!);
    assert.deepEqual(decoded, original);
    assert.deepEqual(specOf(encoded!), original);
    assert.equal(specOf(original), original, 'an object spec is itself');
  });

  test('a spec with a binary value that travels out of band is sent as an object', () => {
    assert.equal(encodeSpec(spec([new Uint8Array(OUT_OF_BAND_THRESHOLD)])), null);
    assert.equal(typeof encodeSpec(spec([new Uint8Array(OUT_OF_BAND_THRESHOLD - 1)])), 'string');
  });

  test('a spec that cannot be encoded is sent as an object (and fails where a message fails)', () => {
    const cyclic: unknown[] = [];
    cyclic.push(cyclic);
    assert.equal(encodeSpec(spec([cyclic])), null);
  });

  test('bytes that are not an encoded spec are refused', () => {
    const bytes = Buffer.from(encodeSpec(spec([]))!, 'base64');
    assert.throws(() => decodeSpec(bytes.subarray(0, bytes.byteLength - 3).toString('base64')));
    assert.throws(() => decodeSpec(Buffer.from([0x81, 0xa2, 0x6f, 0x70, 0xa1, 0x78]).toString('base64')), ProtocolError, "a message that is not a spec ({ op: 'x' })");
    assert.throws(() => decodeSpec(''), ProtocolError);
  });
});
