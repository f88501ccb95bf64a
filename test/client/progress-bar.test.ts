import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { ProgressBar } from '../../src/client/progress-bar.js';

class Capture extends Writable {
  chunks: string[] = [];
  isTTY: boolean;
  columns = 80;
  constructor(tty: boolean) {
    super();
    this.isTTY = tty;
  }
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.chunks.push(chunk.toString());
    done();
  }
}

void describe('ProgressBar', () => {
  void test('a TTY gets one redrawn line with counts, rate and ETA', () => {
    let now = 0;
    const stream = new Capture(true);
    const bar = new ProgressBar({ total: 200, label: 'sleep', stream, clock: () => now });
    now = 10_000;
    bar.update(50);
    const line = stream.chunks.at(-1)!;
    assert.ok(line.startsWith('\r\x1b[2K'), 'redraws in place');
    assert.match(line, /sleep \[#+-+\]\s+25% 50\/200 \| 5\.0\/s \| ETA 30\.0s/);
    now = 10_050;
    bar.update(51);
    assert.equal(stream.chunks.length, 1, 'throttled');
    now = 40_000;
    bar.update(200, 2);
    bar.finish();
    bar.finish();
    assert.match(stream.chunks.at(-1)!, /100% 200\/200 \(2 erred\).*\n$/);
    assert.equal(stream.chunks.filter((c) => c.endsWith('\n')).length, 1);
  });

  void test('without a TTY, plain lines at most every plainInterval', () => {
    let now = 0;
    const stream = new Capture(false);
    const bar = new ProgressBar({ total: 10, stream, clock: () => now, plainInterval: 5000 });
    for (let i = 1; i <= 10; i++) {
      now = i * 1000;
      bar.update(i);
    }
    bar.finish();
    assert.ok(stream.chunks.every((c) => !c.includes('\r') && !c.includes('\x1b')));
    assert.equal(stream.chunks.length, 3); // t=1s, t=6s, and the final line
    assert.match(stream.chunks.at(-1)!, /100% 10\/10/);
  });

  void test('an empty job is complete at once', () => {
    const stream = new Capture(false);
    const bar = new ProgressBar({ total: 0, stream });
    bar.finish();
    assert.match(stream.chunks[0]!, /100% 0\/0/);
  });
});
