/**
 * Reads a socket into memory the reader chooses (Node's `onread` option of `net.connect`):
 * while a large frame is being assembled the kernel writes the rest of it straight into the
 * frame's buffer, so its bytes are never copied in user space; otherwise into a scratch
 * buffer whose bytes are copied out when few, handed on when many. The socket must be made
 * with `onread` set to `reads.onread`; only dialled sockets can be (a server's accepted
 * sockets and TLS sockets read through 'data' events as before).
 *
 * ```ts
 * const reads = new DirectReads();
 * const socket = net.connect({ host, port, onread: reads.onread });
 * new SocketConnection(socket, options, reads);   // attaches itself
 * ```
 */

/** What a connection does with reads: where the next one goes, and what one brought. */
export interface ReadSink {
  /** Where the rest of a frame goes when at least `min` bytes of it are to come, else null. */
  rest(min: number): Uint8Array | null;
  /** Bytes read into what `rest` gave. */
  filled(bytes: number): void;
  /** A chunk read into scratch memory, now the sink's to keep. */
  chunk(chunk: Buffer): void;
}

/** Scratch reads are this large, as libuv's own. */
const SCRATCH = 64 * 1024;
/** Reads of fewer bytes are copied out, and the scratch buffer is read into again. */
const COPY_BELOW = 8 * 1024;
/** A frame with at least this much to come is read in place. */
const DIRECT_MIN = 16 * 1024;

export class DirectReads {
  #sink: ReadSink | null = null;
  #scratch = Buffer.allocUnsafe(SCRATCH);
  /** The last buffer handed to the socket, when it was a frame's own memory. */
  #direct: Uint8Array | null = null;
  /** Chunks read before a sink was attached. */
  #early: Buffer[] = [];

  readonly onread = {
    buffer: (): Uint8Array => this.#next(),
    callback: (bytes: number, buffer: Uint8Array): boolean => {
      this.#read(bytes, buffer);
      return true;
    },
  };

  /** From now on reads go to `sink`, those that came before first. */
  attach(sink: ReadSink): void {
    this.#sink = sink;
    for (const chunk of this.#early.splice(0)) sink.chunk(chunk);
  }

  #next(): Uint8Array {
    const rest = this.#sink?.rest(DIRECT_MIN) ?? null;
    this.#direct = rest;
    return rest ?? this.#scratch;
  }

  #read(bytes: number, buffer: Uint8Array): void {
    const direct = this.#direct;
    if (direct !== null && buffer === direct) {
      this.#direct = null;
      this.#sink?.filled(bytes);
      return;
    }
    let chunk: Buffer;
    if (bytes < COPY_BELOW) {
      chunk = Buffer.from(this.#scratch.subarray(0, bytes));
    } else {
      chunk = this.#scratch.subarray(0, bytes);
      this.#scratch = Buffer.allocUnsafe(SCRATCH);
    }
    if (this.#sink === null) this.#early.push(chunk);
    else this.#sink.chunk(chunk);
  }
}
