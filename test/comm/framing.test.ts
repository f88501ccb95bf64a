import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { packBatch, splitBatch, unpackBatch } from '../../src/comm/batch.js';
import { FrameTooLargeError, MalformedFrameError } from '../../src/comm/errors.js';
import { encodePacket, FrameReader, writePacket } from '../../src/comm/framing.js';
import { announce, cutPackets, IncomingMessage, readAnnouncement } from '../../src/comm/long-message.js';

function bytes(...parts: readonly Uint8Array[]): Buffer {
  return Buffer.concat(parts);
}

function collect(maxMessageSize = 1 << 30): { reader: FrameReader; packets: Uint8Array[][] } {
  const packets: Uint8Array[][] = [];
  return { reader: new FrameReader(maxMessageSize, (frames) => packets.push(frames)), packets };
}

/** A raw packet, bypassing encodePacket's checks. */
function rawPacket(length: number, lengths: readonly number[], body = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(8 + 4 * lengths.length);
  head.writeUInt32BE(length, 0);
  head.writeUInt32BE(lengths.length, 4);
  lengths.forEach((l, i) => head.writeUInt32BE(l, 8 + 4 * i));
  return bytes(head, body);
}

describe('framing', () => {
  const frames = [Buffer.from('header'), Buffer.alloc(0), Buffer.alloc(40_000, 9), Buffer.from('x'), Buffer.alloc(20_000, 3)];

  it('writes u32 length, u32 count, the lengths, then the frames', () => {
    const wire = bytes(...encodePacket([Buffer.from('ab'), Buffer.from('cde')]));
    assert.deepEqual([...wire], [0, 0, 0, 17, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3, 97, 98, 99, 100, 101]);
  });

  it('coalesces small frames and passes large ones by reference', () => {
    const chunks = encodePacket(frames);
    assert.equal(chunks.length, 4);
    assert.equal(chunks[1], frames[2], 'the 40 kB frame is not copied');
    assert.equal(chunks[3], frames[4]);
    const corked: string[] = [];
    const ok = writePacket(
      {
        cork: () => corked.push('cork'),
        uncork: () => corked.push('uncork'),
        write: () => {
          corked.push('write');
          return true;
        },
      },
      frames,
    );
    assert.ok(ok);
    assert.deepEqual(corked, ['cork', 'write', 'write', 'write', 'write', 'uncork']);
  });

  it('lets a socket read the rest of a large frame in place, as a reader reading with rest() and filled() would', () => {
    const packet = [Buffer.from('head'), Buffer.alloc(100_000, 7), Buffer.alloc(0)];
    const wire = bytes(...encodePacket(packet), ...encodePacket([Buffer.from('next')]));
    for (const read of [1000, 16_384, 40_000]) {
      const { reader, packets } = collect();
      let at = 0;
      let inPlace = 0;
      while (at < wire.length) {
        const rest = reader.rest(16 * 1024);
        if (rest === null) {
          const chunk = wire.subarray(at, at + read);
          reader.push(chunk);
          at += chunk.length;
        } else {
          // As the kernel would: at most what was asked, straight into the frame's memory.
          const n = Math.min(rest.byteLength, read, wire.length - at);
          wire.copy(rest, 0, at, at + n);
          reader.filled(n);
          at += n;
          inPlace += n;
        }
      }
      assert.equal(packets.length, 2, `reads of ${read}`);
      assert.deepEqual(packets[0]!.map((f) => Buffer.from(f)), packet, 'the packet ending in an empty frame is whole');
      assert.deepEqual(Buffer.from(packets[1]![0]!), Buffer.from('next'));
      // All but the first read and a tail shorter than the minimum asked for.
      assert.ok(inPlace >= 100_000 - read - 16 * 1024, `the large frame was read in place (${inPlace} bytes)`);
    }
    const { reader } = collect();
    assert.equal(reader.rest(1), null, 'nothing to read in place between packets');
    assert.throws(() => reader.filled(10), RangeError);
  });

  it('reads packets back however the stream is split', () => {
    const wire = bytes(...encodePacket(frames), ...encodePacket([Buffer.from('second')]));
    for (const size of [1, 2, 3, 7, 64, 1000, 16_384, wire.length]) {
      const { reader, packets } = collect();
      for (let at = 0; at < wire.length; at += size) reader.push(wire.subarray(at, at + size));
      assert.equal(packets.length, 2, `chunks of ${size}`);
      assert.deepEqual(packets[0]!.map((f) => Buffer.from(f)), frames);
      assert.deepEqual(Buffer.from(packets[1]![0]!).toString(), 'second');
      assert.ok(reader.idle);
    }
  });

  it('assembles a frame that spans chunks into its own aligned memory', () => {
    const big = Buffer.alloc(100_000, 5);
    const wire = bytes(...encodePacket([Buffer.from('h'), big]));
    const { reader, packets } = collect();
    for (let at = 0; at < wire.length; at += 65_536) reader.push(wire.subarray(at, at + 65_536));
    const frame = packets[0]![1]!;
    assert.equal(frame.byteOffset, 0);
    assert.equal(frame.buffer.byteLength, big.length);
    assert.deepEqual(Buffer.from(frame), big);
  });

  it('rejects a packet larger than maxMessageSize before reading it', () => {
    const { reader } = collect(1024);
    assert.throws(() => reader.push(rawPacket(2048, [2040])), FrameTooLargeError);
    const { reader: http } = collect(1 << 20);
    assert.throws(() => http.push(Buffer.from('GET / HTTP/1.1\r\n\r\n')), FrameTooLargeError);
  });

  it('rejects nonsense with MalformedFrameError', () => {
    assert.throws(() => collect().reader.push(rawPacket(4, [])), MalformedFrameError, 'no frames');
    assert.throws(() => collect().reader.push(rawPacket(100, Array(30).fill(0))), MalformedFrameError, 'table longer than packet');
    assert.throws(() => collect().reader.push(rawPacket(16, [3, 4])), MalformedFrameError, 'lengths do not add up');
    assert.throws(() => collect().reader.push(rawPacket(1000, [0xffff_ffff, 1])), MalformedFrameError, 'lengths overflow');
  });

  it('splits a batch back into its messages, in order', () => {
    const messages = [[Buffer.from('a')], [Buffer.from('b'), Buffer.from('b1'), Buffer.from('b2')], [Buffer.from('c')]];
    const out = unpackBatch(packBatch(messages));
    assert.deepEqual(out, messages);
    const packed = packBatch(messages);
    assert.throws(() => unpackBatch(packed.slice(0, -1)), MalformedFrameError);
    assert.throws(() => unpackBatch([Buffer.alloc(3)]), MalformedFrameError);
    assert.throws(() => unpackBatch([Buffer.from([0, 0, 0, 0]), Buffer.from('x')]), MalformedFrameError);
  });

  it('reads a frame into the memory its target gives, however the stream is split', () => {
    const frame = Buffer.alloc(50_000).map((_, i) => i % 253);
    const wire = bytes(...encodePacket([Buffer.from('h'), frame]));
    for (const size of [1, 999, 65_536, wire.length]) {
      const into = new Uint8Array(60_000);
      const asked: number[] = [];
      const packets: Uint8Array[][] = [];
      const reader = new FrameReader(1 << 20, (frames) => packets.push(frames), (length) => {
        asked.push(length);
        return length === frame.length ? into.subarray(10_000) : null;
      });
      for (let at = 0; at < wire.length; at += size) reader.push(wire.subarray(at, at + size));
      assert.deepEqual(asked, [1, 50_000], `chunks of ${size}: asked once per frame`);
      assert.ok(Buffer.from(into.subarray(10_000)).equals(frame));
      assert.equal(packets[0]![1]!.buffer, into.buffer, 'the frame is the target memory');
    }
  });

  it('reads frames that span reads into the memory it is given, and fresh memory when given none', () => {
    const large = Buffer.alloc(50_000).map((_, i) => i % 251);
    const other = Buffer.alloc(30_000, 7);
    const wire = bytes(...encodePacket([Buffer.from('h'), large, other]));
    const given = new Uint8Array(50_000).fill(1);
    const asked: number[] = [];
    const packets: Uint8Array[][] = [];
    const reader = new FrameReader(1 << 20, (frames) => packets.push(frames), null, (length) => {
      asked.push(length);
      return length === large.length ? given : null;
    });
    for (let at = 0; at < wire.length; at += 4096) reader.push(wire.subarray(at, at + 4096));
    assert.deepEqual(asked, [50_000, 30_000], 'asked for frames only, not for the header or the table');
    assert.equal(packets[0]![1]!.buffer, given.buffer, 'read into the memory given');
    assert.ok(Buffer.from(given).equals(large));
    assert.ok(Buffer.from(packets[0]![2]!).equals(other));
    assert.notEqual(packets[0]![2]!.buffer, given.buffer);

    const wrong = new FrameReader(1 << 20, () => undefined, null, () => new Uint8Array(10));
    assert.throws(() => {
      for (let at = 0; at < wire.length; at += 4096) wrong.push(wire.subarray(at, at + 4096));
    }, /frame memory of 10 bytes for a frame of 50000/);
  });
});

describe('long messages', () => {
  it('an announcement ends its batch, and nowhere else', () => {
    const table = announce([new Uint8Array(3), new Uint8Array(0), { byteLength: 2 ** 32 } as Uint8Array]);
    const packed = packBatch([[Buffer.from('a')]], table);
    const { messages, announcement } = splitBatch(packed);
    assert.deepEqual(messages, [[Buffer.from('a')]]);
    assert.deepEqual(readAnnouncement(announcement!, 2 ** 40), [3, 0, 2 ** 32]);
    assert.throws(() => readAnnouncement(announcement!, 2 ** 32), FrameTooLargeError);
    assert.throws(() => readAnnouncement(announce([new Uint8Array(1), { byteLength: 2 ** 45 } as Uint8Array]), 2 ** 50), FrameTooLargeError, 'a frame no buffer can hold');
    assert.throws(() => unpackBatch(packed), MalformedFrameError);
    // Not last: malformed.
    const early = packBatch([[Buffer.from('a')], [Buffer.from('b')]]);
    (early[0] as Buffer).writeUInt32BE(0x8000_0001, 0);
    assert.throws(() => splitBatch(early), MalformedFrameError);
    assert.throws(() => readAnnouncement(Buffer.alloc(5), 100), MalformedFrameError);
    assert.throws(() => readAnnouncement(announce([new Uint8Array(0), new Uint8Array(4)]), 100), MalformedFrameError, 'no header');
  });

  it('cuts frames into packets within the limit, as views, and assembles them back', () => {
    const frames = [Buffer.from('header'), Buffer.alloc(0), Buffer.alloc(10_000).map((_, i) => i % 7), Buffer.alloc(3000, 1)];
    for (const [limit, maxPieces] of [[1024, 1 << 16], [4096, 2], [20_000, 1 << 16]] as const) {
      const packets = cutPackets(frames, limit, maxPieces);
      const incoming = new IncomingMessage(frames.map((f) => f.byteLength));
      for (const packet of packets) {
        assert.ok(packet.length <= maxPieces);
        assert.ok(4 + 4 * packet.length + packet.reduce((n, p) => n + p.byteLength, 0) <= limit, `a packet within ${limit}`);
        for (const piece of packet) {
          assert.ok(frames.some((f) => f.buffer === piece.buffer), 'a view, not a copy');
          incoming.claim(piece.byteLength).set(piece);
        }
      }
      assert.ok(incoming.done);
      assert.deepEqual(incoming.frames.map((f) => Buffer.from(f)), frames);
      assert.equal(incoming.frames[2]!.byteOffset, 0);
      assert.throws(() => incoming.claim(1), MalformedFrameError, 'past the end');
    }
    const crossing = new IncomingMessage([4, 4]);
    assert.throws(() => crossing.claim(5), MalformedFrameError, 'a piece across two frames');
  });

  it('assembles its frames in the memory it is given', () => {
    const given = new Uint8Array(10_000);
    const incoming = new IncomingMessage([6, 10_000], (length) => (length === 10_000 ? given : null));
    incoming.claim(6).set(Buffer.from('header'));
    incoming.claim(4000).fill(2);
    incoming.claim(6000).fill(3);
    assert.ok(incoming.done);
    assert.equal(incoming.frames[1]!.buffer, given.buffer);
    assert.equal(given[3999], 2);
    assert.equal(given[4000], 3);
    assert.equal(Buffer.from(incoming.frames[0]!).toString(), 'header');
  });
});
