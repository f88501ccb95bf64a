// A result that cannot travel between processes fails its task once, naming the key and
// the reason, instead of being kept and failing every request for it.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { WorkerInstruction } from '../../src/worker/events.js';
import { WorkerState } from '../../src/worker/state.js';
import { encode } from '../../src/comm/codec.js';
import { DEFAULT_MAX_PACKET_SIZE } from '../../src/comm/framing.js';
import { encodedSizeBound, MAX_HEADER_BYTES, travelProblem } from '../../src/worker/travel.js';
import { spec } from './helpers.js';

function runOne(state: WorkerState, key: string, value: unknown): readonly WorkerInstruction[] {
  const out = state.handle({ op: 'compute-task', key, spec: spec(key), dependencies: [], now: 0 });
  const execute = [...out, ...state.handle({ op: 'pump', now: 0 })].find((i) => i.op === 'execute');
  assert.ok(execute?.op === 'execute');
  return state.handle({ op: 'batch-done', batch: execute.batch, thread: 0, values: [value], times: [0, 1], now: 1 });
}

describe('results that cannot travel', () => {
  test('a self-referencing result fails its task once, naming the key and the cycle', () => {
    const state = new WorkerState({ id: 'tcp://me:1', nthreads: 1, validate: true });
    const cyclic: Record<string, unknown> = { a: 1, inner: { b: 2 } };
    (cyclic['inner'] as Record<string, unknown>)['back'] = cyclic;
    const out = runOne(state, 'cyclic-1', cyclic);
    const erred = out.filter((i) => i.op === 'task-erred');
    assert.equal(erred.length, 1);
    const [first] = erred;
    assert.ok(first?.op === 'task-erred');
    assert.equal(first.key, 'cyclic-1');
    assert.equal(first.error.kind, 'unserializable');
    assert.equal(first.error.key, 'cyclic-1');
    assert.equal(first.error.path, '.inner.back');
    assert.match(first.error.reason ?? '', /cycle/);
    assert.deepEqual(out.filter((i) => i.op === 'store' || i.op === 'task-finished'), [], 'nothing is kept');
  });

  test('a result too deep, or past the message limit, fails; shared (not cyclic) parts travel', () => {
    const state = new WorkerState({ id: 'tcp://me:1', nthreads: 1, maxMessageBytes: 1 << 20 });
    let deep: unknown = 0;
    for (let i = 0; i < 2000; i++) deep = [deep];
    const tooDeep = runOne(state, 'deep-1', deep).find((i) => i.op === 'task-erred');
    assert.ok(tooDeep?.op === 'task-erred');
    assert.match(tooDeep.error.reason ?? '', /nests deeper/);
    const big = runOne(state, 'big-1', new Float64Array(1 << 18)).find((i) => i.op === 'task-erred');
    assert.ok(big?.op === 'task-erred');
    assert.equal(big.error.key, 'big-1');
    assert.match(big.error.reason ?? '', /2097152 bytes of binary data once encoded, more than the 1048576-byte limit/);
    // Plain data is sized too: 200,000 floats are about 1.8 MB once encoded.
    const floats = runOne(state, 'floats-1', Array.from({ length: 200_000 }, (_, i) => i + 0.5)).find((i) => i.op === 'task-erred');
    assert.ok(floats?.op === 'task-erred');
    assert.equal(floats.error.key, 'floats-1');
    assert.match(floats.error.reason ?? '', /about 1800\d{3} bytes once encoded, more than the 1048576-byte limit/);
    // …and 200,000 small integers (one byte each) are not.
    assert.ok(runOne(state, 'ints-1', Array.from({ length: 200_000 }, (_, i) => i % 100)).some((i) => i.op === 'task-finished'));
    const shared = { x: [1, 2, 3] };
    const fine = runOne(state, 'shared-1', { a: shared, b: shared, c: [shared, shared] });
    assert.ok(fine.some((i) => i.op === 'task-finished' && i.key === 'shared-1'));
  });

  test('travelProblem: plain data, binary data and dates pass', () => {
    assert.equal(travelProblem({ a: [1, 'x', new Uint8Array(10), new Date(0), new Map([[1, { y: 2 }]])] }, 1000), null);
    const set = new Set<unknown>();
    set.add(set);
    assert.match(travelProblem(set, 1000)?.reason ?? '', /cycle/);
    // The same buffer twice is counted once per place it appears, as it would be written.
    const buffer = new Uint8Array(1200);
    assert.match(travelProblem([buffer, buffer], 2000)?.reason ?? '', /2400 bytes of binary data/);
    // Just under the limit is not enough: the message that carries it needs room too.
    assert.match(travelProblem(new Uint8Array((1 << 20) - 100), 1 << 20)?.reason ?? '', /with the 65536 bytes kept for the message around it, more than the 1048576-byte limit/);
    assert.equal(travelProblem(new Uint8Array((1 << 20) - 70_000), 1 << 20), null);
  });

  test('a value larger than a packet travels: the limit is the message limit, what memory allows', () => {
    const state = new WorkerState({ id: 'tcp://me:1', nthreads: 1 });
    // Not allocated: a view that says it is 600 MiB is all the walk looks at.
    const large = { byteLength: DEFAULT_MAX_PACKET_SIZE + 100 * 2 ** 20 };
    Object.setPrototypeOf(large, Uint8Array.prototype);
    assert.equal(travelProblem(large, 2 ** 33), null);
    assert.ok(runOne(state, 'large-1', new Float64Array(2 ** 18)).some((i) => i.op === 'task-finished'));
  });

  test('plain data past what one message header can hold fails, saying to use typed arrays', () => {
    // 5,000 places holding one array of 1 MB of strings: about 5 GB to write, little to hold.
    const strings = Array.from({ length: 1000 }, (_, i) => `${i}`.padEnd(1000, 'x'));
    const problem = travelProblem(Array.from({ length: 5000 }, () => strings), 2 ** 40);
    assert.ok(problem !== null);
    assert.match(problem.reason, new RegExp(`more than the ${MAX_HEADER_BYTES} bytes one message can carry outside of binary data; keep large numeric data in typed arrays`));
  });

  test('the size is never less than what the codec writes, and close to it', () => {
    const values: unknown[] = [
      0, -1, 127, 128, -33, 255, 256, -129, 65_535, -32_769, 2 ** 31, -(2 ** 31) - 1, 2 ** 40, 0.1, NaN, -Infinity,
      'plain', 'ünïcødé ✓ 𝄞', '', 'x'.repeat(70_000), true, null, undefined, 12n, -(2n ** 70n),
      [1, 'two', [3, [4]], { five: 5 }],
      { a: 1, b: 'two', c: [1.5, 2.5], d: { e: null, f: undefined }, 'ключ': 'значение' },
      new Map<unknown, unknown>([[1, 'one'], ['two', { x: [2] }]]),
      new Set([1, 'a', { b: 2 }]),
      new Date(1_700_000_000_000),
      /ab+c/gi,
      Object.assign(new RangeError('bad'), { code: 'E_BAD', detail: [1, 2] }),
      new Error('outer', { cause: new Error('inner') }),
      new Uint8Array(100), new Float64Array(1000), Buffer.alloc(5000), new DataView(new ArrayBuffer(64)),
      Array.from({ length: 10_000 }, (_, i) => (i % 3 === 0 ? i * 1000 : i % 3 === 1 ? `k${i}` : i + 0.25)),
    ];
    const bytes = (value: unknown): number => encode({ op: 'x', value }).reduce((n, frame) => n + frame.byteLength, 0);
    const around = bytes(null) - 1;
    for (const value of values) {
      const written = bytes(value) - around;
      const bound = encodedSizeBound(value);
      assert.ok(bound >= written, `${String(value).slice(0, 40)}: ${bound} < ${written} written`);
      assert.ok(bound <= written * 3 + 64, `${String(value).slice(0, 40)}: ${bound} is far above ${written} written`);
    }
  });
});
