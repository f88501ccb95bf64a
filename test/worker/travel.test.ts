// A result that cannot travel between processes fails its task once, naming the key and
// the reason, instead of being kept and failing every request for it.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { WorkerInstruction } from '../../src/worker/events.js';
import { WorkerState } from '../../src/worker/state.js';
import { travelProblem } from '../../src/worker/travel.js';
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
    assert.match(big.error.reason ?? '', /binary data, more than the 1048576-byte limit/);
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
    const buffer = new Uint8Array(600);
    assert.match(travelProblem([buffer, buffer], 1000)?.reason ?? '', /1200 bytes of binary data/);
  });
});
