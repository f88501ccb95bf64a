import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { Hash64, tokenize } from '../../src/graph/tokenize.js';

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

  test('the token is the 64-bit hash of the text the values describe, or its SHA-1 with bytes among them', () => {
    assert.equal(tokenize(['ab', 5], noKeys), new Hash64().update('s2:abn5;').digest());
    const bytes = new Uint8Array([1, 2, 3]);
    const expected = createHash('sha1').update('s1:xvUint8Array3:').update(bytes).update('n7;').digest('hex').slice(0, 16);
    assert.equal(tokenize(['x', bytes, 7], noKeys), expected);
    assert.notEqual(tokenize(['x', new Uint8Array([1, 2, 4]), 7], noKeys), expected);
  });

  test('Hash64 hashes text fed in pieces as the pieces joined, its length included', () => {
    const whole = new Hash64().update('tessera-0123').digest();
    assert.match(whole, /^[0-9a-f]{16}$/);
    assert.equal(new Hash64().update('tes').update('').update('sera-0').update('123').digest(), whole);
    assert.equal(new Hash64().update('t').update('essera-012').update('3').digest(), whole);
    assert.notEqual(new Hash64().digest(), new Hash64().update('\u0000').digest());
    assert.notEqual(new Hash64().update('\u0000').digest(), new Hash64().update('\u0000\u0000').digest());
  });

  test('Hash64 spreads: no clash among 200,000 neighbouring texts, and one flipped bit changes about half of the 64', () => {
    const tokens = new Set<string>();
    for (let i = 0; i < 200_000; i++) tokens.add(tokenize(['inc', i], noKeys));
    assert.equal(tokens.size, 200_000);
    const bitsApart = (a: string, b: string): number => {
      let bits = 0;
      for (let i = 0; i < 16; i++) for (let x = parseInt(a[i]!, 16) ^ parseInt(b[i]!, 16); x > 0; x >>= 1) bits += x & 1;
      return bits;
    };
    let sum = 0;
    let least = 64;
    for (let i = 0; i < 2_000; i++) {
      const text = `n${i};`;
      const flipped = String.fromCharCode(text.charCodeAt(0) ^ 1) + text.slice(1);
      const apart = bitsApart(new Hash64().update(text).digest(), new Hash64().update(flipped).digest());
      sum += apart;
      least = Math.min(least, apart);
    }
    assert.ok(Math.abs(sum / 2_000 - 32) < 1, `mean bits changed ${sum / 2_000}`);
    assert.ok(least >= 12, `fewest bits changed ${least}`);
  });

  test('lazy values count by their key', () => {
    const ref = { key: 'inc-1' };
    const keyOf = (v: unknown): string | undefined => (v === ref ? ref.key : undefined);
    assert.equal(tokenize([ref], keyOf), new Hash64().update('k5:inc-1').digest());
    // A plain object with the same field is a value, not the lazy value.
    assert.notEqual(tokenize([ref], keyOf), tokenize([{ key: 'inc-1' }], keyOf));
  });
});
