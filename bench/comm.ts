// Micro-benchmark of src/comm: the codec, small-message round trips, and large binary
// transfers over loopback. The peer runs in a child process, so the two ends do not share
// an event loop. Prints JSON lines; the anchors (plain msgpackr, a raw TCP socket) run in
// the same run so that the ratios hold on a noisy machine.
//
//   node --import tsx bench/comm.ts

import { spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { Packr } from 'msgpackr';
import { connect, decode, encode, listen, type Connection } from '../src/comm/index.js';
import { Ref } from '../src/graph/task.js';
import { decodeSpec, encodeSpec } from '../src/protocol/encoded-spec.js';
import { withHugePages } from '../src/process/worker-env.js';
import type { TaskSpec } from '../src/protocol/task-spec.js';

type Msg =
  | { op: 'ping'; n: number; key: string; worker: string; nbytes: number; startstops: number[] }
  | { op: 'pong'; n: number }
  | { op: 'upload'; data: Float64Array }
  | { op: 'download'; bytes: number }
  | { op: 'blob'; data: Float64Array }
  | { op: 'ack'; bytes: number; last: number };

const MiB = 1024 * 1024;
const BIG = 64 * MiB;
const print = (line: Record<string, unknown>): void => console.log(JSON.stringify({ bench: 'comm', ...line }));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

// ---------------------------------------------------------------- the peer (child process)

async function peer(): Promise<void> {
  const blob = new Float64Array(BIG / 8).map((_, i) => i);
  const serve = (batchInterval: number) => listen<Msg>({
    port: 0,
    batchInterval,
    onConnection(conn) {
      conn.onMessage((m) => {
        switch (m.op) {
          case 'ping':
            conn.send({ op: 'pong', n: m.n });
            return;
          case 'upload':
            conn.send({ op: 'ack', bytes: m.data.byteLength, last: m.data[m.data.length - 1] ?? -1 });
            return;
          case 'download':
            conn.send({ op: 'blob', data: blob.subarray(0, m.bytes / 8) });
            return;
          default:
            return;
        }
      });
    },
  });
  const server = await serve(2);
  const eager = await serve(0);
  // The anchors: a raw socket that reads a u32 length and that many bytes, then acks one
  // byte; with ?assemble, it first gathers the bytes into one buffer, as any receiver
  // that wants a contiguous array must.
  const raw = net.createServer((socket) => {
    let want = -1;
    let got = 0;
    let assemble: Buffer | null = null;
    socket.on('data', (chunk: Buffer) => {
      if (want < 0) {
        want = chunk.readUInt32BE(0);
        const mode = chunk.readUInt8(4);
        assemble = mode === 1 ? Buffer.allocUnsafe(want) : null;
        chunk = chunk.subarray(5);
      }
      if (assemble !== null) chunk.copy(assemble, got);
      got += chunk.length;
      if (got >= want) {
        socket.write(Buffer.from([1]));
        want = -1;
        got = 0;
      }
    });
  });
  await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
  // The loopback's own limit: each byte received asks for the whole 64 MiB.
  const source = net.createServer((socket) => socket.on('data', () => socket.write(new Uint8Array(blob.buffer))));
  await new Promise<void>((resolve) => source.listen(0, '127.0.0.1', resolve));
  const port = (s: net.Server): number => (s.address() as net.AddressInfo).port;
  console.log(JSON.stringify({ tessera: server.address, eager: eager.address, raw: port(raw), source: port(source) }));
  process.stdin.resume();
  process.stdin.on('end', () => {
    raw.close();
    source.close();
    void Promise.all([server.close(), eager.close()]).then(() => process.exit(0));
  });
}

// ---------------------------------------------------------------- the benchmarks

function codecBench(): void {
  const message: Msg = { op: 'ping', n: 1, key: 'inc-4f2a9c', worker: 'tcp://10.0.0.7:40123', nbytes: 8, startstops: [1.25, 2.5] };
  const n = 100_000;
  const packr = new Packr({ useRecords: false, moreTypes: true, mapsAsObjects: true, structuredClone: false });
  const time = (fn: () => void): number => {
    const runs: number[] = [];
    for (let r = 0; r < 5; r++) {
      const t = performance.now();
      fn();
      runs.push(((performance.now() - t) * 1000) / n);
    }
    return median(runs);
  };
  const frames = encode(message);
  const packed = packr.pack(message);
  const enc = time(() => {
    for (let i = 0; i < n; i++) encode(message);
  });
  const dec = time(() => {
    for (let i = 0; i < n; i++) decode(frames);
  });
  const anchorEnc = time(() => {
    for (let i = 0; i < n; i++) packr.pack(message);
  });
  const anchorDec = time(() => {
    for (let i = 0; i < n; i++) packr.unpack(packed);
  });
  print({ case: 'encode-small', n, us_per_msg: +enc.toFixed(3), anchor: 'msgpackr.pack', anchor_us_per_msg: +anchorEnc.toFixed(3), ratio: +(enc / anchorEnc).toFixed(2) });
  print({ case: 'decode-small', n, us_per_msg: +dec.toFixed(3), anchor: 'msgpackr.unpack', anchor_us_per_msg: +anchorDec.toFixed(3), ratio: +(dec / anchorDec).toFixed(2) });
  specBench(time, n);
}

/** A task spec of map (`inc(i)`) and of tree (`add(a, b)`): written compact, and as the general encoder's object. */
function specBench(time: (fn: () => void) => number, n: number): void {
  const specs: Record<string, TaskSpec> = {
    map: { node: { steps: [{ fn: 'src:RYBKE1-jkrcAGuuz', deps: [], args: [12345], argRefs: null, deepRefs: null }], stepKeys: ['inc-d925388ef9aa7bc6'], out: true } },
    tree: {
      node: {
        steps: [{ fn: 'src:RYBKE1-jkrcAGuuw', deps: ['add-d925388ef9aa7bc6', 'add-d925388ef9aa7bc7'], args: [new Ref('add-d925388ef9aa7bc6'), new Ref('add-d925388ef9aa7bc7')], argRefs: [0, 0, 1, 1], deepRefs: null }],
        stepKeys: ['add-d925388ef9aa7bc8'],
        out: true,
      },
    },
  };
  for (const [name, spec] of Object.entries(specs)) {
    const compact = encodeSpec(spec)!;
    const general = Buffer.from(encode({ op: 'spec', node: spec.node })[0]!).toString('base64');
    const enc = time(() => {
      for (let i = 0; i < n; i++) encodeSpec(spec);
    });
    const dec = time(() => {
      for (let i = 0; i < n; i++) decodeSpec(compact);
    });
    const decGeneral = time(() => {
      for (let i = 0; i < n; i++) decodeSpec(general);
    });
    print({ case: `spec-${name}`, n, chars: compact.length, general_chars: general.length, encode_us: +enc.toFixed(3), decode_us: +dec.toFixed(3), general_decode_us: +decGeneral.toFixed(3) });
  }
}

function nextMessage(conn: Connection<Msg>): Promise<Msg> {
  return new Promise((resolve) => conn.onMessage(resolve));
}

async function pipelined(address: string): Promise<void> {
  const conn = await connect<Msg>(address, { role: 'bench' });
  const n = 100_000;
  const window = 10_000;
  const runs: number[] = [];
  for (let r = 0; r < 3; r++) {
    const t = performance.now();
    let received = 0;
    let sent = 0;
    await new Promise<void>((resolve) => {
      const top = (): void => {
        const until = Math.min(n, received + window);
        for (; sent < until; sent++) conn.send({ op: 'ping', n: sent, key: 'inc-4f2a9c', worker: 'tcp://10.0.0.7:40123', nbytes: 8, startstops: [1.25, 2.5] });
      };
      conn.onMessage(() => {
        received++;
        if (received === n) resolve();
        else if (sent - received < window / 2) top();
      });
      top();
    });
    runs.push(n / ((performance.now() - t) / 1000));
  }
  print({ case: 'round-trips-pipelined', n, window, msgs_per_s: Math.round(median(runs)) });
  await conn.close();
}

/** Each ping waits for its pong; both ends use the same batchInterval. */
async function pingPong(address: string, batchInterval: number, n: number): Promise<void> {
  const conn = await connect<Msg>(address, { role: 'bench', batchInterval });
  const t = performance.now();
  for (let i = 0; i < n; i++) {
    const pong = nextMessage(conn);
    conn.send({ op: 'ping', n: i, key: 'k', worker: 'w', nbytes: 0, startstops: [] });
    await pong;
  }
  const seconds = (performance.now() - t) / 1000;
  print({ case: 'round-trips-sequential', batchInterval, n, msgs_per_s: Math.round(n / seconds), us_per_round_trip: Math.round((seconds * 1e6) / n) });
  await conn.close();
}

async function rawTransfer(port: number, data: Buffer, assemble: boolean): Promise<number> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.setNoDelay(true);
  const runs: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t = performance.now();
    const ack = new Promise((resolve) => socket.once('data', resolve));
    const head = Buffer.alloc(5);
    head.writeUInt32BE(data.length);
    head.writeUInt8(assemble ? 1 : 0, 4);
    socket.cork();
    socket.write(head);
    socket.write(data);
    socket.uncork();
    await ack;
    runs.push(data.length / MiB / ((performance.now() - t) / 1000));
  }
  socket.destroy();
  return median(runs);
}

/**
 * MB/s of a raw socket reading 64 MiB with `onread` straight into one buffer: a fresh one
 * each time (what any receiver that keeps the bytes pays: the kernel faults every page in),
 * or the same one again (pages already mapped: the copy alone).
 */
async function rawDownload(port: number, fresh: boolean): Promise<number> {
  const runs: number[] = [];
  let target = Buffer.allocUnsafe(BIG);
  target.fill(0);
  for (let r = 0; r < 5; r++) {
    if (fresh) target = Buffer.allocUnsafe(BIG);
    let got = 0;
    const t = performance.now();
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect({
        port,
        host: '127.0.0.1',
        onread: {
          buffer: () => target.subarray(got),
          callback: (bytes: number) => {
            got += bytes;
            if (got === BIG) {
              socket.destroy();
              resolve();
            }
            return true;
          },
        },
      });
      socket.once('connect', () => socket.write('x'));
      socket.once('error', reject);
      socket.once('close', () => {
        if (got < BIG) reject(new Error(`the raw source closed after ${got} of ${BIG} bytes`));
      });
    });
    runs.push(BIG / MiB / ((performance.now() - t) / 1000));
  }
  return median(runs);
}

/**
 * The fresh-buffer read again in a process started as Tessera starts workers, with glibc
 * asked for transparent huge pages (src/process/worker-env.ts): the limit a worker's fetch meets.
 */
async function rawDownloadWithHugePages(port: number): Promise<number> {
  const env = { ...process.env, GLIBC_TUNABLES: withHugePages(process.env['GLIBC_TUNABLES']) };
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--raw-download', String(port)], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`the huge-pages raw read exited with ${String(code)}`);
  return (JSON.parse(out) as { mbPerSecond: number }).mbPerSecond;
}

async function transfers(address: string, rawPort: number, sourcePort: number): Promise<void> {
  const data = new Float64Array(BIG / 8).map((_, i) => i);
  const conn = await connect<Msg>(address, { role: 'bench' });
  const up: number[] = [];
  const down: number[] = [];
  for (let r = 0; r < 5; r++) {
    let t = performance.now();
    let reply = nextMessage(conn);
    conn.send({ op: 'upload', data });
    const ack = await reply;
    up.push(BIG / MiB / ((performance.now() - t) / 1000));
    if (ack.op !== 'ack' || ack.bytes !== BIG || ack.last !== data.length - 1) throw new Error('upload arrived wrong');

    t = performance.now();
    reply = nextMessage(conn);
    conn.send({ op: 'download', bytes: BIG });
    const blob = await reply;
    down.push(BIG / MiB / ((performance.now() - t) / 1000));
    if (blob.op !== 'blob' || !(blob.data instanceof Float64Array) || blob.data[blob.data.length - 1] !== data.length - 1) {
      throw new Error('download arrived wrong');
    }
  }
  await conn.close();
  const bare = await rawTransfer(rawPort, Buffer.from(data.buffer), false);
  const assembled = await rawTransfer(rawPort, Buffer.from(data.buffer), true);
  const fresh = await rawDownload(sourcePort, true);
  const reused = await rawDownload(sourcePort, false);
  const freshHuge = await rawDownloadWithHugePages(sourcePort);
  print({
    case: 'loopback-64MiB-download',
    fresh_buffer_mb_per_s: Math.round(fresh),
    fresh_huge_pages_buffer_mb_per_s: Math.round(freshHuge),
    reused_buffer_mb_per_s: Math.round(reused),
  });
  for (const [name, runs] of [['upload', up], ['download', down]] as const) {
    const mbps = median(runs);
    print({
      case: `float64-64MiB-${name}`,
      mb_per_s: Math.round(mbps),
      anchor: 'raw net.Socket, bytes discarded',
      anchor_mb_per_s: Math.round(bare),
      ratio: +(mbps / bare).toFixed(2),
      anchor2: 'raw net.Socket, bytes gathered into one buffer',
      anchor2_mb_per_s: Math.round(assembled),
      ratio2: +(mbps / assembled).toFixed(2),
      ...(name === 'download' ? { anchor3: 'raw net.Socket, onread into one fresh buffer', anchor3_mb_per_s: Math.round(fresh), ratio3: +(mbps / fresh).toFixed(2) } : {}),
    });
  }
}

async function main(): Promise<void> {
  codecBench();
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--peer'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const first = await new Promise<string>((resolve) => child.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString())));
  const { tessera, eager, raw, source } = JSON.parse(first) as { tessera: string; eager: string; raw: number; source: number };
  try {
    await pipelined(tessera);
    await pingPong(eager, 0, 5000);
    await pingPong(tessera, 2, 500);
    await transfers(tessera, raw, source);
  } finally {
    child.stdin.end();
  }
}

const rawOnly = process.argv.indexOf('--raw-download');
if (process.argv.includes('--peer')) await peer();
else if (rawOnly > 0) console.log(JSON.stringify({ mbPerSecond: await rawDownload(Number(process.argv[rawOnly + 1]), true) }));
else await main();
