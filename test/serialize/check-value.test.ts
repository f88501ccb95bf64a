import assert from 'node:assert/strict';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { describe, test } from 'node:test';
import { BufferPool } from '../../src/serialize/buffer-pool.js';
import { copiedBuffers, copiedForTransfer, eachBuffer, transferables, unreferenced } from '../../src/serialize/check-value.js';

const LARGE = 1 << 20;

/** What the other end of a port receives, posted as the executor posts inputs. */
async function posted(value: unknown): Promise<{ received: unknown; transfer: ArrayBuffer[]; sent: unknown }> {
  const transfer: ArrayBuffer[] = [];
  const sent = copiedForTransfer(value, transfer, new Map());
  const { port1, port2 }: { port1: MessagePort; port2: MessagePort } = new MessageChannel();
  const received = new Promise<unknown>((resolve) => port2.once('message', resolve));
  port1.postMessage(sent, transfer);
  const out = await received;
  port1.close();
  port2.close();
  return { received: out, transfer, sent };
}

void describe('copiedForTransfer', () => {
  void test('a large typed array arrives equal, from a copy moved across; the original stays whole', async () => {
    const xs = new Float64Array(LARGE / 8).map((_, i) => i);
    const { received, transfer } = await posted(xs);
    assert.equal(transfer.length, 1);
    assert.notEqual(transfer[0], xs.buffer);
    assert.equal(transfer[0]!.byteLength, 0, 'the copy was moved, not cloned');
    assert.equal(xs.byteLength, LARGE);
    assert.ok(received instanceof Float64Array);
    assert.deepEqual(received, xs);
  });

  void test('each kind arrives as a clone would deliver it: a Buffer as a Uint8Array, DataViews and bare ArrayBuffers as such', async () => {
    const buffer = Buffer.alloc(LARGE, 7);
    const { received: bytes } = await posted(buffer);
    assert.equal(Object.getPrototypeOf(bytes), Uint8Array.prototype);
    assert.equal((bytes as Uint8Array)[LARGE - 1], 7);
    const view = new DataView(new ArrayBuffer(LARGE));
    view.setFloat64(8, 2.5);
    const { received: dv } = await posted(view);
    assert.ok(dv instanceof DataView && dv.getFloat64(8) === 2.5);
    const raw = new Uint16Array(LARGE / 2).fill(3).buffer;
    const { received: ab, transfer } = await posted(raw);
    assert.equal(transfer.length, 1);
    assert.ok(ab instanceof ArrayBuffer && new Uint16Array(ab)[9] === 3);
    assert.equal(raw.byteLength, LARGE);
  });

  void test('a large view onto part of its buffer arrives over a copy of its own bytes', async () => {
    const frame = new Uint8Array(LARGE + 24);
    const xs = new Float64Array(frame.buffer, 16, LARGE / 8);
    xs.fill(4);
    const { received, transfer } = await posted(xs);
    assert.equal(transfer.length, 1);
    assert.ok(received instanceof Float64Array);
    assert.equal(received.byteOffset, 0);
    assert.equal(received.buffer.byteLength, LARGE);
    assert.deepEqual(received, xs);
    assert.equal(xs.buffer.byteLength, LARGE + 24);
  });

  void test('small buffers, small views onto part of a large buffer, shared memory and deeper values are left to the clone', () => {
    const small = new Float64Array(16);
    const part = new Float64Array(LARGE / 8).subarray(1, 17);
    const shared = new Float64Array(new SharedArrayBuffer(LARGE));
    const deep = { a: { b: new Float64Array(LARGE / 8) } };
    for (const value of [small, part, shared, deep, 'text', 5, [1, 2]]) {
      const transfer: ArrayBuffer[] = [];
      assert.equal(copiedForTransfer(value, transfer, new Map()), value);
      assert.equal(transfer.length, 0);
    }
  });

  void test('one level down in arrays and plain objects, the container is copied and the original untouched; a buffer held twice is copied once', () => {
    const xs = new Float64Array(LARGE / 8).fill(1);
    const list = [xs, { n: 1 }, xs];
    const record = { xs, label: 'x' };
    const copies = new Map<ArrayBuffer, ArrayBuffer>();
    const transfer: ArrayBuffer[] = [];
    const sentList = copiedForTransfer(list, transfer, copies) as unknown[];
    const sentRecord = copiedForTransfer(record, transfer, copies) as Record<string, unknown>;
    assert.equal(transfer.length, 1, 'one copy for the three places the buffer is held');
    assert.notEqual(sentList, list);
    assert.equal(list[0], xs);
    assert.equal(sentList[1], list[1]);
    assert.equal((sentList[0] as Float64Array).buffer, transfer[0]);
    assert.equal((sentList[2] as Float64Array).buffer, transfer[0]);
    assert.equal((sentRecord['xs'] as Float64Array).buffer, transfer[0]);
    assert.equal(sentRecord['label'], 'x');
    assert.equal(record.xs, xs);
  });

  void test('two large views onto parts of one buffer arrive as copies of their own, as from another worker', async () => {
    const frame = new ArrayBuffer(2 * LARGE + 8);
    const pair = [new Uint8Array(frame, 8, LARGE).fill(1), new Uint8Array(frame, 8 + LARGE, LARGE).fill(2)];
    const { received, transfer } = await posted(pair);
    assert.equal(transfer.length, 2);
    const [a, b] = received as Uint8Array[];
    assert.notEqual(a!.buffer, b!.buffer);
    a!.fill(9);
    assert.equal(b![0], 2);
    assert.equal(pair[0]![0], 1);
  });
});

void describe('transferables', () => {
  void test('finds whole buffers of 64 KiB or more in the value and one level down, once each', () => {
    const xs = new Float64Array(LARGE / 8);
    const raw = new ArrayBuffer(LARGE);
    assert.deepEqual(transferables(xs), [xs.buffer]);
    assert.deepEqual(transferables([xs, { n: 1 }, raw, xs]), [xs.buffer, raw]);
    assert.deepEqual(transferables({ xs, raw, label: 'x' }), [xs.buffer, raw]);
  });

  void test('leaves small buffers, views onto part of a buffer, shared memory and deeper values', () => {
    const part = new Float64Array(LARGE / 8).subarray(1);
    const shared = new Float64Array(new SharedArrayBuffer(LARGE));
    for (const value of [new Float64Array(16), part, shared, { a: { b: new Float64Array(LARGE / 8) } }, [[new ArrayBuffer(LARGE)]], [1, 2], 'text', null]) {
      assert.deepEqual(transferables(value), []);
    }
  });
});

void describe('copiedForTransfer with a BufferPool', () => {
  void test('writes the copy into a pooled buffer of the size, and the bytes are the value\'s', () => {
    const pool = new BufferPool(8 * LARGE);
    const stale = new ArrayBuffer(LARGE);
    new Uint8Array(stale).fill(9);
    pool.give(stale);
    const frame = new Uint8Array(LARGE + 16);
    const xs = new Uint8Array(frame.buffer, 16, LARGE).fill(3);
    const transfer: ArrayBuffer[] = [];
    const sent = copiedForTransfer(xs, transfer, new Map(), pool) as Uint8Array;
    assert.equal(sent.buffer, stale, 'the pooled buffer was taken');
    assert.deepEqual(transfer, [stale]);
    assert.equal(pool.bytes, 0);
    assert.ok(sent.every((x) => x === 3));
    const other = copiedForTransfer(new Float64Array(LARGE / 4), [], new Map(), pool) as Float64Array;
    assert.notEqual(other.buffer, stale, 'another size: a fresh copy');
  });
});

void describe('unreferenced', () => {
  void test('leaves out the buffers the values reach, at any depth, behind views or bare', () => {
    const [a, b, c, d] = [1, 2, 3, 4].map(() => new ArrayBuffer(16));
    const results = [5, { deep: { list: [new Uint8Array(a!, 4)] } }, new Map([['k', new Set([b])]])];
    assert.deepEqual(unreferenced([a!, b!, c!, d!], results), [c, d]);
    assert.deepEqual(unreferenced([c!], [new DataView(c!)]), []);
  });

  void test('a value too large to search refers to them all', () => {
    const buffer = new ArrayBuffer(16);
    assert.deepEqual(unreferenced([buffer], [new Array<number>(1000).fill(1)], 100), []);
    assert.deepEqual(unreferenced([buffer], [new Array<number>(1000).fill(1)]), [buffer]);
  });
});

void describe('eachBuffer', () => {
  void test('reaches every buffer once per place, at any depth, and says when the budget ran out', () => {
    const [a, b] = [new ArrayBuffer(8), new ArrayBuffer(8)];
    const seen: ArrayBufferLike[] = [];
    assert.equal(eachBuffer([{ x: [new Uint8Array(a)], m: new Map([[b, new DataView(a)]]) }], (buffer) => {
      seen.push(buffer);
    }), true);
    assert.equal(seen.filter((x) => x === a).length, 2);
    assert.equal(seen.filter((x) => x === b).length, 1);
    let visits = 0;
    assert.equal(eachBuffer([[a, b]], () => ++visits > 5 && false), true, 'stopped by the visitor is a whole walk');
    assert.equal(visits, 1);
    assert.equal(eachBuffer([Array.from({ length: 50 }, () => ({}))], () => undefined, 20), false);
  });
});

void describe('copiedBuffers', () => {
  void test('names the buffers a thread gets copies of as the message is posted, not those cloned later', () => {
    const [top, item, deep, small] = [LARGE, LARGE, LARGE, 1024].map((n) => new Float64Array(n / 8));
    const copied = copiedBuffers({ top: top!, list: [item!], nested: { deep: deep! }, small: small! });
    assert.ok(copied.has(top!.buffer));
    assert.ok(!copied.has(item!.buffer) && !copied.has(deep!.buffer), 'two levels down');
    assert.ok(!copied.has(small!.buffer), 'small ones are cloned');
    assert.deepEqual([...copiedBuffers([item!, deep!])], [item!.buffer, deep!.buffer]);
  });
});
