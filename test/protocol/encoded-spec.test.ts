/**
 * Specs encoded once by the client: what the worker decodes is what the client's spec
 * was, and a spec whose arguments travel out of band stays an object.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encode, encodePlain, OUT_OF_BAND_THRESHOLD } from '../../src/comm/codec.js';
import { ProtocolError } from '../../src/errors.js';
import { resolveArgs } from '../../src/graph/call.js';
import { Ref } from '../../src/graph/task.js';
import { decodeSpec, encodeSpec, specOf } from '../../src/protocol/encoded-spec.js';
import { writeCallBase64, writeSpecBase64 } from '../../src/protocol/spec-writer.js';
import type { TaskSpec, WireStep } from '../../src/protocol/task-spec.js';

/** The spec with every ref argument nil, as the compact writer writes it. */
function withoutRefs(original: TaskSpec): TaskSpec {
  const steps = original.node.steps.map((step) => ({ ...step, args: step.args.map((arg) => (arg instanceof Ref ? null : arg)) }));
  return { node: { ...original.node, steps } };
}

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

  test('the direct writer of simple specs decodes to what the general encoder writes', () => {
    const numbers = [0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 53, -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, 0.5, Number.NaN, Infinity, -Infinity];
    const strings = ['', 'a', 'x'.repeat(31), 'x'.repeat(32), 'x'.repeat(255), 'x'.repeat(256), 'x'.repeat(70_000), 'héllo', '日本'.repeat(100), '😀'];
    const nodes = [
      spec([...numbers, ...strings, true, false, null]),
      { node: { steps: [{ fn: 'src:f', deps: ['a-1', 'b-2'], args: [new Ref('a-1'), 3, new Ref('b-2')], argRefs: [0, 0, 2, 1], deepRefs: null }], stepKeys: ['c-3'], out: false } },
      { node: { steps: Array.from({ length: 20 }, (_, i) => ({ fn: `src:${i}`, deps: Array.from({ length: i }, (_, j) => `d-${j}`), args: Array.from({ length: i }, (_, j) => j * 1000), argRefs: null, deepRefs: null })), stepKeys: Array.from({ length: 20 }, (_, i) => `k-${i}`), out: true } },
    ] satisfies TaskSpec[];
    for (const original of nodes) {
      const written = writeSpecBase64(original);
      assert.equal(typeof written, 'string');
      // A ref argument is written as nil: the call fills it from its dependency.
      const expected = withoutRefs(original);
      const general = Buffer.from(encode({ op: 'spec', node: expected.node })[0]!).toString('base64');
      assert.deepEqual(decodeSpec(written!), decodeSpec(general));
      assert.deepEqual(JSON.stringify(decodeSpec(written!)), JSON.stringify({ node: expected.node }));
      // Compact: no field names.
      assert.ok(written!.length < general.length, `${written!.length} < ${general.length}`);
    }
    // -0 keeps its sign here (the general encoder writes it as 0).
    assert.ok(Object.is(decodeSpec(writeSpecBase64(spec([-0]))!).node.steps[0]!.args[0], -0));
    // What it does not write, the general encoder does.
    for (const arg of [undefined, [1, 2], { a: 1 }, new Uint8Array(4), 10n, new Map()]) assert.equal(writeSpecBase64(spec([arg])), null);
    assert.equal(writeSpecBase64({ node: { ...spec([]).node, steps: [{ fn: 'src:f', deps: [], args: [], argRefs: null, deepRefs: [[[0], 0]] }] } }), null);
    assert.equal(writeSpecBase64(spec(['x'.repeat(2 ** 21)])), null, 'a spec over the buffer bound');
  });

  test('a ref argument travels as nil and the call still gets its dependency\'s value', () => {
    const original: TaskSpec = { node: { steps: [{ fn: 'src:f', deps: ['add-8-0', 'add-8-1'], args: [new Ref('add-8-1'), 5, new Ref('add-8-0')], argRefs: [0, 1, 2, 0], deepRefs: null }], stepKeys: ['add-9-0'], out: false } };
    const written = writeSpecBase64(original)!;
    const step = decodeSpec(written).node.steps[0]!;
    assert.deepEqual(step.args, [null, 5, null]);
    const values = new Map([['add-8-0', 'zero'], ['add-8-1', 'one']]);
    const lookup = (dependency: number): unknown => values.get(step.deps[dependency]!);
    assert.deepEqual(resolveArgs(step, lookup), ['one', 5, 'zero']);
    // The keys travel once, in deps; the general encoder writes them twice.
    const general = Buffer.from(encode({ op: 'spec', node: original.node })[0]!).toString('base64');
    const bytes = Buffer.from(written, 'base64').toString('latin1');
    assert.equal(bytes.split('add-8-0').length - 1, 1);
    assert.equal(bytes.split('add-8-1').length - 1, 1);
    assert.ok(written.length < general.length / 2, `${written.length} < ${general.length} / 2`);
    // A Ref where argRefs names no ref is not the common spec: the general encoder takes it.
    assert.equal(writeSpecBase64({ node: { ...original.node, steps: [{ ...original.node.steps[0]!, argRefs: [0, 1] }] } }), null);
  });

  test('a call written directly is the spec of that call in its task, byte for byte', () => {
    for (const args of [[], [1], ['a', 2.5, true, null, -7, 'x'.repeat(300)], Array.from({ length: 40 }, (_, i) => i * 1000)]) {
      const call = { node: { steps: [{ fn: 'src:f', deps: [], args, argRefs: null, deepRefs: null }], stepKeys: ['f-1'], out: true } };
      const direct = writeCallBase64(args);
      assert.equal(direct, writeSpecBase64(call, 'f-1'));
      assert.deepEqual(decodeSpec(direct!, ['src:f'], 'f-1'), call);
    }
    for (const arg of [undefined, { a: 1 }, new Ref('x-1'), 10n]) assert.equal(writeCallBase64([arg]), null);
  });

  test('a spec encoded in its task leaves out its key and functions, and is decoded with them', () => {
    const step = (fn: string, deps: string[]): WireStep => ({ fn, deps, args: [null, 2], argRefs: deps.length > 0 ? [0, 0] : null, deepRefs: null });
    const one = { node: { steps: [step('src:inc', ['a-1'])], stepKeys: ['inc-7'], out: true } };
    const inTask = encodeSpec(one, 'inc-7')!;
    const bytes = Buffer.from(inTask, 'base64').toString('latin1');
    assert.ok(!bytes.includes('src:inc') && !bytes.includes('inc-7') && bytes.includes('a-1'), 'the function id and the key are not written; the dependency is');
    assert.deepEqual(decodeSpec(inTask, ['src:inc'], 'inc-7'), one);
    assert.throws(() => decodeSpec(inTask), /leaves out its key, and no task key came with it/);
    assert.throws(() => decodeSpec(inTask, [], 'inc-7'), /step 0 of a compact task spec leaves out its function, and its task names none there/);
    const twoSteps = Buffer.from(encodePlain([[[null, [], [], null], [null, [], [], null]], null, true])[0]!).toString('base64');
    assert.throws(() => decodeSpec(twoSteps, ['src:a', 'src:b'], 'k'), /leaves out its keys, but only a single step may/);
    // A fused chain: each step's function from the task's list, in order; its keys written.
    const chain = { node: { steps: [step('src:a', []), step('src:b', ['x-0'])], stepKeys: ['x-0', 'x-1'], out: false } };
    assert.deepEqual(decodeSpec(encodeSpec(chain, 'x-1')!, ['src:a', 'src:b'], 'x-1'), chain);
    // A key that is not the task's own stays written.
    assert.deepEqual(decodeSpec(encodeSpec(one, 'other')!, ['src:inc'], 'other'), one);
  });

  test('a single step whose dependencies are its task\'s leaves them out, and is decoded with them', () => {
    const step = (deps: string[]): WireStep => ({ fn: 'src:add', deps, args: [null, null], argRefs: [0, 0, 1, 1], deepRefs: null });
    const add = (deps: string[]) => ({ node: { steps: [step(deps)], stepKeys: ['add-9'], out: true } });
    const two = add(['inc-1', 'inc-2']);
    const inTask = encodeSpec(two, 'add-9', ['inc-1', 'inc-2'])!;
    const bytes = Buffer.from(inTask, 'base64').toString('latin1');
    assert.ok(!bytes.includes('inc-1') && !bytes.includes('inc-2'), 'the dependency keys are not written');
    assert.ok(inTask.length < encodeSpec(two, 'add-9')!.length);
    assert.deepEqual(decodeSpec(inTask, ['src:add'], 'add-9', ['inc-1', 'inc-2']), two);
    assert.throws(() => decodeSpec(inTask, ['src:add'], 'add-9'), /leaves out its dependencies, and no task dependencies came with it/);
    // Written out when they are not the task's list as scheduler and worker keep it: another
    // order, a key twice (kept once), the task's own key (dropped), or another list.
    for (const [deps, given] of [
      [['inc-1', 'inc-2'], ['inc-2', 'inc-1']],
      [['inc-1', 'inc-1'], ['inc-1', 'inc-1']],
      [['add-9', 'inc-1'], ['add-9', 'inc-1']],
      [['inc-1'], ['inc-1', 'inc-2']],
    ]) {
      const written = encodeSpec(add(deps!), 'add-9', given)!;
      assert.deepEqual(decodeSpec(written, ['src:add'], 'add-9'), add(deps!), deps!.join());
    }
    // Only a single step may leave them out.
    const twoSteps = Buffer.from(encodePlain([[[null, null, [], null], [null, [], [], null]], ['a', 'b'], true])[0]!).toString('base64');
    assert.throws(() => decodeSpec(twoSteps, ['src:a', 'src:b'], 'b', ['x']), /leaves out a step's dependencies, but only a single step may/);
  });

  test('a simple spec is written as the bare list [steps, stepKeys, out], no message around it', () => {
    const written = Buffer.from(writeCallBase64([1])!, 'base64');
    assert.equal(written[0], 0x93, 'a msgpack list of three');
    assert.deepEqual(written, Buffer.from(encodePlain([[[null, [], [1], null]], null, true])[0]!));
    // A binary extension in it names no frame: refused, not read from elsewhere.
    const [withFrame] = encode([[['src:f', [], [new Uint8Array(OUT_OF_BAND_THRESHOLD)], null]], ['f-1'], true]);
    assert.throws(() => decodeSpec(Buffer.from(withFrame!).toString('base64')), /missing frame 1/);
  });

  test('bytes that are not an encoded spec are refused', () => {
    const bytes = Buffer.from(encodeSpec(spec([]))!, 'base64');
    assert.throws(() => decodeSpec(bytes.subarray(0, bytes.byteLength - 3).toString('base64')));
    assert.throws(() => decodeSpec(Buffer.from([0x81, 0xa2, 0x6f, 0x70, 0xa1, 0x78]).toString('base64')), ProtocolError, "a message that is not a spec ({ op: 'x' })");
    assert.throws(() => decodeSpec(''), ProtocolError);
    // Compact specs of the wrong shape, each named.
    const compact = (n: unknown): string => Buffer.from(encodePlain(n)[0]!).toString('base64');
    assert.throws(() => decodeSpec(compact(5)), /not \[steps, stepKeys, out\]/);
    assert.throws(() => decodeSpec(compact([[], ['k'], 'yes'])), /compact task spec is malformed/);
    assert.throws(() => decodeSpec(compact([[['src:f', [], []]], ['k'], true])), /not \[fn, deps, args, argRefs\]/);
    assert.throws(() => decodeSpec(compact([[['src:f', [1], [], null]], ['k'], true])), /step of a compact task spec is malformed/);
    assert.throws(() => decodeSpec(compact([[['src:f', [], [], ['0']]], ['k'], true])), /step of a compact task spec is malformed/);
    assert.deepEqual(decodeSpec(compact([[['src:f', ['a'], [1], [0, 0]]], ['k'], true])), { node: { steps: [{ fn: 'src:f', deps: ['a'], args: [1], argRefs: [0, 0], deepRefs: null }], stepKeys: ['k'], out: true } });
  });
});
