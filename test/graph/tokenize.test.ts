import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { tokenize } from '../../src/graph/tokenize.js';

const noKeys = (): undefined => undefined;

describe('tokenize', () => {
  test('equal values give equal tokens, whatever the order of object keys', () => {
    const a = tokenize(['f', 1, { x: [1, 'two', null], y: new Map([[1, true]]) }], noKeys);
    const b = tokenize(['f', 1, { y: new Map([[1, true]]), x: [1, 'two', null] }], noKeys);
    assert.equal(a, b);
    assert.match(a, /^[0-9a-f]{16}$/);
  });

  test('different values give different tokens', () => {
    const tokens = new Set([tokenize([1], noKeys), tokenize(['1'], noKeys), tokenize([[1]], noKeys), tokenize([1n], noKeys), tokenize([true], noKeys), tokenize([null], noKeys), tokenize([undefined], noKeys)]);
    assert.equal(tokens.size, 7);
  });

  test('the token is the SHA-1 of the text the values describe, with or without bytes among them', () => {
    assert.equal(tokenize(['ab', 5], noKeys), createHash('sha1').update('s2:abn5;').digest('hex').slice(0, 16));
    const bytes = new Uint8Array([1, 2, 3]);
    const expected = createHash('sha1').update('s1:xvUint8Array3:').update(bytes).update('n7;').digest('hex').slice(0, 16);
    assert.equal(tokenize(['x', bytes, 7], noKeys), expected);
    assert.notEqual(tokenize(['x', new Uint8Array([1, 2, 4]), 7], noKeys), expected);
  });

  test('lazy values count by their key', () => {
    const ref = { key: 'inc-1' };
    const keyOf = (v: unknown): string | undefined => (v === ref ? ref.key : undefined);
    assert.equal(tokenize([ref], keyOf), createHash('sha1').update('k5:inc-1').digest('hex').slice(0, 16));
    // A plain object with the same field is a value, not the lazy value.
    assert.notEqual(tokenize([ref], keyOf), tokenize([{ key: 'inc-1' }], keyOf));
  });
});
