/**
 * One run of one container's output, kept line by line with the time each line arrived,
 * so the kubelet's log endpoint can answer tailLines, sinceSeconds, limitBytes, timestamps,
 * stream and follow as the kubelet does.
 */
import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';

export type LogStream = 'stdout' | 'stderr';

interface LogLine {
  at: Date;
  stream: LogStream;
  /** The line's text with its newline, or without one for the last, unfinished line at exit. */
  text: string;
}

/** RFC 3339 with nanoseconds, as the kubelet prints timestamps. */
function nanoTime(at: Date): string {
  return at.toISOString().replace(/\.(\d{3})Z$/, '.$1000000Z');
}

/** How much one container run keeps; older lines are dropped past it. */
const MAX_BYTES = 8 * 1024 * 1024;

export interface LogQuery {
  follow?: boolean;
  tailLines?: number;
  sinceSeconds?: number;
  limitBytes?: number;
  timestamps?: boolean;
  stream?: LogStream | 'All';
}

export class ContainerLog {
  private readonly lines: LogLine[] = [];
  private readonly partial: Record<LogStream, string> = { stdout: '', stderr: '' };
  private bytes = 0;
  private closed = false;
  private readonly events = new EventEmitter();

  /** Reads `source` until it ends, as one of the container's streams. */
  attach(source: Readable, stream: LogStream): void {
    source.setEncoding('utf8');
    source.on('data', (chunk: string) => this.write(stream, chunk));
    source.on('error', () => undefined);
  }

  /** Appends text the container did not write (the harness's own messages go nowhere else). */
  write(stream: LogStream, chunk: string): void {
    const text = this.partial[stream] + chunk;
    const parts = text.split('\n');
    this.partial[stream] = parts.pop() ?? '';
    for (const line of parts) this.push({ at: new Date(), stream, text: `${line}\n` });
  }

  /** The run has ended: an unfinished last line is kept as it is, and followers are released. */
  close(): void {
    if (this.closed) return;
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.partial[stream] !== '') this.push({ at: new Date(), stream, text: this.partial[stream] });
      this.partial[stream] = '';
    }
    this.closed = true;
    this.events.emit('close');
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** All of it, both streams, as written. */
  text(): string {
    return this.lines.map((line) => line.text).join('');
  }

  private push(line: LogLine): void {
    this.lines.push(line);
    this.bytes += line.text.length;
    while (this.bytes > MAX_BYTES && this.lines.length > 1) this.bytes -= this.lines.shift()!.text.length;
    this.events.emit('line', line);
  }

  private format(line: LogLine, query: LogQuery): string {
    return query.timestamps === true ? `${nanoTime(line.at)} ${line.text}` : line.text;
  }

  /**
   * Writes what the query selects to `out`; with follow, keeps writing new lines until the
   * run ends or `signal` aborts. Resolves when done.
   */
  async read(query: LogQuery, out: (text: string) => void, signal: AbortSignal): Promise<void> {
    const wanted = (line: LogLine): boolean => query.stream === undefined || query.stream === 'All' || query.stream === line.stream;
    const since = query.sinceSeconds === undefined ? undefined : Date.now() - query.sinceSeconds * 1000;
    let selected = this.lines.filter((line) => wanted(line) && (since === undefined || line.at.getTime() >= since));
    if (query.tailLines !== undefined) selected = query.tailLines <= 0 ? [] : selected.slice(-query.tailLines);
    let budget = query.limitBytes ?? Number.POSITIVE_INFINITY;
    const emit = (line: LogLine): boolean => {
      if (budget <= 0) return false;
      let text = this.format(line, query);
      if (Buffer.byteLength(text) > budget) text = Buffer.from(text).subarray(0, budget).toString('utf8');
      budget -= Buffer.byteLength(text);
      out(text);
      return budget > 0;
    };
    for (const line of selected) if (!emit(line)) return;
    if (query.follow !== true || this.closed || signal.aborted) return;
    await new Promise<void>((resolve) => {
      const onLine = (line: LogLine): void => {
        if (wanted(line) && !emit(line)) done();
      };
      const done = (): void => {
        this.events.off('line', onLine);
        this.events.off('close', done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.events.on('line', onLine);
      this.events.once('close', done);
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
