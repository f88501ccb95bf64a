/**
 * The seed inputs of each target, made with the project's own encoder and packet writer, so
 * that fuzzing starts from what peers really send. `npm run fuzz -- seed` writes them to
 * test/fuzz/corpus/<target>/seed-<name>, beside the inputs that fuzzing found.
 */
import { packBatch } from '../../src/comm/batch.js';
import { encode } from '../../src/comm/codec.js';
import { encodePacket } from '../../src/comm/framing.js';
import { HANDSHAKE_MAX_MESSAGE_SIZE, PROTOCOL_VERSION } from '../../src/comm/handshake.js';
import { TOKEN } from './targets/handshake.js';
import { FRAME_SEPARATOR, joinFrames } from './targets/separator.js';

/** One packet carrying a batch of messages, as a connection writes it. */
export function packet(...messages: unknown[]): Buffer {
  return Buffer.concat(encodePacket(packBatch(messages.map((m) => encode(m)))));
}

/** A packet header by hand: u32 length, u32 count, count × u32 lengths. */
function header(length: number, lengths: readonly number[]): Buffer {
  const head = Buffer.alloc(8 + 4 * lengths.length);
  head.writeUInt32BE(length, 0);
  head.writeUInt32BE(lengths.length, 4);
  lengths.forEach((l, i) => head.writeUInt32BE(l, 8 + 4 * i));
  return head;
}

class Point {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
}

function failure(): Error {
  const error = new TypeError('cannot add a string to a task', { cause: new RangeError('deep cause') });
  Object.assign(error, { key: 'add-7', attempt: 2 });
  return error;
}

/** Messages shaped like the ones scheduler, workers and clients exchange, and every value kind the codec boxes. */
const MESSAGES: Readonly<Record<string, unknown>> = {
  ping: { op: 'ping', n: 1 },
  heartbeat: { op: 'heartbeat', worker: 'tcp://127.0.0.1:40123', now: 1_700_000_000_123, metrics: { memory: 123_456_789, cpu: 0.25, executing: 3 } },
  'update-graph': {
    op: 'update-graph',
    tasks: { 'inc-1': { fn: 'f-1a2b', args: [1, { __ref: 'x-0' }], deps: ['x-0'] }, 'x-0': { value: 41 } },
    keys: ['inc-1'],
    priority: -3,
    stimulus: 'update-graph-17',
  },
  'task-erred': { op: 'task-erred', key: 'add-7', error: failure(), stimulus: 's-9' },
  'key-in-memory': { op: 'key-in-memory', key: 'x-0', nbytes: 8, type: 'number', workers: new Set(['w-1', 'w-2']) },
  data: {
    op: 'data',
    data: new Map<unknown, unknown>([
      ['x-0', 41],
      [7, 'seven'],
      [null, [true, false, undefined, null]],
    ]),
  },
  scalars: { op: 'scalars', values: [0, -0, 1.5, -1, 2 ** 53, -(2 ** 31), 255, 65_536, Number.NaN, Infinity, -Infinity, 10n, -(2n ** 70n)] },
  strings: { op: 'strings', empty: '', unicode: 'naïve ☃ 𝄞', long: 'x'.repeat(300), __proto__key: { ['__proto__']: 1 } },
  date: { op: 'date', at: new Date(Date.UTC(2024, 1, 29, 12, 0, 0, 7)) },
  instance: { op: 'instance', point: new Point(3, 4) },
  'typed-arrays': {
    op: 'typed-arrays',
    arrays: [
      new Uint8Array([1, 2, 3]),
      new Uint8ClampedArray([255, 0]),
      new Int8Array([-1, 1]),
      new Uint16Array([65_535]),
      new Int16Array([-2]),
      new Uint32Array([4_000_000_000]),
      new Int32Array([-5]),
      new Float32Array([0.5]),
      new Float64Array([Math.PI, -0]),
      new BigInt64Array([-1n]),
      new BigUint64Array([2n ** 64n - 1n]),
      Buffer.from('buffer'),
      new DataView(new ArrayBuffer(4)),
      new ArrayBuffer(3),
    ],
  },
  'out-of-band': { op: 'out-of-band', values: new Float64Array(160).map((_, i) => i / 7), raw: new Uint8Array(1500).fill(7) },
  'nested-errors': { op: 'nested-errors', errors: [new Error('plain'), Object.assign(new Error('with props'), { code: 'E_X', extra: [1, 2] })] },
  deep: { op: 'deep', value: JSON.parse(`${'['.repeat(40)}1${']'.repeat(40)}`) as unknown },
};

function codecSeeds(): Map<string, Buffer> {
  const seeds = new Map<string, Buffer>();
  for (const [name, message] of Object.entries(MESSAGES)) {
    const frames = encode(message);
    if (frames.some((frame) => Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength).includes(FRAME_SEPARATOR))) continue;
    seeds.set(name, joinFrames(frames));
  }
  return seeds;
}

function framingSeeds(): Map<string, Buffer> {
  // Byte 0 picks the limit (0: 1 KiB, 1: 4 KiB, 2: 64 KiB, 3: 1 MiB), byte 1 the chunking.
  const stream = (limit: number, chunking: number, ...parts: Buffer[]): Buffer => Buffer.concat([Buffer.from([limit, chunking]), ...parts]);
  const ping = packet(MESSAGES.ping);
  const big = packet(MESSAGES['out-of-band']);
  return new Map([
    ['one-packet', stream(2, 0, ping)],
    ['batch', stream(3, 1, packet(MESSAGES.ping, MESSAGES.heartbeat, MESSAGES['key-in-memory']))],
    ['back-to-back', stream(3, 2, ping, packet(MESSAGES['update-graph']), ping)],
    ['out-of-band-frames', stream(3, 3, big)],
    ['over-the-limit', stream(0, 4, big)],
    ['truncated', stream(2, 5, ping.subarray(0, ping.length - 3))],
    ['empty-frames', stream(2, 6, header(4 + 4 * 3, [0, 0, 0]))],
    ['no-frames', stream(2, 7, header(4, []))],
    ['lengths-disagree', stream(2, 8, header(4 + 4 * 2 + 5, [2, 2]), Buffer.alloc(5))],
    ['huge-announced', stream(3, 9, header(0xffff_fff0, [0xffff_ffe8]))],
    ['bad-batch-index', stream(2, 10, header(4 + 4 * 2 + 8, [4, 4]), Buffer.from([0, 0, 0, 5]), Buffer.from('abcd'))],
  ]);
}

function handshakeSeeds(): Map<string, Buffer> {
  const hello = { op: 'hello', protocol: PROTOCOL_VERSION, role: 'worker', token: TOKEN, name: 'w-1' };
  // Byte 0 seeds how the rest is cut into writes.
  const stream = (chunking: number, ...parts: Buffer[]): Buffer => Buffer.concat([Buffer.from([chunking]), ...parts]);
  const announced = (length: number): Buffer => header(length, [length - 8]);
  return new Map([
    ['welcome', stream(0, packet(hello))],
    ['welcome-then-messages', stream(1, packet(hello), packet(MESSAGES.ping), packet(MESSAGES.heartbeat))],
    ['welcome-and-message-in-one-batch', stream(2, packet(hello, MESSAGES.ping))],
    // Allowed after the handshake, not before it.
    ['welcome-then-large', stream(3, packet(hello), announced(HANDSHAKE_MAX_MESSAGE_SIZE + 1024))],
    ['large-before-hello', stream(4, announced(HANDSHAKE_MAX_MESSAGE_SIZE + 1024))],
    ['wrong-token', stream(5, packet({ ...hello, token: 'guess' }))],
    ['no-token', stream(6, packet({ op: 'hello', protocol: PROTOCOL_VERSION, role: 'client' }))],
    ['other-protocol', stream(7, packet({ ...hello, protocol: PROTOCOL_VERSION + 1 }))],
    ['empty-role', stream(8, packet({ ...hello, role: '' }))],
    ['token-not-a-string', stream(9, packet({ ...hello, token: 12_345 }))],
    ['not-hello', stream(10, packet(MESSAGES.ping))],
    ['welcome-sent-back', stream(11, packet({ op: 'welcome', protocol: PROTOCOL_VERSION }))],
    ['truncated-hello', stream(12, packet(hello).subarray(0, 20))],
    ['garbage', stream(13, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))],
  ]);
}

export function seeds(): Map<string, Map<string, Buffer>> {
  return new Map([
    ['framing', framingSeeds()],
    ['codec', codecSeeds()],
    ['handshake', handshakeSeeds()],
  ]);
}
