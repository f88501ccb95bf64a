import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decode, encode, encodePlain, OUT_OF_BAND_THRESHOLD } from '../../src/comm/codec.js';
import { MalformedFrameError, UnencodableMessageError } from '../../src/comm/errors.js';

type Any = { op: string; [key: string]: unknown };

function roundTrip<T extends Any>(message: T): T {
  return decode(encode(message)) as T;
}

describe('codec', () => {
  it('packs a plain message as encode would, without walking it', () => {
    const message = { op: 'compute', ticket: 3, tasks: [['k-1', 'c3BlYw==', [['d', [''], 8]], 's-1', 'src:a'], ['k-2', 'c3BlYw==', [], null]], n: 1.5, t: true, u: null };
    const plain = encodePlain(message);
    assert.equal(plain.length, 1);
    assert.deepEqual(Buffer.from(plain[0]!), Buffer.from(encode(message)[0]!));
    assert.deepEqual(decode(plain), message);
  });

  it('round-trips plain values, undefined vs null, nesting', () => {
    const message = {
      op: 'x',
      s: 'héllo ✓',
      n: 1.5,
      i: -7,
      big: 2 ** 40,
      t: true,
      u: undefined,
      z: null,
      nan: Number.NaN,
      inf: -Infinity,
      arr: [1, undefined, null, 'a', [[{ deep: { deeper: [1] } }]]],
      obj: { a: { b: { c: 'd' } } },
      empty: {},
    };
    const out = roundTrip(message);
    assert.deepEqual(out, message);
    assert.ok('u' in out);
    assert.equal(out.u, undefined);
    assert.equal(out.z, null);
    assert.equal((out.arr as unknown[])[1], undefined);
    assert.equal((out.arr as unknown[])[2], null);
  });

  it('round-trips Map, Set, Date and BigInt', () => {
    const message = {
      op: 'x',
      map: new Map<unknown, unknown>([
        [1, 'one'],
        ['k', { v: [1, 2] }],
        [{ obj: true }, new Set(['a'])],
      ]),
      set: new Set([1, 'two', new Map([['n', 1]])]),
      date: new Date('2024-02-29T12:34:56.789Z'),
      old: new Date(-1e12),
      small: 5n,
      negative: -(2n ** 63n),
      huge: 2n ** 200n + 1n,
    };
    const out = roundTrip(message);
    assert.ok(out.map instanceof Map);
    assert.equal(out.map.get(1), 'one');
    assert.deepEqual(out.map.get('k'), { v: [1, 2] });
    const [objKey, setValue] = [...out.map][2] ?? [];
    assert.deepEqual(objKey, { obj: true });
    assert.ok(setValue instanceof Set && setValue.has('a'));
    assert.ok(out.set instanceof Set);
    const inner = [...out.set][2];
    assert.ok(inner instanceof Map && inner.get('n') === 1);
    assert.ok(out.date instanceof Date);
    assert.equal(out.date.getTime(), message.date.getTime());
    assert.equal(out.old.getTime(), message.old.getTime());
    assert.equal(out.small, 5n);
    assert.equal(out.negative, -(2n ** 63n));
    assert.equal(out.huge, 2n ** 200n + 1n);
  });

  it('round-trips errors with name, message, stack, cause and own fields', () => {
    const cause = new RangeError('inner');
    const error = Object.assign(new TypeError('outer', { cause }), { code: 'E_X', detail: { at: [1, 2] } });
    const custom = new Error('custom');
    custom.name = 'MyError';
    const out = roundTrip({ op: 'x', error, custom });
    assert.ok(out.error instanceof TypeError);
    assert.equal(out.error.message, 'outer');
    assert.equal(out.error.stack, error.stack);
    assert.equal((out.error as unknown as { code: string }).code, 'E_X');
    assert.deepEqual((out.error as unknown as { detail: unknown }).detail, { at: [1, 2] });
    assert.ok(out.error.cause instanceof RangeError);
    assert.equal((out.error.cause).message, 'inner');
    assert.ok(out.custom instanceof Error);
    assert.equal(out.custom.name, 'MyError');
    assert.equal(out.custom.stack, custom.stack);
  });

  it('round-trips every binary kind, small (inline) and large (out of band), as the same type', () => {
    const kinds = [
      (n: number) => new Uint8Array(n).map((_, i) => i),
      (n: number) => new Uint8ClampedArray(n).map((_, i) => i),
      (n: number) => new Int8Array(n).map((_, i) => -i),
      (n: number) => new Uint16Array(n).map((_, i) => i * 3),
      (n: number) => new Int16Array(n).map((_, i) => -i * 3),
      (n: number) => new Uint32Array(n).map((_, i) => i * 100_000),
      (n: number) => new Int32Array(n).map((_, i) => -i * 100_000),
      (n: number) => new Float32Array(n).map((_, i) => i / 3),
      (n: number) => new Float64Array(n).map((_, i) => i / 7),
      (n: number) => new BigInt64Array(n).map((_, i) => BigInt(-i) * 2n ** 40n),
      (n: number) => new BigUint64Array(n).map((_, i) => BigInt(i) * 2n ** 50n),
      (n: number) => Buffer.alloc(n, 7),
    ];
    for (const make of kinds) {
      for (const n of [0, 3, 5000]) {
        const value = make(n);
        const frames = encode({ op: 'x', value });
        assert.equal(frames.length, value.byteLength >= OUT_OF_BAND_THRESHOLD ? 2 : 1, `${value.constructor.name}(${n})`);
        const out = (decode(frames) as { op: string; value: typeof value }).value;
        assert.equal(out.constructor, value.constructor, `${value.constructor.name}(${n}) comes back as ${out.constructor.name}`);
        assert.deepEqual(out, value);
      }
    }
    const buffer = new Uint8Array(4096).map((_, i) => i).buffer;
    const view = new DataView(buffer, 8, 2000);
    const out = roundTrip({ op: 'x', ab: buffer, small: new ArrayBuffer(3), view, tiny: new DataView(new ArrayBuffer(4), 1, 2) });
    assert.ok(out.ab instanceof ArrayBuffer);
    assert.deepEqual(new Uint8Array(out.ab), new Uint8Array(buffer));
    assert.ok(out.small instanceof ArrayBuffer && out.small.byteLength === 3);
    assert.ok(out.view instanceof DataView);
    assert.equal(out.view.byteLength, 2000);
    assert.equal(out.view.getUint8(0), 8);
    assert.ok(out.tiny instanceof DataView && out.tiny.byteLength === 2);
  });

  it('sends large binaries out of band by reference, wherever they are', () => {
    const a = new Float64Array(1000).fill(1.5);
    const b = Buffer.alloc(2000, 1);
    const message = { op: 'x', list: [1, { a }], map: new Map([['b', b]]), set: new Set([a.subarray(10)]) };
    const frames = encode(message);
    assert.equal(frames.length, 4);
    // The frames are the caller's memory, not copies.
    assert.equal(frames[1]!.buffer, a.buffer);
    assert.equal(frames[2]!.buffer, b.buffer);
    assert.equal(frames[3]!.byteOffset, 80);
    assert.ok(frames[0]!.byteLength < 200, 'the header holds no binary payload');
    // The message the caller gave is untouched by the boxing walk.
    assert.equal((message.list[1] as { a: Float64Array }).a, a);
    const out = decode(frames) as typeof message;
    assert.deepEqual((out.list[1] as { a: Float64Array }).a, a);
    assert.deepEqual(out.map.get('b'), b);
    assert.deepEqual([...out.set][0], a.subarray(10));
  });

  it('decodes large typed arrays as views when aligned and copies when not', () => {
    const value = new Float64Array(512).map((_, i) => i);
    const frames = encode({ op: 'x', value });
    const aligned = Buffer.alloc(8 + value.byteLength);
    aligned.set(new Uint8Array(value.buffer), 8);
    const viewed = (decode([frames[0]!, aligned.subarray(8)]) as { op: string; value: Float64Array }).value;
    assert.equal(viewed.buffer, aligned.buffer, 'zero-copy view onto the received bytes');
    const odd = Buffer.alloc(3 + value.byteLength);
    odd.set(new Uint8Array(value.buffer), 3);
    const copied = (decode([frames[0]!, odd.subarray(3)]) as { op: string; value: Float64Array }).value;
    assert.notEqual(copied.buffer, odd.buffer);
    assert.deepEqual(copied, value);
  });

  it('keeps messages without special values as they are (copy-on-write)', () => {
    const message = { op: 'x', a: [1, 2, { b: 'c' }], d: new Date(0) };
    assert.deepEqual(roundTrip(message), message);
  });

  it('refuses cycles with UnencodableMessageError', () => {
    const message: Any = { op: 'x' };
    message['self'] = message;
    assert.throws(() => encode(message), UnencodableMessageError);
  });

  it('rejects malformed input with MalformedFrameError', () => {
    const good = encode({ op: 'x', value: new Float64Array(1000) });
    assert.throws(() => decode([]), MalformedFrameError);
    assert.throws(() => decode([Buffer.from([0xc1])]), MalformedFrameError);
    assert.throws(() => decode([Buffer.from([0xd4, 99, 0])]), MalformedFrameError, 'unknown extension');
    assert.throws(() => decode([Buffer.from([0x92, 1, 2])]), MalformedFrameError, 'not an object');
    assert.throws(() => decode([Buffer.from([0x81, 0xa2, 0x6f, 0x70, 0x01])]), MalformedFrameError, 'op is not a string');
    assert.throws(() => decode([good[0]!]), MalformedFrameError, 'missing frame');
    assert.throws(() => decode([good[0]!, Buffer.alloc(12)]), MalformedFrameError, 'wrong frame length');
    const truncated = good[0]!.subarray(0, good[0]!.byteLength - 2);
    assert.throws(() => decode([truncated, good[1]!]), MalformedFrameError, 'truncated header');
  });
});
